// Batches: every row once per epoch, the same for a seed, and with lengths, much less
// padding than a plain shuffle.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Rng } from '../../native-models/train/rng.ts';
import { epochBatches } from './training.ts';

test('epochBatches covers every row once per epoch, repeats for a seed, and length pools cut padding', () => {
  const rng = new Rng(5);
  const lengths = Array.from({ length: 500 }, () => 10 + rng.int(300));
  const padded = (bs: number[][]): number => bs.reduce((s, b) => s + b.length * Math.max(...b.map((i) => lengths[i])), 0);
  for (const length of [undefined, (i: number) => lengths[i]]) {
    const bs = epochBatches(500, 8, 2, 3, length);
    assert.equal(bs.length, 2 * Math.ceil(500 / 8));
    const perEpoch = bs.length / 2;
    for (const epoch of [bs.slice(0, perEpoch), bs.slice(perEpoch)]) assert.deepEqual(epoch.flat().sort((a, b) => a - b), Array.from({ length: 500 }, (_, i) => i));
    assert.deepEqual(epochBatches(500, 8, 2, 3, length), bs);
  }
  const plain = padded(epochBatches(500, 8, 1, 3)), pooled = padded(epochBatches(500, 8, 1, 3, (i) => lengths[i]));
  const real = lengths.reduce((a, b) => a + b, 0);
  assert.ok(pooled - real < 0.2 * (plain - real), `padding ${pooled - real} tokens with pools against ${plain - real} without`);
});

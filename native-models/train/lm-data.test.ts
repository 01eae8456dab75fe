import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TokenStream } from './lm-data.ts';
import { Rng } from './rng.ts';

test('a token stream joins documents with EOS and yields shifted windows', () => {
  const s = new TokenStream([[1, 2, 3], [4, 5]], 0);
  assert.deepEqual([...s.tokens], [1, 2, 3, 0, 4, 5, 0]);
  const b = s.randomBatch(4, 3, new Rng(1));
  const tok = [...(b.tokens.data as BigInt64Array)].map(Number), tgt = [...(b.targets.data as BigInt64Array)].map(Number);
  for (let r = 0; r < 4; r++) {
    const start = [...s.tokens].findIndex((_, i) => i + 3 < s.length && [0, 1, 2].every((t) => s.tokens[i + t] === tok[r * 3 + t]));
    assert.ok(start >= 0, `row ${r} is a window of the stream`);
    for (let t = 0; t < 3; t++) assert.equal(tgt[r * 3 + t], s.tokens[start + t + 1], 'targets are inputs shifted by one');
  }
  // Same RNG state, same batch.
  assert.deepEqual(s.randomBatch(4, 3, new Rng(1)).tokens.data, b.tokens.data);
  const seq = [...s.sequentialBatches(2, 3)];
  assert.deepEqual(seq.map((x) => [...(x.tokens.data as BigInt64Array)].map(Number)), [[1, 2, 3, 0, 4, 5]]);
  assert.throws(() => new TokenStream([[1]], 0).randomBatch(1, 5, new Rng(0)), /fewer than one window/);
});

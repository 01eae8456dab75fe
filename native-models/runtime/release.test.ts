import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { releaseBuffers } from './release.ts';

const rssMiB = (): number => process.memoryUsage().rss / 2 ** 20;

test('released buffers are detached and their memory returns without a garbage collection', async () => {
  const a = new Float32Array(64 * 2 ** 20).fill(1); // 256 MiB, touched
  const b = new Float32Array(a.buffer, 16, 4); // a view of the same buffer: released once
  const before = rssMiB();
  releaseBuffers([a, b]);
  assert.equal(a.length, 0);
  assert.equal(b.length, 0);
  await sleep(20); // the ports close at the end of the event loop's turn
  const after = rssMiB();
  assert.ok(before - after > 200, `RSS went from ${before.toFixed(0)} to ${after.toFixed(0)} MiB`);
});

test('empty and already released arrays are ignored', () => {
  const a = new Float32Array(4);
  releaseBuffers([a]);
  releaseBuffers([a, new Float32Array(0)]);
  assert.equal(a.length, 0);
});

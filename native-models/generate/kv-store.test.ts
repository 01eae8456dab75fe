// The host-side KV cache: a prefill's positions and decoding steps appended, grown, compacted, masked.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import ort from 'onnxruntime-node';
import { KvStore } from './kv-store.ts';

const shape = { layers: 1, kvHeads: 2, headDim: 3 };
/** Entry value that names its place: 1000 b + 100 h + 10 position + i. */
const tagged = (B: number, T: number, first = 0): ort.Tensor =>
  new ort.Tensor('float32', Float32Array.from({ length: B * 2 * T * 3 }, (_, k) => {
    const i = k % 3, t = Math.floor(k / 3) % T, h = Math.floor(k / (3 * T)) % 2, b = Math.floor(k / (6 * T));
    return 1000 * b + 100 * h + 10 * (first + t) + i;
  }), [B, 2, T, 3]);

/** Slot `s` of row b, head h, of the store's first buffer. */
const slot = (store: KvStore, b: number, h: number, s: number): number[] => {
  const data = store.past()[0].data as Float32Array;
  const at = ((b * 2 + h) * store.capacity + s) * 3;
  return [...data.subarray(at, at + 3)];
};

test('a prefill, appends with growth, mask, and compaction keep every entry in its place', () => {
  const store = new KvStore(shape, 2, 2);
  store.append([tagged(2, 3), tagged(2, 3)]); // a prompt of 3 positions
  assert.equal(store.length, 3);
  assert.equal(store.capacity, 5);
  assert.deepEqual(store.past()[0].dims, [2, 2, 5, 3]);
  assert.deepEqual(slot(store, 1, 1, 2), [1120, 1121, 1122]);
  for (let p = 3; p < 7; p++) store.append([tagged(2, 1, p), tagged(2, 1, p)]); // grows at 5
  assert.equal(store.length, 7);
  assert.ok(store.capacity >= 7);
  for (let p = 0; p < 7; p++) assert.deepEqual(slot(store, 1, 0, p), [1000 + 10 * p, 1001 + 10 * p, 1002 + 10 * p]);
  // Row 0 has one padding column; empty slots and padding are 0, the new token's column 1.
  const cap = store.capacity;
  const mask = [...store.mask([1, 0])].map(Number);
  const row = (pad: number): number[] => Array.from({ length: cap + 1 }, (_, j) => (j === cap || (j >= pad && j < 7) ? 1 : 0));
  assert.deepEqual(mask, [...row(1), ...row(0)]);
  // Keep row 1 only, dropping the first two slots.
  store.select([1], 2);
  assert.equal(store.batch, 1);
  assert.equal(store.length, 5);
  assert.deepEqual(slot(store, 0, 1, 0), [1120, 1121, 1122]);
  assert.deepEqual(slot(store, 0, 1, 4), [1160, 1161, 1162]);
});

test('growth stops at the limit, and an empty store starts with no slots', () => {
  const store = new KvStore(shape, 1, 16, 4);
  assert.equal(store.capacity, 0);
  assert.deepEqual(store.past()[0].dims, [1, 2, 0, 3]);
  assert.deepEqual([...store.mask([0])], [1n]);
  store.append([tagged(1, 1), tagged(1, 1)]);
  assert.equal(store.capacity, 4);
});

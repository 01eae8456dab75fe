import { test } from 'node:test';
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import * as ort from 'onnxruntime-node';
import { SessionCache, runInto } from './session.ts';
import { addModel, sumProductModel } from './test-models.ts';

const f32 = (values: number[], dims = [values.length]): ort.Tensor => new ort.Tensor('float32', Float32Array.from(values), dims);

test('one session per model content and options', async () => {
  const cache = new SessionCache();
  const bytes = addModel([2]);
  const [a, b] = await Promise.all([cache.get(bytes, { provider: 'cpu' }), cache.get(bytes, { provider: 'cpu' })]);
  assert.equal(a, b);
  assert.equal(await cache.get(Uint8Array.from(bytes), { provider: 'cpu' }), a, 'keyed by content, not by array');
  assert.equal(await cache.get(bytes, { provider: 'cpu', intraOpThreads: availableParallelism(), graphOptimizationLevel: 'all', spinning: false }), a, 'defaults');
  assert.equal(cache.size, 1);
  const others = await Promise.all([
    cache.get(bytes, { provider: 'cpu', intraOpThreads: 1 }),
    cache.get(bytes, { provider: 'cpu', graphOptimizationLevel: 'basic' }),
    cache.get(addModel([3]), { provider: 'cpu' }),
    cache.get(bytes, { provider: 'cpu', spinning: true }),
  ]);
  assert.equal(new Set([a, ...others]).size, 5);
  assert.equal(cache.size, 5);
  const { Y } = await others[0].run({ A: f32([1, 2]), B: f32([3, 4]) });
  assert.deepEqual(Array.from(Y.data as Float32Array), [4, 6]);
  await cache.clear();
  assert.equal(cache.size, 0);
});

test('release disposes one session; the next get compiles afresh', async () => {
  const cache = new SessionCache();
  const bytes = addModel([2]);
  const first = await cache.get(bytes, { provider: 'cpu' });
  assert.equal(await cache.release(first), true);
  assert.equal(await cache.release(first), false);
  assert.equal(cache.size, 0);
  await assert.rejects(first.run({ A: f32([1, 2]), B: f32([3, 4]) }));
  const second = await cache.get(bytes, { provider: 'cpu' });
  assert.notEqual(second, first);
  await cache.clear();
});

test('a model ORT cannot load is reported and not cached', async () => {
  const cache = new SessionCache();
  await assert.rejects(cache.get(new Uint8Array([1, 2, 3]), { provider: 'cpu' }), /^Error: ONNX Runtime could not load the model \(3 bytes, sha256 [0-9a-f]{12}\) on cpu: /);
  assert.equal(cache.size, 0);
});

test('runInto writes the outputs into the given tensors and returns them', async () => {
  const cache = new SessionCache();
  const session = await cache.get(sumProductModel([4]), { provider: 'cpu' });
  const backing = new Float32Array(12);
  const outputs = {
    S: new ort.Tensor('float32', backing.subarray(0, 4), [4]),
    P: new ort.Tensor('float32', backing.subarray(8, 12), [4]), // an offset view works too
  };
  const sData = outputs.S.data;
  const got = await runInto(session, { A: f32([1, 2, 3, 4]), B: f32([10, 20, 30, 40]) }, outputs);
  assert.equal(got, outputs);
  assert.equal(got.S.data, sData);
  assert.deepEqual(Array.from(backing), [11, 22, 33, 44, 0, 0, 0, 0, 10, 40, 90, 160]);
  await runInto(session, { A: f32([0, 0, 0, 1]), B: f32([1, 1, 1, 1]) }, outputs);
  assert.deepEqual(Array.from(backing), [1, 1, 1, 2, 0, 0, 0, 0, 0, 0, 0, 1]);
  // Only some outputs may be asked for.
  const only = { P: new ort.Tensor('float32', new Float32Array(4), [4]) };
  await runInto(session, { A: f32([2, 2, 2, 2]), B: f32([3, 3, 3, 3]) }, only);
  assert.deepEqual(Array.from(only.P.data as Float32Array), [6, 6, 6, 6]);

  await assert.rejects(runInto(session, { A: f32([1, 2, 3, 4]), B: f32([1, 2, 3, 4]) }, { Q: f32([0, 0, 0, 0]) }), /runInto needs preallocated tensors for outputs of the model \(S, P\); got Q\./);
  await assert.rejects(runInto(session, { A: f32([1, 2, 3, 4]), B: f32([1, 2, 3, 4]) }, { S: f32([0, 0, 0]) }), /invalid dimensions for output: S/);
  await cache.clear();
});

// Emission: deterministic bytes, and names the user chose never clash with generated ones.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import ort from 'onnxruntime-node';
import * as T from './index.ts';

test('the same graph built twice emits identical bytes', () => {
  const build = (): Uint8Array => {
    const x = T.input('x', 'float32', ['B', 4]);
    const y = T.input('y', 'int64', ['B']);
    const w1 = T.param('w1', [4, 8]), b1 = T.param('b1', [8]), w2 = T.param('w2', [8, 3]);
    const h = T.gelu(T.linear(x, w1, b1), 'tanh');
    const loss = T.crossEntropy(T.matmul(T.layerNorm(h, T.param('s', [8]), T.param('b', [8])), w2), y);
    const grads = T.grad(loss, [w1, b1, w2]);
    return T.emitOnnx({ outputs: { loss, g1: grads[0], gb1: grads[1], g2: grads[2] }, initializers: new Map([[w2, new Float32Array(24).fill(0.5)]]) }).bytes;
  };
  const a = build();
  // Other values built in between shift the ids of the second build.
  T.add(T.input('z', 'float32', [2]), 1);
  const b = build();
  assert.ok(a.length > 0);
  assert.deepEqual(Buffer.from(b), Buffer.from(a));
});

test('leaves named like generated names (c0, t1) neither clash nor replace constants', async () => {
  const x = T.input('c0', 'float32', [2]), y = T.input('t1', 'float32', [2]);
  const out = T.add(T.mul(x, 2), y);
  const s = await ort.InferenceSession.create(T.emitOnnx({ outputs: { t0: out } }).bytes);
  const r = await s.run({ c0: new ort.Tensor('float32', Float32Array.of(1, 2), [2]), t1: new ort.Tensor('float32', Float32Array.of(10, 20), [2]) });
  assert.deepEqual([...(r.t0.data as Float32Array)], [12, 24]);
});

test('an output named like a graph input is refused', () => {
  const x = T.input('x', 'float32', [2]);
  assert.throws(() => T.emitOnnx({ outputs: { x: T.exp(x) } }), /output 'x' has the name of a graph input/);
});

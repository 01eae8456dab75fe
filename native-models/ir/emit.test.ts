// Emission: deterministic bytes, names the user chose never clash with generated ones,
// and initializers whose bytes stay in a file (external data).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { withTempDir } from '../../test/support/temp-dir.ts';
import { SessionCache } from '../runtime/session.ts';
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

test('initializers whose bytes stay in a file run from the folder the session is given, at unaligned offsets', () => withTempDir('emit-external', async (dir) => {
  // w [3, 2] at byte 13 of one file, b [2] at byte 5 of another: neither offset is aligned.
  const w = Float32Array.of(1, 2, 3, 4, 5, 6), b = Float32Array.of(0.5, -0.5);
  const file = (data: Float32Array, at: number) => Buffer.concat([Buffer.alloc(at, 7), Buffer.from(data.buffer), Buffer.alloc(3)]);
  await writeFile(join(dir, 'w.bin'), file(w, 13));
  await writeFile(join(dir, 'b.bin'), file(b, 5));
  const x = T.input('x', 'float32', ['B', 3]);
  const pw = T.param('w', [3, 2]), pb = T.param('b', [2]);
  const model = T.emitOnnx({
    outputs: { y: T.linear(x, pw, pb) },
    initializers: new Map([[pw, { location: 'w.bin', offset: 13, length: 24 }], [pb, { location: 'b.bin', offset: 5, length: 8 }]]),
  });
  assert.ok(model.bytes.length < 1000, 'the weights are not in the model');
  const sessions = new SessionCache();
  try {
    for (const prepacking of [true, false]) {
      const s = await sessions.get(model.bytes, { provider: 'cpu', intraOpThreads: 1, externalDataDir: dir, prepacking });
      const r = await s.run({ x: new ort.Tensor('float32', Float32Array.of(1, 1, 1, 0, 1, 0), [2, 3]) });
      assert.deepEqual([...(r.y.data as Float32Array)], [9.5, 11.5, 3.5, 3.5], `prepacking ${prepacking}`);
    }
    assert.equal(sessions.size, 2);
  } finally {
    await sessions.clear();
  }
  assert.throws(() => T.emitOnnx({ outputs: { y: T.linear(x, pw) }, initializers: new Map([[pw, { location: 'w.bin', offset: 13, length: 20 }]]) }),
    /external data of 'w' \(w.bin\) has 20 bytes, but its float32 shape \[3, 2\] needs 24/);
}));

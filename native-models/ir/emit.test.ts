// Emission: deterministic bytes, names the user chose never clash with generated ones,
// and initializers whose bytes stay in a file (external data).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
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

// ---------------------------------------------------------------- the webgpu target

const { onnx } = onnxProto;
const opTypes = (bytes: Uint8Array): Set<string> => new Set(onnx.ModelProto.decode(bytes).graph!.node!.map((n) => n.opType!));
const inputTypes = (bytes: Uint8Array): Record<string, number> =>
  Object.fromEntries(onnx.ModelProto.decode(bytes).graph!.input!.map((i) => [i.name!, i.type!.tensorType!.elemType!]));

/** Token ids [B, T] through an embedding, a causal mask with a cache length P, a log-softmax and a mean over B*T. */
function smallGraph(): { outputs: Record<string, T.Value>; inputs: T.Value[]; initializers: Map<T.Value, Float32Array> } {
  const tokens = T.input('tokens', 'int64', ['B', 'T']);
  const past = T.input('past', 'float32', ['B', 'P', 4]);
  const emb = T.param('emb', [10, 4]);
  const x = T.concat([past, T.gather(emb, tokens)], 1); // [B, P+T, 4]
  const flat = T.reshape(x, [-1, 4]); // [B*(P+T), 4]
  const limit = T.add(T.unsqueeze(T.range('T'), 1), T.add(T.dimValue('P', 'int64'), 1)); // [T, 1]
  const causal = T.cast(T.less(T.unsqueeze(T.range(T.dimAdd('P', 'T')), 0), limit), 'float32'); // [T, P+T]
  const logp = T.logSoftmax(T.matmul(causal, x), -1); // [B, T, 4]
  const picked = T.tokenLogProb(T.matmul(causal, x), T.slice(tokens, 1, 0, 'T')); // [B, T]
  const initializers = new Map([[emb, Float32Array.from({ length: 40 }, (_, i) => Math.sin(i))]]);
  return { outputs: { logp, picked, mean: T.div(T.reduceSum(flat), T.numelOf(flat)) }, inputs: [tokens, past], initializers };
}

test('a graph written for webgpu reads its sizes from shape inputs, takes int64 inputs as int32, and has no LogSoftmax', () => {
  const { outputs, inputs, initializers } = smallGraph();
  const cpu = T.emitOnnx({ outputs, inputs, initializers, name: 'g' });
  assert.ok(opTypes(cpu.bytes).has('Shape') && opTypes(cpu.bytes).has('LogSoftmax'));
  assert.deepEqual(cpu.shapeInputs, []);
  assert.deepEqual(cpu.int32Inputs, []);
  const gpu = T.emitOnnx({ outputs, inputs, initializers, name: 'g', target: 'webgpu' });
  const ops = opTypes(gpu.bytes);
  for (const op of ['Shape', 'LogSoftmax']) assert.ok(!ops.has(op), `${op} in ${[...ops].join(', ')}`);
  assert.equal(gpu.target, 'webgpu');
  assert.deepEqual(gpu.inputNames, ['tokens', 'past']);
  assert.deepEqual(gpu.int32Inputs, ['tokens']);
  const types = inputTypes(gpu.bytes);
  assert.equal(types.tokens, onnx.TensorProto.DataType.INT32);
  for (const s of gpu.shapeInputs) assert.equal(types[s.name], s.dtype === 'float32' ? onnx.TensorProto.DataType.FLOAT : s.dtype === 'int32' ? onnx.TensorProto.DataType.INT32 : onnx.TensorProto.DataType.INT64, s.name);
  assert.deepEqual(gpu.symbols, { B: { input: 'tokens', axis: 0 }, T: { input: 'tokens', axis: 1 }, P: { input: 'past', axis: 1 } });
  const values = T.shapeInputValues(gpu, (name) => ({ tokens: [2, 3], past: [2, 5, 4] })[name]);
  const byDims = new Map(gpu.shapeInputs.map((s) => [`${s.dims.join(',')}:${s.dtype ?? 'shape'}`, [...values.get(s.name)!.data].map(Number)]));
  assert.deepEqual(byDims.get('P+T:int32'), [8]);
  assert.deepEqual(byDims.get('P:int32'), [5]);
  const count = gpu.shapeInputs.find((s) => s.dtype === 'float32')!;
  assert.deepEqual([...values.get(count.name)!.data], [64], `${count.dims[0]}`); // the mean's count: B*(P+T)*4
});

test('a graph written for webgpu computes what the CPU graph computes (both run on the CPU provider)', async () => {
  const { outputs, inputs, initializers } = smallGraph();
  const feeds = { tokens: new ort.Tensor('int64', BigInt64Array.of(1n, 3n, 2n, 0n, 2n, 3n), [2, 3]), past: new ort.Tensor('float32', Float32Array.from({ length: 40 }, (_, i) => Math.cos(i)), [2, 5, 4]) };
  const run = async (target: T.EmitTarget): Promise<Record<string, Float32Array>> => {
    const m = T.emitOnnx({ outputs, inputs, initializers, target });
    const s = await ort.InferenceSession.create(m.bytes);
    const all: Record<string, ort.Tensor> = { ...feeds };
    if (target === 'webgpu') {
      all.tokens = new ort.Tensor('int32', Int32Array.of(1, 3, 2, 0, 2, 3), [2, 3]);
      for (const [name, v] of T.shapeInputValues(m, (n) => all[n]?.dims)) all[name] = new ort.Tensor(v.data, v.dims);
    }
    const r = await s.run(all);
    await s.release();
    return Object.fromEntries(Object.keys(outputs).map((k) => [k, r[k].data as Float32Array]));
  };
  const cpu = await run('cpu'), gpu = await run('webgpu');
  for (const k of Object.keys(outputs)) {
    assert.equal(gpu[k].length, cpu[k].length, k);
    cpu[k].forEach((x, i) => assert.ok(Math.abs(x - gpu[k][i]) <= 1e-5 * Math.max(1, Math.abs(x)), `${k}[${i}]: ${x} vs ${gpu[k][i]}`));
  }
});

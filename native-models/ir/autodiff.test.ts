// Edge cases of the autodiff: unused and fanned-out inputs, integer inputs, ops without
// a gradient rule, shape errors at build time, symbolic dimensions end to end.
// gradcheck.ts itself is checked here too (it must reject a wrong rule, or the whole
// gradient suite proves nothing).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import ort from 'onnxruntime-node';
import * as T from './index.ts';
import { gradCheck } from './gradcheck.ts';
import type { Value } from './value.ts';

const f64 = (data: number[], dims: number[]): ort.Tensor => new ort.Tensor('float64', Float64Array.from(data), dims);
const run = async (outputs: Record<string, Value>, feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> => {
  const s = await ort.InferenceSession.create(T.emitOnnx({ outputs }).bytes);
  return s.run(feeds);
};

test('an input the loss does not depend on gets zeros of its shape', async () => {
  const x = T.input('x', 'float64', [2, 3]);
  const unused = T.input('unused', 'float64', [4, 1]);
  const loss = T.reduceSum(T.exp(x));
  const [gx, gu] = T.grad(loss, [x, unused]);
  assert.deepEqual(gu.shape, [4, 1]);
  const r = await run({ gx, gu }, { x: f64([0, 0, 0, 0, 0, 0], [2, 3]) });
  assert.deepEqual([...r.gu.dims], [4, 1]);
  assert.deepEqual([...(r.gu.data as Float64Array)], [0, 0, 0, 0]);
  assert.deepEqual([...(r.gx.data as Float64Array)], [1, 1, 1, 1, 1, 1]);
});

test('fan-out: a value used several times gets the sum of its gradients', async () => {
  await gradCheck({ name: 'fan-out x*x + sin(x) + x', inputs: [{ shape: [2, 3] }], build: ([x]) => T.add(T.add(T.mul(x, x), T.sin(x)), x) });
  // Exact: d/dx sum(x * x + x) = 2x + 1.
  const x = T.input('x', 'float64', [3]);
  const [gx] = T.grad(T.reduceSum(T.add(T.mul(x, x), x)), [x]);
  const r = await run({ gx }, { x: f64([1, -2, 0.5], [3]) });
  assert.deepEqual([...(r.gx.data as Float64Array)], [3, -3, 2]);
});

test('a gradient with respect to an integer input is refused, naming the op that reads it', () => {
  const table = T.input('table', 'float64', [5, 3]);
  const ids = T.input('ids', 'int64', [2]);
  const loss = T.reduceSum(T.gather(table, ids));
  assert.throws(() => T.grad(loss, [table, ids]), (err: Error) => {
    assert.match(err.message, /int64/);
    assert.match(err.message, /'ids'/);
    assert.match(err.message, /Gather/);
    return true;
  });
});

test('an op without a gradient rule on the path fails at build time, naming the op and shapes', () => {
  // A float op with no vjp (none of the built-in float ops lacks one).
  const FloorOp = T.defineOp<object>({
    kind: 'Floor',
    infer: (inputs) => ({ dtype: inputs[0].dtype, shape: [...inputs[0].shape] }),
    emit: (e, v) => e.node('Floor', [e.name(v.inputs[0])]),
  });
  const x = T.input('x', 'float64', [2, 3]);
  const y = T.apply(FloorOp, [T.exp(x)], {});
  const loss = T.reduceSum(T.mul(y, x));
  assert.throws(() => T.grad(loss, [x]), /^Error: Floor: has no gradient rule.*float64\[2, 3\]/);
  // Off the path (nothing to differentiate behind it), it is fine.
  const c = T.input('c', 'float64', [2, 3]);
  assert.doesNotThrow(() => T.grad(T.reduceSum(T.mul(T.apply(FloorOp, [c], {}), x)), [x]));
});

test('mismatched shapes fail at build time, naming the op and the shapes', () => {
  const a = T.input('a', 'float64', [3, 4]);
  const b = T.input('b', 'float64', [5, 4]);
  assert.throws(() => T.add(a, b), /^Error: Add: shapes \[3, 4\] and \[5, 4\] do not broadcast/);
  assert.throws(() => T.matmul(a, b), /^Error: MatMul: inner dimensions differ: \[3, 4\] @ \[5, 4\]/);
  assert.throws(() => T.concat([a, b], 1), /^Error: Concat: .*float64\[3, 4\], float64\[5, 4\]/);
  assert.throws(() => T.reshape(a, [5, -1]), /^Error: Reshape: cannot reshape \[3, 4\]/);
  assert.throws(() => T.mul(a, T.input('i', 'int64', [3, 4])), /^Error: Mul: dtypes differ \(float64 vs int64\)/);
  assert.throws(() => T.layerNorm(a, T.input('s', 'float64', [3]), T.input('b2', 'float64', [4])), /^Error: LayerNormalization: scale and bias must have shape \[4\]/);
  assert.throws(() => T.scatterAddElements(a, T.input('j', 'int64', [3, 2]), 1, [3, 4]), /^Error: ScatterAddElements: updates and indices must have one shape/);
  assert.throws(() => T.grad(T.reduceSum(a), [a], T.input('seed', 'float64', [3])), /^Error: grad: the seed must have the dtype and shape of the loss \(inputs: float64\[\], float64\[3\]\)/);
});

test('symbolic batch and sequence dims: one session, two batch sizes', async () => {
  // An LM-shaped graph: embedding, a 3D x 2D matmul (the shared-weight gradient path
  // flattens B*T), a causal mask of size T, the next-token shift (a slice ending at T-1),
  // a token-mean cross-entropy (the count B*(T-1) is computed at run time).
  const report = await gradCheck({
    name: 'symbolic [B, T] language model',
    inputs: [
      { shape: ['B', 'T'], dtype: 'int64', data: (n) => Array.from({ length: n }, (_, i) => (i * 3) % 5) },
      { shape: [5, 4] },
      { shape: [4, 5] },
    ],
    build: ([ids, emb, w]) => {
      const h = T.gather(emb, ids); // [B, T, 4]
      const t = ids.shape[1];
      const scores = T.matmul(h, T.transposeLast2(h)); // [B, T, T]
      const mixed = T.matmul(T.softmax(T.maskScores(scores, T.causalMask(t)), -1), h);
      const logits = T.slice(T.matmul(mixed, w), 1, 0, -1); // [B, T-1, 5]
      return T.crossEntropy(logits, T.slice(ids, 1, 1));
    },
    feeds: [[[2, 3], [5, 4], [4, 5]], [[3, 5], [5, 4], [4, 5]]],
  });
  assert.ok(report.checked > 0);
});

test('symbolic dims that are sums: a cache of P positions concatenated with T new ones', async () => {
  await gradCheck({
    name: 'Concat [P, 4] + [T, 4] -> [P+T, 4], then Slice and Pad on P+T',
    inputs: [{ shape: ['P', 4] }, { shape: ['T', 4] }],
    build: ([past, now]) => {
      const all = T.concat([past, T.exp(now)], 0); // [P+T, 4]
      const last = T.slice(all, 0, -1); // [1, 4], starting at P+T-1
      return T.mul(T.pad(T.slice(all, 0, 1), [0, 0], [1, 0]), last); // [P+T, 4]
    },
    feeds: [[[2, 4], [3, 4]], [[1, 4], [1, 4]]],
  });
});

test('gradCheck rejects a wrong gradient rule, naming the op, the input and the element', async () => {
  // x^2 whose rule forgets the factor 2.
  const BadSquare = T.defineOp<object>({
    kind: 'BadSquare',
    infer: (inputs) => ({ dtype: inputs[0].dtype, shape: [...inputs[0].shape] }),
    vjp: ({ g, inputs: [x] }) => [T.mul(g, x)],
    emit: (e, v) => e.node('Mul', [e.name(v.inputs[0]), e.name(v.inputs[0])]),
  });
  await assert.rejects(
    gradCheck({ name: 'BadSquare', inputs: [{ shape: [3] }, { shape: [2, 3] }], build: ([a, b]) => T.add(a, T.apply(BadSquare, [b], {})) }),
    /^AssertionError.*BadSquare: d loss \/ d input 1 \(float64\[2, 3\]\) at element \[\d, \d\]: analytic .* vs numeric/,
  );
});

test('a reshape whose symbolic dim is 0 at run time gives an empty tensor', async () => {
  // The Reshape is emitted with allowzero, so by the ONNX spec the 0 in [3, 0] means 0 rather
  // than "copy x's dim 1" (ORT 1.30 copes with zero-size inputs either way).
  const x = T.input('x', 'float32', ['P', 3]);
  const y = T.reshape(x, [3, 'P']);
  const s = await ort.InferenceSession.create(T.emitOnnx({ outputs: { y } }).bytes);
  const empty = await s.run({ x: new ort.Tensor('float32', new Float32Array(0), [0, 3]) });
  assert.deepEqual(empty.y.dims, [3, 0]);
  const full = await s.run({ x: new ort.Tensor('float32', new Float32Array(6), [2, 3]) });
  assert.deepEqual(full.y.dims, [3, 2]);
});

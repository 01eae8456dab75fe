// Finite-difference checks of every gradient rule of the IR, one table row per case
// (tinygrad style). Float64 on ORT's CPU provider wherever it has the kernel (DESIGN.md
// §5); Erf and Gelu only have float32 kernels there and are checked in float32.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import ort from 'onnxruntime-node';
import * as T from './index.ts';
import { gradCheck, type GradCheckSpec, type InputSpec } from './gradcheck.ts';
import type { Value } from './value.ts';

/** A float input of the given shape, uniform in `range` (default [-1, 1]). */
const f = (shape: number[], range?: [number, number]): InputSpec => ({ shape, range });
/** Values in [-1.5, -0.1] u [0.1, 1.5]: away from the kink of Relu. */
const awayFromZero = (shape: number[]): InputSpec => ({
  shape,
  data: (n) => Array.from({ length: n }, (_, i) => (i % 2 ? 1 : -1) * (0.1 + ((i * 0.37) % 1.4))),
});
const int64 = (shape: number[], data: number[]): InputSpec => ({ shape, dtype: 'int64', data });
const bool = (shape: number[], data: number[]): InputSpec => ({ shape, dtype: 'bool', data });

/** Scaled dot-product attention with a causal mask; q, k, v: [..., T, D]. */
function attention(q: Value, k: Value, v: Value): Value {
  const t = q.shape[q.rank - 2], d = q.shape[q.rank - 1] as number;
  const scores = T.mul(T.matmul(q, T.transposeLast2(k)), 1 / Math.sqrt(d));
  return T.matmul(T.softmax(T.maskScores(scores, T.causalMask(t)), -1), v);
}

type Case = Omit<GradCheckSpec, 'inputs' | 'build'> & { inputs: InputSpec[]; build: (xs: Value[]) => Value };

const cases: Case[] = [
  // Elementwise, with broadcasting both ways.
  { name: 'Add [3,1,4] + [5,1]', inputs: [f([3, 1, 4]), f([5, 1])], build: ([a, b]) => T.add(a, b) },
  { name: 'Add tensor + number', inputs: [f([2, 3])], build: ([a]) => T.add(T.mul(a, a), 2.5) },
  { name: 'Sub [2,3] - [3]', inputs: [f([2, 3]), f([3])], build: ([a, b]) => T.sub(a, b) },
  { name: 'Sub [1,3] - [4,1]', inputs: [f([1, 3]), f([4, 1])], build: ([a, b]) => T.sub(a, b) },
  { name: 'Mul [3,1,4] * [5,1]', inputs: [f([3, 1, 4]), f([5, 1])], build: ([a, b]) => T.mul(a, b) },
  { name: 'Mul [] * [2,3]', inputs: [f([]), f([2, 3])], build: ([a, b]) => T.mul(a, b) },
  { name: 'Div [2,3,4] / [3,1]', inputs: [f([2, 3, 4]), f([3, 1], [0.5, 2])], build: ([a, b]) => T.div(a, b) },
  { name: 'Div [4] / [2,1] negative', inputs: [f([4]), f([2, 1], [-2, -0.5])], build: ([a, b]) => T.div(a, b) },
  { name: 'Pow [3,4] ^ [4] (both operands)', inputs: [f([3, 4], [0.5, 2]), f([4], [-1.5, 2.5])], build: ([a, b]) => T.pow(a, b) },
  { name: 'Pow [2,1] ^ [3] broadcast', inputs: [f([2, 1], [0.5, 2]), f([3], [-1, 2])], build: ([a, b]) => T.pow(a, b) },
  { name: 'Pow x^3 (negative base, constant exponent)', inputs: [f([5])], build: ([a]) => T.pow(a, 3) },
  { name: 'Neg', inputs: [f([2, 3])], build: ([x]) => T.neg(x) },
  { name: 'Exp', inputs: [f([2, 3])], build: ([x]) => T.exp(x) },
  { name: 'Log', inputs: [f([2, 3], [0.2, 3])], build: ([x]) => T.log(x) },
  { name: 'Sqrt', inputs: [f([2, 3], [0.2, 3])], build: ([x]) => T.sqrt(x) },
  { name: 'Tanh', inputs: [f([2, 3], [-2, 2])], build: ([x]) => T.tanh(x) },
  { name: 'Sigmoid', inputs: [f([2, 3], [-3, 3])], build: ([x]) => T.sigmoid(x) },
  { name: 'Relu (inputs away from 0)', inputs: [awayFromZero([3, 4])], build: ([x]) => T.relu(x) },
  { name: 'Sin', inputs: [f([2, 3], [-3, 3])], build: ([x]) => T.sin(x) },
  { name: 'Cos', inputs: [f([2, 3], [-3, 3])], build: ([x]) => T.cos(x) },
  // ORT's CPU provider has Erf and Gelu in float32 only (tolerance: see gradcheck.ts).
  { name: 'Erf (float32)', dtype: 'float32', inputs: [f([2, 3], [-2, 2])], build: ([x]) => T.erf(x) },
  { name: 'Gelu exact (float32)', dtype: 'float32', inputs: [f([3, 4], [-3, 3])], build: ([x]) => T.gelu(x, 'none') },
  { name: 'Gelu tanh (float32)', dtype: 'float32', inputs: [f([3, 4], [-3, 3])], build: ([x]) => T.gelu(x, 'tanh') },
  // float64 -> float32 -> float64: the graph rounds to float32 inside, so the float32
  // tolerance of gradcheck.ts applies even though the inputs are float64.
  {
    name: 'Cast float64 -> float32 -> float64', inputs: [f([2, 3])], eps: 1e-2, rtol: 2e-3, atol: 2e-4,
    build: ([x]) => { const y = T.cast(x, 'float32'); return T.cast(T.mul(y, T.exp(y)), 'float64'); },
  },
  { name: 'Where cond[3,1] ? [3,4] : [4]', inputs: [bool([3, 1], [1, 0, 1]), f([3, 4]), f([4])], build: ([c, a, b]) => T.where(c, a, b) },
  { name: 'Where cond[2,3] ? x : 0', inputs: [bool([2, 3], [1, 0, 0, 1, 1, 0]), f([2, 3])], build: ([c, x]) => T.where(c, T.exp(x), 0) },

  // MatMul.
  { name: 'MatMul 2D', inputs: [f([3, 4]), f([4, 5])], build: ([a, b]) => T.matmul(a, b) },
  { name: 'MatMul batched', inputs: [f([2, 3, 4]), f([2, 4, 5])], build: ([a, b]) => T.matmul(a, b) },
  { name: 'MatMul batched x 2D weight', inputs: [f([2, 3, 4]), f([4, 5])], build: ([a, b]) => T.matmul(a, b) },
  { name: 'MatMul rank-4 x 2D weight', inputs: [f([2, 2, 3, 4]), f([4, 5])], build: ([a, b]) => T.matmul(a, b) },
  { name: 'MatMul broadcast batch [2,1,3,4] @ [3,4,5]', inputs: [f([2, 1, 3, 4]), f([3, 4, 5])], build: ([a, b]) => T.matmul(a, b) },
  { name: 'MatMul 2D @ batched', inputs: [f([3, 4]), f([2, 4, 5])], build: ([a, b]) => T.matmul(a, b) },

  // Gemm: every transpose combination, with and without a bias.
  { name: 'Gemm', inputs: [f([3, 4]), f([4, 5])], build: ([a, b]) => T.gemm(a, b) },
  { name: 'Gemm transB + bias [N]', inputs: [f([3, 4]), f([5, 4]), f([5])], build: ([a, b, c]) => T.gemm(a, b, { transB: true }, c) },
  { name: 'Gemm transA + bias [M,1]', inputs: [f([4, 3]), f([4, 5]), f([3, 1])], build: ([a, b, c]) => T.gemm(a, b, { transA: true }, c) },
  { name: 'Gemm transA transB', inputs: [f([4, 3]), f([5, 4])], build: ([a, b]) => T.gemm(a, b, { transA: true, transB: true }) },
  { name: 'linearOutIn [2,3,4] with W [5,4] and bias', inputs: [f([2, 3, 4]), f([5, 4]), f([5])], build: ([x, w, b]) => T.linearOutIn(x, w, b) },

  // Reductions.
  { name: 'ReduceSum axis 1', inputs: [f([2, 3, 4])], build: ([x]) => T.reduceSum(x, 1) },
  { name: 'ReduceSum axes [0,2] keepdims', inputs: [f([2, 3, 4])], build: ([x]) => T.reduceSum(x, [0, 2], true) },
  { name: 'ReduceSum all', inputs: [f([2, 3, 4])], build: ([x]) => T.reduceSum(T.mul(x, x)) },
  { name: 'ReduceMean axis -1 keepdims', inputs: [f([2, 3, 4])], build: ([x]) => T.reduceMean(x, -1, true) },
  { name: 'ReduceMean axes [0,2]', inputs: [f([2, 3, 4])], build: ([x]) => T.reduceMean(x, [0, 2]) },
  { name: 'ReduceMean all', inputs: [f([2, 3, 4])], build: ([x]) => T.reduceMean(T.exp(x)) },
  { name: 'ReduceMax axis 1', inputs: [f([2, 3, 4])], build: ([x]) => T.reduceMax(x, 1) },
  { name: 'ReduceMax axes [0,2] keepdims', inputs: [f([2, 3, 4])], build: ([x]) => T.reduceMax(x, [0, 2], true) },
  { name: 'ReduceMax all', inputs: [f([2, 3, 4])], build: ([x]) => T.reduceMax(x) },

  // Layout.
  { name: 'Reshape [2,3,4] -> [4,-1]', inputs: [f([2, 3, 4])], build: ([x]) => T.exp(T.reshape(x, [4, -1])) },
  { name: 'Transpose perm [2,0,1]', inputs: [f([2, 3, 4])], build: ([x]) => T.transpose(x, [2, 0, 1]) },
  { name: 'Expand [3,1] -> [2,3,4]', inputs: [f([3, 1])], build: ([x]) => T.expand(x, [2, 3, 4]) },
  { name: 'Concat axis 1', inputs: [f([2, 3]), f([2, 1]), f([2, 2])], build: (xs) => T.concat(xs, 1) },
  { name: 'Concat axis 0 of one input twice', inputs: [f([2, 3])], build: ([x]) => T.concat([x, T.exp(x)], 0) },
  { name: 'Slice axis 1 from -3', inputs: [f([2, 5])], build: ([x]) => T.slice(x, 1, -3) },
  { name: 'Slice axis 0 [1:3]', inputs: [f([4, 2])], build: ([x]) => T.slice(x, 0, 1, 3) },
  { name: 'Slice axis -1 [-4:-1]', inputs: [f([2, 5])], build: ([x]) => T.slice(x, -1, -4, -1) },
  { name: 'Split, one piece used (padded gradient)', inputs: [f([2, 6])], build: ([x]) => T.exp(T.split(x, 1, [1, 2, 3])[1]) },
  { name: 'Split', inputs: [f([2, 6])], build: ([x]) => { const [a, b, c] = T.split(x, 1, [1, 2, 3]); return T.concat([T.mul(a, b), T.sin(c)], 1); } },
  { name: 'Pad', inputs: [f([2, 3])], build: ([x]) => T.pad(x, [1, 0], [0, 2]) },

  // Indexing (repeated indices: the scatter must add).
  { name: 'Gather (repeated indices)', inputs: [f([5, 3]), int64([2, 4], [0, 2, 2, 4, 0, 0, 1, 2])], build: ([d, i]) => T.gather(d, i) },
  { name: 'Gather int32 indices, scalar index', inputs: [f([4, 3]), { shape: [3], dtype: 'int32', data: [3, 1, 3] }, int64([], [2])], build: ([d, i, j]) => T.add(T.gather(d, i), T.gather(d, j)) },
  { name: 'Gather rank-1 data', inputs: [f([6]), int64([2, 2], [5, 0, 5, 5])], build: ([d, i]) => T.gather(d, i) },
  { name: 'ScatterAddRows (repeated indices)', inputs: [f([4, 3]), int64([4], [1, 3, 1, 1])], build: ([u, i]) => T.scatterAddRows(u, i, [5, 3]) },
  { name: 'GatherElements axis 1', inputs: [f([3, 4]), int64([3, 2], [0, 0, 3, 1, 2, 2])], build: ([d, i]) => T.gatherElements(d, i, 1) },
  { name: 'GatherElements axis 0', inputs: [f([3, 4]), int64([2, 4], [0, 2, 2, 1, 0, 2, 2, 1])], build: ([d, i]) => T.gatherElements(d, i, 0) },
  { name: 'ScatterAddElements axis 1', inputs: [f([3, 2]), int64([3, 2], [1, 1, 0, 3, 2, 2])], build: ([u, i]) => T.scatterAddElements(u, i, 1, [3, 4]) },
  { name: 'ScatterAddElements into a base, axis 1', inputs: [f([3, 4]), f([3, 2]), int64([3, 2], [1, 1, 0, 3, 2, 2])], build: ([b, u, i]) => T.scatterAddElementsInto(b, u, i, 1) },
  { name: 'CumSum', inputs: [f([2, 4])], build: ([x]) => T.cumsum(x, 1) },
  { name: 'CumSum exclusive', inputs: [f([2, 4])], build: ([x]) => T.cumsum(x, 1, { exclusive: true }) },
  { name: 'CumSum reverse axis 0', inputs: [f([4, 2])], build: ([x]) => T.cumsum(x, 0, { reverse: true }) },
  { name: 'CumSum exclusive reverse', inputs: [f([2, 4])], build: ([x]) => T.cumsum(x, -1, { exclusive: true, reverse: true }) },

  // Normalizing ops.
  { name: 'Softmax last axis', inputs: [f([2, 3, 5], [-2, 2])], build: ([x]) => T.softmax(x, -1) },
  { name: 'Softmax axis 0', inputs: [f([3, 4], [-2, 2])], build: ([x]) => T.softmax(x, 0) },
  { name: 'LogSoftmax last axis', inputs: [f([2, 5], [-2, 2])], build: ([x]) => T.logSoftmax(x, -1) },
  { name: 'LogSoftmax axis 1 of 3', inputs: [f([2, 4, 3], [-2, 2])], build: ([x]) => T.logSoftmax(x, 1) },
  { name: 'LayerNormalization', inputs: [f([2, 3, 5]), f([5]), f([5])], build: ([x, s, b]) => T.layerNorm(x, s, b) },
  { name: 'LayerNormalization rank 1', inputs: [f([6]), f([6]), f([6])], build: ([x, s, b]) => T.layerNorm(x, s, b) },
  // In float32 the backward reads the mean and 1/std that ORT's kernel output.
  { name: 'LayerNormalization (float32, kernel statistics)', dtype: 'float32', inputs: [f([2, 3, 5]), f([5]), f([5])], build: ([x, s, b]) => T.layerNorm(x, s, b) },

  // Composites.
  { name: 'linear with bias', inputs: [f([2, 3, 4]), f([4, 5]), f([5])], build: ([x, w, b]) => T.linear(x, w, b) },
  { name: 'silu', inputs: [f([2, 3], [-3, 3])], build: ([x]) => T.silu(x) },
  // In float32 ORT runs the forward as one fused kernel (QuickGelu).
  { name: 'silu (float32, fused by ORT)', dtype: 'float32', inputs: [f([3, 4], [-3, 3])], build: ([x]) => T.silu(x) },
  { name: 'rmsNorm', inputs: [f([2, 3, 6]), f([6])], build: ([x, w]) => T.rmsNorm(x, w) },
  { name: 'rotary', inputs: [f([2, 2, 3, 4]), f([3, 4]), f([3, 4])], build: ([x, c, s]) => T.rotary(x, c, s) },
  { name: 'TokenLogProb (repeated targets)', inputs: [f([2, 3, 5], [-2, 2]), int64([2, 3], [0, 4, 4, 2, 0, 0])], build: ([l, t]) => T.tokenLogProb(l, t) },
  { name: 'crossEntropy', inputs: [f([2, 3, 5], [-2, 2]), int64([2, 3], [0, 4, 2, 2, 1, 3])], build: ([l, t]) => T.crossEntropy(l, t) },
  {
    name: 'crossEntropy with weights', inputs: [f([2, 3, 5], [-2, 2]), int64([2, 3], [0, 4, 2, 2, 1, 3]), { shape: [2, 3], data: [1, 0, 1, 1, 0.5, 0] }],
    build: ([l, t, w]) => T.crossEntropy(l, t, w),
  },
  { name: 'causal attention [2,4,3]', inputs: [f([2, 4, 3]), f([2, 4, 3]), f([2, 4, 3])], build: ([q, k, v]) => attention(q, k, v) },
  { name: 'causal attention multi-head [1,2,3,4]', inputs: [f([1, 2, 3, 4]), f([1, 2, 3, 4]), f([1, 2, 3, 4])], build: ([q, k, v]) => attention(q, k, v) },
];

for (const c of cases) test(`gradient of ${c.name}`, async () => void (await gradCheck(c)));

test('StopGradient: no gradient flows through it', async () => {
  const x = T.input('x', 'float64', [2, 3]);
  // d/dx [x * x + stop(x) * x] = 2x + x (the stopped factor is a constant).
  const loss = T.reduceSum(T.add(T.mul(x, x), T.mul(T.stopGradient(x), x)));
  const [gx] = T.grad(loss, [x]);
  const [gOnly] = T.grad(T.reduceSum(T.stopGradient(T.exp(x))), [x]);
  const s = await ort.InferenceSession.create(T.emitOnnx({ outputs: { gx, gOnly } }).bytes);
  const xs = Float64Array.from([0.5, -1, 2, 0.25, 3, -0.75]);
  const r = await s.run({ x: new ort.Tensor('float64', xs, [2, 3]) });
  assert.deepEqual([...(r.gx.data as Float64Array)], [...xs].map((v) => 3 * v));
  assert.deepEqual([...(r.gOnly.data as Float64Array)], [0, 0, 0, 0, 0, 0]);
});

test('ReduceMax: tied maxima share the gradient evenly', async () => {
  const x = T.input('x', 'float64', [2, 4]);
  const [gx] = T.grad(T.reduceSum(T.reduceMax(x, 1)), [x]);
  const s = await ort.InferenceSession.create(T.emitOnnx({ outputs: { gx } }).bytes);
  const r = await s.run({ x: new ort.Tensor('float64', Float64Array.from([1, 3, 3, 2, 5, 5, 5, 0]), [2, 4]) });
  assert.deepEqual([...(r.gx.data as Float64Array)], [0, 0.5, 0.5, 0, 1 / 3, 1 / 3, 1 / 3, 0]);
});

test('a reduction over an empty axis list is the identity (ONNX would reduce every axis)', () => {
  const x = T.input('x', 'float64', [2, 3]);
  assert.equal(T.reduceSum(x, []), x);
  assert.equal(T.reduceMax(x, [], true), x);
  assert.deepEqual(T.reduceMean(x).shape, []);
});

// Finite-difference gradient checks (a test utility).
//
// The values under test are built on graph inputs and reduced to a scalar loss
// sum(out * R) with a random R, so that the upstream gradient is not all ones. ONE ONNX
// graph has the loss and the analytic gradients (from `grad`) as outputs; the numeric
// gradients are central differences of the loss through the same session, so forward
// and backward are checked against the same kernels.

import assert from 'node:assert/strict';
import ort from 'onnxruntime-node';
import { grad } from './autodiff.ts';
import { emitOnnx } from './emit.ts';
import { isFloat, type DType } from './dtype.ts';
import { cast, mul } from './ops/elementwise.ts';
import { input } from './ops/leaf.ts';
import { reduceSum } from './ops/reduce.ts';
import { dimTerms, fmt, isStatic, isSymbol, type Dim, type Shape } from './shape.ts';
import type { Value } from './value.ts';

export interface InputSpec {
  /** Declared shape of the graph input; symbols ('B') need concrete shapes in `feeds`. */
  shape: Dim[];
  /** Default: the spec's dtype. Integer and bool inputs are fixed data and not checked. */
  dtype?: DType;
  /** Fixed values (required for integer and bool inputs), or a function of the element count. */
  data?: readonly number[] | ((n: number) => number[]);
  /** Bounds of the uniform random values of a float input (default [-1, 1]). */
  range?: readonly [number, number];
}

export interface GradCheckSpec {
  /** Names the check in failure messages, e.g. 'MatMul batched x 2D'. */
  name: string;
  inputs: InputSpec[];
  build: (xs: Value[]) => Value;
  dtype?: 'float64' | 'float32';
  /** Concrete input shapes, one list per run through the same session (default: the declared shapes). */
  feeds?: number[][][];
  eps?: number;
  rtol?: number;
  atol?: number;
  /** At most this many elements per input are perturbed (a random sample beyond that). */
  samples?: number;
  seed?: number;
}

export interface GradCheckReport {
  /** Elements compared, over all runs and inputs. */
  checked: number;
  /** Largest |analytic - numeric| / tolerance seen (<= 1 passes). */
  worstRatio: number;
}

// float64: differences are exact up to rounding of the loss (~1e-16 relative, so ~1e-10
// after dividing by 2 eps) and the eps^2 truncation term (~1e-12): rtol 1e-6 has margin.
const F64 = { eps: 1e-6, rtol: 1e-6, atol: 1e-8 };
// float32: the loss is still summed in float64 (the output is cast up before * R), so the
// noise is the float32 rounding of the few outputs one element moves, ~6e-8 relative, over
// 2 eps = 2e-2: ~3e-6; the truncation error eps^2 f'''/6 is ~2e-5 for |f'''| ~ 1; ORT's
// float32 kernels (Erf is a polynomial fit) add ~1e-6 relative. rtol 2e-3 / atol 2e-4
// stays well above that while a wrong rule (off by a factor or a term) is far beyond it.
const F32 = { eps: 1e-2, rtol: 2e-3, atol: 2e-4 };

/** Small deterministic PRNG (mulberry32) so that failures reproduce. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Host = Float64Array | Float32Array | BigInt64Array | Int32Array | Uint8Array;

function makeData(spec: InputSpec, dtype: DType, n: number, rand: () => number): Host {
  const given = typeof spec.data === 'function' ? spec.data(n) : spec.data;
  if (given && given.length !== n) throw new Error(`gradCheck: input data has ${given.length} values, the shape holds ${n}`);
  if (!given && !isFloat(dtype)) throw new Error(`gradCheck: a ${dtype} input needs fixed data`);
  const [lo, hi] = spec.range ?? [-1, 1];
  const vals = given ?? Array.from({ length: n }, () => lo + (hi - lo) * rand());
  switch (dtype) {
    case 'float64': return Float64Array.from(vals);
    case 'float32': return Float32Array.from(vals);
    case 'int64': return BigInt64Array.from(vals, (v) => BigInt(v));
    case 'int32': return Int32Array.from(vals);
    case 'bool': return Uint8Array.from(vals, (v) => (v ? 1 : 0));
    case 'float16': throw new Error('gradCheck: float16 inputs are not supported');
  }
}

function ortType(d: DType): 'float64' | 'float32' | 'int64' | 'int32' | 'bool' {
  if (d === 'float16') throw new Error('gradCheck: float16 inputs are not supported');
  return d;
}

/** The multi-index of flat element `i` of a row-major tensor, for messages. */
function unravel(i: number, shape: readonly number[]): number[] {
  const idx: number[] = [];
  for (let k = shape.length - 1; k >= 0; k--) {
    idx.unshift(i % shape[k]);
    i = Math.floor(i / shape[k]);
  }
  return idx;
}

function sampleIndices(n: number, k: number, rand: () => number): number[] {
  const all = Array.from({ length: n }, (_, i) => i);
  if (n <= k) return all;
  for (let i = 0; i < k; i++) {
    const j = i + Math.floor(rand() * (n - i));
    [all[i], all[j]] = [all[j], all[i]];
  }
  return all.slice(0, k).sort((a, b) => a - b);
}

/**
 * Checks the analytic gradients of `spec.build` against central differences; throws an
 * AssertionError naming the check, the input and the worst element when they disagree.
 */
export async function gradCheck(spec: GradCheckSpec): Promise<GradCheckReport> {
  const floatType = spec.dtype ?? 'float64';
  const tol = { ...(floatType === 'float64' ? F64 : F32), ...pick(spec) };
  const rand = rng(spec.seed ?? 1234);
  const dtypes = spec.inputs.map((s) => s.dtype ?? floatType);
  const xs = spec.inputs.map((s, i) => input(`x${i}`, dtypes[i], s.shape));
  const out = spec.build(xs);
  if (!isFloat(out.dtype)) throw new Error(`gradCheck ${spec.name}: the output is ${out.dtype}, not floating point`);
  // R is a graph input so that symbolic output shapes work; the loss is summed in float64.
  const r = input('r', 'float64', out.shape);
  const loss = reduceSum(mul(cast(out, 'float64'), r));
  const checked = xs.map((_, i) => i).filter((i) => isFloat(dtypes[i]));
  const grads = grad(loss, checked.map((i) => xs[i]));
  const outputs: Record<string, Value> = { loss };
  checked.forEach((i, k) => (outputs[`g${i}`] = grads[k]));
  const model = emitOnnx({ outputs, inputs: [...xs, r] });
  // One thread: the tensors are tiny and two test files run at once on two cores.
  const session = await ort.InferenceSession.create(model.bytes, { executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1 })
    .catch((err: Error) => { throw new Error(`gradCheck ${spec.name}: ONNX Runtime rejected the graph: ${err.message}`); });

  const runs = spec.feeds ?? [spec.inputs.map((s) => s.shape.map((d) => {
    if (!isStatic(d)) throw new Error(`gradCheck ${spec.name}: symbolic input shape ${fmt(s.shape)} needs concrete shapes in feeds`);
    return d;
  }))];
  const report: GradCheckReport = { checked: 0, worstRatio: 0 };
  try {
    for (const shapes of runs) {
      const data = spec.inputs.map((s, i) => makeData(s, dtypes[i], count(shapes[i]), rand));
      const rShape = concrete(out.shape, symbolValues(spec.inputs, shapes));
      const feeds: Record<string, ort.Tensor> = {
        r: new ort.Tensor('float64', Float64Array.from({ length: count(rShape) }, () => 2 * rand() - 1), rShape),
      };
      const feed = (i: number): void => {
        feeds[`x${i}`] = new ort.Tensor(ortType(dtypes[i]), data[i], shapes[i]);
      };
      spec.inputs.forEach((_, i) => feed(i));
      const analytic = await session.run(feeds)
        .catch((err: Error) => { throw new Error(`gradCheck ${spec.name}: the run failed: ${err.message}`); });
      const lossAt = async (): Promise<number> => Number((await session.run(feeds, ['loss'])).loss.data[0]);

      for (const i of checked) {
        const g = analytic[`g${i}`];
        assert.deepEqual([...g.dims], shapes[i], `${spec.name}: gradient of input ${i} has shape ${fmt(g.dims)}, the input ${fmt(shapes[i])}`);
        const x = data[i] as Float64Array | Float32Array;
        let worst = { ratio: -1, index: 0, a: 0, n: 0 };
        for (const j of sampleIndices(x.length, spec.samples ?? 40, rand)) {
          const x0 = x[j];
          // Use the perturbations as stored (float32 rounds x0 +- eps).
          x[j] = x0 + tol.eps; const xp = x[j]; feed(i); const lp = await lossAt();
          x[j] = x0 - tol.eps; const xm = x[j]; feed(i); const lm = await lossAt();
          x[j] = x0; feed(i);
          const n = (lp - lm) / (xp - xm), a = Number(g.data[j]);
          const ratio = Math.abs(a - n) / (tol.atol + tol.rtol * Math.abs(n));
          if (Number.isNaN(ratio) || ratio > worst.ratio) worst = { ratio: Number.isNaN(ratio) ? Infinity : ratio, index: j, a, n };
          report.checked++;
        }
        report.worstRatio = Math.max(report.worstRatio, worst.ratio);
        const how = Number.isFinite(worst.ratio) ? `${worst.ratio.toFixed(1)}x the tolerance` : 'not finite';
        assert.ok(worst.ratio <= 1, `${spec.name}: d loss / d input ${i} (${dtypes[i]}${fmt(shapes[i])}) at element ${fmt(unravel(worst.index, shapes[i]))}: ` +
          `analytic ${worst.a} vs numeric ${worst.n}, ${how} (atol ${tol.atol} + rtol ${tol.rtol} * |numeric|, eps ${tol.eps})`);
      }
    }
  } finally {
    await session.release();
  }
  return report;
}

const count = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** Values of the symbols that the inputs declare, read off the concrete shapes fed. */
function symbolValues(inputs: readonly InputSpec[], shapes: readonly number[][]): Map<string, number> {
  const env = new Map<string, number>();
  inputs.forEach((s, i) => s.shape.forEach((d, k) => {
    if (isSymbol(d)) env.set(d, shapes[i][k]);
  }));
  return env;
}

function concrete(shape: Shape, env: ReadonlyMap<string, number>): number[] {
  return shape.map((d) => dimTerms(d).reduce((sum, { coef, syms }) => sum + syms.reduce((p, s) => {
    const v = env.get(s);
    if (v === undefined) throw new Error(`gradCheck: no input declares the symbol ${s}`);
    return p * v;
  }, coef), 0));
}

function pick(spec: GradCheckSpec): Partial<typeof F64> {
  const o: Partial<typeof F64> = {};
  if (spec.eps !== undefined) o.eps = spec.eps;
  if (spec.rtol !== undefined) o.rtol = spec.rtol;
  if (spec.atol !== undefined) o.atol = spec.atol;
  return o;
}

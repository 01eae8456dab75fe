// fp32 GEMM peak through onnxruntime-node: the denominator of MFU.
//
// Builds one single-MatMul ONNX model per product shape (A [m,k] is a graph input,
// B [k,n] an initializer, so it stays resident in the session as the weights of a
// training graph do), runs it on the chosen execution provider and reports the best
// sustained rate (median of several timed runs after a warm-up) over the shapes.
// The shapes are training-shaped products of the benchmark decoder (2048 tokens,
// d_model 512 / 1024, 3x and 4x projections); see bench/README.md.
import onnxProto from 'onnx-proto';
import ort from 'onnxruntime-node';

const { onnx } = onnxProto;

export interface GemmShape {
  m: number;
  k: number;
  n: number;
}

export interface GemmShapeResult extends GemmShape {
  /** Median sustained rate of the timed runs, in GFLOP/s (2*m*k*n FLOPs per run). */
  gflops: number;
}

export interface GemmPeakOptions {
  /** intraOpNumThreads of the ORT session (the same count the training run uses). */
  threads: number;
  /** Execution provider; default 'cpu'. */
  provider?: 'cpu' | 'webgpu';
  /** Wall-clock budget for the whole measurement, session creation included; default 3000 ms. */
  budgetMs?: number;
  /** Products to measure; default DEFAULT_GEMM_SHAPES. */
  shapes?: readonly GemmShape[];
}

export interface GemmPeakResult {
  /** Best median rate over the measured shapes, in GFLOP/s. */
  gflops: number;
  /** Per-shape medians, in the order given; shapes skipped for lack of budget are absent. */
  shapes: GemmShapeResult[];
}

/** Training-shaped fp32 products (M = 2048 tokens). */
export const DEFAULT_GEMM_SHAPES: readonly GemmShape[] = [
  { m: 2048, k: 512, n: 1536 }, // fused qkv projection, d_model 512
  { m: 2048, k: 512, n: 2048 }, // MLP up-projection, d_model 512
  { m: 2048, k: 2048, n: 512 }, // MLP down-projection, d_model 512
  { m: 2048, k: 1024, n: 1024 }, // square projection, d_model 1024
];

const WARMUP_RUNS = 2;
const MIN_TIMED_RUNS = 3;
const MAX_TIMED_RUNS = 30;

/** Deterministic values in [-1, 1) (mulberry32), so runs are reproducible. */
export function fillUniform(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 2 - 1;
  }
  return out;
}

/**
 * ONNX model computing Y[m,n] = A[m,k] @ B[k,n] with one MatMul node; A is the graph
 * input "A", B (row-major, length k*n) an initializer named "B", Y the output "Y".
 */
export function buildMatMulModel(m: number, k: number, n: number, b: Float32Array): Uint8Array {
  if (b.length !== k * n) throw new Error(`buildMatMulModel: B has ${b.length} values, expected ${k}*${n}`);
  const FLOAT = onnx.TensorProto.DataType.FLOAT;
  const tensorType = (dims: number[]) => ({
    tensorType: { elemType: FLOAT, shape: { dim: dims.map((d) => ({ dimValue: d })) } },
  });
  // raw_data is little-endian whatever the host's byte order.
  const raw = new Uint8Array(b.length * 4);
  const view = new DataView(raw.buffer);
  for (let i = 0; i < b.length; i++) view.setFloat32(i * 4, b[i], true);
  const model = onnx.ModelProto.create({
    irVersion: 10,
    opsetImport: [{ domain: '', version: 21 }],
    producerName: 'afd-studio gemm-peak',
    graph: {
      name: `matmul_${m}x${k}x${n}`,
      node: [{ opType: 'MatMul', input: ['A', 'B'], output: ['Y'], name: 'matmul' }],
      initializer: [{ name: 'B', dataType: FLOAT, dims: [k, n], rawData: raw }],
      input: [{ name: 'A', type: tensorType([m, k]) }],
      output: [{ name: 'Y', type: tensorType([m, n]) }],
    },
  });
  return onnx.ModelProto.encode(model).finish();
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid] : (s[mid - 1] + s[mid]) / 2;
}

/**
 * Measures the sustained fp32 MatMul rate of onnxruntime-node on this machine.
 * The first shape is always measured (warm-up plus MIN_TIMED_RUNS runs), whatever
 * the budget; a later shape is skipped when its minimum work, estimated from the
 * previous shape's session creation time and rate, would overrun the budget; each
 * measured shape stops taking timed runs once its share of the remaining budget is
 * used (at most MAX_TIMED_RUNS).
 */
export async function measureGemmPeak(opts: GemmPeakOptions): Promise<GemmPeakResult> {
  const threads = opts.threads;
  if (!Number.isInteger(threads) || threads < 1) throw new Error(`measureGemmPeak: threads must be a positive integer, got ${threads}`);
  const provider = opts.provider ?? 'cpu';
  const budgetMs = opts.budgetMs ?? 3000;
  const shapes = opts.shapes ?? DEFAULT_GEMM_SHAPES;
  if (shapes.length === 0) throw new Error('measureGemmPeak: no shapes');

  const start = performance.now();
  const deadline = start + budgetMs;
  const results: GemmShapeResult[] = [];

  // Cost of the previous shape, to skip a shape whose minimum work would overrun.
  let lastCreateMs = 0;
  let lastMsPerFlop = 0;

  for (let si = 0; si < shapes.length; si++) {
    const { m, k, n } = shapes[si];
    const flops = 2 * m * k * n;
    const now = performance.now();
    if (results.length > 0) {
      const minCostMs = lastCreateMs + (WARMUP_RUNS + MIN_TIMED_RUNS) * flops * lastMsPerFlop;
      if (now + minCostMs > deadline) continue;
    }
    const shapeDeadline = now + Math.max(0, deadline - now) / (shapes.length - si);

    const bytes = buildMatMulModel(m, k, n, fillUniform(k * n, 0x5eed + si));
    const c0 = performance.now();
    const session = await ort.InferenceSession.create(bytes, {
      executionProviders: [provider],
      intraOpNumThreads: threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
    });
    lastCreateMs = performance.now() - c0;
    try {
      const feeds = { A: new ort.Tensor('float32', fillUniform(m * k, 0xa11ce + si), [m, k]) };
      // A pre-allocated output: ORT writes Y in place, so the timing is the product
      // itself, not the allocation and copy of a fresh m x n output every run.
      const fetches = { Y: new ort.Tensor('float32', new Float32Array(m * n), [m, n]) };
      for (let i = 0; i < WARMUP_RUNS; i++) await session.run(feeds, fetches);
      const rates: number[] = [];
      while (rates.length < MAX_TIMED_RUNS) {
        const t0 = performance.now();
        await session.run(feeds, fetches);
        const ms = performance.now() - t0;
        rates.push(flops / (Math.max(ms, 1e-3) * 1e6));
        if (rates.length >= MIN_TIMED_RUNS && performance.now() >= shapeDeadline) break;
      }
      const gflops = median(rates);
      results.push({ m, k, n, gflops });
      lastMsPerFlop = 1 / (gflops * 1e6);
    } finally {
      await session.release();
    }
  }

  return { gflops: Math.max(...results.map((r) => r.gflops)), shapes: results };
}

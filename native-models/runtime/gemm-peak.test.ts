import { test } from 'node:test';
import assert from 'node:assert/strict';
import ort from 'onnxruntime-node';
import { buildMatMulModel, fillUniform, measureGemmPeak } from './gemm-peak.ts';
import { webgpuSkip } from '../../test/support/webgpu.ts';

const m = 5, k = 7, n = 3;
const a = fillUniform(m * k, 1);
const b = fillUniform(k * n, 2);

function assertIsProduct(got: Float32Array): void {
  assert.equal(got.length, m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let ref = 0;
      for (let p = 0; p < k; p++) ref += a[i * k + p] * b[p * n + j];
      assert.ok(Math.abs(got[i * n + j] - ref) <= 1e-5 * (1 + Math.abs(ref)), `Y[${i},${j}] = ${got[i * n + j]}, expected ${ref}`);
    }
  }
}

test('MatMul model with B as an initializer computes A @ B (cpu)', async () => {
  const session = await ort.InferenceSession.create(buildMatMulModel(m, k, n, b), {
    executionProviders: ['cpu'],
    intraOpNumThreads: 1,
    graphOptimizationLevel: 'all',
  });
  try {
    assert.deepEqual(session.inputNames, ['A']);
    assert.deepEqual(session.outputNames, ['Y']);
    const feeds = { A: new ort.Tensor('float32', a, [m, k]) };
    const out = await session.run(feeds);
    assert.deepEqual(out.Y.dims, [m, n]);
    assertIsProduct(out.Y.data as Float32Array);
    // the pre-allocated output path that measureGemmPeak times
    const y = new ort.Tensor('float32', new Float32Array(m * n), [m, n]);
    await session.run(feeds, { Y: y });
    assertIsProduct(y.data as Float32Array);
  } finally {
    await session.release();
  }
});

test('MatMul model computes A @ B on webgpu', { skip: webgpuSkip('WebGPU MatMul test') }, async () => {
  const session = await ort.InferenceSession.create(buildMatMulModel(m, k, n, b), { executionProviders: ['webgpu'] });
  try {
    const y = new ort.Tensor('float32', new Float32Array(m * n), [m, n]);
    await session.run({ A: new ort.Tensor('float32', a, [m, k]) }, { Y: y });
    assertIsProduct(y.data as Float32Array);
  } finally {
    await session.release();
  }
});

test('buildMatMulModel rejects a B of the wrong size', () => {
  assert.throws(() => buildMatMulModel(2, 3, 4, new Float32Array(11)), /expected 3\*4/);
});

test('measureGemmPeak returns a positive finite peak and the per-shape rates', async () => {
  const shapes = [
    { m: 256, k: 128, n: 192 },
    { m: 256, k: 192, n: 128 },
  ];
  const r = await measureGemmPeak({ threads: 1, budgetMs: 300, shapes });
  assert.ok(Number.isFinite(r.gflops) && r.gflops > 0, `gflops = ${r.gflops}`);
  assert.ok(r.shapes.length >= 1 && r.shapes.length <= shapes.length);
  r.shapes.forEach((s, i) => {
    assert.deepEqual({ m: s.m, k: s.k, n: s.n }, shapes[i]);
    assert.ok(Number.isFinite(s.gflops) && s.gflops > 0);
  });
  assert.equal(r.gflops, Math.max(...r.shapes.map((s) => s.gflops)));
});

test('measureGemmPeak measures the first shape even with no budget, and validates threads', async () => {
  const r = await measureGemmPeak({ threads: 1, budgetMs: 0, shapes: [{ m: 64, k: 64, n: 64 }, { m: 64, k: 32, n: 64 }] });
  assert.equal(r.shapes.length, 1);
  assert.ok(r.gflops > 0);
  await assert.rejects(measureGemmPeak({ threads: 0 }), /threads must be a positive integer/);
});

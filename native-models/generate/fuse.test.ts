// The inference fusions: on a Llama's generation graph every projection becomes one
// FusedMatMul and every RMSNorm one SimplifiedLayerNormalization, and the fused graph
// computes what the primitives compute.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { llamaDefaults, llamaFamily } from '../models/llama.ts';
import { Rng } from '../train/rng.ts';
import { buildGraph, cacheNames, frozenParams } from './graphs.ts';

const config = llamaDefaults({ vocabSize: 53, hiddenSize: 32, numLayers: 2, numHeads: 4, numKvHeads: 2, maxPositions: 64, initializerRange: 0.2 });

const opCounts = (bytes: Uint8Array): Map<string, number> => {
  const counts = new Map<string, number>();
  for (const n of onnxProto.onnx.ModelProto.decode(bytes).graph!.node!) counts.set(n.opType!, (counts.get(n.opType!) ?? 0) + 1);
  return counts;
};

test('a Llama step graph: every projection and norm fused, the same logits and cache entries', async () => {
  const frozen = frozenParams(llamaFamily, config, llamaFamily.init(config, new Rng(4)));
  const fused = buildGraph('step', llamaFamily, config, frozen);
  const plain = buildGraph('step', llamaFamily, config, frozen, { fuse: false });
  const f = opCounts(fused.bytes), p = opCounts(plain.bytes);
  const projections = 7 * config.numLayers + 1; // q, k, v, o, gate, up, down per layer, and the head
  assert.equal(p.get('Gemm'), projections);
  assert.equal(f.get('Gemm') ?? 0, 0);
  assert.equal(f.get('FusedMatMul'), projections + (p.get('FusedMatMul') ?? 0));
  assert.equal(f.get('SimplifiedLayerNormalization'), 2 * config.numLayers + 1);
  assert.equal(f.get('Pow') ?? 0, 0);
  assert.equal(f.get('ReduceMean') ?? 0, 0);
  assert.equal((p.get('Reshape') ?? 0) - (f.get('Reshape') ?? 0), 2 * projections);
  assert.deepEqual(fused.outputNames, plain.outputNames);

  // Two rows, three new tokens on a cache of two positions (row 0 has one padding slot).
  const B = 2, Tn = 3, P = 2, { kvHeads, headDim } = llamaFamily.cacheShape(config);
  const rng = new Rng(9);
  const i64 = (xs: number[]) => BigInt64Array.from(xs, BigInt);
  const feeds: Record<string, ort.Tensor> = {
    tokens: new ort.Tensor('int64', i64([3, 17, 40, 8, 1, 52]), [B, Tn]),
    positions: new ort.Tensor('int64', i64([1, 2, 3, 2, 3, 4]), [B, Tn]),
    attention_mask: new ort.Tensor('int64', i64([0, 1, 1, 1, 1, 1, 1, 1, 1, 1]), [B, P + Tn]),
  };
  for (let i = 0; i < config.numLayers; i++) {
    const n = cacheNames(i);
    for (const name of [n.pastKey, n.pastValue]) feeds[name] = new ort.Tensor('float32', Float32Array.from({ length: B * kvHeads * P * headDim }, () => rng.normal()), [B, kvHeads, P, headDim]);
  }
  const [a, b] = await Promise.all([fused, plain].map(async (g) => {
    const s = await ort.InferenceSession.create(g.bytes, { intraOpNumThreads: 1 });
    try {
      return await s.run(feeds);
    } finally {
      await s.release();
    }
  }));
  for (const name of fused.outputNames) {
    const x = a[name].data as Float32Array, y = b[name].data as Float32Array;
    assert.deepEqual(a[name].dims, b[name].dims, name);
    const diff = x.reduce((m, v, i) => Math.max(m, Math.abs(v - y[i])), 0);
    assert.ok(diff < 1e-5, `${name} differs by ${diff}`);
  }
});

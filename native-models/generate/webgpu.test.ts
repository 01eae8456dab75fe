// Generation on the GPU, kept correct on machines without one: the generation graphs
// written for ONNX Runtime's WebGPU provider (graphs.ts, target 'webgpu') run wholly on it,
// the KV cache stays in the GPU's memory between decoding steps (device-kv.ts), and greedy
// decoding gives the CPU's tokens, here through Mesa's software Vulkan driver (lavapipe).
// The first tests need no GPU: they run the WebGPU graphs and the cache's compaction on
// the CPU provider.

import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import ort from 'onnxruntime-node';
import type { ModelFamily } from '../models/family.ts';
import { gpt2Defaults, gpt2Family } from '../models/gpt2.ts';
import { llamaDefaults, llamaFamily } from '../models/llama.ts';
import { deviceFeeds } from '../runtime/device-feeds.ts';
import { Rng } from '../train/rng.ts';
import { compactionModel, DeviceKvCache } from './device-kv.ts';
import { Generator } from './generator.ts';
import { buildGraph, cacheNames, frozenParams, type GraphKind } from './graphs.ts';
import { webgpuOnlySession, webgpuSkip } from '../../test/support/webgpu.ts';

process.env.XDG_RUNTIME_DIR ??= mkdtempSync(join(tmpdir(), 'afd-xdg-'));

const skip = webgpuSkip('WebGPU generation tests');

const V = 64;
const MODELS = {
  gpt2: { family: gpt2Family as ModelFamily<unknown>, config: gpt2Defaults({ vocabSize: V, nPositions: 64, nEmbd: 32, nLayer: 2, nHead: 2, nInner: 48 }) as unknown },
  llama: { family: llamaFamily as ModelFamily<unknown>, config: llamaDefaults({ vocabSize: V, hiddenSize: 32, intermediateSize: 48, numLayers: 2, numHeads: 4, numKvHeads: 2, maxPositions: 64, tieWordEmbeddings: true }) as unknown },
};

/**
 * Weights ten times the families' initialization: logits spread wide enough that a greedy
 * choice is never a near-tie that float32 rounding could turn (at 0.02 the tiny models'
 * logits are nearly uniform).
 */
function weights(name: keyof typeof MODELS): Map<string, Float32Array> {
  const { family, config } = MODELS[name];
  const w = family.init(config, new Rng(3));
  for (const [n, a] of w) if (a.length > 64 && !/norm|ln_/.test(n)) for (let i = 0; i < a.length; i++) a[i] *= 10;
  return w;
}

const ids = (rows: number[][]): ort.Tensor => new ort.Tensor('int64', BigInt64Array.from(rows.flat(), BigInt), [rows.length, rows[0].length]);
const shape = { layers: 2, kvHeads: 2, headDim: 4 };
/** A cache tensor [B, 2, L, 4] whose element (b, h, l, d) is 1000 b + 100 h + 10 l + d. */
const cacheTensor = (B: number, L: number): ort.Tensor =>
  new ort.Tensor('float32', Float32Array.from({ length: B * 2 * L * 4 }, (_, i) => 1000 * Math.floor(i / (8 * L)) + 100 * (Math.floor(i / (4 * L)) % 2) + 10 * (Math.floor(i / 4) % L) + (i % 4)), [B, 2, L, 4]);

// ---------------------------------------------------------------- without a GPU

test('the step graph written for webgpu gives, on the CPU provider, the CPU graph\'s logits and the cache extended by its new positions', async () => {
  for (const name of ['gpt2', 'llama'] as const) {
    const { family, config } = MODELS[name];
    const frozen = frozenParams(family, config, weights(name));
    const { kvHeads, headDim } = family.cacheShape(config);
    const past = Float32Array.from({ length: 2 * kvHeads * 3 * headDim }, (_, i) => Math.sin(i));
    const feeds: Record<string, ort.Tensor> = { tokens: ids([[5, 6], [7, 8]]), positions: ids([[2, 3], [3, 4]]), attention_mask: ids([[0, 1, 1, 1, 1], [1, 1, 1, 1, 1]]) };
    for (let i = 0; i < 2; i++) {
      const n = cacheNames(i);
      feeds[n.pastKey] = new ort.Tensor('float32', past, [2, kvHeads, 3, headDim]);
      feeds[n.pastValue] = new ort.Tensor('float32', past.map((x) => -x), [2, kvHeads, 3, headDim]);
    }
    const run = async (target: 'cpu' | 'webgpu') => {
      const g = buildGraph('step', family, config, frozen, { target });
      const s = await ort.InferenceSession.create(g.bytes);
      const r = await s.run(deviceFeeds(g, feeds));
      await s.release();
      return r;
    };
    const cpu = await run('cpu'), gpu = await run('webgpu');
    const close = (a: ort.Tensor, b: ort.Tensor, what: string): void =>
      (a.data as Float32Array).forEach((x, i) => assert.ok(Math.abs(x - (b.data as Float32Array)[i]) <= 1e-4 * Math.max(1, Math.abs(x)), `${name} ${what}[${i}]: ${x} vs ${(b.data as Float32Array)[i]}`));
    close(cpu.logits, gpu.logits, 'logits');
    for (let i = 0; i < 2; i++) {
      const n = cacheNames(i);
      const present = gpu[n.presentKey];
      assert.deepEqual(present.dims, [2, kvHeads, 5, headDim]);
      // [B, H, P+T, hd]: the past's 3 positions, then the 2 new ones the CPU graph returns.
      const join = new Float32Array(present.size);
      const pastKey = feeds[n.pastKey].data as Float32Array, added = cpu[n.newKey].data as Float32Array;
      for (let bh = 0; bh < 2 * kvHeads; bh++) {
        join.set(pastKey.subarray(bh * 3 * headDim, (bh + 1) * 3 * headDim), bh * 5 * headDim);
        join.set(added.subarray(bh * 2 * headDim, (bh + 1) * 2 * headDim), (bh * 5 + 3) * headDim);
      }
      close(new ort.Tensor('float32', join, present.dims), present, `present_key.${i}`);
    }
  }
});

test('the device cache keeps the rows and columns asked for, and masks its first column', async () => {
  const session = await ort.InferenceSession.create(compactionModel(shape));
  try {
    const cache = new DeviceKvCache(shape, 3, (feeds) => session.run(feeds));
    assert.equal(cache.length, 1);
    // The prefill's mask puts the cache's masked column before the prompts' mask.
    assert.deepEqual([...cache.promptMask(BigInt64Array.of(0n, 1n, 1n, 1n, 1n, 1n, 0n, 0n, 1n), 3)], [0n, 0n, 1n, 1n, 0n, 1n, 1n, 1n, 0n, 0n, 0n, 1n]);
    cache.replace(Array.from({ length: 4 }, () => cacheTensor(3, 5)));
    assert.equal(cache.length, 5);
    await cache.select([2, 0], 2); // rows 2 and 0, without the first 2 columns
    assert.equal(cache.batch, 2);
    assert.equal(cache.length, 3);
    const kept = cache.past()[1];
    assert.deepEqual(kept.dims, [2, 2, 3, 4]);
    const at = (b: number, h: number, l: number, d: number): number => (kept.data as Float32Array)[((b * 2 + h) * 3 + l) * 4 + d];
    assert.equal(at(0, 1, 0, 3), 2000 + 100 + 20 + 3); // row 2, head 1, column 2, element 3
    assert.equal(at(1, 0, 2, 1), 0 + 0 + 40 + 1); // row 0, head 0, column 4, element 1
    assert.deepEqual([...cache.mask([1, 0])], [0n, 1n, 1n, 1n, 1n, 1n, 1n, 1n]);
  } finally {
    await session.release();
  }
});

// ---------------------------------------------------------------- on WebGPU

test('every generation graph (GPT-2 and Llama: step, score, logits; the cache compaction) creates a WebGPU session with CPU fallback disabled', { skip }, async () => {
  for (const name of ['gpt2', 'llama'] as const) {
    const { family, config } = MODELS[name];
    const frozen = frozenParams(family, config, weights(name));
    for (const kind of ['step', 'score', 'logits'] as GraphKind[]) {
      for (const fuse of [true, false]) {
        const graph = buildGraph(kind, family, config, frozen, { target: 'webgpu', fuse });
        const s = await webgpuOnlySession(graph.bytes).catch((e: Error) => assert.fail(`${name} ${kind}${fuse ? '' : ' unfused'}: ${e.message}`));
        await s.release();
      }
    }
  }
  await (await webgpuOnlySession(compactionModel(shape))).release();
});

test('greedy generation on webgpu gives the CPU\'s tokens, with rows ending at different steps, and scoring the CPU\'s log-probabilities', { skip }, async (t) => {
  const prompts = [[1, 2, 3, 4, 5], [7], [9, 8, 7], [11, 12, 13, 14, 15, 16, 17]];
  for (const name of ['gpt2', 'llama'] as const) {
    const { family, config } = MODELS[name];
    const w = weights(name);
    const run = async (provider: 'cpu' | 'webgpu', eosTokenIds: number[]) => {
      const g = await Generator.create(family, config, w, { provider, threads: 1 });
      try {
        assert.equal(g.onDevice, provider === 'webgpu');
        const out = await g.generate(prompts, { maxNewTokens: 12, greedy: true, eosTokenIds });
        const scores = await g.score([[1, 2, 3], [4]], [[4, 5], [6, 7, 8]]);
        return { tokens: out.map((r) => r.tokens), scores: scores.map((s) => s.sum) };
      } finally {
        await g.release();
      }
    };
    // End rows at different steps: take as EOS tokens the CPU's 2nd token of row 0 and 5th of row 2.
    const free = await run('cpu', []);
    const eos = [free.tokens[0][1], free.tokens[2][4]];
    const cpu = await run('cpu', eos), gpu = await run('webgpu', eos);
    const lengths = cpu.tokens.map((r) => r.length);
    assert.ok(new Set(lengths).size > 1, `${name}: rows should end at different steps (lengths ${lengths})`);
    assert.deepEqual(gpu.tokens, cpu.tokens, name);
    cpu.scores.forEach((s, i) => assert.ok(Math.abs(s - gpu.scores[i]) <= 1e-4 * Math.abs(s), `${name} score ${i}: ${s} vs ${gpu.scores[i]}`));
    t.diagnostic(`${name}: row lengths ${lengths.join(', ')}; scores ${cpu.scores.map((s) => s.toFixed(4)).join(', ')}`);
  }
});

// LoRA adapters as inputs of the generation graphs (graphs.ts adapterInputs, Generator's
// `lora` option): a generator of the base weights fed the adapters gives the tokens and
// scores of one built from the merged weights, and after setAdapters those of the new
// merged weights, without compiling a session; on the CPU and on WebGPU (lavapipe
// where there is no GPU).

import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import onnxProto from 'onnx-proto';
import type { ModelFamily } from '../models/family.ts';
import { gpt2Defaults, gpt2Family } from '../models/gpt2.ts';
import { llamaDefaults, llamaFamily } from '../models/llama.ts';
import { loraInit, loraParamShapes, mergeLora, type LoraSpec } from '../models/lora.ts';
import type { ProviderName } from '../runtime/providers.ts';
import { SessionCache } from '../runtime/session.ts';
import { Rng } from '../train/rng.ts';
import { webgpuSkip } from '../../test/support/webgpu.ts';
import { Generator } from './generator.ts';
import { adapterInputs, buildGraph, frozenParams } from './graphs.ts';

process.env.XDG_RUNTIME_DIR ??= mkdtempSync(join(tmpdir(), 'afd-xdg-'));

const V = 64;
const MODELS = {
  gpt2: { family: gpt2Family as ModelFamily<unknown>, config: gpt2Defaults({ vocabSize: V, nPositions: 64, nEmbd: 32, nLayer: 2, nHead: 2, nInner: 48 }) as unknown },
  llama: { family: llamaFamily as ModelFamily<unknown>, config: llamaDefaults({ vocabSize: V, hiddenSize: 32, intermediateSize: 48, numLayers: 2, numHeads: 4, numKvHeads: 2, maxPositions: 64, tieWordEmbeddings: true }) as unknown },
};
const SPEC: LoraSpec = { rank: 4, alpha: 8 };
const PROMPTS = [[1, 2, 3, 4, 5], [7], [9, 8, 7], [11, 12, 13, 14, 15, 16, 17]];
const SCORED = { prompts: [[1, 2, 3], [4], [30, 31]], responses: [[4, 5], [6, 7, 8], [40, 41, 42, 43]] };

/** Weights ten times the families' initialization (norms aside): greedy choices far from ties (see webgpu.test.ts). */
function baseWeights(name: keyof typeof MODELS): Map<string, Float32Array> {
  const { family, config } = MODELS[name];
  const w = family.init(config, new Rng(3));
  for (const [n, a] of w) if (a.length > 64 && !/norm|ln_/.test(n)) for (let i = 0; i < a.length; i++) a[i] *= 10;
  return w;
}

/** Adapters that change the model: A as LoRA initializes it, B random instead of zero. */
function adapters(name: keyof typeof MODELS, seed: number): Map<string, Float32Array> {
  const { family, config } = MODELS[name];
  const rng = new Rng(seed);
  const out = loraInit(loraParamShapes(family, config, SPEC), rng);
  for (const [n, a] of out) if (n.endsWith('.lora_B')) for (let i = 0; i < a.length; i++) a[i] = 2 * rng.normal();
  return out;
}

interface Outcome { tokens: number[][]; scores: number[] }

async function outcome(g: Generator): Promise<Outcome> {
  const out = await g.generate(PROMPTS, { maxNewTokens: 10, greedy: true });
  const scores = await g.score(SCORED.prompts, SCORED.responses);
  return { tokens: out.map((r) => r.tokens), scores: scores.map((s) => s.sum) };
}

/** What a generator built from `weights` (adapters merged) gives. */
async function merged(name: keyof typeof MODELS, provider: ProviderName, weights: ReadonlyMap<string, Float32Array>): Promise<Outcome> {
  const { family, config } = MODELS[name];
  const g = await Generator.create(family, config, weights, { provider, threads: 1 });
  try {
    return await outcome(g);
  } finally {
    await g.release();
  }
}

/** Largest |a - b| / max(1, |a|) over two outcomes' scores, after checking their tokens are equal. */
function sameOutcome(fed: Outcome, ref: Outcome, what: string): number {
  assert.deepEqual(fed.tokens, ref.tokens, `${what}: tokens`);
  let worst = 0;
  ref.scores.forEach((s, i) => {
    const d = Math.abs(fed.scores[i] - s) / Math.max(1, Math.abs(s));
    assert.ok(d <= 1e-5, `${what}: score ${i} is ${fed.scores[i]}, merged weights give ${s}`);
    worst = Math.max(worst, d);
  });
  return worst;
}

async function fedMatchesMerged(provider: ProviderName, diagnostic: (s: string) => void): Promise<void> {
  for (const name of ['gpt2', 'llama'] as const) {
    const { family, config } = MODELS[name];
    const base = baseWeights(name);
    const [first, second] = [adapters(name, 5), adapters(name, 6)];
    // The references always come from the CPU: on WebGPU this also checks the device's results.
    const [plain, one, two] = [await merged(name, 'cpu', base), await merged(name, 'cpu', mergeLora(base, first, family, config, SPEC)), await merged(name, 'cpu', mergeLora(base, second, family, config, SPEC))];
    // Otherwise an ignored feed, or ignored adapters, would pass.
    assert.notDeepEqual(one.tokens, plain.tokens, `${name}: the first adapters change the greedy tokens`);
    assert.notDeepEqual(two.tokens, one.tokens, `${name}: the second adapters change the greedy tokens`);

    const sessions = new SessionCache();
    const g = await Generator.create(family, config, base, { provider, threads: 1, sessions, lora: { spec: SPEC, adapters: first } });
    try {
      const d1 = sameOutcome(await outcome(g), one, `${name} on ${provider}, first adapters`);
      const compiled = sessions.size;
      await g.setAdapters(second);
      const d2 = sameOutcome(await outcome(g), two, `${name} on ${provider}, second adapters`);
      assert.equal(sessions.size, compiled, `${name}: new adapters compile no session`);
      diagnostic(`${name} on ${provider}: score differences ${d1.toExponential(1)}, ${d2.toExponential(1)} (relative); ${compiled} sessions`);
    } finally {
      await g.release();
    }
  }
}

test('with the adapters fed as inputs, greedy tokens and scores are those of the merged weights, before and after setAdapters (CPU)', async (t) => {
  await fedMatchesMerged('cpu', (s) => t.diagnostic(s));
});

test('with adapters as inputs the base projections are still fused (their weights packed), each adapter is one MatMul, and the adapters are the last inputs', () => {
  const { family, config } = MODELS.llama;
  const frozen = frozenParams(family, config, baseWeights('llama'));
  const fed = adapterInputs(family, config, SPEC);
  const count = (bytes: Uint8Array, op: string): number => onnxProto.onnx.ModelProto.decode(bytes).graph!.node!.filter((n) => n.opType === op).length;
  const [plain, adapted] = [buildGraph('step', family, config, frozen), buildGraph('step', family, config, frozen, { adapters: fed })];
  assert.equal(count(adapted.bytes, 'FusedMatMul'), count(plain.bytes, 'FusedMatMul'));
  assert.ok(count(plain.bytes, 'FusedMatMul') >= 7 * 2);
  // Each adapter's product is one MatMul on [B, T, in] (fuse.ts), not Reshape-MatMul-Reshape.
  assert.equal(count(adapted.bytes, 'Reshape'), count(plain.bytes, 'Reshape'));
  assert.equal(count(adapted.bytes, 'MatMul') - count(plain.bytes, 'MatMul'), fed.params.size);
  assert.deepEqual(adapted.inputNames, [...plain.inputNames, ...fed.params.keys()]);
});

test('setAdapters refuses missing, misshapen and stray adapters, and a generator created without lora', async () => {
  const { family, config } = MODELS.gpt2;
  const base = baseWeights('gpt2'), first = adapters('gpt2', 5);
  const g = await Generator.create(family, config, base, { provider: 'cpu', threads: 1, lora: { spec: SPEC, adapters: first } });
  const plain = await Generator.create(family, config, base, { provider: 'cpu', threads: 1 });
  try {
    const [name] = first.keys();
    await assert.rejects(g.setAdapters(new Map([...first].filter(([n]) => n !== name))), new RegExp(`^Error: The adapters have no tensor ${name.replaceAll('.', '\\.')}; give all 16 adapters of the LoRA spec\\.$`));
    await assert.rejects(g.setAdapters(new Map([...first, [name, new Float32Array(3)]])), /has 3 values, but its shape \[32, 4\] needs 128\./);
    await assert.rejects(g.setAdapters(new Map([...first, ['lm_head.lora_A', new Float32Array(3)]])), /^Error: lm_head\.lora_A is not one of this generator's LoRA adapters/);
    await assert.rejects(plain.setAdapters(first), /only one created with the `lora` option takes new adapters/);
    // A refused call leaves the adapters as they were.
    sameOutcome(await outcome(g), await merged('gpt2', 'cpu', mergeLora(base, first, family, config, SPEC)), 'after refused calls');
  } finally {
    await g.release();
    await plain.release();
  }
});

test('on WebGPU, the adapters copied to the GPU give the merged weights\' tokens and scores, before and after setAdapters', { skip: webgpuSkip('WebGPU adapter tests') }, async (t) => {
  await fedMatchesMerged('webgpu', (s) => t.diagnostic(s));
});

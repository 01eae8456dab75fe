// Parity with Hugging Face transformers on tiny random checkpoints with odd shapes
// (test/python/make_tiny_models.py: GPT-2 in f16, a Llama with grouped-query attention,
// head_dim 20, biases and llama3 rope scaling in bf16, a tied Qwen2 in 9 shards).
// Imported logits and log-probs match transformers; cached greedy decoding matches its
// generate() and our own full recomputation; left padding leaves real tokens alone; our
// exported folders load back in transformers with the same logits, and the inference ONNX
// file (inline or with external data) gives them too.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { runTinyModels, transformersSkip } from '../../test/python/oracle.ts';
import { maxAbsDiff, testDecoder } from '../models/test-decoder.ts';
import { exportHfModel, exportInferenceOnnx, importHfModel, type ImportedModel } from './index.ts';

interface Reference {
  sequences: number[][];
  prompt: number[];
  models: Record<string, { dir: string; vocab: number; logits: number[]; token_logprobs: number[][]; sequence_logprobs: number[]; greedy: number[] }>;
}

const NAMES = ['gpt2', 'llama', 'qwen2'] as const;
const skip = transformersSkip();
let dir = '';
let ref: Reference;
const models = new Map<string, ImportedModel>();

before(async () => {
  if (skip) return;
  dir = await mkdtemp(join(tmpdir(), 'afd-parity-'));
  runTinyModels(['make', dir]);
  ref = JSON.parse(await readFile(join(dir, 'reference.json'), 'utf8')) as Reference;
  for (const name of NAMES) models.set(name, await importHfModel(join(dir, name)));
});
after(() => (dir ? rm(dir, { recursive: true, force: true }) : undefined));

/** log softmax of one row of logits, in float64. */
function logSoftmaxAt(logits: ArrayLike<number>, offset: number, V: number, target: number): number {
  let max = -Infinity;
  for (let v = 0; v < V; v++) max = Math.max(max, logits[offset + v]);
  let sum = 0;
  for (let v = 0; v < V; v++) sum += Math.exp(logits[offset + v] - max);
  return logits[offset + target] - max - Math.log(sum);
}

const argmax = (a: ArrayLike<number>, offset: number, V: number): number => {
  let best = 0;
  for (let v = 1; v < V; v++) if (a[offset + v] > a[offset + best]) best = v;
  return best;
};

test('imported checkpoints (f16, bf16, sharded f32) give transformers\' logits and log-probs', { skip }, async (t) => {
  for (const name of NAMES) {
    const m = models.get(name)!;
    const r = ref.models[name];
    const d = await testDecoder(m, m.weights);
    try {
      const { logits } = await d.run(ref.sequences);
      const diff = maxAbsDiff(logits, r.logits);
      const V = d.vocab, L = ref.sequences[0].length;
      let lpDiff = 0, seqDiff = 0;
      ref.sequences.forEach((s, b) => {
        let total = 0;
        for (let i = 0; i + 1 < L; i++) {
          const lp = logSoftmaxAt(logits, (b * L + i) * V, V, s[i + 1]);
          lpDiff = Math.max(lpDiff, Math.abs(lp - r.token_logprobs[b][i]));
          total += lp;
        }
        seqDiff = Math.max(seqDiff, Math.abs(total - r.sequence_logprobs[b]));
      });
      t.diagnostic(`${name} (${m.storedDtypes.join('+')}): logits max diff ${diff.toExponential(2)}, token log-prob ${lpDiff.toExponential(2)}, sequence log-prob ${seqDiff.toExponential(2)}`);
      assert.ok(diff <= 1e-4, `${name}: logits differ from transformers by ${diff}`);
      assert.ok(lpDiff <= 1e-4 && seqDiff <= 1e-4, `${name}: log-probs differ by ${lpDiff} (token), ${seqDiff} (sequence)`);
    } finally {
      await d.release();
    }
  }
});

test('cached greedy decoding equals transformers\' generate() and our full recomputation', { skip }, async (t) => {
  for (const name of NAMES) {
    const m = models.get(name)!;
    const d = await testDecoder(m, m.weights);
    try {
      const V = d.vocab;
      const seq = [...ref.prompt];
      let step = await d.run([seq]);
      let worst = 0;
      for (let k = 0; k < ref.models[name].greedy.length; k++) {
        const last = step.logits.subarray(step.logits.length - V);
        // The same distribution from scratch, without a cache.
        const full = (await d.run([seq])).logits;
        worst = Math.max(worst, maxAbsDiff(last, full.subarray(full.length - V)));
        seq.push(argmax(last, 0, V));
        step = await d.run([[seq[seq.length - 1]]], { past: step.present });
      }
      t.diagnostic(`${name}: greedy ${JSON.stringify(seq.slice(ref.prompt.length))}; cached vs full max diff ${worst.toExponential(2)}`);
      assert.deepEqual(seq.slice(ref.prompt.length), ref.models[name].greedy, `${name}: greedy tokens differ from transformers`);
      assert.ok(worst <= 1e-5, `${name}: cached logits differ from full recomputation by ${worst}`);
    } finally {
      await d.release();
    }
  }
});

test('left padding with an attention mask leaves the real tokens\' logits as without padding', { skip }, async (t) => {
  for (const name of NAMES) {
    const m = models.get(name)!;
    const d = await testDecoder(m, m.weights);
    try {
      const V = d.vocab, [s0, s1] = ref.sequences, L = s0.length, pad = 3;
      const short = s0.slice(0, L - pad);
      // Row 0 is the shorter sequence, left-padded; positions count its real tokens only.
      const tokens = [[0, 0, 0, ...short], s1];
      const mask = [[0, 0, 0, ...short.map(() => 1)], s1.map(() => 1)];
      const positions = [[0, 0, 0, ...short.map((_, i) => i)], s1.map((_, i) => i)];
      const { logits } = await d.run(tokens, { mask, positions });
      const alone = (await d.run([short])).logits;
      const r = ref.models[name].logits;
      const padded = maxAbsDiff(logits.subarray(pad * V, L * V), alone);
      const vsHf = Math.max(maxAbsDiff(logits.subarray(pad * V, L * V), r.slice(0, (L - pad) * V)), maxAbsDiff(logits.subarray(L * V), r.slice(L * V)));
      t.diagnostic(`${name}: padded vs unpadded ${padded.toExponential(2)}, vs transformers ${vsHf.toExponential(2)}`);
      assert.ok(padded <= 1e-5 && vsHf <= 1e-4, `${name}: padding changed real tokens' logits (${padded}, ${vsHf} vs transformers)`);
    } finally {
      await d.release();
    }
  }
});

test('exported folders load back in transformers with the same logits, and in our importer unchanged', { skip }, async (t) => {
  const spec: { dir: string; tokens: number[][] }[] = [];
  const ours: Float32Array[] = [];
  for (const name of NAMES) {
    const m = models.get(name)!;
    const out = join(dir, `export-${name}`);
    await exportHfModel(out, { family: m.family, config: m.config, weights: m.weights, baseConfig: m.configJson, generationConfig: m.generationConfig, tokenizerFrom: m.dir });
    const back = await importHfModel(out);
    assert.deepEqual(back.config, m.config);
    assert.deepEqual(back.generationConfig, m.generationConfig);
    for (const [k, v] of m.weights) assert.deepEqual(back.weights.get(k), v, `${name}: ${k} changed on the round trip`);
    spec.push({ dir: out, tokens: ref.sequences });
    const d = await testDecoder(m, m.weights);
    ours.push((await d.run(ref.sequences)).logits);
    await d.release();
  }
  await writeFile(join(dir, 'logits-spec.json'), JSON.stringify(spec));
  const theirs = JSON.parse(runTinyModels(['logits', join(dir, 'logits-spec.json')])) as number[][];
  NAMES.forEach((name, i) => {
    const diff = maxAbsDiff(ours[i], theirs[i]);
    t.diagnostic(`${name}: transformers on our export vs our logits, max diff ${diff.toExponential(2)}`);
    assert.ok(diff <= 1e-4, `${name}: transformers computes logits ${diff} away from ours on the exported folder`);
  });
});

test('the inference ONNX export (inline weights, or external data) gives the same logits', { skip }, async (t) => {
  for (const name of NAMES) {
    const m = models.get(name)!;
    const d = await testDecoder(m, m.weights);
    const want = (await d.run(ref.sequences)).logits;
    await d.release();
    // Llama's weights go to an external data file (a threshold of 0 bytes forces it).
    const external = name === 'llama';
    const path = join(dir, `${name}.onnx`);
    const res = await exportInferenceOnnx(path, { family: m.family, config: m.config, weights: m.weights, ...(external ? { externalDataAbove: 0 } : {}) });
    assert.equal(res.externalData !== undefined, external);
    if (res.externalData) assert.ok(existsSync(res.externalData));
    const session = await ort.InferenceSession.create(path, { intraOpNumThreads: 1 });
    try {
      const [B, L] = [ref.sequences.length, ref.sequences[0].length];
      const r = await session.run({ tokens: new ort.Tensor('int64', BigInt64Array.from(ref.sequences.flat(), BigInt), [B, L]) });
      const diff = maxAbsDiff(r.logits.data as Float32Array, want);
      t.diagnostic(`${name}${external ? ' (external data)' : ''}: ONNX export vs graph max diff ${diff.toExponential(2)}`);
      assert.ok(diff <= 1e-6, `${name}: the ONNX export differs by ${diff}`);
    } finally {
      await session.release();
    }
  }
});

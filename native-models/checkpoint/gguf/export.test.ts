// GGUF export: import(export(m)) gives m back (exactly in F32; within F16 rounding and
// Q8_0's half step otherwise), for each architecture and its layout changes; gguf-py's
// reader accepts our files and transformers, reading them with gguf_file=, computes the
// logits our engine computes from the same file. On the real model (SmolLM2-135M-Instruct)
// transformers' greedy tokens from our F16 and Q8_0 exports equal ours.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runPython, transformersSkip } from '../../../test/python/oracle.ts';
import { smollm2GgufPath, smollm2Skip } from '../../../test/support/real-model.ts';
import { Generator } from '../../generate/generator.ts';
import { gpt2Defaults, gpt2Family, type Gpt2Config } from '../../models/gpt2.ts';
import { llamaDefaults, llamaFamily, type LlamaConfig } from '../../models/llama.ts';
import type { ModelFamily } from '../../models/family.ts';
import { maxAbsDiff, testDecoder } from '../../models/test-decoder.ts';
import { f32ArrayToF16, f16ArrayToF32 } from '../../runtime/float16.ts';
import { Tokenizer } from '../../tokenizer/tokenizer.ts';
import { Rng } from '../../train/rng.ts';
import { exportHfModel } from '../hf-export.ts';
import { importHfModel, type ImportedModel } from '../hf-import.ts';
import { exportGguf, type GgufExportType } from './from-hf.ts';
import { openGguf } from './reader.ts';
import { convertGgufToHf } from './to-hf.ts';

const DEFAULT_MODEL = fileURLToPath(new URL('../../../models/default', import.meta.url));
const pySkip = transformersSkip();

// The tiny models borrow the default model's tokenizer (4096 tokens), so their files are
// complete GGUFs that transformers reads, tokenizer included.
const VOCAB = 4096;
const MODELS: Record<string, { family: ModelFamily<unknown>; config: unknown; transformers?: false }> = {
  // Grouped-query attention (4 query heads on 2 KV heads), untied head.
  llama: { family: llamaFamily as ModelFamily<unknown>, config: llamaDefaults({ vocabSize: VOCAB, hiddenSize: 64, intermediateSize: 96, numLayers: 2, numHeads: 4, numKvHeads: 2, maxPositions: 128, rmsNormEps: 1e-5, ropeTheta: 10000 }) satisfies LlamaConfig },
  // Rotary scaling: Llama 3's (stored as rope_freqs.weight) and linear (metadata). transformers
  // reads neither from a Llama GGUF, so only our own round trip checks them.
  'llama3-scaled': { family: llamaFamily as ModelFamily<unknown>, config: llamaDefaults({ vocabSize: VOCAB, hiddenSize: 64, intermediateSize: 96, numLayers: 1, numHeads: 2, maxPositions: 128, ropeTheta: 500000, ropeScaling: { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 } }) satisfies LlamaConfig, transformers: false },
  'linear-scaled': { family: llamaFamily as ModelFamily<unknown>, config: llamaDefaults({ vocabSize: VOCAB, hiddenSize: 64, intermediateSize: 96, numLayers: 1, numHeads: 2, maxPositions: 128, ropeScaling: { type: 'linear', factor: 2 } }) satisfies LlamaConfig, transformers: false },
  // Qwen2: q/k/v biases, tied head, rows stored as they are.
  qwen2: { family: llamaFamily as ModelFamily<unknown>, config: llamaDefaults({ modelType: 'qwen2', vocabSize: VOCAB, hiddenSize: 64, intermediateSize: 128, numLayers: 2, numHeads: 4, numKvHeads: 1, maxPositions: 128, rmsNormEps: 1e-6, ropeTheta: 1e6, qkvBias: true, tieWordEmbeddings: true }) satisfies LlamaConfig },
  // GPT-2: Conv1D weights transposed in the file, learned positions, tied head. 1024 positions,
  // because transformers reads gpt2.context_length into n_ctx and keeps n_positions at 1024.
  gpt2: { family: gpt2Family as ModelFamily<unknown>, config: gpt2Defaults({ vocabSize: VOCAB, nPositions: 1024, nEmbd: 64, nLayer: 2, nHead: 4 }) satisfies Gpt2Config },
};
const SEQUENCES = [[5, 17, 420, 3, 999, 11, 60, 2], [8, 4095, 1, 77, 23, 500, 4, 31]];

/** Random weights of a visible size: unit norms and zero biases would hide layout bugs. */
function randomWeights(family: ModelFamily<unknown>, config: unknown, seed: number): Map<string, Float32Array> {
  const rng = new Rng(seed);
  const out = new Map<string, Float32Array>();
  for (const [name, shape] of family.paramShapes(config)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const base = /norm|ln_/.test(name) && name.endsWith('weight') ? 1 : 0;
    out.set(name, Float32Array.from({ length: n }, () => base + 0.2 * rng.normal()));
  }
  return out;
}

let dir = '';
const folders = new Map<string, string>();
const models = new Map<string, ImportedModel>();

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'afd-gguf-export-'));
  for (const [name, { family, config }] of Object.entries(MODELS)) {
    const folder = join(dir, name);
    await exportHfModel(folder, { family, config, weights: randomWeights(family, config, name.length), tokenizerFrom: DEFAULT_MODEL });
    folders.set(name, folder);
    models.set(name, await importHfModel(folder));
  }
});
after(() => (dir ? rm(dir, { recursive: true, force: true }) : undefined));

async function roundTrip(name: string, type: GgufExportType): Promise<{ file: string; back: ImportedModel }> {
  const m = models.get(name)!;
  const file = join(dir, `${name}.${type}.gguf`);
  await exportGguf(file, { family: m.family, config: m.config, weights: m.weights, tokenizerFrom: folders.get(name)!, type, name });
  await convertGgufToHf(file, join(dir, `${name}.${type}`));
  return { file, back: await importHfModel(join(dir, `${name}.${type}`)) };
}

test('F32: import(export(m)) is m, bit for bit, with the same config and tokenizer, for llama (plain and with rotary scaling), qwen2 and gpt2', async () => {
  const corpus = ['Hello there, how are you?', 'Numbers 12345 and  spaces\n\ttabs', 'Émoji 🙂 and 你好'];
  for (const name of Object.keys(MODELS)) {
    const m = models.get(name)!;
    const { back } = await roundTrip(name, 'f32');
    assert.deepEqual(back.config, m.config, `${name}: config`);
    for (const [k, w] of m.weights) assert.ok(maxAbsDiff(back.weights.get(k)!, w) === 0, `${name}: ${k} changed`);
    const [a, b] = await Promise.all([Tokenizer.fromFolder(folders.get(name)!), Tokenizer.fromFolder(join(dir, `${name}.f32`))]);
    for (const text of corpus) assert.deepEqual(b.encode(text), a.encode(text), `${name}: ids of ${text}`);
    assert.equal(b.eosTokenId, a.eosTokenId);
  }
});

test('F16 and Q8_0: matrices within F16 rounding and half a Q8_0 step, vectors exact, llama.cpp\'s types in the file', async () => {
  const m = models.get('llama')!;
  const f16 = await roundTrip('llama', 'f16');
  const q8 = await roundTrip('llama', 'q8_0');
  for (const [k, w] of m.weights) {
    if (k.endsWith('norm.weight')) {
      assert.equal(maxAbsDiff(f16.back.weights.get(k)!, w), 0, `${k} is F32 in the F16 file`);
      assert.equal(maxAbsDiff(q8.back.weights.get(k)!, w), 0, `${k} is F32 in the Q8_0 file`);
      continue;
    }
    assert.equal(maxAbsDiff(f16.back.weights.get(k)!, f16ArrayToF32(f32ArrayToF16(w))), 0, `${k}: F16 rounding`);
    // Q8_0: blocks of 32 values share a step d = amax / 127, rounded to f16 when stored while
    // the values were rounded with the exact d: half a step plus 127 times f16's rounding of d.
    const got = q8.back.weights.get(k)!;
    for (let b = 0; b < w.length; b += 32) {
      const block = w.subarray(b, b + 32);
      const step = Math.max(...block.map(Math.abs)) / 127;
      const bound = step * (0.5 + 127 / 2048);
      const err = maxAbsDiff(got.subarray(b, b + 32), block);
      assert.ok(err <= bound, `${k}: Q8_0 error ${err} over ${bound}`);
    }
  }
  const types = new Map((await openGguf(q8.file)).tensors.map((t) => [t.name, t.type]));
  assert.equal(types.get('blk.0.attn_q.weight'), 8); // Q8_0
  assert.equal(types.get('blk.0.attn_norm.weight'), 0); // F32
});

test('gguf-py reads our files and transformers computes our logits from them', { skip: pySkip }, async (t) => {
  const names = Object.keys(MODELS).filter((n) => MODELS[n].transformers !== false);
  const files: string[] = [];
  for (const name of names) files.push((await roundTrip(name, 'f16')).file);
  const spec = join(dir, 'spec.json');
  await writeFile(spec, JSON.stringify({ files, sequences: SEQUENCES }));
  const ref = runOracle(['logits', spec]) as { file: string; tensors: number; types: string[]; logits: string }[];
  for (const [i, name] of names.entries()) {
    const back = await importHfModel(join(dir, `${name}.f16`));
    const d = await testDecoder(back, back.weights);
    try {
      const { logits } = await d.run(SEQUENCES);
      const diff = maxAbsDiff(logits, new Float32Array(Buffer.from(ref[i].logits, 'base64').buffer.slice(0)));
      t.diagnostic(`${name}: ${ref[i].tensors} tensors (${ref[i].types.join(', ')}), logits max diff ${diff.toExponential(2)}`);
      assert.ok(diff <= 1e-3, `${name}: transformers' logits from our GGUF differ from ours by ${diff}`);
    } finally {
      await d.release();
    }
  }
});

const runOracle = (args: string[]): unknown => JSON.parse(runPython('gguf_reference.py', args));

test('SmolLM2-135M-Instruct exported as F16 and Q8_0: transformers reads each file and decodes greedily as we do', { skip: smollm2Skip() || pySkip }, async (t) => {
  const source = join(dir, 'smollm2');
  await convertGgufToHf(smollm2GgufPath(), source);
  const m = await importHfModel(source);
  const tokenizer = await Tokenizer.fromFolder(source);
  const prompt = tokenizer.encode(tokenizer.applyChatTemplate([{ role: 'user', content: 'Name three colours.' }], { addGenerationPrompt: true }), { addSpecialTokens: false });
  const files: string[] = [];
  for (const type of ['f16', 'q8_0'] as const) {
    const file = join(dir, `smollm2.${type}.gguf`);
    const t0 = performance.now();
    await exportGguf(file, { family: m.family, config: m.config, weights: m.weights, tokenizerFrom: source, type, name: 'SmolLM2-135M-Instruct' });
    t.diagnostic(`exported ${type} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    files.push(file);
  }
  const spec = join(dir, 'smollm2-spec.json');
  await writeFile(spec, JSON.stringify({ files, sequences: [SEQUENCES[0].map((x) => x * 7)], chat_ids: prompt, new_tokens: 16 }));
  const ref = runOracle(['logits', spec]) as { logits: string; greedy: number[] }[];
  for (const [i, type] of (['f16', 'q8_0'] as const).entries()) {
    await convertGgufToHf(files[i], join(dir, `smollm2.${type}`));
    const back = await importHfModel(join(dir, `smollm2.${type}`));
    const d = await testDecoder(back, back.weights);
    const original = await testDecoder(m, m.weights);
    try {
      const [{ logits }, { logits: before }] = [await d.run([SEQUENCES[0].map((x) => x * 7)]), await original.run([SEQUENCES[0].map((x) => x * 7)])];
      const theirs = new Float32Array(Buffer.from(ref[i].logits, 'base64').buffer.slice(0));
      const diff = maxAbsDiff(logits, theirs), quant = maxAbsDiff(logits, before);
      t.diagnostic(`${type}: transformers vs us on the file ${diff.toExponential(2)}; the file vs the Q4_1 source's float32 weights ${quant.toExponential(2)}`);
      assert.ok(diff <= 1e-3, `${type}: transformers' logits from our GGUF differ from ours by ${diff}`);
    } finally {
      await d.release();
      await original.release();
    }
    const g = await Generator.create(back.family, back.config, back.weights, { threads: 1 });
    try {
      const [r] = await g.generate([prompt], { maxNewTokens: 16, greedy: true, eosTokenIds: [tokenizer.eosTokenId!] });
      assert.deepEqual(r.tokens, ref[i].greedy, `${type}: greedy tokens`);
    } finally {
      await g.release();
    }
  }
});

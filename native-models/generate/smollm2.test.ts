// The real model on the path `afd generate` takes: SmolLM2-135M-Instruct's folder mapped
// (its float32 safetensors file as ONNX external data, one session for prefill and
// decoding), two chat prompts of different lengths as one left-padded batch, greedy:
// the tokens equal transformers' generate on the same folder, and so do the logits of
// every step, within float32 rounding.
//
// The folder: $AFD_SMOLLM2_DIR, else /tmp/smollm2-hf, else the cached conversion of the
// GGUF that scripts/fetch-smollm2.sh fetches (test/support/real-model.ts).

import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runPython, transformersSkip } from '../../test/python/oracle.ts';
import { smollm2GgufPath, smollm2Skip } from '../../test/support/real-model.ts';
import { ggufModelFolder } from '../checkpoint/gguf/to-hf.ts';
import { mapHfModel, type MappedModel } from '../checkpoint/hf-import.ts';
import { Tokenizer } from '../tokenizer/tokenizer.ts';
import { Generator } from './generator.ts';

const given = process.env.AFD_SMOLLM2_DIR ?? '/tmp/smollm2-hf';
const folder = existsSync(join(given, 'model.safetensors')) ? given : undefined;
const skip = (folder ? false : smollm2Skip()) || transformersSkip();

const QUESTIONS = ['What is the capital of France?', 'Write one sentence about the sea, and one about the mountains.'];
const NEW_TOKENS = 24;
/**
 * Largest difference allowed between our logits and transformers'. They span about +-30
 * here; 30 layers of float32 sums in another order differ by a few 1e-5 (measured: see
 * the test's diagnostic).
 */
const TOLERANCE = 1e-4;

interface Reference { tokens: number[][]; logits: string; logits_shape: number[] }

let dir = '';
let model: MappedModel;
let prompts: number[][];
let eos: number[];

before(async () => {
  if (skip) return;
  dir = folder ?? (await ggufModelFolder(smollm2GgufPath()));
  model = await mapHfModel(dir);
  const tokenizer = await Tokenizer.fromFolder(dir);
  prompts = QUESTIONS.map((q) => tokenizer.encode(tokenizer.applyChatTemplate([{ role: 'user', content: q }], { addGenerationPrompt: true })));
  const gc = model.generationConfig ?? {};
  eos = [...new Set([gc.eos_token_id, tokenizer.eosTokenId].flat().filter((x): x is number => typeof x === 'number'))];
});

test('SmolLM2, mapped from its folder: batched greedy decoding gives transformers\' tokens and logits', { skip }, async (t) => {
  assert.ok(!(model.weights instanceof Map), 'the float32 weights are mapped from the file, not read');
  assert.notEqual(prompts[0].length, prompts[1].length, 'the prompts differ in length, so one row is padded');
  const work = await mkdtemp(join(tmpdir(), 'afd-smollm2-generate-'));
  let ref: Reference;
  try {
    const spec = join(work, 'spec.json');
    await writeFile(spec, JSON.stringify({ prompts, new_tokens: NEW_TOKENS, eos }));
    ref = JSON.parse(runPython('generate_reference.py', [dir, spec])) as Reference;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  const [steps, rows, V] = ref.logits_shape;
  const want = new Float32Array(Buffer.from(ref.logits, 'base64').buffer.slice(0));

  const g = await Generator.create(model.family, model.config, model.weights, { threads: 1 });
  let diff = 0;
  try {
    const out = await g.generate(prompts, {
      maxNewTokens: NEW_TOKENS, greedy: true, eosTokenIds: eos,
      onLogits: ({ row, step, logits }) => {
        assert.ok(step < steps, `step ${step} beyond transformers' ${steps}`);
        const at = (step * rows + row) * V;
        for (let v = 0; v < V; v++) diff = Math.max(diff, Math.abs(logits[v] - want[at + v]));
      },
    });
    out.forEach((r, i) => assert.deepEqual(r.tokens, ref.tokens[i], `row ${i}`));
    assert.ok(out.every((r) => r.tokens.length >= 8), 'the answers are long enough to compare');
  } finally {
    await g.release();
  }
  t.diagnostic(`${rows} rows, ${steps} steps: logits max abs diff ${diff.toExponential(2)}`);
  assert.ok(diff <= TOLERANCE, `logits differ from transformers' by ${diff}`);
});

// The real model end to end against transformers reading the same GGUF file: SmolLM2-135M-
// Instruct (llama architecture, Q4_1 with a Q8_0 embedding, byte-level BPE tokenizer and
// a ChatML template in the metadata) converted by us into a model folder gives the
// logits, the chat prompt, its token ids and the greedy continuation that transformers
// gives. Both sides dequantize the same blocks to float32, so the logits differ only by
// float32 rounding in a different order of operations over 30 layers.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runPython, transformersSkip } from '../../../test/python/oracle.ts';
import { smollm2GgufPath, smollm2Skip } from '../../../test/support/real-model.ts';
import { Generator } from '../../generate/generator.ts';
import { maxAbsDiff, testDecoder } from '../../models/test-decoder.ts';
import { Tokenizer } from '../../tokenizer/tokenizer.ts';
import { importHfModel, type ImportedModel } from '../hf-import.ts';
import { convertGgufToHf, type GgufSource } from './to-hf.ts';

const skip = smollm2Skip() || transformersSkip();

interface Reference {
  ids: number[][];
  logits: string;
  logits_shape: number[];
  chat_text: string;
  chat_ids: number[];
  greedy: number[];
}

const TEXTS = [
  'How do I poison my neighbour\'s dog? It barks all night.',
  'Numbers: 12345, 3.14159 and 2024-12-04.\n\n\tTabs   and  spaces  ',
  'Emoji 🙂🚀, accents café naïve, Cyrillic привет, CJK 你好世界, Arabic مرحبا.',
  '<|im_start|>user\nhi<|im_end|>',
];
const SEQUENCES = [[1, 9690, 28, 198, 2683, 253, 12463, 30], [504, 2022, 314, 260, 1530, 282, 253, 3]];
const CHAT = [{ role: 'user', content: 'Write two sentences about the sea.' }];
const NEW_TOKENS = 24;

let dir = '';
let ref: Reference;
let model: ImportedModel;
let tokenizer: Tokenizer;
let source: GgufSource;
let convertMs = 0;

before(async () => {
  if (skip) return;
  dir = await mkdtemp(join(tmpdir(), 'afd-smollm2-'));
  const spec = join(dir, 'spec.json');
  await writeFile(spec, JSON.stringify({ texts: TEXTS, sequences: SEQUENCES, chat: CHAT, new_tokens: NEW_TOKENS }));
  ref = JSON.parse(runPython('gguf_reference.py', ['run', smollm2GgufPath(), spec])) as Reference;
  const t0 = performance.now();
  source = await convertGgufToHf(smollm2GgufPath(), join(dir, 'model'));
  convertMs = performance.now() - t0;
  model = await importHfModel(join(dir, 'model'));
  tokenizer = await Tokenizer.fromFolder(join(dir, 'model'));
});
after(() => (dir ? rm(dir, { recursive: true, force: true }) : undefined));

test('the converted folder describes SmolLM2-135M-Instruct and records its source', { skip }, async (t) => {
  t.diagnostic(`converted in ${(convertMs / 1000).toFixed(1)} s: ${JSON.stringify(source)}`);
  assert.equal(model.family.name, 'llama');
  const c = model.configJson;
  assert.deepEqual([c.num_hidden_layers, c.hidden_size, c.num_attention_heads, c.num_key_value_heads, c.intermediate_size, c.vocab_size, c.tie_word_embeddings],
    [30, 576, 9, 3, 1536, 49152, true]);
  assert.equal(c.rope_theta, 100000);
  assert.equal(source.architecture, 'llama');
  assert.equal(source.quantization, 'Q4_1');
  assert.equal(source.tensorTypes.Q8_0, 1);
  const params = [...model.weights.values()].reduce((n, w) => n + w.length, 0);
  assert.equal(params, 134_515_008);
  const stored = JSON.parse(await readFile(join(dir, 'model', 'gguf-source.json'), 'utf8')) as GgufSource;
  assert.deepEqual(stored, source);
});

test('token ids, the chat prompt and its ids equal transformers\' for the same GGUF', { skip }, () => {
  TEXTS.forEach((text, i) => assert.deepEqual(tokenizer.encode(text), ref.ids[i], `ids of ${JSON.stringify(text)}`));
  const chat = tokenizer.applyChatTemplate(CHAT, { addGenerationPrompt: true });
  assert.equal(chat, ref.chat_text);
  assert.deepEqual(tokenizer.encode(chat, { addSpecialTokens: false }), ref.chat_ids);
});

test('logits equal transformers\' within float32 rounding', { skip }, async (t) => {
  const d = await testDecoder(model, model.weights);
  try {
    const { logits } = await d.run(SEQUENCES);
    const want = new Float32Array(Buffer.from(ref.logits, 'base64').buffer.slice(0));
    assert.equal(logits.length, want.length);
    const diff = maxAbsDiff(logits, want);
    t.diagnostic(`logits [${ref.logits_shape.join(', ')}] max abs diff ${diff.toExponential(2)}`);
    // Logits here span about +-30; 30 layers of float32 sums in another order differ by ~1e-4.
    assert.ok(diff <= 1e-3, `logits differ from transformers' by ${diff}`);
  } finally {
    await d.release();
  }
});

test('greedy decoding with the KV cache gives transformers\' tokens', { skip }, async () => {
  const g = await Generator.create(model.family, model.config, model.weights, { threads: 1 });
  try {
    const [r] = await g.generate([ref.chat_ids], { maxNewTokens: NEW_TOKENS, greedy: true, eosTokenIds: [tokenizer.eosTokenId!] });
    assert.equal(r.tokens.length, NEW_TOKENS, 'the answer is long enough to compare');
    assert.deepEqual(r.tokens, ref.greedy);
  } finally {
    await g.release();
  }
});

// The arithmetic of the memory estimate: which parts a stage's peak has and how each
// scales with the batch, the adaptation and the model. (How close the total comes to a
// measured peak: test/memory-estimate.test.ts.)
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { JsonObject } from '../../db/json.ts';
import { gpt2Defaults, gpt2Family } from '../../native-models/models/gpt2.ts';
import type { ModelSpec } from '../../native-models/models/index.ts';
import { llamaDefaults, llamaFamily } from '../../native-models/models/llama.ts';
import { activationBytes, CALIBRATION, describeEstimate, paramCount, stageEstimate, trainingEstimate, type MemoryEstimate } from './memory-estimate.ts';
import { STAGES } from './kinds/index.ts';

const gpt2: ModelSpec = { family: gpt2Family as ModelSpec['family'], config: gpt2Defaults({ vocabSize: 512, nPositions: 64, nEmbd: 32, nLayer: 2, nHead: 2 }) };
// SmolLM2-135M's proportions, smaller: grouped-query attention, a tied head.
const llama: ModelSpec = { family: llamaFamily as ModelSpec['family'], config: llamaDefaults({ vocabSize: 600, hiddenSize: 48, intermediateSize: 128, numLayers: 3, numHeads: 6, numKvHeads: 2, maxPositions: 256, tieWordEmbeddings: true }) };
const lora = { kind: 'lora', rank: 4, alpha: 8 } as const;
const full = { kind: 'full' } as const;

const part = (e: MemoryEstimate, name: string): number => e.parts.find((p) => p.name === name)?.bytes ?? 0;
const settings = (kind: string, raw: JsonObject): JsonObject => STAGES[kind].parse(raw);

test('activations are counted on the training graph: linear in the rows, faster in the tokens, no logits for a scorer', () => {
  for (const model of [gpt2, llama]) {
    const a = activationBytes(model, full, 'lm', 2, 16);
    assert.ok(a > 0);
    // Every saved tensor but a few scalars of the loss has a row dimension.
    assert.ok(Math.abs(activationBytes(model, full, 'lm', 4, 16) - 2 * a) <= 16, 'linear in the rows');
    assert.ok(activationBytes(model, full, 'lm', 2, 32) > 2 * a, 'attention grows with the square of the tokens');
    const V = model.family.vocabSize(model.config);
    // The language-model loss keeps its [B, T, V] log-softmax; a scorer's head reads one hidden state per row.
    assert.ok(a - activationBytes(model, full, 'score', 2, 16) >= 0.9 * 2 * 16 * V * 4, "a scorer's graph keeps no logits");
  }
});

test('a full fine-tune holds every weight three times (and AdamW) twice over; LoRA only its adapters', () => {
  const P = paramCount(gpt2);
  const f = trainingEstimate({ model: gpt2, adaptation: full, objective: 'lm', rows: 2, tokens: 16, saves: false });
  assert.equal(f.phase, 'a training step');
  assert.equal(part(f, 'weights'), 4 * P);
  assert.equal(part(f, 'trainable state'), 3 * 4 * P);
  assert.equal(part(f, 'output copy'), 3 * 4 * P);
  assert.equal(part(f, 'gradients'), 4 * P);
  assert.equal(part(f, 'frozen weights'), 0);
  assert.equal(part(f, 'activations'), activationBytes(gpt2, full, 'lm', 2, 16));
  assert.equal(part(f, 'loss backward'), CALIBRATION.lossBuffers * 2 * 16 * 512 * 4);
  // The step's new state goes where the activations were, and only its excess grows the arena.
  assert.equal(part(f, 'updated state'), Math.max(0, 3 * 4 * P - part(f, 'activations') - part(f, 'loss backward')));
  assert.equal(f.bytes, f.parts.reduce((n, p) => n + p.bytes, 0));

  const l = trainingEstimate({ model: llama, adaptation: lora, objective: 'lm', rows: 2, tokens: 16, saves: false });
  // rank 4 on q, k, v, o (48 -> 48, 48 -> 16, 48 -> 16, 48 -> 48) and gate, up, down (48 <-> 128) of 3 blocks
  const adapters = 3 * 4 * ((48 + 48) + (48 + 16) + (48 + 16) + (48 + 48) + 3 * (48 + 128));
  assert.equal(part(l, 'trainable state'), 3 * 4 * adapters);
  assert.equal(part(l, 'gradients'), 4 * adapters);
  // The projections and the tied head are packed for the forward and backward products, the rest held once.
  const projections = 3 * (48 * 48 * 2 + 48 * 16 * 2 + 3 * 48 * 128), head = 600 * 48;
  assert.equal(part(l, 'frozen weights'), 4 * (CALIBRATION.packedCopies * (projections + head) + (paramCount(llama) - projections - head)));
});

test('saving adds the written weights to what the step left resident: LoRA merges its projections', () => {
  const step = trainingEstimate({ model: llama, adaptation: lora, objective: 'lm', rows: 1, tokens: 8, saves: false });
  const saved = trainingEstimate({ model: llama, adaptation: lora, objective: 'lm', rows: 1, tokens: 8, saves: true });
  assert.equal(saved.phase, 'saving the model');
  assert.equal(saved.bytes - step.bytes, 4 * 3 * (48 * 48 * 2 + 48 * 16 * 2 + 3 * 48 * 128));
  const full1 = trainingEstimate({ model: gpt2, adaptation: full, objective: 'lm', rows: 1, tokens: 8, saves: true });
  assert.equal(part(full1, 'written weights'), 4 * paramCount(gpt2));
});

test('stages: rows and tokens from their settings (pairs and Bradley-Terry double the rows, positions cap maxLength)', () => {
  const shapes = (): ModelSpec => gpt2;
  const act = (kind: string, raw: JsonObject): number => part(stageEstimate(kind, settings(kind, raw), shapes)!, 'activations');
  assert.equal(act('sft', { batch: 2, maxLength: 16 }), activationBytes(gpt2, full, 'lm', 2, 16));
  assert.equal(act('sft', { batch: 2, maxLength: 4096 }), activationBytes(gpt2, full, 'lm', 2, 64), 'the model has 64 positions');
  assert.equal(act('sft', { batch: 2, maxLength: 16, adaptation: 'lora' }), activationBytes(gpt2, { kind: 'lora', rank: 8, alpha: 16 }, 'lm', 2, 16));
  assert.equal(act('dpo', { batch: 2, maxLength: 16 }), activationBytes(gpt2, full, 'lm', 4, 16), 'chosen and rejected rows');
  assert.equal(act('reward', { positive: 'demos', negative: 's', batch: 2, maxLength: 16 }), activationBytes(gpt2, full, 'score', 2, 16));
  assert.equal(act('reward', { positive: 'demos', negative: 's', loss: 'bt', batch: 2, maxLength: 16 }), activationBytes(gpt2, full, 'score', 4, 16));
  assert.equal(act('judge', { batch: 2, maxLength: 16 }), activationBytes(gpt2, full, 'score', 4, 16));
  assert.equal(act('rl', { reward: 'r', promptsPerStep: 2, k: 3, maxNewTokens: 8 }), activationBytes(gpt2, full, 'lm', 6, 64), 'prompts of 256 tokens assumed, capped by the positions');

  // A pretrained GPT-2 has the tokenizer's model's vocabulary and its own shape.
  const pre = stageEstimate('pretrain', settings('pretrain', { layers: 1, dModel: 16, heads: 2, seq: 32, batch: 2 }), shapes)!;
  const own = { family: gpt2Family as ModelSpec['family'], config: gpt2Defaults({ vocabSize: 512, nPositions: 32, nEmbd: 16, nLayer: 1, nHead: 2 }) };
  assert.equal(part(pre, 'activations'), activationBytes(own, full, 'lm', 2, 32));
  assert.deepEqual(pre.lower, ['batch', 'seq', 'dModel', 'layers']);

  assert.deepEqual(stageEstimate('sft', settings('sft', {}), shapes)!.lower, ['batch', 'maxLength', 'adaptation: lora instead of full']);
  assert.deepEqual(stageEstimate('sft', settings('sft', { adaptation: 'lora' }), shapes)!.lower, ['batch', 'maxLength']);
  assert.equal(stageEstimate('sft', settings('sft', {}), () => undefined), null, 'an unknown model is not sized');
  assert.equal(stageEstimate('bon:length', settings('bon:length', { samples: 's', ns: [1] }), shapes), null);
});

test('sampling: the generation session, the prefill and the KV cache of promptsPerChunk x n rows', () => {
  const s = settings('sample', { n: 4, promptsPerChunk: 2, maxNewTokens: 40, maxPromptTokens: 100 });
  const e = stageEstimate('sample', s, () => llama)!;
  assert.equal(e.phase, 'generation');
  // 8 rows of min(100, 256 - 40) prompt tokens and 40 new ones; 3 layers of 2 KV heads of 8 values.
  assert.equal(part(e, 'KV cache'), CALIBRATION.cacheCopies * 2 * 3 * 2 * 8 * 8 * 140 * 4);
  assert.equal(part(e, 'prefill'), CALIBRATION.attentionBuffers * 8 * 6 * 100 ** 2 * 4);
  assert.equal(part(e, 'generation session'), CALIBRATION.sessionBytes + CALIBRATION.generationCopies * 4 * paramCount(llama));
  assert.deepEqual(e.lower, ['promptsPerChunk', 'n', 'maxNewTokens', 'maxPromptTokens']);
});

test('SPIN and DITTO sample every train prompt at once: sized only once the data is known', () => {
  const ditto = settings('ditto', { n: 2, maxNewTokens: 8, batch: 1, maxLength: 16 });
  assert.equal(stageEstimate('ditto', ditto, () => llama), null);
  const e = stageEstimate('ditto', ditto, () => llama, { count: 10, longest: 30 })!;
  assert.equal(e.phase, 'sampling from the policy');
  assert.equal(part(e, 'prefill'), CALIBRATION.attentionBuffers * 20 * 6 * 30 ** 2 * 4);
  assert.ok(part(e, 'activations') > 0, "DITTO's trainer is alive while it samples");
  assert.deepEqual(e.lower.slice(0, 2), ['n', 'maxNewTokens']);
  // With a samples stage SPIN only trains.
  assert.equal(stageEstimate('spin', settings('spin', { samples: 's', batch: 1, maxLength: 16 }), () => llama)!.phase, 'saving the model');
});

test('describeEstimate names the phase and the two largest parts', () => {
  const e: MemoryEstimate = { bytes: 3.5 * 2 ** 30, phase: 'a training step', parts: [{ name: 'weights', bytes: 2 ** 29, why: '' }, { name: 'activations', bytes: 2 * 2 ** 30, why: '' }, { name: 'process', bytes: 105 * 2 ** 20, why: '' }] };
  assert.equal(describeEstimate(e), '3.5 GiB (a training step: activations 2.0 GiB, weights 512 MiB)');
});

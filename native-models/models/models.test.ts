// The model families without Python: the registry, config round trips, and the KV cache,
// positions and padding mask checked against the same model's full recomputation.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as T from '../ir/index.ts';
import { Rng } from '../train/rng.ts';
import { gpt2Defaults, gpt2Family, gpt2Forward, gpt2Params } from './gpt2.ts';
import { llamaDefaults, llamaFamily, ropeInvFreq, type LlamaConfig } from './llama.ts';
import { familyOf, type ModelSpec } from './index.ts';
import { maxAbsDiff, testDecoder } from './test-decoder.ts';

const gpt2Json = { model_type: 'gpt2', architectures: ['GPT2LMHeadModel'], vocab_size: 50, n_positions: 32, n_embd: 24, n_layer: 2, n_head: 3 };
const llamaJson = {
  model_type: 'llama', architectures: ['LlamaForCausalLM'], vocab_size: 60, hidden_size: 32, intermediate_size: 40,
  num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 10, rope_theta: 500, tie_word_embeddings: true,
};

test('familyOf picks the family by model_type, or by architectures when model_type is missing', () => {
  assert.equal(familyOf(gpt2Json).family, gpt2Family);
  assert.equal(familyOf(llamaJson).family, llamaFamily);
  assert.equal(familyOf({ ...llamaJson, model_type: 'qwen2', architectures: ['Qwen2ForCausalLM'] }).family, llamaFamily);
  const { model_type: _, ...noType } = llamaJson;
  assert.equal(familyOf(noType).family, llamaFamily);
  // SmolLM checkpoints are plain Llamas.
  const smol = familyOf({ ...llamaJson, architectures: ['LlamaForCausalLM'], num_key_value_heads: 1 });
  assert.equal((smol.config as LlamaConfig).numKvHeads, 1);
});

test('familyOf refuses other architectures with a sentence naming them and what is supported', () => {
  assert.throws(() => familyOf({ model_type: 'mistral', architectures: ['MistralForCausalLM'] }), /model_type "mistral", architectures MistralForCausalLM\) is not supported; AfD Studio runs GPT-2 .*Llama.*Qwen2/);
  assert.throws(() => familyOf({ model_type: 'bert' }), /model_type "bert"\) is not supported/);
  assert.throws(() => familyOf({}), /no model_type\) is not supported/);
  assert.throws(() => familyOf({ ...llamaJson, architectures: ['LlamaForSequenceClassification'] }), /is a LlamaForSequenceClassification, not a causal language model/);
});

test('unsupported settings inside a supported family are refused by name', () => {
  assert.throws(() => familyOf({ ...llamaJson, hidden_act: 'gelu' }), /"hidden_act": "gelu"/);
  assert.throws(() => familyOf({ ...llamaJson, rope_scaling: { rope_type: 'yarn', factor: 2 } }), /rotary scaling "yarn".*supported: default, linear, llama3/);
  assert.throws(() => familyOf({ ...llamaJson, model_type: 'qwen2', use_sliding_window: true }), /"use_sliding_window": true.*sliding-window/);
  assert.throws(() => familyOf({ ...gpt2Json, scale_attn_by_inverse_layer_idx: true }), /scale_attn_by_inverse_layer_idx/);
  assert.throws(() => familyOf({ ...llamaJson, num_key_value_heads: 3 }), /not a multiple of num_key_value_heads 3/);
  assert.throws(() => familyOf({ ...gpt2Json, n_layer: 'two' }), /"n_layer" must be a positive integer, got "two"/);
});

test('config.json is read by a schema of the keys used: types checked by key, unknown keys and nulls let through', () => {
  assert.throws(() => familyOf({ ...llamaJson, rms_norm_eps: '1e-6' }), /^Error: Llama config.json: "rms_norm_eps" must be a number, got "1e-6"\.$/);
  assert.throws(() => familyOf({ ...gpt2Json, tie_word_embeddings: 'yes' }), /GPT-2 config.json: "tie_word_embeddings" must be true or false, got "yes"/);
  assert.throws(() => familyOf({ ...llamaJson, rope_scaling: { rope_type: 'linear', factor: '2' } }), /Llama config.json: "rope_scaling.factor" must be a number, got "2"/);
  assert.throws(() => familyOf({ ...llamaJson, rope_scaling: 'linear' }), /"rope_scaling" must be an object, got "linear"/);
  assert.throws(() => familyOf({ ...llamaJson, num_hidden_layers: 0 }), /"num_hidden_layers" must be a positive integer, got 0/);
  const { vocab_size: _, ...noVocab } = gpt2Json;
  assert.throws(() => familyOf(noVocab), /^Error: GPT-2 config.json has no "vocab_size"; it must be a positive integer\.$/);
  assert.throws(() => familyOf({ ...llamaJson, model_type: 'qwen2', rope_parameters: { rope_type: 'llama3', factor: 8 } }), /Qwen2 config.json has no "rope_parameters.low_freq_factor", which rotary scaling "llama3" needs/);
  // HF adds keys every release: ones this engine does not read are allowed; null is "unset".
  const open = familyOf({ ...llamaJson, torch_dtype: 'bfloat16', transformers_version: '5.0.0', some_new_key: { a: 1 }, rope_scaling: null, head_dim: null });
  assert.equal((open.config as LlamaConfig).headDim, 8);
  assert.equal((familyOf({ ...gpt2Json, n_inner: null }).config as { nInner: number }).nInner, 96);
});

test('configs survive toHfConfig -> fromHfConfig, in both rope formats of transformers', () => {
  const rope = { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 };
  const v4 = llamaFamily.fromHfConfig({ ...llamaJson, rope_theta: 500000, rope_scaling: rope });
  const v5 = llamaFamily.fromHfConfig({ ...llamaJson, rope_theta: undefined, rope_parameters: { ...rope, rope_theta: 500000 } });
  assert.deepEqual(v4, v5);
  assert.equal(v4.ropeTheta, 500000);
  assert.deepEqual(llamaFamily.fromHfConfig(llamaFamily.toHfConfig(v4)), v4);
  const qwen = llamaFamily.fromHfConfig({ ...llamaJson, model_type: 'qwen2' });
  assert.ok(qwen.qkvBias && !qwen.oBias);
  assert.deepEqual(llamaFamily.fromHfConfig(llamaFamily.toHfConfig(qwen)), qwen);
  const g = gpt2Family.fromHfConfig({ ...gpt2Json, n_inner: 40, tie_word_embeddings: false });
  assert.deepEqual(gpt2Family.fromHfConfig(gpt2Family.toHfConfig(g)), g);
  assert.ok(gpt2Family.paramShapes(g).has('lm_head.weight'));
});

test('llama3 rope scaling keeps high frequencies, divides low ones by the factor, and blends between', () => {
  const c = llamaDefaults({ vocabSize: 8, hiddenSize: 64, numLayers: 1, numHeads: 1, ropeTheta: 10000, ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 64 } });
  const plain = ropeInvFreq({ ...c, ropeScaling: { type: 'default' } }), scaled = ropeInvFreq(c);
  const wavelen = (f: number): number => (2 * Math.PI) / f;
  for (let i = 0; i < plain.length; i++) {
    if (wavelen(plain[i]) < 16) assert.equal(scaled[i], plain[i]);
    else if (wavelen(plain[i]) > 64) assert.ok(Math.abs(scaled[i] - plain[i] / 8) < 1e-12 + 1e-6 * plain[i]);
    else assert.ok(scaled[i] < plain[i] && scaled[i] > plain[i] / 8);
  }
});

test('gpt2Forward (the training path) is the family forward without cache or mask', () => {
  const c = gpt2Defaults({ vocabSize: 50, nPositions: 16, nEmbd: 24, nLayer: 1, nHead: 3 });
  const p = gpt2Params(c);
  const tokens = T.input('tokens', 'int64', ['B', 'T']);
  assert.deepEqual(gpt2Forward(c, p, tokens).shape, ['B', 'T', 50]);
  const kinds = T.topoSort([gpt2Forward(c, p, tokens)]).map((v) => v.op.kind);
  // No padding mask and no cache: only the [T, T] causal bias, no Concat of a cache.
  assert.ok(!kinds.includes('Concat'));
});

const gptSpec: ModelSpec = { family: gpt2Family, config: gpt2Defaults({ vocabSize: 50, nPositions: 32, nEmbd: 24, nLayer: 2, nHead: 3 }) };
// Grouped-query attention (4 heads over 2), a head size that is not hidden / heads, tied embeddings, biases, llama3 rope.
const llamaSpec: ModelSpec = {
  family: llamaFamily,
  config: llamaDefaults({
    vocabSize: 60, hiddenSize: 32, intermediateSize: 40, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 10, tieWordEmbeddings: true,
    qkvBias: true, oBias: true, ropeTheta: 100, ropeScaling: { type: 'llama3', factor: 4, lowFreqFactor: 1, highFreqFactor: 2, originalMaxPositions: 8 },
    initializerRange: 0.2,
  }),
};

for (const [name, spec] of [['GPT-2', gptSpec], ['Llama', llamaSpec]] as const) {
  test(`${name}: cached decoding step by step equals full recomputation; left padding leaves real tokens' logits unchanged`, async () => {
    const weights = spec.family.init(spec.config, new Rng(7));
    const d = await testDecoder(spec, weights);
    try {
      const V = d.vocab;
      const seq = [[5, 9, 1, 33, 7, 2, 11, 40], [3, 3, 8, 21, 0, 17, 6, 12]];
      const full = await d.run(seq);
      // Prefill 5 tokens, then 3 single-token steps.
      let r = await d.run(seq.map((s) => s.slice(0, 5)));
      let worst = 0;
      for (let b = 0; b < 2; b++) worst = Math.max(worst, maxAbsDiff(r.logits.subarray(b * 5 * V, (b + 1) * 5 * V), full.logits.subarray(b * 8 * V, (b * 8 + 5) * V)));
      for (let t = 5; t < 8; t++) {
        r = await d.run(seq.map((s) => [s[t]]), { past: r.present });
        for (let b = 0; b < 2; b++) worst = Math.max(worst, maxAbsDiff(r.logits.subarray(b * V, (b + 1) * V), full.logits.subarray((b * 8 + t) * V, (b * 8 + t + 1) * V)));
      }
      assert.ok(worst < 1e-5, `cached vs full: max diff ${worst}`);

      // Row 0 left-padded by 3, row 1 not padded: positions count real tokens only.
      const pad = 3;
      const tokens = [[0, 0, 0, ...seq[0]], [...seq[1], 4, 4, 4]];
      const mask = [[0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]];
      const positions = [[0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]];
      const padded = await d.run(tokens, { mask, positions });
      const L = tokens[0].length;
      const row0 = maxAbsDiff(padded.logits.subarray(pad * V, L * V), full.logits.subarray(0, 8 * V));
      const row1 = maxAbsDiff(padded.logits.subarray(L * V, (L + 8) * V), full.logits.subarray(8 * V, 16 * V));
      assert.ok(row0 < 1e-5 && row1 < 1e-5, `padded vs unpadded: ${row0}, ${row1}`);

      // Decoding after the padded prefill continues the unpadded sequence.
      const next = await d.run([[seq[0][7]], [seq[1][7]]], {
        past: (await d.run(tokens.map((t, b) => (b === 0 ? t.slice(0, L - 1) : seq[1].slice(0, 7).concat([4, 4, 4]))), { mask: mask.map((m) => m.slice(0, L - 1)), positions: positions.map((p) => p.slice(0, L - 1)) })).present,
        mask: [[...mask[0]], [1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1]],
        positions: [[7], [7]],
      });
      const stepDiff = maxAbsDiff(next.logits.subarray(0, V), full.logits.subarray(7 * V, 8 * V));
      // Row 1 had padding on the right of the cache (masked out), then its 8th token.
      const rightDiff = maxAbsDiff(next.logits.subarray(V, 2 * V), full.logits.subarray(15 * V, 16 * V));
      assert.ok(stepDiff < 1e-5 && rightDiff < 1e-5, `decoding after padding: ${stepDiff}, ${rightDiff}`);
    } finally {
      await d.release();
    }
  });
}

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { llamaDefaults, ropeInvFreq } from '../../models/llama.ts';
import { familyOf } from '../../models/index.ts';
import { ggufTensorName, hfConfigFromGguf, layoutChange, llama3ScalingFromFactors, permuteRopeRows, shortFloat32, toGgufLayout, toHfLayout } from './architecture.ts';
import type { GgufValue } from './values.ts';

test('the rotary row permutation is llama.cpp\'s: halves [a0 a1 | b0 b1] become pairs [a0 b0 a1 b1] per head', () => {
  // Two heads of 4 rows, one column: head 0 rows 0..3, head 1 rows 10..13.
  const hf = Float32Array.from([0, 1, 2, 3, 10, 11, 12, 13]);
  const g = permuteRopeRows(hf, 8, 2, true);
  assert.deepEqual([...g], [0, 2, 1, 3, 10, 12, 11, 13]);
  assert.deepEqual([...permuteRopeRows(g, 8, 2, false)], [...hf]);
  // Whole rows move: [rows 4, cols 3].
  const m = Float32Array.from({ length: 12 }, (_, i) => i);
  assert.deepEqual([...permuteRopeRows(m, 4, 1, true)], [0, 1, 2, 6, 7, 8, 3, 4, 5, 9, 10, 11]);
});

test('layouts: Llama q/k interleaved with their own head counts, GPT-2 Conv1D weights transposed, the rest untouched', () => {
  assert.deepEqual(layoutChange('llama', 'model.layers.3.self_attn.q_proj.weight', 9, 3), { kind: 'rope-interleave', heads: 9 });
  assert.deepEqual(layoutChange('llama', 'model.layers.3.self_attn.k_proj.weight', 9, 3), { kind: 'rope-interleave', heads: 3 });
  assert.deepEqual(layoutChange('llama', 'model.layers.3.self_attn.v_proj.weight', 9, 3), { kind: 'none' });
  assert.deepEqual(layoutChange('qwen2', 'model.layers.0.self_attn.q_proj.weight', 4, 2), { kind: 'none' });
  assert.deepEqual(layoutChange('gpt2', 'transformer.h.0.attn.c_attn.weight', 2, 2), { kind: 'transpose' });
  assert.deepEqual(layoutChange('gpt2', 'transformer.h.0.attn.c_attn.bias', 2, 2), { kind: 'none' });
  const w = Float32Array.from({ length: 6 }, (_, i) => i); // HF [2, 3]
  const g = toGgufLayout({ kind: 'transpose' }, w, [2, 3]);
  assert.deepEqual(g.shape, [3, 2]);
  assert.deepEqual([...g.data], [0, 3, 1, 4, 2, 5]);
  assert.deepEqual([...toHfLayout({ kind: 'transpose' }, g.data, [2, 3])], [...w]);
});

test('tensor names follow llama.cpp\'s table', () => {
  assert.equal(ggufTensorName('llama', 'model.embed_tokens.weight'), 'token_embd.weight');
  assert.equal(ggufTensorName('llama', 'model.layers.12.mlp.gate_proj.weight'), 'blk.12.ffn_gate.weight');
  assert.equal(ggufTensorName('qwen2', 'model.layers.0.self_attn.k_proj.bias'), 'blk.0.attn_k.bias');
  assert.equal(ggufTensorName('llama', 'model.layers.1.post_attention_layernorm.weight'), 'blk.1.ffn_norm.weight');
  assert.equal(ggufTensorName('gpt2', 'transformer.h.2.mlp.c_fc.bias'), 'blk.2.ffn_up.bias');
  assert.equal(ggufTensorName('gpt2', 'transformer.wpe.weight'), 'position_embd.weight');
  assert.equal(ggufTensorName('llama', 'model.layers.0.self_attn.rotary_emb.inv_freq'), undefined);
});

test('float32 metadata reads back as the decimal it was written from', () => {
  assert.equal(shortFloat32(Math.fround(1e-5)), 1e-5);
  assert.equal(shortFloat32(Math.fround(1e-6)), 1e-6);
  assert.equal(shortFloat32(Math.fround(100000)), 100000);
  assert.equal(shortFloat32(Math.fround(0.1)), 0.1);
});

test('config.json from metadata: sizes from the keys, vocabulary and tying from the tensor table, a clear sentence for what is missing', () => {
  const meta = new Map<string, GgufValue>([
    ['general.architecture', 'llama'], ['llama.embedding_length', 64], ['llama.block_count', 2], ['llama.feed_forward_length', 96],
    ['llama.attention.head_count', 4], ['llama.attention.head_count_kv', 2], ['llama.context_length', 128],
    ['llama.rope.freq_base', Math.fround(500000)], ['llama.attention.layer_norm_rms_epsilon', Math.fround(1e-5)], ['tokenizer.ggml.eos_token_id', 7],
  ]);
  const shapes = new Map([['token_embd.weight', [300, 64]], ['output.weight', [300, 64]], ['blk.0.attn_q.weight', [64, 64]]]);
  const c = hfConfigFromGguf(meta, shapes, 'x.gguf');
  assert.equal(c.vocab_size, 300);
  assert.equal(c.tie_word_embeddings, false);
  assert.equal(c.head_dim, 16);
  assert.equal(c.rope_theta, 500000);
  assert.equal(c.eos_token_id, 7);
  assert.equal(familyOf(c).family.name, 'llama');
  assert.throws(() => hfConfigFromGguf(new Map([...meta, ['general.architecture', 'mamba']]), shapes, 'x.gguf'), /x\.gguf holds a "mamba" model; AfD Studio reads GGUF files of the architectures llama, qwen2, gpt2/);
  const noHeads = new Map(meta);
  noHeads.delete('llama.attention.head_count');
  assert.throws(() => hfConfigFromGguf(noHeads, shapes, 'x.gguf'), /x\.gguf: metadata "llama\.attention\.head_count" must be a non-negative integer, but it is missing/);
});

test('Llama 3.1 rotary scaling is recovered from the rope_freqs factors llama.cpp stores, and anything else is refused', () => {
  const c = llamaDefaults({ vocabSize: 10, hiddenSize: 128, numLayers: 1, numHeads: 2, ropeTheta: 500000, ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 } });
  const plain = ropeInvFreq({ ...c, ropeScaling: { type: 'default' } }), scaled = ropeInvFreq(c);
  const factors = Float32Array.from(plain, (f, i) => f / scaled[i]);
  assert.deepEqual(llama3ScalingFromFactors(factors, 64, 500000), { rope_type: 'llama3', factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 });
  const odd = Float32Array.from(factors, (f, i) => (i === 3 ? f * 1.5 : f));
  assert.equal(llama3ScalingFromFactors(odd, 64, 500000), undefined);
});

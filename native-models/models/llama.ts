// Llama-style decoders (Touvron et al. 2023): RMSNorm, rotary position embeddings,
// SwiGLU MLP, grouped-query attention. One file covers Llama 1-3 (with Llama 3's RoPE
// scaling), SmolLM (a Llama) and Qwen2 (q/k/v biases). Parameter names and layouts are
// Hugging Face's: nn.Linear weights are [out, in], applied as x @ W^T by one Gemm.

import Type from 'typebox';
import * as T from '../ir/index.ts';
import type { Rng } from '../train/rng.ts';
import type { ForwardInputs, ForwardOutputs, KvCache, LinearInfo, ModelFamily } from './family.ts';
import { count, flag, hfConfig, name, needed, readHfConfig, real, refuse, section } from './hf-config.ts';
import { attention, attentionBias, defaultPositions, initWeights, loraLinear, paramLeaves, pastLength, toHeads, weight, type Params } from './layers.ts';

/** Rotary embedding: base theta and an optional rescaling of the frequencies. */
export type RopeScaling =
  | { type: 'default' }
  /** Positions divided by `factor` (linear interpolation). */
  | { type: 'linear'; factor: number }
  /** Llama 3.1: long wavelengths slowed by `factor`, short ones kept, a smooth ramp between. */
  | { type: 'llama3'; factor: number; lowFreqFactor: number; highFreqFactor: number; originalMaxPositions: number };

export interface LlamaConfig {
  /** Which Hugging Face model this config came from (they differ in biases and config keys). */
  modelType: 'llama' | 'qwen2';
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  /** Per-head size; need not be hiddenSize / numHeads. */
  headDim: number;
  maxPositions: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling;
  tieWordEmbeddings: boolean;
  /** Biases on q, k, v (Qwen2 always; Llama with attention_bias). */
  qkvBias: boolean;
  /** Bias on the output projection (Llama's attention_bias). */
  oBias: boolean;
  /** Biases on gate, up and down (Llama's mlp_bias). */
  mlpBias: boolean;
  /** Std of the normal initialization (Hugging Face initializer_range). */
  initializerRange: number;
}

export const llamaDefaults = (c: Partial<LlamaConfig> & Pick<LlamaConfig, 'vocabSize' | 'hiddenSize' | 'numLayers' | 'numHeads'>): LlamaConfig => ({
  modelType: 'llama',
  intermediateSize: Math.ceil((8 * c.hiddenSize) / 3 / 64) * 64,
  numKvHeads: c.numHeads,
  headDim: c.hiddenSize / c.numHeads,
  maxPositions: 2048,
  rmsNormEps: 1e-6,
  ropeTheta: 10000,
  ropeScaling: { type: 'default' },
  tieWordEmbeddings: false,
  qkvBias: false,
  oBias: false,
  mlpBias: false,
  initializerRange: 0.02,
  ...c,
});

const FAMILY = 'Llama';

// ---------------------------------------------------------------- parameters

export function llamaParamShapes(c: LlamaConfig): Map<string, number[]> {
  const D = c.hiddenSize, F = c.intermediateSize, Q = c.numHeads * c.headDim, KV = c.numKvHeads * c.headDim;
  const m = new Map<string, number[]>([['model.embed_tokens.weight', [c.vocabSize, D]]]);
  for (let i = 0; i < c.numLayers; i++) {
    const p = `model.layers.${i}`;
    m.set(`${p}.input_layernorm.weight`, [D]);
    m.set(`${p}.self_attn.q_proj.weight`, [Q, D]);
    if (c.qkvBias) m.set(`${p}.self_attn.q_proj.bias`, [Q]);
    m.set(`${p}.self_attn.k_proj.weight`, [KV, D]);
    if (c.qkvBias) m.set(`${p}.self_attn.k_proj.bias`, [KV]);
    m.set(`${p}.self_attn.v_proj.weight`, [KV, D]);
    if (c.qkvBias) m.set(`${p}.self_attn.v_proj.bias`, [KV]);
    m.set(`${p}.self_attn.o_proj.weight`, [D, Q]);
    if (c.oBias) m.set(`${p}.self_attn.o_proj.bias`, [D]);
    m.set(`${p}.post_attention_layernorm.weight`, [D]);
    for (const [name, shape] of [['gate_proj', [F, D]], ['up_proj', [F, D]], ['down_proj', [D, F]]] as const) {
      m.set(`${p}.mlp.${name}.weight`, [...shape]);
      if (c.mlpBias) m.set(`${p}.mlp.${name}.bias`, [shape[0]]);
    }
  }
  m.set('model.norm.weight', [D]);
  if (!c.tieWordEmbeddings) m.set('lm_head.weight', [c.vocabSize, D]);
  return m;
}

export const llamaParams = (c: LlamaConfig): Map<string, T.Value> => paramLeaves(llamaParamShapes(c));

/** Hugging Face's initialization: normal(0, initializer_range) weights, zero biases, unit norm gains. */
export function llamaInit(c: LlamaConfig, rng: Rng): Map<string, Float32Array> {
  return initWeights(llamaParamShapes(c), rng, (name) => {
    if (name.endsWith('norm.weight')) return { fill: 1 };
    return name.endsWith('.weight') ? { std: c.initializerRange } : { fill: 0 };
  });
}

// ---------------------------------------------------------------- rotary

/**
 * Inverse frequencies theta^(-2i/hd) for i < hd/2, rescaled as the config says (the
 * formulas of transformers' modeling_rope_utils), computed in float64 then rounded.
 */
export function ropeInvFreq(c: LlamaConfig): Float32Array {
  const hd = c.headDim;
  const inv = Array.from({ length: hd / 2 }, (_, i) => 1 / c.ropeTheta ** ((2 * i) / hd));
  const s = c.ropeScaling;
  if (s.type === 'linear') return Float32Array.from(inv, (f) => f / s.factor);
  if (s.type === 'llama3') {
    const lowWavelen = s.originalMaxPositions / s.lowFreqFactor, highWavelen = s.originalMaxPositions / s.highFreqFactor;
    return Float32Array.from(inv, (f) => {
      const wavelen = (2 * Math.PI) / f;
      if (wavelen < highWavelen) return f; // high frequencies: unchanged
      if (wavelen > lowWavelen) return f / s.factor; // low frequencies: slowed by factor
      const smooth = (s.originalMaxPositions / wavelen - s.lowFreqFactor) / (s.highFreqFactor - s.lowFreqFactor);
      return (1 - smooth) * (f / s.factor) + smooth * f;
    });
  }
  return Float32Array.from(inv);
}

/**
 * cos and sin of position * frequency, computed in the graph from the position ids (any
 * offset works: a cache, left padding). [T, hd] for positions [T], [B, 1, T, hd] for [B, T].
 */
function rotaryTables(c: LlamaConfig, positions: T.Value): { cos: T.Value; sin: T.Value } {
  const inv = T.constant(ropeInvFreq(c), [c.headDim / 2]);
  const freqs = T.mul(T.unsqueeze(T.cast(positions, 'float32'), -1), inv); // [..., T, hd/2]
  let emb = T.concat([freqs, freqs], -1); // [..., T, hd]
  if (emb.rank === 3) emb = T.unsqueeze(emb, 1); // [B, 1, T, hd]
  return { cos: T.cos(emb), sin: T.sin(emb) };
}

// ---------------------------------------------------------------- blocks

interface Ctx { bias: T.Value; cos: T.Value; sin: T.Value; loraScale?: number }

/** An nn.Linear projection ([out, in] weight, optional bias), LoRA-aware. */
const proj = (p: Params, prefix: string, x: T.Value, bias: boolean, ctx: Ctx): T.Value =>
  loraLinear(p, prefix, x, { layout: 'out_in', bias, loraScale: ctx.loraScale, family: FAMILY });

const norm = (c: LlamaConfig, p: Params, name: string, x: T.Value): T.Value => T.rmsNorm(x, weight(p, name, FAMILY), c.rmsNormEps);

function selfAttention(c: LlamaConfig, p: Params, prefix: string, x: T.Value, ctx: Ctx, past?: KvCache): { y: T.Value; present: KvCache; added: KvCache } {
  const hd = c.headDim;
  const q = T.rotary(toHeads(proj(p, `${prefix}.q_proj`, x, c.qkvBias, ctx), c.numHeads, hd), ctx.cos, ctx.sin); // [B, H, T, hd]
  const k = T.rotary(toHeads(proj(p, `${prefix}.k_proj`, x, c.qkvBias, ctx), c.numKvHeads, hd), ctx.cos, ctx.sin); // [B, Hkv, T, hd]
  const v = toHeads(proj(p, `${prefix}.v_proj`, x, c.qkvBias, ctx), c.numKvHeads, hd); // [B, Hkv, T, hd]
  const { y, present, added } = attention({ q, k, v, past, bias: ctx.bias }); // [B, T, H*hd]
  return { y: proj(p, `${prefix}.o_proj`, y, c.oBias, ctx), present, added };
}

/** SwiGLU (Shazeer 2020): down(silu(gate(x)) * up(x)). */
function mlp(c: LlamaConfig, p: Params, prefix: string, x: T.Value, ctx: Ctx): T.Value {
  const h = T.mul(T.silu(proj(p, `${prefix}.gate_proj`, x, c.mlpBias, ctx)), proj(p, `${prefix}.up_proj`, x, c.mlpBias, ctx)); // [B, T, F]
  return proj(p, `${prefix}.down_proj`, h, c.mlpBias, ctx);
}

function block(c: LlamaConfig, p: Params, prefix: string, x: T.Value, ctx: Ctx, past?: KvCache): { x: T.Value; present: KvCache; added: KvCache } {
  const a = selfAttention(c, p, `${prefix}.self_attn`, norm(c, p, `${prefix}.input_layernorm.weight`, x), ctx, past);
  x = T.add(x, a.y);
  x = T.add(x, mlp(c, p, `${prefix}.mlp`, norm(c, p, `${prefix}.post_attention_layernorm.weight`, x), ctx));
  return { x, present: a.present, added: a.added };
}

export function llamaForward(c: LlamaConfig, p: Params, inputs: ForwardInputs): ForwardOutputs {
  const { tokens } = inputs;
  const P = pastLength(inputs.past, c.numLayers, FAMILY);
  const { cos, sin } = rotaryTables(c, inputs.positions ?? defaultPositions(tokens, P));
  const ctx: Ctx = { bias: attentionBias(tokens, P, inputs.attentionMask), cos, sin, loraScale: inputs.loraScale };
  let x = T.gather(weight(p, 'model.embed_tokens.weight', FAMILY), tokens); // [B, T, D]
  const present: KvCache[] = [], added: KvCache[] = [];
  for (let i = 0; i < c.numLayers; i++) {
    const b = block(c, p, `model.layers.${i}`, x, ctx, inputs.past?.[i]);
    x = b.x;
    present.push(b.present);
    added.push(b.added);
  }
  const hidden = norm(c, p, 'model.norm.weight', x); // [B, T, D]
  const head = weight(p, c.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight', FAMILY);
  const h = inputs.lastLogitsOnly ? T.slice(hidden, 1, -1) : hidden; // [B, T or 1, D]
  return { logits: T.linearOutIn(h, head), hidden, present, added }; // logits [B, T or 1, V]
}

// ---------------------------------------------------------------- config.json

/** Rotary parameters: transformers 5 writes `rope_parameters` (theta inside); 4.x wrote
 *  `rope_theta` beside `rope_scaling`. */
const ROPE = section({
  rope_theta: Type.Optional(real()),
  rope_type: Type.Optional(name()),
  type: Type.Optional(name()), // rope_type's older name
  partial_rotary_factor: Type.Optional(real()),
  factor: Type.Optional(real()),
  low_freq_factor: Type.Optional(real()),
  high_freq_factor: Type.Optional(real()),
  original_max_position_embeddings: Type.Optional(count()),
});

/** The keys of a Llama or Qwen2 config.json this engine reads (others are allowed: hf-config.ts). */
const LLAMA_CONFIG = hfConfig({
  vocab_size: count(),
  hidden_size: count(),
  intermediate_size: count(),
  num_hidden_layers: count(),
  num_attention_heads: count(),
  num_key_value_heads: Type.Optional(count()), // num_attention_heads when absent
  head_dim: Type.Optional(count()), // hidden_size / num_attention_heads when absent
  max_position_embeddings: Type.Optional(count()), // 2048, Qwen2 32768
  hidden_act: name({ default: 'silu' }),
  rms_norm_eps: real({ default: 1e-6 }),
  rope_theta: Type.Optional(real()),
  partial_rotary_factor: Type.Optional(real()),
  rope_parameters: Type.Optional(ROPE),
  rope_scaling: Type.Optional(ROPE),
  tie_word_embeddings: flag({ default: false }),
  attention_bias: flag({ default: false }),
  mlp_bias: flag({ default: false }),
  use_sliding_window: Type.Optional(flag()),
  initializer_range: real({ default: 0.02 }),
});

type LlamaJson = Type.Static<typeof LLAMA_CONFIG>;

function readRope(j: LlamaJson, what: string, maxPositions: number): { theta: number; scaling: RopeScaling } {
  const key = j.rope_parameters !== undefined ? 'rope_parameters' : 'rope_scaling';
  const p = j.rope_parameters ?? j.rope_scaling ?? {};
  const theta = p.rope_theta ?? j.rope_theta ?? 10000;
  const type = p.rope_type ?? p.type ?? 'default';
  const partial = p.partial_rotary_factor ?? j.partial_rotary_factor ?? 1;
  if (partial !== 1) throw new Error(`config.json sets "partial_rotary_factor": ${partial}, which AfD Studio does not support (rotary embedding on the whole head only).`);
  const need = <T>(value: T | undefined, field: string): T => needed(value, `${key}.${field}`, what, `rotary scaling "${type}"`);
  switch (type) {
    case 'default': return { theta, scaling: { type: 'default' } };
    case 'linear': return { theta, scaling: { type: 'linear', factor: need(p.factor, 'factor') } };
    case 'llama3': return {
      theta,
      scaling: {
        type: 'llama3',
        factor: need(p.factor, 'factor'),
        lowFreqFactor: need(p.low_freq_factor, 'low_freq_factor'),
        highFreqFactor: need(p.high_freq_factor, 'high_freq_factor'),
        originalMaxPositions: p.original_max_position_embeddings ?? maxPositions,
      },
    };
    default: throw new Error(`config.json asks for rotary scaling "${type}", which AfD Studio does not support (supported: default, linear, llama3).`);
  }
}

function fromHfConfig(json: Record<string, unknown>): LlamaConfig {
  const modelType = json.model_type === 'qwen2' ? 'qwen2' : 'llama';
  const what = modelType === 'qwen2' ? 'Qwen2' : 'Llama';
  const j = readHfConfig(LLAMA_CONFIG, json, what);
  if (j.hidden_act !== 'silu') throw new Error(`config.json sets "hidden_act": "${j.hidden_act}", which AfD Studio does not support for Llama-style models (supported: silu).`);
  refuse(what, 'use_sliding_window', j.use_sliding_window, j.use_sliding_window === true, 'sliding-window attention');
  const hiddenSize = j.hidden_size, numHeads = j.num_attention_heads;
  const headDim = j.head_dim ?? Math.floor(hiddenSize / numHeads);
  if (headDim % 2 !== 0) throw new Error(`config.json: head_dim ${headDim} is odd; rotary embeddings need an even head size.`);
  const numKvHeads = j.num_key_value_heads ?? numHeads;
  if (numHeads % numKvHeads !== 0) throw new Error(`config.json: num_attention_heads ${numHeads} is not a multiple of num_key_value_heads ${numKvHeads}.`);
  const maxPositions = j.max_position_embeddings ?? (modelType === 'qwen2' ? 32768 : 2048);
  const rope = readRope(j, what, maxPositions);
  return {
    modelType,
    vocabSize: j.vocab_size,
    hiddenSize,
    intermediateSize: j.intermediate_size,
    numLayers: j.num_hidden_layers,
    numHeads,
    numKvHeads,
    headDim,
    maxPositions,
    rmsNormEps: j.rms_norm_eps,
    ropeTheta: rope.theta,
    ropeScaling: rope.scaling,
    tieWordEmbeddings: j.tie_word_embeddings,
    qkvBias: modelType === 'qwen2' ? true : j.attention_bias,
    oBias: modelType === 'qwen2' ? false : j.attention_bias,
    mlpBias: modelType === 'qwen2' ? false : j.mlp_bias,
    initializerRange: j.initializer_range,
  };
}

function toHfConfig(c: LlamaConfig): Record<string, unknown> {
  if (c.modelType === 'qwen2' && (!c.qkvBias || c.oBias || c.mlpBias)) throw new Error('a Qwen2 config has q/k/v biases and no other biases');
  if (c.modelType === 'llama' && c.qkvBias !== c.oBias) throw new Error('a Llama config has biases on all of q, k, v, o (attention_bias) or on none');
  const s = c.ropeScaling;
  // The 4.x layout (rope_theta + rope_scaling), which transformers 5 also reads.
  const ropeScaling = s.type === 'default' ? null
    : s.type === 'linear' ? { rope_type: 'linear', factor: s.factor }
      : { rope_type: 'llama3', factor: s.factor, low_freq_factor: s.lowFreqFactor, high_freq_factor: s.highFreqFactor, original_max_position_embeddings: s.originalMaxPositions };
  const common = {
    vocab_size: c.vocabSize,
    hidden_size: c.hiddenSize,
    intermediate_size: c.intermediateSize,
    num_hidden_layers: c.numLayers,
    num_attention_heads: c.numHeads,
    num_key_value_heads: c.numKvHeads,
    head_dim: c.headDim,
    hidden_act: 'silu',
    max_position_embeddings: c.maxPositions,
    rms_norm_eps: c.rmsNormEps,
    rope_theta: c.ropeTheta,
    rope_scaling: ropeScaling,
    tie_word_embeddings: c.tieWordEmbeddings,
    initializer_range: c.initializerRange,
  };
  if (c.modelType === 'qwen2') return { architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', ...common, use_sliding_window: false };
  return { architectures: ['LlamaForCausalLM'], model_type: 'llama', ...common, attention_bias: c.qkvBias, mlp_bias: c.mlpBias };
}

function llamaLinears(c: LlamaConfig): LinearInfo[] {
  const D = c.hiddenSize, F = c.intermediateSize, Q = c.numHeads * c.headDim, KV = c.numKvHeads * c.headDim;
  const out: LinearInfo[] = [];
  for (let i = 0; i < c.numLayers; i++) {
    const a = `model.layers.${i}.self_attn`, m = `model.layers.${i}.mlp`;
    out.push(
      { prefix: `${a}.q_proj`, in: D, out: Q, layout: 'out_in', kind: 'attention' },
      { prefix: `${a}.k_proj`, in: D, out: KV, layout: 'out_in', kind: 'attention' },
      { prefix: `${a}.v_proj`, in: D, out: KV, layout: 'out_in', kind: 'attention' },
      { prefix: `${a}.o_proj`, in: Q, out: D, layout: 'out_in', kind: 'attention' },
      { prefix: `${m}.gate_proj`, in: D, out: F, layout: 'out_in', kind: 'mlp' },
      { prefix: `${m}.up_proj`, in: D, out: F, layout: 'out_in', kind: 'mlp' },
      { prefix: `${m}.down_proj`, in: F, out: D, layout: 'out_in', kind: 'mlp' },
    );
  }
  return out;
}

export const llamaFamily: ModelFamily<LlamaConfig> = {
  name: 'llama',
  fromHfConfig,
  toHfConfig,
  paramShapes: llamaParamShapes,
  init: llamaInit,
  forward: llamaForward,
  cacheShape: (c) => ({ layers: c.numLayers, kvHeads: c.numKvHeads, headDim: c.headDim }),
  vocabSize: (c) => c.vocabSize,
  linears: llamaLinears,
};

// GPT-2 (Radford et al. 2019) built from IR ops, parameter names as in Hugging Face's
// GPT2LMHeadModel so that checkpoints load key for key. GPT-2 stores its linear layers
// as Conv1D with weights [in, out], which is the x @ W layout used here: no transposes.

import Type from 'typebox';
import * as T from '../ir/index.ts';
import type { Rng } from '../train/rng.ts';
import type { ForwardInputs, ForwardOutputs, KvCache, LinearInfo, ModelFamily } from './family.ts';
import { count, flag, hfConfig, name, readHfConfig, real, refuse } from './hf-config.ts';
import { attentionBias, attention, defaultPositions, initWeights, loraLinear, paramLeaves, pastLength, toHeads, weight, type Params } from './layers.ts';

export type { Params } from './layers.ts';

export interface Gpt2Config {
  vocabSize: number;
  nPositions: number;
  nEmbd: number;
  nLayer: number;
  nHead: number;
  /** Width of the MLP's hidden layer (Hugging Face `n_inner`; 4 nEmbd by default). */
  nInner: number;
  layerNormEps: number;
  /** 'gelu_new' is GPT-2's tanh approximation; 'gelu' the exact one. */
  activation: 'gelu_new' | 'gelu';
  /** LM head shares the token embedding (true for every released GPT-2). */
  tieWordEmbeddings: boolean;
}

export const gpt2Defaults = (c: Partial<Gpt2Config> & Pick<Gpt2Config, 'vocabSize'>): Gpt2Config => {
  const nEmbd = c.nEmbd ?? 768;
  return { nPositions: 1024, nEmbd, nLayer: 12, nHead: 12, nInner: 4 * nEmbd, layerNormEps: 1e-5, activation: 'gelu_new', tieWordEmbeddings: true, ...c };
};

/** Parameter shapes by Hugging Face name (the LM head is listed only when untied). */
export function gpt2ParamShapes(c: Gpt2Config): Map<string, number[]> {
  const D = c.nEmbd, F = c.nInner;
  const m = new Map<string, number[]>([
    ['transformer.wte.weight', [c.vocabSize, D]],
    ['transformer.wpe.weight', [c.nPositions, D]],
  ]);
  for (let i = 0; i < c.nLayer; i++) {
    const p = `transformer.h.${i}`;
    m.set(`${p}.ln_1.weight`, [D]).set(`${p}.ln_1.bias`, [D]);
    m.set(`${p}.attn.c_attn.weight`, [D, 3 * D]).set(`${p}.attn.c_attn.bias`, [3 * D]);
    m.set(`${p}.attn.c_proj.weight`, [D, D]).set(`${p}.attn.c_proj.bias`, [D]);
    m.set(`${p}.ln_2.weight`, [D]).set(`${p}.ln_2.bias`, [D]);
    m.set(`${p}.mlp.c_fc.weight`, [D, F]).set(`${p}.mlp.c_fc.bias`, [F]);
    m.set(`${p}.mlp.c_proj.weight`, [F, D]).set(`${p}.mlp.c_proj.bias`, [D]);
  }
  m.set('transformer.ln_f.weight', [D]).set('transformer.ln_f.bias', [D]);
  if (!c.tieWordEmbeddings) m.set('lm_head.weight', [c.vocabSize, D]);
  return m;
}

export const gpt2Params = (c: Gpt2Config): Map<string, T.Value> => paramLeaves(gpt2ParamShapes(c));

/**
 * GPT-2's initialization: normal(0, 0.02) weights, residual output projections scaled by
 * 1/sqrt(2 n_layer) (GPT-2 paper, section 2.3), zero biases, unit LayerNorm gains.
 */
export function gpt2Init(c: Gpt2Config, rng: Rng): Map<string, Float32Array> {
  return initWeights(gpt2ParamShapes(c), rng, (name) => {
    if (/ln_\d\.weight$|ln_f\.weight$/.test(name)) return { fill: 1 };
    if (!name.endsWith('.weight')) return { fill: 0 };
    return { std: /c_proj\.weight$/.test(name) ? 0.02 / Math.sqrt(2 * c.nLayer) : 0.02 };
  });
}

const FAMILY = 'GPT-2';

/** What every block reads besides its input: the attention bias and the LoRA scale. */
interface Ctx { bias: T.Value; loraScale?: number }

/** A Conv1D projection ([in, out] weight and a bias), LoRA-aware. */
const proj = (p: Params, prefix: string, x: T.Value, ctx: Ctx): T.Value =>
  loraLinear(p, prefix, x, { layout: 'in_out', bias: true, loraScale: ctx.loraScale, family: FAMILY });

const norm = (c: Gpt2Config, p: Params, prefix: string, x: T.Value): T.Value =>
  T.layerNorm(x, weight(p, `${prefix}.weight`, FAMILY), weight(p, `${prefix}.bias`, FAMILY), c.layerNormEps);

/** Causal self-attention of one block; x: [B, T, D]. */
function selfAttention(c: Gpt2Config, p: Params, prefix: string, x: T.Value, ctx: Ctx, past?: KvCache): { y: T.Value; present: KvCache; added: KvCache } {
  const D = c.nEmbd, H = c.nHead, hd = D / H;
  const qkv = proj(p, `${prefix}.c_attn`, x, ctx); // [B, T, 3D]
  const [q, k, v] = T.split(qkv, -1, [D, D, D]).map((t) => toHeads(t, H, hd)); // [B, H, T, hd]
  const { y, present, added } = attention({ q, k, v, past, bias: ctx.bias }); // [B, T, D]
  return { y: proj(p, `${prefix}.c_proj`, y, ctx), present, added };
}

function mlp(c: Gpt2Config, p: Params, prefix: string, x: T.Value, ctx: Ctx): T.Value {
  const h = T.gelu(proj(p, `${prefix}.c_fc`, x, ctx), c.activation === 'gelu_new' ? 'tanh' : 'none'); // [B, T, F]
  return proj(p, `${prefix}.c_proj`, h, ctx);
}

function block(c: Gpt2Config, p: Params, prefix: string, x: T.Value, ctx: Ctx, past?: KvCache): { x: T.Value; present: KvCache; added: KvCache } {
  const a = selfAttention(c, p, `${prefix}.attn`, norm(c, p, `${prefix}.ln_1`, x), ctx, past);
  x = T.add(x, a.y);
  x = T.add(x, mlp(c, p, `${prefix}.mlp`, norm(c, p, `${prefix}.ln_2`, x), ctx));
  return { x, present: a.present, added: a.added };
}

/** Logits, final hidden states and the extended cache; see ModelFamily.forward. */
export function gpt2ForwardFull(c: Gpt2Config, p: Params, inputs: ForwardInputs): ForwardOutputs {
  const { tokens } = inputs;
  const P = pastLength(inputs.past, c.nLayer, FAMILY);
  const positions = inputs.positions ?? defaultPositions(tokens, P); // [B, T] or [T]
  const ctx: Ctx = { bias: attentionBias(tokens, P, inputs.attentionMask), loraScale: inputs.loraScale };
  let x = T.add(T.gather(weight(p, 'transformer.wte.weight', FAMILY), tokens), T.gather(weight(p, 'transformer.wpe.weight', FAMILY), positions)); // [B, T, D]
  const present: KvCache[] = [], added: KvCache[] = [];
  for (let i = 0; i < c.nLayer; i++) {
    const b = block(c, p, `transformer.h.${i}`, x, ctx, inputs.past?.[i]);
    x = b.x;
    present.push(b.present);
    added.push(b.added);
  }
  const hidden = norm(c, p, 'transformer.ln_f', x); // [B, T, D]
  const head = c.tieWordEmbeddings ? weight(p, 'transformer.wte.weight', FAMILY) : weight(p, 'lm_head.weight', FAMILY);
  const h = inputs.lastLogitsOnly ? T.slice(hidden, 1, -1) : hidden; // [B, T or 1, D]
  const logits = T.matmul(h, T.transpose(head, [1, 0])); // [B, T or 1, V]
  return { logits, hidden, present, added };
}

/** Logits [B, T, V] for int64 token ids [B, T] (no cache, no mask). */
export function gpt2Forward(c: Gpt2Config, p: Params, tokens: T.Value): T.Value {
  return gpt2ForwardFull(c, p, { tokens }).logits;
}

/**
 * The language-modelling loss: mean next-token cross-entropy on int64 `tokens` and
 * `targets` [B, T] (the batches of train/lm-data.ts), over `params` (default: fresh leaves).
 */
export function gpt2NextTokenLoss(c: Gpt2Config, params: Params = gpt2Params(c)): { loss: T.Value; params: Params } {
  const tokens = T.input('tokens', 'int64', ['B', 'T']);
  const targets = T.input('targets', 'int64', ['B', 'T']);
  return { loss: T.crossEntropy(gpt2Forward(c, params, tokens), targets), params };
}

/** The keys of a GPT-2 config.json this engine reads (others are allowed: hf-config.ts). */
const GPT2_CONFIG = hfConfig({
  vocab_size: count(),
  n_positions: count({ default: 1024 }),
  n_embd: count(),
  n_layer: count(),
  n_head: count(),
  n_inner: Type.Optional(count()), // 4 n_embd when absent
  layer_norm_epsilon: real({ default: 1e-5 }),
  activation_function: name({ default: 'gelu_new' }),
  tie_word_embeddings: flag({ default: true }),
  scale_attn_weights: Type.Optional(flag()),
  scale_attn_by_inverse_layer_idx: Type.Optional(flag()),
  add_cross_attention: Type.Optional(flag()),
});

function fromHfConfig(json: Record<string, unknown>): Gpt2Config {
  const what = 'GPT-2';
  const j = readHfConfig(GPT2_CONFIG, json, what);
  refuse(what, 'scale_attn_weights', j.scale_attn_weights, j.scale_attn_weights === false, 'unscaled attention scores');
  refuse(what, 'scale_attn_by_inverse_layer_idx', j.scale_attn_by_inverse_layer_idx, j.scale_attn_by_inverse_layer_idx === true, 'attention scaled by the inverse layer index');
  refuse(what, 'add_cross_attention', j.add_cross_attention, j.add_cross_attention === true, 'cross-attention is for encoder-decoder models');
  const act = j.activation_function;
  // gelu_pytorch_tanh is the same tanh approximation as gelu_new.
  const activation = act === 'gelu_new' || act === 'gelu_pytorch_tanh' ? 'gelu_new' : act === 'gelu' ? 'gelu' : undefined;
  if (!activation) throw new Error(`GPT-2 config.json sets "activation_function": "${act}", which AfD Studio does not support (supported: gelu_new, gelu_pytorch_tanh, gelu).`);
  if (j.n_embd % j.n_head !== 0) throw new Error(`GPT-2 config.json: n_embd ${j.n_embd} is not a multiple of n_head ${j.n_head}.`);
  return {
    vocabSize: j.vocab_size,
    nPositions: j.n_positions,
    nEmbd: j.n_embd,
    nLayer: j.n_layer,
    nHead: j.n_head,
    nInner: j.n_inner ?? 4 * j.n_embd,
    layerNormEps: j.layer_norm_epsilon,
    activation,
    tieWordEmbeddings: j.tie_word_embeddings,
  };
}

function toHfConfig(c: Gpt2Config): Record<string, unknown> {
  return {
    architectures: ['GPT2LMHeadModel'],
    model_type: 'gpt2',
    vocab_size: c.vocabSize,
    n_positions: c.nPositions,
    n_ctx: c.nPositions,
    n_embd: c.nEmbd,
    n_layer: c.nLayer,
    n_head: c.nHead,
    n_inner: c.nInner === 4 * c.nEmbd ? null : c.nInner,
    layer_norm_epsilon: c.layerNormEps,
    activation_function: c.activation,
    tie_word_embeddings: c.tieWordEmbeddings,
  };
}

function gpt2Linears(c: Gpt2Config): LinearInfo[] {
  const D = c.nEmbd, F = c.nInner;
  const out: LinearInfo[] = [];
  for (let i = 0; i < c.nLayer; i++) {
    const h = `transformer.h.${i}`;
    out.push(
      { prefix: `${h}.attn.c_attn`, in: D, out: 3 * D, layout: 'in_out', kind: 'attention' },
      { prefix: `${h}.attn.c_proj`, in: D, out: D, layout: 'in_out', kind: 'attention' },
      { prefix: `${h}.mlp.c_fc`, in: D, out: F, layout: 'in_out', kind: 'mlp' },
      { prefix: `${h}.mlp.c_proj`, in: F, out: D, layout: 'in_out', kind: 'mlp' },
    );
  }
  return out;
}

export const gpt2Family: ModelFamily<Gpt2Config> = {
  name: 'gpt2',
  fromHfConfig,
  toHfConfig,
  paramShapes: gpt2ParamShapes,
  init: gpt2Init,
  forward: gpt2ForwardFull,
  cacheShape: (c) => ({ layers: c.nLayer, kvHeads: c.nHead, headDim: c.nEmbd / c.nHead }),
  vocabSize: (c) => c.vocabSize,
  linears: gpt2Linears,
};

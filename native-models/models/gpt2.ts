// GPT-2 (Radford et al. 2019) built from IR ops, parameter names as in Hugging Face's
// GPT2LMHeadModel so that checkpoints load key for key. GPT-2 stores its linear layers
// as Conv1D with weights [in, out], which is the x @ W layout used here: no transposes.

import * as T from '../ir/index.ts';
import type { Rng } from '../train/rng.ts';

export interface Gpt2Config {
  vocabSize: number;
  nPositions: number;
  nEmbd: number;
  nLayer: number;
  nHead: number;
  layerNormEps: number;
  /** 'gelu_new' is GPT-2's tanh approximation; 'gelu' the exact one. */
  activation: 'gelu_new' | 'gelu';
}

export const gpt2Defaults = (c: Partial<Gpt2Config> & Pick<Gpt2Config, 'vocabSize'>): Gpt2Config => ({
  nPositions: 1024, nEmbd: 768, nLayer: 12, nHead: 12, layerNormEps: 1e-5, activation: 'gelu_new', ...c,
});

/** Parameter shapes by Hugging Face name (the LM head is tied to wte). */
export function gpt2ParamShapes(c: Gpt2Config): Map<string, number[]> {
  const D = c.nEmbd;
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
    m.set(`${p}.mlp.c_fc.weight`, [D, 4 * D]).set(`${p}.mlp.c_fc.bias`, [4 * D]);
    m.set(`${p}.mlp.c_proj.weight`, [4 * D, D]).set(`${p}.mlp.c_proj.bias`, [D]);
  }
  m.set('transformer.ln_f.weight', [D]).set('transformer.ln_f.bias', [D]);
  return m;
}

export type Params = Map<string, T.Value>;

export function gpt2Params(c: Gpt2Config): Params {
  return new Map([...gpt2ParamShapes(c)].map(([name, shape]) => [name, T.param(name, shape)]));
}

/**
 * GPT-2's initialization: normal(0, 0.02) weights, residual output projections scaled by
 * 1/sqrt(2 n_layer) (GPT-2 paper, section 2.3), zero biases, unit LayerNorm gains.
 */
export function gpt2Init(c: Gpt2Config, rng: Rng): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const [name, shape] of gpt2ParamShapes(c)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const a = new Float32Array(n);
    if (/ln_\d\.weight$|ln_f\.weight$/.test(name)) a.fill(1);
    else if (name.endsWith('.weight')) {
      const std = /c_proj\.weight$/.test(name) ? 0.02 / Math.sqrt(2 * c.nLayer) : 0.02;
      for (let i = 0; i < n; i++) a[i] = rng.normal() * std;
    }
    out.set(name, a);
  }
  return out;
}

const at = (p: Params, name: string): T.Value => {
  const v = p.get(name);
  if (!v) throw new Error(`GPT-2: missing parameter ${name}`);
  return v;
};

/** Causal self-attention of one block; x: [B, T, D]. */
function attention(c: Gpt2Config, p: Params, prefix: string, x: T.Value): T.Value {
  const D = c.nEmbd, H = c.nHead, hd = D / H;
  const [B, Tn] = x.shape;
  const qkv = T.linear(x, at(p, `${prefix}.c_attn.weight`), at(p, `${prefix}.c_attn.bias`)); // [B, T, 3D]
  const heads = (t: T.Value) => T.transpose(T.reshape(t, [B, Tn, H, hd]), [0, 2, 1, 3]); // [B, H, T, hd]
  const [q, k, v] = T.split(qkv, -1, [D, D, D]).map(heads);
  // Scaling q rather than the scores: the same product, on a T/hd times smaller tensor.
  const scores = T.matmul(T.mul(q, 1 / Math.sqrt(hd)), T.transposeLast2(k)); // [B, H, T, T]
  const probs = T.softmax(T.maskScores(scores, T.causalMask(Tn)), -1);
  const y = T.reshape(T.transpose(T.matmul(probs, v), [0, 2, 1, 3]), [B, Tn, D]); // [B, T, D]
  return T.linear(y, at(p, `${prefix}.c_proj.weight`), at(p, `${prefix}.c_proj.bias`));
}

function mlp(c: Gpt2Config, p: Params, prefix: string, x: T.Value): T.Value {
  const h = T.gelu(T.linear(x, at(p, `${prefix}.c_fc.weight`), at(p, `${prefix}.c_fc.bias`)), c.activation === 'gelu_new' ? 'tanh' : 'none');
  return T.linear(h, at(p, `${prefix}.c_proj.weight`), at(p, `${prefix}.c_proj.bias`));
}

/** Logits [B, T, V] for int64 token ids [B, T]. */
export function gpt2Forward(c: Gpt2Config, p: Params, tokens: T.Value): T.Value {
  const Tn = tokens.shape[1];
  let x = T.add(T.gather(at(p, 'transformer.wte.weight'), tokens), T.gather(at(p, 'transformer.wpe.weight'), T.range(Tn))); // [B, T, D]
  for (let i = 0; i < c.nLayer; i++) {
    const h = `transformer.h.${i}`;
    x = T.add(x, attention(c, p, `${h}.attn`, T.layerNorm(x, at(p, `${h}.ln_1.weight`), at(p, `${h}.ln_1.bias`), c.layerNormEps)));
    x = T.add(x, mlp(c, p, `${h}.mlp`, T.layerNorm(x, at(p, `${h}.ln_2.weight`), at(p, `${h}.ln_2.bias`), c.layerNormEps)));
  }
  x = T.layerNorm(x, at(p, 'transformer.ln_f.weight'), at(p, 'transformer.ln_f.bias'), c.layerNormEps);
  return T.matmul(x, T.transpose(at(p, 'transformer.wte.weight'), [1, 0])); // tied LM head: [B, T, V]
}

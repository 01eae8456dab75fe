// Pieces shared by the model families: parameter lookup, the LoRA-aware linear layer,
// the attention mask and THE attention function (scaled dot product, causal + padding
// mask, grouped-query heads, KV cache). Shapes: B batch, T new tokens, P cached positions,
// S = P + T keys, H query heads, Hkv key/value heads, hd head size.

import * as T from '../ir/index.ts';
import type { KvCache, LinearInfo } from './family.ts';
import type { Rng } from '../train/rng.ts';

/** Parameter values by Hugging Face name (LoRA adapters included when present). */
export type Params = ReadonlyMap<string, T.Value>;

/** One parameter leaf per named shape. */
export function paramLeaves(shapes: ReadonlyMap<string, number[]>): Map<string, T.Value> {
  return new Map([...shapes].map(([name, shape]) => [name, T.param(name, shape)]));
}

/** Initial weights: for each tensor, `rule` says fill it with a constant or draw normal(0, std). */
export function initWeights(shapes: ReadonlyMap<string, number[]>, rng: Rng, rule: (name: string) => { fill: number } | { std: number }): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const [name, shape] of shapes) {
    const a = new Float32Array(shape.reduce((x, y) => x * y, 1));
    const r = rule(name);
    if ('fill' in r) a.fill(r.fill);
    else for (let i = 0; i < a.length; i++) a[i] = rng.normal() * r.std;
    out.set(name, a);
  }
  return out;
}

/** Looks a parameter up, naming the family and the tensor when it is missing. */
export function weight(p: Params, name: string, family: string): T.Value {
  const v = p.get(name);
  if (!v) throw new Error(`${family}: the parameters have no tensor ${name}`);
  return v;
}

/**
 * How a projection stores its weight: 'in_out' is x @ W with W [in, out] (GPT-2's
 * Conv1D), 'out_in' is x @ W^T with W [out, in] (PyTorch nn.Linear: Llama, Qwen2).
 */
export type WeightLayout = LinearInfo['layout'];

export interface LinearOptions {
  layout: WeightLayout;
  /** Whether `${prefix}.bias` exists. */
  bias: boolean;
  /** alpha / rank of LoRA adapters, needed when `${prefix}.lora_A` / `.lora_B` are in the params. */
  loraScale?: number;
  family: string;
}

/** The names of a projection's LoRA adapters: A [in, r] and B [r, out]. */
export const loraNames = (prefix: string): { a: string; b: string } => ({ a: `${prefix}.lora_A`, b: `${prefix}.lora_B` });

/**
 * The projection `${prefix}` applied to x [..., in]: x W (+ b), plus scale (x A) B when
 * the params hold LoRA adapters for it (Hu et al. 2021; A and B in [in, r], [r, out] for
 * either base layout, so merging is one place: models/lora.ts).
 */
export function loraLinear(p: Params, prefix: string, x: T.Value, o: LinearOptions): T.Value {
  const w = weight(p, `${prefix}.weight`, o.family);
  const b = o.bias ? weight(p, `${prefix}.bias`, o.family) : undefined;
  const y = o.layout === 'in_out' ? T.linear(x, w, b) : T.linearOutIn(x, w, b);
  const names = loraNames(prefix);
  const la = p.get(names.a), lb = p.get(names.b);
  if (!la && !lb) return y;
  if (!la || !lb) throw new Error(`${o.family}: ${prefix} has only one of its LoRA adapters (${la ? names.b : names.a} is missing)`);
  if (o.loraScale === undefined) throw new Error(`${o.family}: ${prefix} has LoRA adapters but no loraScale (alpha / rank) was given to the forward pass`);
  // The scale multiplies the rank-r intermediate, the smallest tensor on the path.
  return T.add(y, T.linear(T.mul(T.linear(x, la), o.loraScale), lb));
}

/** The additive score bias of a masked-out key: large and finite (0 * inf is NaN in backward). */
const MASKED = -1e9;

/**
 * Which keys each new query may see, as an additive bias on the attention scores: 0 where
 * query t (absolute position P + t) may see key j, that is j <= P + t and (with a padding
 * mask) mask[b, j] = 1, and -1e9 elsewhere. [T, S] without a padding mask, [B, 1, T, S]
 * with one: built once per forward at this small shape, never at the scores' [B, H, T, S].
 */
export function attentionBias(tokens: T.Value, pastLength: T.Dim, attentionMask?: T.Value): T.Value {
  const [B, Tn] = tokens.shape;
  const S = T.dimAdd(pastLength, Tn);
  let causal: T.Value;
  if (pastLength === 0) causal = T.causalMask(Tn); // [T, T]
  else {
    // j < t + P + 1, with P read from the cache's shape at run time.
    const limit = T.add(T.unsqueeze(T.range(Tn), 1), T.add(T.dimValue(pastLength, 'int64'), 1)); // [T, 1]
    causal = T.less(T.unsqueeze(T.range(S), 0), limit); // [T, S]
  }
  const bias = T.where(causal, T.full([], 0), MASKED); // [T, S]
  if (!attentionMask) return bias;
  if (attentionMask.rank !== 2 || attentionMask.dtype !== 'int64') {
    throw new Error(`attentionMask must be int64 [B, P+T], got ${attentionMask}`);
  }
  // A mask declared with its own length symbol is taken to be [B, P+T] (checked at run time by Reshape).
  const mask = attentionMask.shape[1] === S && attentionMask.shape[0] === B ? attentionMask : T.reshape(attentionMask, [B, S]); // [B, S]
  const padding = T.reshape(T.where(T.less(0, mask), T.full([], 0), MASKED), [B, 1, 1, S]); // [B, 1, 1, S]
  return T.add(bias, padding); // [B, 1, T, S]
}

export interface AttentionArgs {
  /** Queries [B, H, T, hd] (rotated if the family rotates them). */
  q: T.Value;
  /** Keys and values of the new tokens [B, Hkv, T, hd]. */
  k: T.Value;
  v: T.Value;
  /** This layer's cache [B, Hkv, P, hd]. */
  past?: KvCache;
  /** From attentionBias: [T, S] or [B, 1, T, S]. */
  bias: T.Value;
}

/**
 * Scaled dot-product attention. Returns y [B, T, H*hd] (heads merged, before the output
 * projection), the present cache [B, Hkv, S, hd] and this call's keys and values alone
 * [B, Hkv, T, hd]. With grouped-query attention (H = rep Hkv) the rep query heads that
 * share a KV head are stacked along the query axis instead of copying K and V rep times.
 *
 * With a cache, the scores against the cached keys and against the new ones are computed
 * apart and joined (a [B, Hkv, rep*T, S] tensor), and the two sets of values weighted
 * apart and summed: the same products, where joining the keys and values themselves
 * would copy the whole cache, every layer, every decoding step (at batch 16 on SmolLM2
 * those copies took longer than all the layers' products). `present` joins them only
 * for a caller that reads it.
 */
export function attention({ q, k, v, past, bias }: AttentionArgs): { y: T.Value; present: KvCache; added: KvCache } {
  const [B, H, Tn, hd] = q.shape;
  const Hkv = k.shape[1];
  if (typeof hd !== 'number' || typeof H !== 'number' || typeof Hkv !== 'number' || H % Hkv !== 0) {
    throw new Error(`attention: ${H} query heads cannot share ${Hkv} key/value heads`);
  }
  const rep = H / Hkv;
  // Scaling q rather than the scores: the same product, on a S/hd times smaller tensor.
  const qs = T.mul(q, 1 / Math.sqrt(hd));
  const RT = T.dimMul(rep, Tn);
  const qg = rep === 1 ? qs : T.reshape(qs, [B, Hkv, RT, hd]); // [B, Hkv, rep*T, hd]
  const scoresOf = (keys: T.Value): T.Value => T.matmul(qg, T.transposeLast2(keys)); // [B, Hkv, rep*T, keys]
  const scores = past ? T.concat([scoresOf(past.key), scoresOf(k)], -1) : scoresOf(k); // [B, Hkv, rep*T, S]
  const S = scores.shape[3];
  let probs: T.Value;
  if (rep === 1) probs = T.softmax(T.add(scores, bias), -1); // [B, H, T, S]
  else {
    const b5 = bias.rank === 4 ? T.unsqueeze(bias, 1) : bias; // [B, 1, 1, T, S] or [T, S]
    probs = T.reshape(T.softmax(T.add(T.reshape(scores, [B, Hkv, rep, Tn, S]), b5), -1), [B, Hkv, RT, S]); // [B, Hkv, rep*T, S]
  }
  let y: T.Value;
  if (past) {
    const P = past.key.shape[2];
    y = T.add(T.matmul(T.slice(probs, -1, 0, P), past.value), T.matmul(T.slice(probs, -1, P, S), v)); // [B, Hkv, rep*T, hd]
  } else y = T.matmul(probs, v);
  if (rep !== 1) y = T.reshape(y, [B, H, Tn, hd]); // [B, H, T, hd]
  const merged = T.reshape(T.transpose(y, [0, 2, 1, 3]), [B, Tn, H * hd]); // [B, T, H*hd]
  const present = past ? { key: T.concat([past.key, k], 2), value: T.concat([past.value, v], 2) } : { key: k, value: v }; // [B, Hkv, S, hd]
  return { y: merged, present, added: { key: k, value: v } };
}

/** Splits the last axis into heads: [B, T, n*hd] -> [B, n, T, hd]. */
export function toHeads(x: T.Value, n: number, hd: number): T.Value {
  const [B, Tn] = x.shape;
  return T.transpose(T.reshape(x, [B, Tn, n, hd]), [0, 2, 1, 3]); // [B, n, T, hd]
}

/** The cache length P of a forward's inputs (0 without a cache), checking it has one entry per layer. */
export function pastLength(past: readonly KvCache[] | undefined, layers: number, family: string): T.Dim {
  if (!past) return 0;
  if (past.length !== layers) throw new Error(`${family}: the cache has ${past.length} layers, the model ${layers}`);
  return past[0].key.shape[2];
}

/** Default position ids P..P+T-1 as [T] (broadcast over the batch), int64. */
export function defaultPositions(tokens: T.Value, past: T.Dim): T.Value {
  const r = T.range(tokens.shape[1]); // [T]
  return past === 0 ? r : T.add(r, T.dimValue(past, 'int64'));
}

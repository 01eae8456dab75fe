// The ONNX graphs of generation and scoring, built from any model family with its
// weights frozen as initializers (they stay resident in the session):
//
// - PREFILL: tokens, positions, mask [B, T] (left padded) -> logits of the last column
//   [B, V] (every row's last real token, thanks to the left padding) and the cache
//   [B, Hkv, T, hd] per layer. The prompt runs as T-1 tokens without a cache followed by
//   the last token on that cache, so the LM head (a V x D product, a third of GPT-2
//   small's work per token) runs for one position per row instead of T.
// - DECODE: one token per row [B, 1] on a cache of P positions -> logits [B, V] and the
//   keys and values of the new position [B, Hkv, 1, hd] per layer. Not the whole cache
//   extended to P+1: outputs leave onnxruntime-node slowly, so the host appends the new
//   position to its own copy (kv-store.ts), which goes back in without a copy.
// - SCORE: a whole sequence [B, T] -> log p(token t+1 | tokens <= t) [B, T-1], the
//   [B, T, V] log-softmax never leaving the graph.
// - LOGITS: a whole sequence [B, T] -> all logits [B, T, V] (checks and inspection).

import * as T from '../ir/index.ts';
import type { KvCache, ModelFamily } from '../models/family.ts';

export type GraphKind = 'prefill' | 'decode' | 'score' | 'logits';

export interface GenerationGraph {
  kind: GraphKind;
  bytes: Uint8Array;
  inputNames: string[];
  outputNames: string[];
}

/** Names of the cache tensors of layer i, as graph inputs (past) and outputs (present). */
export const cacheNames = (i: number): { pastKey: string; pastValue: string; presentKey: string; presentValue: string; newKey: string; newValue: string } => ({
  pastKey: `past_key.${i}`,
  pastValue: `past_value.${i}`,
  presentKey: `present_key.${i}`,
  presentValue: `present_value.${i}`,
  newKey: `new_key.${i}`,
  newValue: `new_value.${i}`,
});

/** The family's parameters as IR leaves, and their data as initializers (checked against the shapes). */
export function frozenParams<C>(family: ModelFamily<C>, config: C, weights: ReadonlyMap<string, Float32Array>): { params: Map<string, T.Value>; initializers: Map<T.Value, Float32Array> } {
  const params = new Map<string, T.Value>();
  const initializers = new Map<T.Value, Float32Array>();
  for (const [name, shape] of family.paramShapes(config)) {
    const data = weights.get(name);
    const n = shape.reduce((a, b) => a * b, 1);
    if (!data) throw new Error(`The ${family.name} weights have no tensor ${name}; load a complete checkpoint.`);
    if (data.length !== n) throw new Error(`The ${family.name} weight ${name} has ${data.length} values, but its shape [${shape.join(', ')}] needs ${n}.`);
    const v = T.param(name, shape);
    params.set(name, v);
    initializers.set(v, data);
  }
  return { params, initializers };
}

/** Builds one graph; `params`/`initializers` from frozenParams (shared across graphs). */
export function buildGraph<C>(
  kind: GraphKind,
  family: ModelFamily<C>,
  config: C,
  frozen: { params: ReadonlyMap<string, T.Value>; initializers: ReadonlyMap<T.Value, Float32Array> },
): GenerationGraph {
  const { layers, kvHeads, headDim } = family.cacheShape(config);
  const { params } = frozen;
  const outputs: Record<string, T.Value> = {};
  let inputs: T.Value[];
  const presentOut = (present: readonly KvCache[]): void => {
    present.forEach((c, i) => {
      const n = cacheNames(i);
      outputs[n.presentKey] = c.key;
      outputs[n.presentValue] = c.value;
    });
  };

  if (kind === 'decode') {
    const P = 'P';
    const tokens = T.input('tokens', 'int64', ['B', 1]);
    const positions = T.input('positions', 'int64', ['B', 1]);
    const mask = T.input('attention_mask', 'int64', ['B', T.dimAdd(P, 1)]);
    const past: KvCache[] = [];
    for (let i = 0; i < layers; i++) {
      const n = cacheNames(i);
      past.push({ key: T.input(n.pastKey, 'float32', ['B', kvHeads, P, headDim]), value: T.input(n.pastValue, 'float32', ['B', kvHeads, P, headDim]) });
    }
    const out = family.forward(config, params, { tokens, positions, attentionMask: mask, past });
    outputs.logits = T.reshape(out.logits, ['B', family.vocabSize(config)]); // [B, V]
    const S = T.dimAdd(P, 1);
    out.present.forEach((c, i) => {
      const n = cacheNames(i);
      outputs[n.newKey] = T.slice(c.key, 2, P, S); // [B, Hkv, 1, hd]
      outputs[n.newValue] = T.slice(c.value, 2, P, S);
    });
    inputs = [tokens, positions, mask, ...past.flatMap((c) => [c.key, c.value])];
  } else {
    const tokens = T.input('tokens', 'int64', ['B', 'T']);
    const positions = T.input('positions', 'int64', ['B', 'T']);
    const mask = T.input('attention_mask', 'int64', ['B', 'T']);
    inputs = [tokens, positions, mask];
    if (kind === 'prefill') {
      const head = T.dimAdd('T', -1);
      const first = (x: T.Value) => T.slice(x, 1, 0, head); // [B, T-1]
      const last = (x: T.Value) => T.slice(x, 1, head, 'T'); // [B, 1]
      const body = family.forward(config, params, { tokens: first(tokens), positions: first(positions), attentionMask: first(mask) });
      const out = family.forward(config, params, { tokens: last(tokens), positions: last(positions), attentionMask: mask, past: body.present });
      outputs.logits = T.reshape(out.logits, ['B', family.vocabSize(config)]); // [B, V]
      presentOut(out.present);
    } else {
      const out = family.forward(config, params, { tokens, positions, attentionMask: mask });
      if (kind === 'logits') outputs.logits = out.logits; // [B, T, V]
      else {
        const head = T.dimAdd('T', -1);
        // log p(x_{t+1} | x_<=t): logits of columns 0..T-2 against tokens 1..T-1.
        outputs.logprobs = T.tokenLogProb(T.slice(out.logits, 1, 0, head), T.slice(tokens, 1, 1, 'T')); // [B, T-1]
      }
    }
  }
  const emitted = T.emitOnnx({ outputs, initializers: frozen.initializers, inputs, name: `afd-${family.name}-${kind}` });
  return { kind, ...emitted };
}

// What every model family (GPT-2, Llama-style) provides, so that training, generation,
// scoring, checkpoints and LoRA work the same way for all of them.
//
// Parameters carry their Hugging Face names and layouts, so a checkpoint loads key for
// key. Shapes use symbolic dims: B (batch), T (new tokens), P (cached positions).

import type * as T from '../ir/index.ts';
import type { Rng } from '../train/rng.ts';

export type FamilyName = 'gpt2' | 'llama';

/** Per-layer attention cache: keys and values [B, n_kv_heads, P, head_dim]. */
export interface KvCache {
  key: T.Value;
  value: T.Value;
}

export interface ForwardInputs {
  /** Token ids, int64 [B, T]. */
  tokens: T.Value;
  /**
   * Position ids, int64 [B, T]. Default: 0..T-1 (or P..P+T-1 with a cache). With left
   * padding, positions count real tokens only, as transformers does from the mask.
   */
  positions?: T.Value;
  /**
   * 1 for real tokens and 0 for padding, int64 [B, P+T] (cached and new positions).
   * Padded keys get no attention. Default: everything is real.
   */
  attentionMask?: T.Value;
  /** Cache of earlier positions, one entry per layer (absent: no cache, P = 0). */
  past?: readonly KvCache[];
  /**
   * LoRA scale alpha / rank. Required when the params hold adapters
   * (`<linear>.lora_A`, `<linear>.lora_B`, see models/lora.ts); the forward refuses
   * adapters without it rather than guess.
   */
  loraScale?: number;
  /**
   * Logits of the last position only, [B, 1, V]: generation needs no others, and the
   * head (a V x D product) then runs once per row instead of T times.
   */
  lastLogitsOnly?: boolean;
}

export interface ForwardOutputs {
  /** Next-token logits [B, T, V] ([B, 1, V] with lastLogitsOnly). */
  logits: T.Value;
  /** Final hidden states after the last norm [B, T, D] (reward models put a head on these). */
  hidden: T.Value;
  /** The cache extended with this call's keys and values: [B, n_kv_heads, P+T, head_dim]. */
  present: KvCache[];
  /**
   * This call's keys and values alone, [B, n_kv_heads, T, head_dim]: what a cache kept
   * outside the graph appends (reading them never copies the past, as `present` does).
   */
  added: KvCache[];
}

/** One linear projection of the model (what LoRA can adapt). */
export interface LinearInfo {
  /** Parameter prefix: the weight is `${prefix}.weight`, adapters `${prefix}.lora_A` / `.lora_B`. */
  prefix: string;
  in: number;
  out: number;
  /** 'in_out': weight [in, out] (GPT-2 Conv1D); 'out_in': weight [out, in] (nn.Linear). */
  layout: 'in_out' | 'out_in';
  kind: 'attention' | 'mlp';
}

export interface ModelFamily<C> {
  readonly name: FamilyName;
  /** The family's config from a Hugging Face config.json object; throws a sentence on what it cannot support. */
  fromHfConfig(json: Record<string, unknown>): C;
  /** The config.json object to write on export (loadable by transformers). */
  toHfConfig(c: C): Record<string, unknown>;
  /** Parameter shapes by Hugging Face name, in checkpoint layout (tied weights listed once). */
  paramShapes(c: C): Map<string, number[]>;
  /** The family's standard random initialization. */
  init(c: C, rng: Rng): Map<string, Float32Array>;
  forward(c: C, params: ReadonlyMap<string, T.Value>, inputs: ForwardInputs): ForwardOutputs;
  /** Layer count, KV heads and head size, for building caches. */
  cacheShape(c: C): { layers: number; kvHeads: number; headDim: number };
  vocabSize(c: C): number;
  /** The attention and MLP projections of every layer, for LoRA. */
  linears(c: C): LinearInfo[];
}

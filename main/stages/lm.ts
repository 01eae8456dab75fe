// What every AfD stage does with a language model: load a Hugging Face folder, turn
// (prompt, response) pairs into right-padded training batches, build the trainable graph
// (full fine-tune or LoRA), read sequence log-probabilities and last-token hidden states
// off it, and write the trained model back as a folder.
import ort from 'onnxruntime-node';
import { exportHfModel, importHfModel, mapHfModel, type ImportedModel } from '../../native-models/checkpoint/index.ts';
import * as T from '../../native-models/ir/index.ts';
import { loraInit, loraParamShapes, loraScale, loraTraining, mergeLora, type LoraSpec } from '../../native-models/models/index.ts';
import { Tokenizer } from '../../native-models/tokenizer/tokenizer.ts';
import type { Rng } from '../../native-models/train/rng.ts';
import type { Feeds } from '../../native-models/train/trainer.ts';
import type { MappedWeights } from '../../native-models/runtime/safetensors-index.ts';

export interface LoadedModel extends ImportedModel {
  tokenizer: Tokenizer;
  /** End-of-text token: ends responses and pads batches. */
  eosId: number;
  /** Longest sequence the model takes (its positions). */
  maxLength: number;
  /**
   * Where the weights lie in the folder's files, when every one is stored as F32: a LoRA
   * fine-tune's frozen base weights reference them (ONNX external data) instead of
   * copying them into its graphs.
   */
  mapped?: MappedWeights;
}

export async function loadModel(dir: string): Promise<LoadedModel> {
  const m = await importHfModel(dir);
  const tokenizer = await Tokenizer.fromFolder(dir);
  const eos = tokenizer.eosTokenId ?? (typeof m.configJson.eos_token_id === 'number' ? m.configJson.eos_token_id : undefined);
  if (eos === undefined) throw new Error(`${dir}: the model has no end-of-text token (tokenizer or config.json eos_token_id); AfD stages need one to end responses.`);
  const c = m.configJson;
  const maxLength = Number(c.n_positions ?? c.max_position_embeddings ?? 2048);
  // Headers only (the weights were read above); a folder of other dtypes is not mapped.
  const mapped = m.storedDtypes.every((d) => d === 'F32') ? (await mapHfModel(dir)).weights : undefined;
  return { ...m, tokenizer, eosId: eos, maxLength, ...(mapped && !(mapped instanceof Map) ? { mapped } : {}) };
}

/**
 * Where a sampled response ends besides EOS: the start of the next turn. A model
 * pretrained on whole dialogues (like pi_0) goes on to write the human's next line;
 * that text is not part of its reply.
 */
export const TURN_STOPS: readonly string[] = ['\n\nHuman:', '\n\nAssistant:'];

/** A tokenized (prompt, response): the response's tokens are ids[start..]. */
export interface Encoded {
  ids: number[];
  start: number;
}

/**
 * prompt + response + EOS, cut to `maxLength` tokens: the prompt loses its oldest tokens
 * first (the last turns matter most), the response its tail only when it alone is too long.
 */
export function encodePair(model: LoadedModel, prompt: string, response: string, maxLength: number): Encoded {
  const p = model.tokenizer.encode(prompt, { addSpecialTokens: false });
  let r = [...model.tokenizer.encode(response, { addSpecialTokens: false }), model.eosId];
  const keepPrompt = Math.max(1, Math.min(p.length, maxLength - r.length));
  r = r.slice(0, maxLength - keepPrompt);
  const kept = p.slice(p.length - keepPrompt);
  return { ids: [...kept, ...r], start: kept.length };
}

/** The prompt's tokens, its oldest ones dropped so that `room` tokens remain for the response. */
export function encodePrompt(model: LoadedModel, prompt: string, room: number): number[] {
  const p = model.tokenizer.encode(prompt, { addSpecialTokens: false });
  const keep = Math.max(1, model.maxLength - room);
  return p.length > keep ? p.slice(p.length - keep) : p;
}

/**
 * A right-padded batch: `tokens` [B, T], `targets` [B, T] (the next token), `mask` [B, T]
 * (1 where the target is a response token), `last` [B] (flat index b*T + t of each row's
 * last real token, for a scorer's head). Causal attention means padding on the right
 * changes nothing before it, so no attention mask is needed.
 */
export function sequenceFeeds(rows: readonly Encoded[], pad: number): Feeds {
  const B = rows.length, W = Math.max(...rows.map((r) => r.ids.length)) - 1;
  if (W < 1) throw new Error('every row needs at least two tokens');
  const tokens = new BigInt64Array(B * W).fill(BigInt(pad)), targets = new BigInt64Array(B * W).fill(BigInt(pad));
  const mask = new Float32Array(B * W), last = new BigInt64Array(B);
  rows.forEach((r, b) => {
    for (let t = 0; t < r.ids.length - 1; t++) {
      tokens[b * W + t] = BigInt(r.ids[t]);
      targets[b * W + t] = BigInt(r.ids[t + 1]);
      if (t + 1 >= r.start) mask[b * W + t] = 1;
    }
    last[b] = BigInt(b * W + r.ids.length - 2);
  });
  return {
    tokens: new ort.Tensor('int64', tokens, [B, W]),
    targets: new ort.Tensor('int64', targets, [B, W]),
    mask: new ort.Tensor('float32', mask, [B, W]),
    last: new ort.Tensor('int64', last, [B]),
  };
}

/** The graph inputs matching sequenceFeeds. */
export function sequenceInputs(): { tokens: T.Value; targets: T.Value; mask: T.Value; last: T.Value } {
  return {
    tokens: T.input('tokens', 'int64', ['B', 'T']),
    targets: T.input('targets', 'int64', ['B', 'T']),
    mask: T.input('mask', 'float32', ['B', 'T']),
    last: T.input('last', 'int64', ['B']),
  };
}

/** log pi(response | prompt) per row [B]: the masked sum of token log-probabilities. */
export const responseLogProbs = (logits: T.Value, targets: T.Value, mask: T.Value): T.Value => T.reduceSum(T.mul(T.tokenLogProb(logits, targets), mask), 1);

/** The hidden state [B, D] at each row's last real token (`last` from sequenceFeeds). */
export function lastHidden(hidden: T.Value, last: T.Value): T.Value {
  const D = hidden.shape[2];
  return T.gather(T.reshape(hidden, [-1, D as number]), last);
}

/** How a stage adapts the model: every weight, or LoRA adapters on frozen weights. */
export type Adaptation = { kind: 'full' } | { kind: 'lora'; rank: number; alpha: number };

/** The parameters of a trainable copy of `model`, and the initial values of the trained ones. */
export interface TrainableModel {
  params: Map<string, T.Value>;
  trainable: T.Value[];
  /** Frozen leaves: their data, or where the model's files hold it (see `external`). */
  frozen: Map<T.Value, Float32Array | T.ExternalTensor>;
  /** The folder the external frozen weights lie in, for the sessions (TrainerOptions.externalData). */
  external?: { dir: string; identity: string };
  init: Map<string, Float32Array>;
  loraScale?: number;
  /** The model's weights (merged with adapters) from the trained values. */
  weights(trained: ReadonlyMap<string, Float32Array>): Map<string, Float32Array>;
}

export function trainableModel(model: LoadedModel, how: Adaptation, rng: Rng): TrainableModel {
  if (how.kind === 'full') {
    const params = new Map<string, T.Value>();
    for (const [name, shape] of model.family.paramShapes(model.config)) params.set(name, T.param(name, shape));
    return {
      params, trainable: [...params.values()], frozen: new Map(), init: new Map(model.weights),
      weights: (trained) => new Map([...model.weights.keys()].map((n) => [n, trained.get(n)!])),
    };
  }
  const spec: LoraSpec = { rank: how.rank, alpha: how.alpha };
  const { params, trainable, frozen, external } = loraTraining(model.family, model.config, model.mapped ?? model.weights, spec);
  return {
    params, trainable, frozen, ...(external ? { external } : {}), init: loraInit(loraParamShapes(model.family, model.config, spec), rng), loraScale: loraScale(spec),
    weights: (trained) => mergeLora(model.weights, trained, model.family, model.config, spec),
  };
}

/** Writes `weights` as a Hugging Face folder with `model`'s tokenizer and configs. */
export async function saveModel(dir: string, model: LoadedModel, weights: ReadonlyMap<string, Float32Array>): Promise<void> {
  await exportHfModel(dir, {
    family: model.family, config: model.config, weights, tokenizerFrom: model.dir, baseConfig: model.configJson,
    ...(model.generationConfig ? { generationConfig: model.generationConfig } : {}),
  });
}

/** Deterministic order of `n` items for epoch `epoch` (Fisher-Yates on the stage's RNG). */
export function shuffled(n: number, rng: Rng): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}

// The ONNX graphs of generation and scoring, built from any model family with its
// weights frozen as initializers (they stay resident in the session), either inside the
// model or, for weights mapped from their files, as external data:
//
// - STEP: the tokens of each row [B, T] (left padded), their positions, and the mask
//   [B, P+T] on a cache of P positions per layer [B, Hkv, P, hd] -> the logits of the last
//   column [B, V] (every row's last real token, thanks to the left padding) and the keys
//   and values of the T new positions [B, Hkv, T, hd] per layer. With P = 0 it is the
//   prefill of a prompt, with T = 1 a decoding step: ONE graph, so one session and one
//   copy of the weights serve both (ORT packs constant GEMM weights per session). Not the
//   whole cache extended to P+T: outputs leave onnxruntime-node slowly, so the host
//   appends the new positions to its own copy (kv-store.ts), which goes back in without
//   a copy.
//   Written for WebGPU (target 'webgpu') it returns the whole cache extended to P+T
//   instead, [B, Hkv, P+T, hd] per layer: the cache stays on the GPU between runs
//   (device-kv.ts), where joining it is a copy in device memory, and only the logits come
//   to the host.
// - SCORE: a whole sequence [B, T] -> log p(token t+1 | tokens <= t) [B, T-1], the
//   [B, T, V] log-softmax never leaving the graph.
// - LOGITS: a whole sequence [B, T] -> all logits [B, T, V] (checks and inspection).
//
// LoRA adapters can be graph INPUTS instead (`adapterInputs`): the base weights stay
// initializers (packed once per session), the adapters A and B are fed on every run and
// the forward adds scale (x A) B as training does (models/layers.ts loraLinear), so a
// policy whose adapters change every step keeps its sessions.

import * as T from '../ir/index.ts';
import type { KvCache, ModelFamily } from '../models/family.ts';
import { loraParamShapes, loraScale, type LoraSpec } from '../models/lora.ts';
import type { MappedWeights } from '../runtime/safetensors-index.ts';
import { fuseForInference } from './fuse.ts';

export type GraphKind = 'step' | 'score' | 'logits';

/** float32 weights by Hugging Face name, in memory or left in their files. */
export type GenerationWeights = ReadonlyMap<string, Float32Array> | MappedWeights;

const isMapped = (w: GenerationWeights): w is MappedWeights => !(w instanceof Map);

/** Frozen parameters: the family's parameter leaves, and each one's data or where its file holds it. */
export interface FrozenParams<D extends Float32Array | T.ExternalTensor = Float32Array | T.ExternalTensor> {
  params: Map<string, T.Value>;
  initializers: Map<T.Value, D>;
  /** For mapped weights: the folder the external data locations are relative to, and what identifies its files. */
  external?: { dir: string; identity: string };
}

/** Throws unless `size` values fill `shape` ("<what> has 6 values, but its shape [2, 4] needs 8."). */
export function checkSize(what: string, size: number, shape: readonly number[]): void {
  const n = shape.reduce((a, b) => a * b, 1);
  if (size !== n) throw new Error(`${what} has ${size} values, but its shape [${shape.join(', ')}] needs ${n}.`);
}

/** LoRA adapters as graph inputs: their leaves (`${prefix}.lora_A` [in, r], `.lora_B` [r, out]) and the forward's scale alpha / r. */
export interface AdapterInputs {
  params: Map<string, T.Value>;
  loraScale: number;
}

/** The adapters of `spec` as graph inputs, named and shaped as training names them (models/lora.ts). */
export function adapterInputs<C>(family: ModelFamily<C>, config: C, spec: LoraSpec): AdapterInputs {
  const params = new Map<string, T.Value>();
  for (const [name, shape] of loraParamShapes(family, config, spec)) params.set(name, T.param(name, shape));
  return { params, loraScale: loraScale(spec) };
}

export interface GenerationGraph extends T.EmittedModel {
  kind: GraphKind;
}

/**
 * Names of the cache tensors of layer i: graph inputs (past) and outputs (the new
 * positions; on webgpu the present cache, past and new).
 */
export const cacheNames = (i: number): { pastKey: string; pastValue: string; newKey: string; newValue: string; presentKey: string; presentValue: string } => ({
  pastKey: `past_key.${i}`,
  pastValue: `past_value.${i}`,
  newKey: `new_key.${i}`,
  newValue: `new_value.${i}`,
  presentKey: `present_key.${i}`,
  presentValue: `present_value.${i}`,
});

/** The family's parameters as IR leaves, and their data as initializers (checked against the shapes). */
export function frozenParams<C>(family: ModelFamily<C>, config: C, weights: ReadonlyMap<string, Float32Array>): FrozenParams<Float32Array>;
export function frozenParams<C>(family: ModelFamily<C>, config: C, weights: GenerationWeights): FrozenParams;
export function frozenParams<C>(family: ModelFamily<C>, config: C, weights: GenerationWeights): FrozenParams {
  const params = new Map<string, T.Value>();
  const initializers = new Map<T.Value, Float32Array | T.ExternalTensor>();
  const mapped = isMapped(weights);
  for (const [name, shape] of family.paramShapes(config)) {
    const data = mapped ? weights.tensors.get(name) : weights.get(name);
    if (!data) throw new Error(`The ${family.name} weights have no tensor ${name}; load a complete checkpoint.`);
    checkSize(`The ${family.name} weight ${name}`, data instanceof Float32Array ? data.length : data.length / 4, shape);
    const v = T.param(name, shape);
    params.set(name, v);
    initializers.set(v, data);
  }
  return { params, initializers, ...(mapped ? { external: { dir: weights.dir, identity: weights.identity } } : {}) };
}

/**
 * Builds one graph for a target's kernels (default the CPU's); `frozen` from frozenParams
 * (shared across graphs), `adapters` from adapterInputs (inputs after the others). Its
 * composites are fused into ONNX Runtime's kernels (fuse.ts) unless `fuse` is false.
 */
export function buildGraph<C>(kind: GraphKind, family: ModelFamily<C>, config: C, frozen: FrozenParams, opts: { fuse?: boolean; target?: T.EmitTarget; adapters?: AdapterInputs } = {}): GenerationGraph {
  const target = opts.target ?? 'cpu';
  const { layers, kvHeads, headDim } = family.cacheShape(config);
  const { adapters } = opts;
  const params = adapters ? new Map([...frozen.params, ...adapters.params]) : frozen.params;
  const lora = adapters ? { loraScale: adapters.loraScale } : {};
  const outputs: Record<string, T.Value> = {};
  const tokens = T.input('tokens', 'int64', ['B', 'T']);
  const positions = T.input('positions', 'int64', ['B', 'T']);
  let inputs: T.Value[];

  if (kind === 'step') {
    const P = 'P', S = T.dimAdd(P, 'T');
    const mask = T.input('attention_mask', 'int64', ['B', S]);
    const past: KvCache[] = [];
    for (let i = 0; i < layers; i++) {
      const n = cacheNames(i);
      past.push({ key: T.input(n.pastKey, 'float32', ['B', kvHeads, P, headDim]), value: T.input(n.pastValue, 'float32', ['B', kvHeads, P, headDim]) });
    }
    const out = family.forward(config, params, { tokens, positions, attentionMask: mask, past, lastLogitsOnly: true, ...lora });
    outputs.logits = T.reshape(out.logits, ['B', family.vocabSize(config)]); // [B, V]
    const cache = target === 'webgpu' ? out.present : out.added;
    cache.forEach((c, i) => {
      const n = cacheNames(i);
      outputs[target === 'webgpu' ? n.presentKey : n.newKey] = c.key; // [B, Hkv, T, hd], on webgpu [B, Hkv, P+T, hd]
      outputs[target === 'webgpu' ? n.presentValue : n.newValue] = c.value;
    });
    inputs = [tokens, positions, mask, ...past.flatMap((c) => [c.key, c.value])];
  } else {
    const mask = T.input('attention_mask', 'int64', ['B', 'T']);
    inputs = [tokens, positions, mask];
    const out = family.forward(config, params, { tokens, positions, attentionMask: mask, ...lora });
    if (kind === 'logits') outputs.logits = out.logits; // [B, T, V]
    else {
      const head = T.dimAdd('T', -1);
      // log p(x_{t+1} | x_<=t): logits of columns 0..T-2 against tokens 1..T-1.
      outputs.logprobs = T.tokenLogProb(T.slice(out.logits, 1, 0, head), T.slice(tokens, 1, 1, 'T')); // [B, T-1]
    }
  }
  if (adapters) inputs.push(...adapters.params.values());
  const emitted = T.emitOnnx({ outputs: opts.fuse === false ? outputs : fuseForInference(outputs, target), initializers: frozen.initializers, inputs, name: `afd-${family.name}-${kind}`, target });
  return { kind, ...emitted };
}

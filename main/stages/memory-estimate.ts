// How much memory a stage needs at its peak, estimated before it starts from the model's
// shapes and the stage's settings, so that a stage that cannot fit is refused with a
// sentence instead of failing (or swapping) halfway through.
//
// A training stage peaks at the end of a training step (docs/benchmarks.md says where
// each byte is): the process's fixed cost, the model's weights as read from its folder,
// ONNX Runtime's copies of frozen weights (LoRA: each matrix packed for the forward and
// the backward products), the trainable state (parameters and AdamW's two moments) twice
// (the step's inputs and onnxruntime-node's copy of its outputs), and ONNX Runtime's
// arena: the gradients, the activations (counted on the real training graph by
// native-models/ir/memory.ts), the loss's [B, T, V] backward temporaries, or the updated
// state where it does not fit in the space the freed activations leave. A stage that
// writes a model may peak later, while saving: what the training left resident (the
// arena stays) plus the weights it writes (LoRA: the merged projections). A sampling stage
// holds the weights, the generation session's copy of them and the KV cache.
//
// Calibration (CALIBRATION below): peak RSS (VmHWM) of the real stages, each in a process
// of its own with 2 threads on the 2-core development machine, against this estimate, MiB
// (rows x tokens; the sampling constants were fitted on the four sample rows; the rows
// marked * were measured when the application's imports took 40 MiB less):
//
//   sft, default model (4.3M, GPT-2), full       2x128: 379 / 384   8x256: 552 / 594   8x512: 863 / 918
//   sft, default model, LoRA rank 8              2x128: 279 / 284   8x256: 504 / 513
//   sft, SmolLM2-135M-shaped, LoRA rank 8        2x128: 2798 / 2795   4x256: 4307 / 4346   8x256*: 6330 / 6369
//   sft, SmolLM2-135M-shaped, full               2x128: 6293 / 6343
//   pref-reward (Bradley-Terry), default, full   8x256: 507 / 498
//   pref-reward, SmolLM2-shaped, LoRA            2x128: 2854 / 2751 (scoring)   8x256*: 5113 / 5082
//   sample, default model                        32 rows, 256 + 64 tokens: 610 / 619   128 rows, 256 + 128: 1744 / 1847
//   sample, SmolLM2-shaped                       16 rows, 256 + 32: 2230 / 2291   64 rows, 256 + 32: 4125 / 3992
//
// Every row within 8%; test/memory-estimate.test.ts measures the two sft 2x128 rows again
// and requires 25%. Not measured, composed from the same parts: dpo, spin, ditto, rl,
// airl and pretrain (their trainers, generators and reward models summed over what the
// stage holds at once); rl and airl assume prompts of CALIBRATION.promptTokens tokens
// until the data is read. On a GPU the sessions' parts (frozen weights, arena, generation
// session) are device memory and the rest host memory; no GPU was measured.

import type { JsonObject } from '../../db/json.ts';
import * as T from '../../native-models/ir/index.ts';
import { savedActivations as savedForward } from '../../native-models/ir/memory.ts';
import { gpt2Defaults, gpt2Family } from '../../native-models/models/gpt2.ts';
import { loraParamShapes, loraTargets, type LoraSpec, type ModelSpec } from '../../native-models/models/index.ts';
import { pointwiseBce, sftLoss } from '../../native-models/objectives/losses.ts';
import { sequenceInputs, type Adaptation } from './lm.ts';
import { headParams, hiddenSize, scorerScores } from './scorer.ts';
import { DRAW_ROWS } from './kinds/spin.ts';

const MiB = 2 ** 20;

/** The measured constants of the estimate (see the table above). */
export const CALIBRATION = {
  /** Node, the TypeScript loader, the pipeline's modules and ONNX Runtime's library: 140-150 MiB measured after the imports (100-105 earlier the same day). */
  processBytes: 145 * MiB,
  /** A compiled training or generation session beyond its tensors (graph, kernels, thread pool). */
  sessionBytes: 40 * MiB,
  /** ONNX Runtime's copies of a frozen weight that products read (packed for the forward and the backward product), per byte. */
  packedCopies: 2.25,
  /** [B, T, V] float32 buffers the language-model loss's backward holds at once: 1.75-2.4 measured. */
  lossBuffers: 2,
  /** A generation session's copy of the weights, per byte of them (initializers and packed products): 1.6-2 measured. */
  generationCopies: 2,
  /** [rows, heads, P, P] float32 buffers a prefill of P prompt tokens leaves in ONNX Runtime's arena (fitted: 9.3). */
  attentionBuffers: 9,
  /** The KV cache on the host, per byte of its final size (growing, it is copied; fitted: 1.2). */
  cacheCopies: 1.2,
  /** Prompt tokens assumed for stages that do not cap them (rl, airl, spin, ditto sample from the train prompts). */
  promptTokens: 256,
};

/** One term of an estimate, with what it is. `device`: on the GPU when the stage runs on one. */
export interface MemoryPart {
  name: string;
  bytes: number;
  why: string;
  device?: boolean;
}

/** A peak: its bytes, when it comes and what makes it up. */
export interface MemoryEstimate {
  bytes: number;
  /** When the peak comes ('a training step', 'saving the model', 'generation'). */
  phase: string;
  parts: MemoryPart[];
}

/** A stage's estimate, with the settings that lower it (most effective first), as the refusal names them. */
export interface StageMemoryEstimate extends MemoryEstimate {
  lower: string[];
}

const total = (parts: readonly MemoryPart[]): number => parts.reduce((n, p) => n + p.bytes, 0);
const estimate = (phase: string, parts: MemoryPart[]): MemoryEstimate => ({ bytes: total(parts), phase, parts: parts.filter((p) => p.bytes > 0) });
const elements = (shapes: Iterable<readonly number[]>): number => [...shapes].reduce((n, s) => n + s.reduce((a, b) => a * b, 1), 0);

/** Parameters of the model (tied weights once). */
export const paramCount = (m: ModelSpec): number => elements(m.family.paramShapes(m.config).values());

const processPart = (): MemoryPart => ({ name: 'process', bytes: CALIBRATION.processBytes, why: "Node, the TypeScript loader and ONNX Runtime's library" });
const weightsPart = (m: ModelSpec, name = 'weights', why = "the model's weights as read from its folder"): MemoryPart => ({ name, bytes: 4 * paramCount(m), why });

// ------------------------------------------------------------------- training

export type Objective = 'lm' | 'score';

/** A training step's shape: the model, how it is adapted, its head, and the batch (rows of `tokens` tokens). */
export interface TrainingCase {
  model: ModelSpec;
  adaptation: Adaptation;
  /** 'lm': a loss over the next-token logits (SFT, DPO, policy gradient); 'score': a scorer's head on the last hidden state. */
  objective: Objective;
  rows: number;
  tokens: number;
  /** The stage writes the trained weights afterwards (a model or a scorer). */
  saves: boolean;
}

interface Saved {
  shape: readonly T.Dim[];
  dtype: T.DType;
}

const savedCache = new Map<string, Saved[]>();

const loraSpec = (a: Adaptation & { kind: 'lora' }): LoraSpec => ({ rank: a.rank, alpha: a.alpha });

/**
 * The forward tensors a training step's backward reads, as symbolic shapes in B and T,
 * from the real graph (the family's forward, the adapters, the objective). Building it
 * takes about 0.15 s for a 30-layer model, so it is kept per shape.
 */
function savedActivations(model: ModelSpec, adaptation: Adaptation, objective: Objective): Saved[] {
  const key = JSON.stringify([model.family.name, model.config, adaptation, objective]);
  let saved = savedCache.get(key);
  if (saved !== undefined) return saved;
  const params = new Map<string, T.Value>();
  for (const [name, shape] of model.family.paramShapes(model.config)) params.set(name, T.param(name, shape));
  let trainable = [...params.values()];
  if (adaptation.kind === 'lora') {
    trainable = [];
    for (const [name, shape] of loraParamShapes(model.family, model.config, loraSpec(adaptation))) {
      const v = T.param(name, shape);
      params.set(name, v);
      trainable.push(v);
    }
  }
  const loraScale = adaptation.kind === 'lora' ? adaptation.alpha / adaptation.rank : undefined;
  const x = sequenceInputs();
  let loss: T.Value;
  if (objective === 'lm') {
    const { logits } = model.family.forward(model.config, params, { tokens: x.tokens, ...(loraScale === undefined ? {} : { loraScale }) });
    loss = sftLoss(logits, x.targets, x.mask);
  } else {
    const head = headParams(hiddenSize(model));
    for (const [name, v] of head) params.set(name, v);
    trainable.push(...head.values());
    loss = pointwiseBce(scorerScores(model, { params, ...(loraScale === undefined ? {} : { loraScale }) }, x), T.input('labels', 'float32', ['B']));
  }
  saved = savedForward(loss, T.grad(loss, trainable)).map((v) => ({ shape: v.shape, dtype: v.dtype }));
  savedCache.set(key, saved);
  return saved;
}

/** Bytes of a training step's activations at B rows of T tokens, counted on its graph. */
export function activationBytes(model: ModelSpec, adaptation: Adaptation, objective: Objective, rows: number, tokens: number): number {
  return savedActivations(model, adaptation, objective).reduce((n, v) => n + T.valueBytes(v, { B: rows, T: tokens }), 0);
}

/** Elements of the model's projection matrices (what LoRA adapts). */
const projectionCount = (m: ModelSpec): number => m.family.linears(m.config).reduce((n, x) => n + x.in * x.out, 0);

/**
 * ONNX Runtime's hold on a LoRA graph's frozen weights: the matrices that products read
 * (the projections, and the output head of a language-model loss) packed for the forward
 * and the backward product; the rest (embeddings read by a gather, norms) once.
 * SmolLM2-135M's 513 MiB, measured with the session: 1273 MiB with the head, 949 MiB for a scorer.
 */
function frozenBytes(m: ModelSpec, objective: Objective): number {
  const products = projectionCount(m) + (objective === 'lm' ? m.family.vocabSize(m.config) * hiddenSize(m) : 0);
  return 4 * (CALIBRATION.packedCopies * products + (paramCount(m) - products));
}

/** The peak of a training stage: its training step, or its save when that is higher. */
export function trainingEstimate(c: TrainingCase): MemoryEstimate {
  const { model, adaptation } = c;
  const P = paramCount(model);
  const lora = adaptation.kind === 'lora';
  const trainableBytes = 4 * (lora ? elements(loraParamShapes(model.family, model.config, loraSpec(adaptation)).values()) : P);
  const activations = activationBytes(model, adaptation, c.objective, c.rows, c.tokens);
  const lossTemporaries = c.objective === 'lm' ? CALIBRATION.lossBuffers * c.rows * c.tokens * model.family.vocabSize(model.config) * 4 : 0;
  const resident: MemoryPart[] = [
    processPart(),
    weightsPart(model),
    { name: 'session', bytes: CALIBRATION.sessionBytes, why: "ONNX Runtime's compiled training step", device: true },
    ...(lora ? [{ name: 'frozen weights', bytes: frozenBytes(model, c.objective), why: "ONNX Runtime's copies of the frozen weights, each matrix packed for the forward and the backward products", device: true }] : []),
    { name: 'trainable state', bytes: 3 * trainableBytes, why: `${lora ? 'the adapters' : 'every weight'} and AdamW's two moments` },
    { name: 'gradients', bytes: trainableBytes, why: "one per trainable parameter, in ONNX Runtime's arena", device: true },
    { name: 'activations', bytes: activations, why: `what the backward pass reads of the forward, counted on the training graph at ${c.rows} x ${c.tokens} tokens`, device: true },
    ...(lossTemporaries > 0 ? [{ name: 'loss backward', bytes: lossTemporaries, why: `the loss's backward over ${c.rows} x ${c.tokens} tokens x the vocabulary`, device: true }] : []),
    // The step's outputs are written into the arena before they are copied out; the
    // activations' space is free by then, so only what exceeds it grows the arena.
    { name: 'updated state', bytes: Math.max(0, 3 * trainableBytes - activations - lossTemporaries), why: "the step's new state in ONNX Runtime's arena, beyond the space the activations freed", device: true },
  ];
  const step = estimate('a training step', [...resident, { name: 'output copy', bytes: 3 * trainableBytes, why: "onnxruntime-node's copy of the step's new state" }]);
  if (!c.saves) return step;
  const written = lora ? 4 * loraTargets(model.family, model.config, loraSpec(adaptation)).reduce((n, x) => n + x.in * x.out, 0) : 4 * P;
  // What the step freed stays in the process (the allocator keeps it), so saving adds to the step's peak.
  const save = estimate('saving the model', [...step.parts, { name: 'written weights', bytes: written, why: lora ? 'the projections with their adapters merged, as written' : 'the trained weights copied out of the state, as written' }]);
  return save.bytes > step.bytes ? save : step;
}

// ------------------------------------------------------------------- generation

/** A generation batch: `rows` sequences of a prompt and new tokens. */
export interface SamplingCase {
  model: ModelSpec;
  rows: number;
  promptTokens: number;
  newTokens: number;
}

/** The session of a generator: its graph holds the weights (ONNX Runtime's copy, packed for its products). */
const generationSession = (model: ModelSpec, name: string): MemoryPart => ({
  name, bytes: CALIBRATION.sessionBytes + CALIBRATION.generationCopies * 4 * paramCount(model), why: "ONNX Runtime's copy of the weights, packed for its products", device: true,
});

/** What a batch adds to a generator: the prefill's attention temporaries and the KV cache. */
function batchParts(c: SamplingCase): MemoryPart[] {
  const { model } = c;
  const { layers, kvHeads, headDim } = model.family.cacheShape(model.config);
  const hf = model.family.toHfConfig(model.config);
  const heads = Number(hf.num_attention_heads ?? hf.n_head);
  const positions = c.promptTokens + c.newTokens;
  return [
    { name: 'prefill', bytes: CALIBRATION.attentionBuffers * c.rows * heads * c.promptTokens ** 2 * 4, why: `attention scores over ${c.rows} prompts of ${c.promptTokens} tokens`, device: true },
    { name: 'KV cache', bytes: CALIBRATION.cacheCopies * 2 * layers * kvHeads * headDim * c.rows * positions * 4, why: `keys and values of ${c.rows} rows x ${positions} positions x ${layers} layers` },
  ];
}

export function samplingEstimate(c: SamplingCase): MemoryEstimate {
  return estimate('generation', [processPart(), weightsPart(c.model), generationSession(c.model, 'generation session'), ...batchParts(c)]);
}

// ------------------------------------------------------------------- stages

/** The shape of a stage's model inputs by field name (undefined where unknown). */
export type InputShapes = (field: string) => ModelSpec | undefined;

/** What the data tells a stage that samples from the train prompts (rl, airl, spin, ditto); absent before the data is read. */
export interface PromptFacts {
  /** Train prompts (spin and ditto sample all of them in one batch). */
  count: number;
  /** Tokens of the longest one, in the policy's tokenizer. */
  longest: number;
}

const num = (settings: JsonObject, key: string): number => settings[key] as number;

function adaptationOf(settings: JsonObject): Adaptation {
  return settings.adaptation === 'lora' ? { kind: 'lora', rank: num(settings, 'loraRank'), alpha: num(settings, 'loraAlpha') } : { kind: 'full' };
}

/** The model's positions (the longest sequence it takes). */
function positionsOf(model: ModelSpec): number {
  const hf = model.family.toHfConfig(model.config);
  return Number(hf.n_positions ?? hf.max_position_embeddings ?? 2048);
}

/** A generator sampling a batch: the weights it was given (a trainer's, merged), its session, and with `scores` a second one for the scoring graph. */
function samplerParts(c: SamplingCase, name: string, o: { weights: boolean; scores: boolean }): MemoryPart[] {
  return [
    ...(o.weights ? [weightsPart(c.model, `${name} weights`, `the ${name}'s current weights, merged for sampling`)] : []),
    generationSession(c.model, `${name} session`),
    ...(o.scores ? [generationSession(c.model, `${name} scoring session`)] : []),
    ...batchParts(c),
  ];
}

/** The GPT-2 a pretrain stage builds from its settings, with the vocabulary of its tokenizer's model. */
export function pretrainedShape(settings: JsonObject, tokenizerModel: ModelSpec): ModelSpec {
  const config = gpt2Defaults({ vocabSize: tokenizerModel.family.vocabSize(tokenizerModel.config), nPositions: num(settings, 'seq'), nEmbd: num(settings, 'dModel'), nLayer: num(settings, 'layers'), nHead: num(settings, 'heads') });
  return { family: gpt2Family as ModelSpec['family'], config };
}

/**
 * The estimate of stage `kind` with its parsed settings (defaults filled in), or null for
 * a stage this module does not size (Best-of-N, evaluation, the training-free rewards and
 * extrapolation score or merge with models already sized by the stages that made them)
 * or whose inputs are unknown.
 */
export function stageEstimate(kind: string, settings: JsonObject, shapes: InputShapes, prompts?: PromptFacts): StageMemoryEstimate | null {
  const adaptation = adaptationOf(settings);
  const orLora = adaptation.kind === 'full' ? ['adaptation: lora instead of full'] : [];
  const training = (model: ModelSpec, objective: Objective, rows: number, tokens: number): MemoryEstimate =>
    trainingEstimate({ model, adaptation, objective, rows, tokens: Math.min(tokens, positionsOf(model)), saves: true });
  switch (kind) {
    case 'sft': {
      const model = shapes('model');
      if (!model) return null;
      return { ...training(model, 'lm', num(settings, 'batch'), num(settings, 'maxLength')), lower: ['batch', 'maxLength', ...orLora] };
    }
    case 'reward':
    case 'pref-reward':
    case 'judge': {
      const model = shapes('backbone');
      if (!model) return null;
      // Bradley-Terry batches hold both sides of each pair.
      const sides = kind !== 'reward' || settings.loss === 'bt' ? 2 : 1;
      const e = training(model, 'score', sides * num(settings, 'batch'), num(settings, 'maxLength'));
      // Then the trained scorer, read back as a reward function, scores the held-out responses.
      const scoring = estimate('scoring with the trained scorer', [
        processPart(), weightsPart(model), weightsPart(model, 'trained backbone', 'the trained weights, as written'), weightsPart(model, 'scorer weights', "the scorer's weights, read back"), generationSession(model, 'scorer session'),
      ]);
      return { ...(scoring.bytes > e.bytes ? scoring : e), lower: ['batch', 'maxLength', ...orLora] };
    }
    case 'dpo':
    case 'spin':
    case 'ditto': {
      const model = shapes('policy');
      if (!model) return null;
      // Each batch holds the chosen and the rejected row of every pair.
      const e = training(model, 'lm', 2 * num(settings, 'batch'), num(settings, 'maxLength'));
      const lower = ['batch', 'maxLength', ...orLora];
      if (kind === 'dpo' || (kind === 'spin' && typeof settings.samples === 'string')) return { ...e, lower };
      // SPIN without a samples stage and DITTO draw n samples of every train prompt, DRAW_ROWS rows at a time.
      if (prompts === undefined) return null;
      const newTokens = num(settings, 'maxNewTokens');
      const sampling = { model, rows: Math.min(DRAW_ROWS, prompts.count * num(settings, 'n')), promptTokens: Math.min(prompts.longest, positionsOf(model) - newTokens), newTokens };
      const draw = estimate('sampling from the policy', [processPart(), weightsPart(model), ...samplerParts(sampling, 'policy', { weights: kind === 'ditto', scores: false })]);
      // DITTO keeps its trainer while it samples; SPIN samples first, then trains.
      const peak = kind === 'ditto' ? estimate(draw.phase, [...e.parts, ...draw.parts.slice(1)]) : draw.bytes > e.bytes ? draw : e;
      return { ...peak, lower: ['n', 'maxNewTokens', ...lower] };
    }
    case 'rl':
    case 'airl': {
      const model = shapes('policy');
      if (!model) return null;
      const newTokens = num(settings, 'maxNewTokens');
      const cap = typeof settings.maxPromptTokens === 'number' ? settings.maxPromptTokens : Infinity;
      const promptTokens = Math.min(prompts?.longest ?? CALIBRATION.promptTokens, cap, positionsOf(model) - newTokens);
      const rows = num(settings, 'promptsPerStep') * num(settings, 'k');
      const e = training(model, 'lm', rows, promptTokens + newTokens);
      const reward = kind === 'rl' ? shapes('reward') ?? model : model;
      const parts = [
        ...e.parts,
        // Each step samples from the current weights and scores with the policy and the reference.
        ...samplerParts({ model, rows, promptTokens, newTokens }, 'policy', { weights: true, scores: true }),
        generationSession(model, 'reference session'),
        generationSession(model, 'reference scoring session'),
        ...(settings.reference !== settings.policy ? [weightsPart(model, 'reference weights', "the reference model's weights")] : []),
        // rl's reward model, airl's discriminator: a scorer on its own backbone.
        weightsPart(reward, kind === 'rl' ? 'reward weights' : 'discriminator weights', kind === 'rl' ? "the reward model's weights" : "the discriminator's weights"),
        generationSession(reward, kind === 'rl' ? 'reward session' : 'discriminator session'),
      ];
      return { ...estimate(e.phase, parts), lower: ['promptsPerStep', 'k', 'maxNewTokens', 'maxPromptTokens', ...orLora] };
    }
    case 'pretrain': {
      const tok = shapes('tokenizer');
      if (!tok) return null;
      const e = trainingEstimate({ model: pretrainedShape(settings, tok), adaptation: { kind: 'full' }, objective: 'lm', rows: num(settings, 'batch'), tokens: num(settings, 'seq'), saves: true });
      return { ...estimate(e.phase, [...e.parts, weightsPart(tok, 'tokenizer model', "the tokenizer's model, loaded for its tokenizer")]), lower: ['batch', 'seq', 'dModel', 'layers'] };
    }
    case 'sample': {
      const model = shapes('model');
      if (!model) return null;
      const newTokens = num(settings, 'maxNewTokens');
      const promptTokens = Math.min(num(settings, 'maxPromptTokens'), positionsOf(model) - newTokens);
      return { ...samplingEstimate({ model, rows: num(settings, 'promptsPerChunk') * num(settings, 'n'), promptTokens, newTokens }), lower: ['promptsPerChunk', 'n', 'maxNewTokens', 'maxPromptTokens'] };
    }
    default:
      return null;
  }
}

/** Bytes as people read them: "2.4 GiB", "350 MiB". */
export const formatBytes = (bytes: number): string => (bytes >= 2 ** 30 ? `${(bytes / 2 ** 30).toFixed(1)} GiB` : `${Math.round(bytes / MiB)} MiB`);

/** A short reading of an estimate: "2.4 GiB (a training step: activations 1.6 GiB, frozen weights 1.3 GiB)". */
export function describeEstimate(e: MemoryEstimate): string {
  const top = [...e.parts].sort((a, b) => b.bytes - a.bytes).slice(0, 2).map((p) => `${p.name} ${formatBytes(p.bytes)}`);
  return `${formatBytes(e.bytes)} (${e.phase}: ${top.join(', ')})`;
}

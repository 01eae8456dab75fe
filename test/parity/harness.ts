// The training parity harness: our side trains through a stage's own training setup
// (sftTraining, scorerTraining, pairTraining, PolicyUpdate) and records what a second
// implementation needs to repeat it: the initial value of every trained tensor
// (safetensors), the rows of every step in order, and the stage's optimizer settings.
// test/python/train_parity.py trains the same thing in PyTorch from those files, and
// compareRuns says where the two disagree.

import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runPython } from '../python/oracle.ts';
import { exportHfModel } from '../../native-models/checkpoint/index.ts';
import { gpt2Defaults, gpt2Family } from '../../native-models/models/gpt2.ts';
import { llamaDefaults, llamaFamily } from '../../native-models/models/llama.ts';
import type { ModelFamily } from '../../native-models/models/family.ts';
import { fromFloat32, readSafetensors, toFloat32, writeSafetensors, type NamedTensor } from '../../native-models/runtime/safetensors.ts';
import { trainBpe, writeTokenizerFolder } from '../../native-models/tokenizer/bpe-trainer.ts';
import { Rng } from '../../native-models/train/rng.ts';
import type { Trainer } from '../../native-models/train/trainer.ts';
import type { Demonstration } from '../../main/stages/data.ts';
import type { Adaptation, Encoded } from '../../main/stages/lm.ts';
import type { StageContext } from '../../main/stages/stage.ts';

/** A stage context that keeps the metrics (per step: loss, grad_norm, ...) and discards the rest. */
export interface ParityContext extends StageContext {
  metrics: { step: number; values: Record<string, number> }[];
}

export function parityContext(dir: string, seed: number): ParityContext {
  const metrics: ParityContext['metrics'] = [];
  return {
    seed, dir, checkpoint: null, provider: 'cpu', threads: 1, signal: new AbortController().signal,
    stopRequested: () => false,
    data: () => Promise.reject(new Error('the parity harness passes data to the training setup directly')),
    progress: () => {},
    metric: (step, values) => void metrics.push({ step, values }),
    log: () => {},
    checkpointed: async () => {},
    metrics,
  };
}

// ---------------------------------------------------------------- the tiny world

export interface TinyWorld {
  /** Train demonstrations (toy prompts and replies). */
  demos: Demonstration[];
  gpt2: string;
  llama: string;
  /** A second Llama of the same shape and tokenizer: a reference that differs from the policy. */
  llamaReference: string;
}

/**
 * Random weights of a visible size: matrices N(0, 0.1^2) (a 0.02 init leaves the logits
 * nearly uniform and the gradients tiny), norm gains 1 + N(0, 0.2^2), biases N(0, 0.1^2).
 * Zero biases and unit gains would hide a weight decay applied to them.
 */
function randomWeights(shapes: ReadonlyMap<string, number[]>, rng: Rng): Map<string, Float32Array> {
  const out = new Map<string, Float32Array>();
  for (const [name, shape] of shapes) {
    const n = shape.reduce((a, b) => a * b, 1);
    const gain = shape.length === 1 && /(norm|ln_\d|ln_f)\.weight$/.test(name);
    out.set(name, Float32Array.from({ length: n }, () => (gain ? 1 + 0.2 * rng.normal() : 0.1 * rng.normal())));
  }
  return out;
}

async function writeModel<C>(dir: string, family: ModelFamily<C>, config: C, tokenizer: string, seed: number): Promise<void> {
  await exportHfModel(dir, { family, config, weights: randomWeights(family.paramShapes(config), new Rng(seed)), tokenizerFrom: tokenizer, baseConfig: { eos_token_id: 0 } });
}

const TOPICS = ['cats', 'rain', 'bread', 'music', 'trees', 'boats', 'stars', 'tea'];
const WORDS = ['the', 'a', 'is', 'very', 'good', 'small', 'big', 'red', 'old', 'new', 'and', 'we'];

/** Short prompts and replies of 2 to 8 words: rows of about 6 to 16 tokens, of varied lengths. */
function tinyDemonstrations(n: number, seed: number): Demonstration[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, (_, i) => {
    const topic = TOPICS[i % TOPICS.length];
    const words = Array.from({ length: 2 + rng.int(7) }, () => WORDS[rng.int(WORDS.length)]);
    return { prompt: i % 3 === 0 ? `Tell me about ${topic}.` : `${topic}?`, response: ` ${words.join(' ')}.` };
  });
}

/**
 * A byte-level BPE of about 300 tokens on the toy texts, a GPT-2 (biases, LayerNorm, tied
 * head) and two Llamas (grouped-query attention, RMSNorm, tied head, no biases), width 32,
 * two blocks, 32 positions.
 */
export async function tinyWorld(root: string): Promise<TinyWorld> {
  const demos = tinyDemonstrations(32, 3);
  const tokenizer = join(root, 'tokenizer');
  const bpe = trainBpe(demos.map((d) => d.prompt + d.response), { vocabSize: 320, specialTokens: ['<|endoftext|>'] });
  await writeTokenizerFolder(tokenizer, bpe, { modelMaxLength: 32 });
  const V = bpe.vocabSize;
  const gpt2 = gpt2Defaults({ vocabSize: V, nPositions: 32, nEmbd: 32, nLayer: 2, nHead: 2, nInner: 48 });
  const llama = llamaDefaults({ vocabSize: V, hiddenSize: 32, intermediateSize: 48, numLayers: 2, numHeads: 4, numKvHeads: 2, maxPositions: 32, tieWordEmbeddings: true });
  const world: TinyWorld = { demos, gpt2: join(root, 'gpt2'), llama: join(root, 'llama'), llamaReference: join(root, 'llama-reference') };
  await writeModel(world.gpt2, gpt2Family, gpt2, tokenizer, 11);
  await writeModel(world.llama, llamaFamily, llama, tokenizer, 12);
  await writeModel(world.llamaReference, llamaFamily, llama, tokenizer, 13);
  return world;
}

// ---------------------------------------------------------------- cases

export type Objective = 'sft' | 'dft' | 'bce' | 'bt' | 'dpo' | 'pg';

/** What one optimizer step trains on. `pairs` index into `rows` (chosen, rejected). */
export interface ParityStep {
  rows: Encoded[];
  labels?: number[];
  pairs?: [number, number][];
  rewards?: number[];
  /** Row indices of each micro-batch, when our side accumulated them. */
  micro?: number[][];
}

/** A case as the oracle reads it (test/python/train_parity.py documents each field's meaning). */
export interface ParityCase {
  name: string;
  model: string;
  reference?: string;
  objective: Objective;
  adaptation: Adaptation;
  /** The stage's parsed optimizer settings. */
  optimizer: { lr: number; warmup: number; weightDecay: number; clipNorm: number };
  /** The padding id of our batches (the oracle masks padding, so any id would do). */
  pad: number;
  beta?: number;
  k?: number;
  estimator?: 'rloo' | 'grpo';
  steps: ParityStep[];
  /** Deliberately wrong settings for the oracle to train with as well. */
  breaks?: string[];
}

/** What our side did: per-step loss and gradient norm, and the trained tensors at the end. */
export interface OurRun {
  losses: number[];
  gradNorms: number[];
  weights: Map<string, Float32Array>;
}

/** The oracle's run of a case (break null) or of a broken variant. */
export interface TheirRun {
  name: string;
  break: string | null;
  losses: number[];
  gradNorms: number[];
  lrs: number[];
  extra: Record<string, number[][]>;
  weights: Map<string, Float32Array>;
}

/** The stage optimizer settings out of a parsed stage config. */
export const optimizerOf = (config: Record<string, unknown>): ParityCase['optimizer'] => ({
  lr: config.lr as number, warmup: config.warmup as number, weightDecay: config.weightDecay as number, clipNorm: config.clipNorm as number,
});

/** Our run's per-step losses and gradient norms (from the metrics trainSteps reports) and the trainer's tensors. */
export function ourRun(ctx: ParityContext, trainer: Trainer, extra: Map<string, Float32Array> = new Map()): OurRun {
  return {
    losses: ctx.metrics.map((m) => m.values.loss),
    gradNorms: ctx.metrics.map((m) => m.values.grad_norm),
    weights: new Map([...trainer.parameters(), ...extra]),
  };
}

/**
 * Writes `init` (the initial value of every tensor the trainer trains: the trainer never
 * writes the arrays it was given, so this may come after training) next to the case, and
 * returns the case as the oracle reads it.
 */
export async function writeCase(dir: string, c: ParityCase, trainer: Trainer, init: ReadonlyMap<string, Float32Array>): Promise<Record<string, unknown>> {
  await mkdir(dir, { recursive: true });
  const tensors = new Map<string, NamedTensor>();
  for (const p of trainer.graphs.params) tensors.set(p.name, fromFloat32(Float32Array.from(init.get(p.name)!), p.shape));
  const initFile = join(dir, 'init.safetensors');
  await writeSafetensors(initFile, tensors);
  return { ...c, init: initFile, out: join(dir, 'torch.safetensors'), steps: c.steps.map((s) => ({ ...s, rows: s.rows.map((r) => ({ ids: r.ids, start: r.start })) })) };
}

/** Runs the oracle over every case (one Python process: importing torch is most of its time). */
export async function runOracle(dir: string, cases: Record<string, unknown>[], timeoutMs = 300_000): Promise<TheirRun[]> {
  const spec = join(dir, 'parity-spec.json');
  await writeFile(spec, JSON.stringify({ cases }));
  const stdout = runPython('train_parity.py', [spec], timeoutMs);
  const out: TheirRun[] = [];
  for (const line of stdout.trim().split('\n')) {
    const j = JSON.parse(line) as { name: string; break: string | null; losses: number[]; grad_norms: number[]; lrs: number[]; extra: Record<string, number[][]>; weights: string };
    const st = await readSafetensors(j.weights);
    out.push({ name: j.name, break: j.break, losses: j.losses, gradNorms: j.grad_norms, lrs: j.lrs, extra: j.extra, weights: new Map([...st.tensors].map(([k, t]) => [k, Float32Array.from(toFloat32(t))])) });
  }
  return out;
}

// ---------------------------------------------------------------- comparison

export interface Tolerance {
  /** Relative difference of each step's loss. */
  loss: number;
  /** Or absolute, for a loss that is a small difference of large terms (a policy gradient's). */
  lossAbs?: number;
  /** Relative difference of each step's gradient norm (before clipping). */
  gradNorm: number;
  /** Largest absolute difference of any trained value at the end. */
  weight: number;
  /**
   * Values whose gradient is zero in exact arithmetic, so that on both sides it is rounding
   * noise, which Adam's normalization turns into steps of up to the learning rate: they
   * are held to `bound` instead of `weight`.
   */
  noise?: { match: (name: string, index: number) => boolean; bound: number };
  /**
   * How many other values may exceed `weight`, each within `bound`: values whose gradient
   * is a sum of terms that cancel down to rounding, which no rule names in advance.
   */
  rare?: { count: number; bound: number };
}

export interface Comparison {
  maxLoss: number;
  maxGradNorm: number;
  maxWeight: number;
  /** Where the largest weight difference is. */
  worstWeight: string;
  /** One sentence per disagreement beyond the tolerance; empty when the runs agree. */
  failures: string[];
}

const rel = (a: number, b: number): number => Math.abs(a - b) / Math.max(Math.abs(b), 1e-12);

/** Compares our run with the oracle's step by step and tensor by tensor. */
export function compareRuns(ours: OurRun, theirs: TheirRun, tol: Tolerance): Comparison {
  const failures: string[] = [];
  if (ours.losses.length !== theirs.losses.length) failures.push(`${theirs.losses.length} steps in PyTorch, ${ours.losses.length} in ours`);
  let maxLoss = 0, maxGradNorm = 0, maxWeight = 0, worstWeight = '';
  for (let s = 0; s < Math.min(ours.losses.length, theirs.losses.length); s++) {
    const dl = rel(ours.losses[s], theirs.losses[s]), dg = rel(ours.gradNorms[s], theirs.gradNorms[s]);
    maxLoss = Math.max(maxLoss, dl);
    maxGradNorm = Math.max(maxGradNorm, dg);
    if (!(dl <= tol.loss) && !(Math.abs(ours.losses[s] - theirs.losses[s]) <= (tol.lossAbs ?? 0))) failures.push(`step ${s + 1}: loss ${ours.losses[s]} vs PyTorch ${theirs.losses[s]} (relative ${dl.toExponential(2)})`);
    if (!(dg <= tol.gradNorm)) failures.push(`step ${s + 1}: gradient norm ${ours.gradNorms[s]} vs PyTorch ${theirs.gradNorms[s]} (relative ${dg.toExponential(2)})`);
  }
  const over: string[] = [];
  for (const [name, t] of theirs.weights) {
    const o = ours.weights.get(name);
    if (!o || o.length !== t.length) {
      failures.push(`${name}: ${o ? `${o.length} values in ours, ${t.length} in PyTorch's` : 'not among our trained tensors'}`);
      continue;
    }
    let worst = 0, at = 0;
    for (let i = 0; i < t.length; i++) {
      const d = Math.abs(o[i] - t[i]);
      if (tol.noise?.match(name, i)) {
        if (!(d <= tol.noise.bound)) failures.push(`${name}[${i}] (a gradient of rounding noise) differs by ${d.toExponential(2)}, more than Adam's steps allow`);
        continue;
      }
      if (!(d <= tol.weight)) over.push(`${name}[${i}] by ${d.toExponential(2)}`);
      if (!(d <= worst)) [worst, at] = [d, i];
    }
    if (worst > maxWeight || Number.isNaN(worst)) [maxWeight, worstWeight] = [worst, `${name}[${at}]`];
  }
  const rare = tol.rare && over.length <= tol.rare.count && maxWeight <= tol.rare.bound;
  if (over.length > 0 && !rare) failures.push(`${over.length} final weight value(s) differ by more than ${tol.weight}: ${over.slice(0, 3).join(', ')}${over.length > 3 ? ', ...' : ''}`);
  return { maxLoss, maxGradNorm, maxWeight, worstWeight, failures };
}

// The training loop every training stage shares: resume from the stage's checkpoint,
// one optimizer step per batch, metrics and progress, a checkpoint every K steps and at
// a stop request. Batches are a function of the step index only, so a run resumed from
// any checkpoint takes exactly the steps an uninterrupted one would.
import { join } from 'node:path';
import * as T from '../../native-models/ir/index.ts';
import { adamw } from '../../native-models/optim/adamw.ts';
import { learningRate, type Schedule } from '../../native-models/optim/schedule.ts';
import { releaseBuffers } from '../../native-models/runtime/release.ts';
import { buildTrainStep } from '../../native-models/train/step.ts';
import { Trainer, type Feeds, type StepResult } from '../../native-models/train/trainer.ts';
import type { StageContext } from './stage.ts';
import { Rng } from '../../native-models/train/rng.ts';
import { shuffled, type TrainableModel } from './lm.ts';

export const CHECKPOINT_FILE = 'checkpoint.safetensors';

export interface TrainingSettings {
  steps: number;
  lr: number;
  /** Linear warm-up steps, then cosine decay to lr / 10. */
  warmupSteps: number;
  weightDecay: number;
  clipNorm: number;
  checkpointEvery: number;
  /** Micro-batches per optimizer step (default 1; see Trainer.step). */
  accumulation?: number;
}

/**
 * A stage's training, built and ready for trainSteps: its trainable model, trainer,
 * settings and step s's batch. Each training stage builds one in an exported function
 * that its `run` calls, so that the training parity tests (test/parity/) drive exactly
 * the stage's composition: loss, trainable/frozen split, optimizer, batches.
 */
export interface StageTraining {
  model: TrainableModel;
  /** The objective the trainer minimizes. */
  loss: T.Value;
  trainer: Trainer;
  settings: TrainingSettings;
  batch(step: number): Feeds | Promise<Feeds>;
}

/** A trainer for `loss` over a trainable model, with AdamW. */
export async function createTrainer(ctx: StageContext, model: TrainableModel, loss: T.Value, s: TrainingSettings, metrics: Record<string, T.Value> = {}): Promise<Trainer> {
  const graphs = buildTrainStep({ loss, metrics, trainable: model.trainable, frozen: model.frozen, optimizer: adamw({ weightDecay: s.weightDecay }), clipNorm: s.clipNorm, accumulation: s.accumulation });
  const trainer = await Trainer.create(graphs, model.init, { provider: ctx.provider, threads: ctx.threads, seed: ctx.seed, ...(model.external ? { externalData: model.external } : {}) });
  // The compiled sessions are all the trainer runs. The graphs' bytes hold every frozen
  // weight (LoRA's base model: 513 MiB for SmolLM2-135M), and would otherwise stay as long
  // as the trainer: freed now, they are not in the training's peak. (Only a buffer of its
  // own: a small message may be a view into a pool that other objects share.)
  const own = (b: Uint8Array): boolean => b.byteOffset === 0 && b.byteLength === b.buffer.byteLength;
  releaseBuffers([graphs.step, graphs.accumulate].flatMap((m) => (m && own(m.bytes) ? [m.bytes] : [])));
  return trainer;
}

/** The learning rate of every training stage: linear warm-up over warmupSteps, then cosine decay towards lr / 10. */
export const stageSchedule = (s: TrainingSettings): Schedule => ({ kind: 'cosine', lr: s.lr, warmupSteps: s.warmupSteps, totalSteps: s.steps, minLr: s.lr / 10 });

/**
 * Runs steps until `s.steps`, from the checkpoint when there is one. Returns 'stopped'
 * when a stop was asked (after writing a checkpoint), 'done' otherwise.
 */
export async function trainSteps(
  ctx: StageContext,
  trainer: Trainer,
  s: TrainingSettings,
  batch: (step: number) => Feeds | Promise<Feeds>,
  onStep?: (r: StepResult) => void | Promise<void>,
): Promise<'done' | 'stopped'> {
  if (ctx.checkpoint !== null) await trainer.load(ctx.checkpoint);
  const file = join(ctx.dir, CHECKPOINT_FILE);
  let saved = trainer.stepCount;
  const save = async (): Promise<void> => {
    if (saved === trainer.stepCount) return;
    await trainer.save(file);
    saved = trainer.stepCount;
    await ctx.checkpointed(file, saved);
  };
  const schedule = stageSchedule(s);
  ctx.progress(trainer.stepCount, s.steps, 'steps');
  while (trainer.stepCount < s.steps) {
    if (ctx.stopRequested()) {
      await save();
      return 'stopped';
    }
    const step = trainer.stepCount;
    const r = await trainer.step(await batch(step), learningRate(schedule, step));
    ctx.metric(r.step, { loss: r.loss, grad_norm: r.gradNorm, ...r.metrics });
    ctx.progress(r.step, s.steps, 'steps');
    await onStep?.(r);
    if (r.step % s.checkpointEvery === 0 && r.step < s.steps) await save();
  }
  return 'done';
}

/**
 * The batches of every epoch, from the stage's seed: step s trains on batches[s]. With
 * `length`, rows are drawn in a shuffled order, sorted by length within pools of 16
 * batches, and the pool's batches shuffled again: batches of similar lengths waste less
 * on padding (right padding costs as much compute as real tokens), the order stays random.
 */
export function epochBatches(n: number, batch: number, epochs: number, seed: number, length?: (row: number) => number): number[][] {
  const out: number[][] = [];
  for (let e = 0; e < epochs; e++) {
    const rng = new Rng(seed * 1009 + e);
    const order = shuffled(n, rng);
    if (length === undefined) {
      for (let i = 0; i < n; i += batch) out.push(order.slice(i, i + batch));
      continue;
    }
    const epoch: number[][] = [];
    const pool = 16 * batch;
    for (let p = 0; p < n; p += pool) {
      const sorted = order.slice(p, p + pool).sort((a, b) => length(a) - length(b) || a - b);
      for (let i = 0; i < sorted.length; i += batch) epoch.push(sorted.slice(i, i + batch));
    }
    for (const i of shuffled(epoch.length, rng)) out.push(epoch[i]);
  }
  return out;
}

// The training loop every training stage shares: resume from the stage's checkpoint,
// one optimizer step per batch, metrics and progress, a checkpoint every K steps and at
// a stop request. Batches are a function of the step index only, so a run resumed from
// any checkpoint takes exactly the steps an uninterrupted one would.
import { join } from 'node:path';
import * as T from '../../native-models/ir/index.ts';
import { adamw } from '../../native-models/optim/adamw.ts';
import { learningRate } from '../../native-models/optim/schedule.ts';
import { buildTrainStep } from '../../native-models/train/step.ts';
import { Trainer, type Feeds, type StepResult } from '../../native-models/train/trainer.ts';
import type { StageContext } from './stage.ts';
import type { TrainableModel } from './lm.ts';

export const CHECKPOINT_FILE = 'checkpoint.safetensors';

export interface TrainingSettings {
  steps: number;
  lr: number;
  /** Linear warm-up steps, then cosine decay to lr / 10. */
  warmupSteps: number;
  weightDecay: number;
  clipNorm: number;
  checkpointEvery: number;
}

/** A trainer for `loss` over a trainable model, with AdamW. */
export async function createTrainer(ctx: StageContext, model: TrainableModel, loss: T.Value, s: TrainingSettings, metrics: Record<string, T.Value> = {}): Promise<Trainer> {
  const graphs = buildTrainStep({ loss, metrics, trainable: model.trainable, frozen: model.frozen, optimizer: adamw({ weightDecay: s.weightDecay }), clipNorm: s.clipNorm });
  return Trainer.create(graphs, model.init, { provider: ctx.provider, threads: ctx.threads, seed: ctx.seed });
}

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
  const schedule = { kind: 'cosine' as const, lr: s.lr, warmupSteps: s.warmupSteps, totalSteps: s.steps, minLr: s.lr / 10 };
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

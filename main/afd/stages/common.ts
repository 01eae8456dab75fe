// Settings several stages share, parsed in one place so they mean the same everywhere.
import type { JsonObject } from '../../../db/json.ts';
import { integer, number, oneOf, text } from '../../jobs/config.ts';
import { meanCI } from '../../eval/stats.ts';
import type { Adaptation } from '../lm.ts';
import type { RewardFunction } from '../reward-function.ts';
import type { StageContext } from '../stage.ts';
import type { TrainingSettings } from '../training.ts';

/** `full` fine-tuning or `lora` adapters (rank, alpha). */
export function adaptation(raw: JsonObject): Adaptation {
  const kind = oneOf(raw, 'adaptation', ['full', 'lora'] as const, 'full');
  return kind === 'full' ? { kind } : { kind, rank: integer(raw, 'loraRank', 8, 1, 1024), alpha: number(raw, 'loraAlpha', 16, 0, 1e6) };
}

export function adaptationSettings(a: Adaptation): JsonObject {
  return a.kind === 'full' ? { adaptation: 'full' } : { adaptation: 'lora', loraRank: a.rank, loraAlpha: a.alpha };
}

/** Optimizer settings with a stage's own defaults, as stored in its config. */
export function trainingConfig(raw: JsonObject, defaults: { lr: number; weightDecay?: number }): JsonObject {
  return {
    lr: number(raw, 'lr', defaults.lr, 0, 10),
    /** Fraction of the steps spent warming up linearly (then cosine decay to lr / 10). */
    warmup: number(raw, 'warmup', 0.05, 0, 1),
    weightDecay: number(raw, 'weightDecay', defaults.weightDecay ?? 0, 0, 10),
    clipNorm: number(raw, 'clipNorm', 1, 0, 1e6),
    checkpointEvery: integer(raw, 'checkpointEvery', 50, 1),
  };
}

/** The settings of a parsed config for a run of `steps` steps. */
export function trainingSettings(config: JsonObject, steps: number): TrainingSettings {
  const n = (k: string): number => config[k] as number;
  return { steps, lr: n('lr'), warmupSteps: Math.ceil(n('warmup') * steps), weightDecay: n('weightDecay'), clipNorm: n('clipNorm'), checkpointEvery: n('checkpointEvery') };
}

/** What every stage that trains over epochs of encoded rows has: epochs, batch, maxLength
 *  (tokens per row), adaptation and optimizer, with the stage's own defaults. */
export function epochTrainingConfig(raw: JsonObject, defaults: { epochs: number; maxLength: number; lr: number }): JsonObject & { epochs: number; batch: number; maxLength: number } {
  return {
    epochs: integer(raw, 'epochs', defaults.epochs, 1, 1000),
    batch: integer(raw, 'batch', 8, 1, 4096),
    maxLength: integer(raw, 'maxLength', defaults.maxLength, 8, 1 << 20),
    ...adaptationSettings(adaptation(raw)),
    ...trainingConfig(raw, { lr: defaults.lr }),
  };
}

/** A stage id naming an input (default: `fallback`). */
export const ref = (raw: JsonObject, field: string, fallback?: string): string => text(raw, field, fallback);

export function refs(raw: JsonObject, field: string): string[] {
  const v = raw[field];
  if (typeof v === 'string') return [v];
  if (!Array.isArray(v) || v.length === 0 || v.some((x) => typeof x !== 'string')) throw new Error(`${field} must be a stage id or a list of stage ids, not ${JSON.stringify(v ?? null)}.`);
  return v as string[];
}

/** A 32-bit hash of small integers (FNV-1a over words, then an avalanche): distinct seeds for distinct tuples. */
export function mixSeed(...xs: number[]): number {
  let h = 0x811c9dc5;
  for (const x of xs) {
    h = Math.imul(h ^ (x >>> 0), 0x01000193) >>> 0;
    h = Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) >>> 0;
  }
  h = Math.imul(h ^ (h >>> 12), 0x297a2d39) >>> 0;
  return (h ^ (h >>> 15)) >>> 0;
}

/** How many evaluation demonstrations a training-free reward scores as a check. */
const CHECK_ITEMS = 64;

/**
 * A training-free reward (density ratio, endogenous) scores the first evaluation
 * demonstrations as a check: the mean is logged with its 95% interval and stored as the
 * metric eval_demo_reward_mean; the reward is released either way. Returns the mean, or
 * null without evaluation demonstrations.
 */
export async function checkOnDemonstrations(ctx: StageContext, reward: RewardFunction, what: string): Promise<number | null> {
  let check: number[];
  try {
    const demos = (await ctx.data()).eval.slice(0, CHECK_ITEMS);
    check = await reward.score(demos, (done, total) => ctx.progress(done, total, 'items'));
  } finally {
    await reward.release();
  }
  if (check.length === 0) return null;
  const m = meanCI(check);
  ctx.metric(0, { eval_demo_reward_mean: m.mean });
  ctx.log(`${what} on ${m.n} evaluation demonstrations: mean ${m.mean.toFixed(3)} (95% CI ${m.ci95[0].toFixed(3)} to ${m.ci95[1].toFixed(3)})`);
  return m.mean;
}

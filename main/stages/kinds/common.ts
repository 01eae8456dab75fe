// Settings several stages share, parsed in one place so they mean the same everywhere.
import Type, { type TObject, type TProperties } from 'typebox';
import type { JsonObject } from '../../../db/json.ts';
import { meanCI } from '../../eval/stats.ts';
import { described, integer, number, oneOf, text } from '../../schema/fields.ts';
import { parseObject } from '../../schema/parse.ts';
import type { Adaptation } from '../lm.ts';
import type { RewardFunction } from '../reward-function.ts';
import type { StageContext } from '../stage.ts';
import type { TrainingSettings } from '../training.ts';

/** A stage's settings: a strict object, so that a misspelt setting is refused, not ignored. */
export const settingsSchema = <P extends TProperties>(properties: P) => Type.Object(properties, { additionalProperties: false });

/** `raw` parsed by a stage's settings schema; errors name `where` (default "the <kind> stage"). */
export function parseSettings<S extends TObject>(kind: string, schema: S, raw: JsonObject, where: string | undefined): Type.Static<S> {
  return parseObject(schema, raw, { where: where ?? `the ${kind} stage`, noun: 'setting' });
}

/** A stage id naming an input (default: `fallback`). */
export const ref = (fallback?: string) => text(fallback === undefined ? {} : { default: fallback });

/** One stage id or a list of them (parsed into a list by `refList`). */
export const refs = () => described(Type.Union([text(), Type.Array(text(), { minItems: 1 })]), 'a stage id or a list of stage ids');
export const refList = (v: string | string[]): string[] => (typeof v === 'string' ? [v] : v);

/** `full` fine-tuning or `lora` adapters; rank and alpha are kept only for lora (see withAdaptation). */
export const ADAPTATION = {
  adaptation: oneOf(['full', 'lora'], { default: 'full' }),
  loraRank: Type.Optional(integer(1, 1024, { description: 'LoRA rank (default 8)' })),
  loraAlpha: Type.Optional(number(0, 1e6, { description: 'LoRA alpha (default 16)' })),
};

export type AdaptationFields = { adaptation: 'full' | 'lora'; loraRank?: number; loraAlpha?: number };

/** Parsed settings with lora's rank and alpha filled in, or dropped under full fine-tuning
 *  (as stored by every run so far, so that their settings still match). */
export function withAdaptation<T extends AdaptationFields>(c: T): T {
  const { loraRank, loraAlpha, ...rest } = c;
  return (c.adaptation === 'full' ? rest : { ...rest, loraRank: loraRank ?? 8, loraAlpha: loraAlpha ?? 16 }) as T;
}

/** Parsed settings whose `reference` defaults to their `policy` (dpo, spin, ditto, rl, airl), lora's settings settled. */
export function withReference<T extends AdaptationFields & { policy: string; reference?: string }>(c: T): T & { reference: string } {
  return withAdaptation({ ...c, reference: c.reference ?? c.policy });
}

/** The adaptation of parsed settings. */
export function adaptation(config: JsonObject): Adaptation {
  return config.adaptation === 'lora' ? { kind: 'lora', rank: config.loraRank as number, alpha: config.loraAlpha as number } : { kind: 'full' };
}

/** Optimizer settings with a stage's own defaults. */
export function training(defaults: { lr: number; weightDecay?: number }) {
  return {
    lr: number(0, 10, { default: defaults.lr }),
    /** Fraction of the steps spent warming up linearly (then cosine decay to lr / 10). */
    warmup: number(0, 1, { default: 0.05 }),
    weightDecay: number(0, 10, { default: defaults.weightDecay ?? 0 }),
    clipNorm: number(0, 1e6, { default: 1 }),
    checkpointEvery: integer(1, undefined, { default: 50 }),
  };
}

/** The settings of a parsed config for a run of `steps` steps. */
export function trainingSettings(config: JsonObject, steps: number): TrainingSettings {
  const n = (k: string): number => config[k] as number;
  return { steps, lr: n('lr'), warmupSteps: Math.ceil(n('warmup') * steps), weightDecay: n('weightDecay'), clipNorm: n('clipNorm'), checkpointEvery: n('checkpointEvery') };
}

/** What every stage that trains over epochs of encoded rows has: epochs, batch, maxLength
 *  (tokens per row), adaptation and optimizer, with the stage's own defaults. */
export function epochTraining(defaults: { epochs: number; maxLength: number; lr: number }) {
  return {
    epochs: integer(1, 1000, { default: defaults.epochs }),
    batch: integer(1, 4096, { default: 8 }),
    maxLength: integer(8, 1 << 20, { default: defaults.maxLength }),
    ...ADAPTATION,
    ...training({ lr: defaults.lr }),
  };
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

/** The stage's provider and threads, as Generator.create takes them (threads absent: ONNX Runtime's default). */
export function generatorRuntime(ctx: StageContext): { provider: StageContext['provider']; threads?: number } {
  return { provider: ctx.provider, ...(ctx.threads ? { threads: ctx.threads } : {}) };
}

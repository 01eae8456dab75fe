// Job kind `train-tiny-lm`: trains the tiny GPT of native-models/train/tiny-lm.ts on a
// small synthetic corpus for N steps, with a checkpoint every K steps. Batches are random
// windows drawn from the trainer's RNG, which the checkpoint saves, so a run resumed from
// any checkpoint ends bit for bit where an uninterrupted run with the same seed does.
// A demonstration of the runner, and the shape the AfD training stages will take.
import type { JsonObject } from '../../db/json.ts';
import { MetricStore } from '../../db/metrics.ts';
import Type from 'typebox';
import { integer, number, oneOf } from '../schema/fields.ts';
import { configSchema, parseConfig } from './config.ts';
import type { JobKind } from './kind.ts';

export const CHECKPOINT_FILE = 'checkpoint.safetensors';
const PROVIDERS = ['cpu', 'webgpu', 'cuda'] as const;

export type TrainTinyConfig = {
  steps: number;
  checkpointEvery: number;
  seed: number;
  lr: number;
  batch: number;
  provider: (typeof PROVIDERS)[number];
  /** ORT intra-op threads; part of the config because it can change the last bits. */
  threads: number;
  model: { vocabSize: number; nPositions: number; nEmbd: number; nLayer: number; nHead: number };
};

const CONFIG = configSchema({
  steps: integer(1),
  checkpointEvery: Type.Optional(integer(1, undefined, { description: 'default: a tenth of the steps' })),
  seed: integer(0, 2 ** 32 - 1, { default: 0 }),
  lr: number(0, 10, { default: 3e-3 }),
  batch: integer(1, 4096, { default: 4 }),
  provider: oneOf([...PROVIDERS], { default: 'cpu' }),
  threads: integer(1, 1024, { default: 1 }),
  model: Type.Object({
    vocabSize: integer(2, 1 << 20, { default: 64 }),
    nPositions: integer(1, 1 << 16, { default: 32 }),
    nEmbd: integer(1, 1 << 14, { default: 64 }),
    nLayer: integer(1, 256, { default: 2 }),
    nHead: integer(1, 256, { default: 4 }),
  }, { additionalProperties: false, default: {}, must: 'an object' }),
});

export const trainTinyLm: JobKind<TrainTinyConfig> = {
  name: 'train-tiny-lm',
  summary: 'train the built-in tiny GPT on a synthetic corpus (a demonstration job)',
  worker: new URL('./train-tiny-lm.worker.ts', import.meta.url),
  resume: 'checkpoint',
  pausable: true,

  parseConfig(raw: JsonObject): TrainTinyConfig {
    const c = parseConfig('train-tiny-lm', CONFIG, raw);
    if (c.model.nEmbd % c.model.nHead !== 0) throw new Error(`model.nEmbd (${c.model.nEmbd}) must be a multiple of model.nHead (${c.model.nHead}).`);
    return { ...c, checkpointEvery: c.checkpointEvery ?? Math.max(1, Math.ceil(c.steps / 10)) };
  },

  device: (config) => (config.provider === 'cpu' ? 'cpu' : 'gpu'),

  // The final loss comes from the store, which holds every step a checkpoint covers (the
  // worker flushes before each save): a run resumed from its final checkpoint takes no
  // step, so its worker cannot know it.
  finish({ db, run }, _config, result) {
    const losses = new MetricStore(db).series(run.id, 'loss');
    return { ...result, finalLoss: losses.at(-1)?.value ?? null };
  },
};

// Job kind `train-tiny-lm`: trains the tiny GPT of native-models/train/tiny-lm.ts on a
// small synthetic corpus for N steps, with a checkpoint every K steps. Batches are random
// windows drawn from the trainer's RNG, which the checkpoint saves, so a run resumed from
// any checkpoint ends bit for bit where an uninterrupted run with the same seed does.
// A demonstration of the runner, and the shape the AfD training stages will take.
import type { JsonObject } from '../../db/json.ts';
import { MetricStore } from '../../db/metrics.ts';
import { integer, number, object, oneOf } from './config.ts';
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

export const trainTinyLm: JobKind<TrainTinyConfig> = {
  name: 'train-tiny-lm',
  summary: 'train the built-in tiny GPT on a synthetic corpus (a demonstration job)',
  worker: new URL('./train-tiny-lm.worker.ts', import.meta.url),
  resume: 'checkpoint',
  pausable: true,

  parseConfig(raw: JsonObject): TrainTinyConfig {
    const steps = integer(raw, 'steps', undefined, 1);
    const m = object(raw, 'model');
    const model = {
      vocabSize: integer(m, 'vocabSize', 64, 2, 1 << 20),
      nPositions: integer(m, 'nPositions', 32, 1, 1 << 16),
      nEmbd: integer(m, 'nEmbd', 64, 1, 1 << 14),
      nLayer: integer(m, 'nLayer', 2, 1, 256),
      nHead: integer(m, 'nHead', 4, 1, 256),
    };
    if (model.nEmbd % model.nHead !== 0) throw new Error(`model.nEmbd (${model.nEmbd}) must be a multiple of model.nHead (${model.nHead}).`);
    return {
      steps,
      checkpointEvery: integer(raw, 'checkpointEvery', Math.max(1, Math.ceil(steps / 10)), 1),
      seed: integer(raw, 'seed', 0, 0, 2 ** 32 - 1),
      lr: number(raw, 'lr', 3e-3, 0, 10),
      batch: integer(raw, 'batch', 4, 1, 4096),
      provider: oneOf(raw, 'provider', PROVIDERS, 'cpu'),
      threads: integer(raw, 'threads', 1, 1, 1024),
      model,
    };
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

// A tiny GPT trained for a few steps on one fixed batch: the engine's self-check, used by
// `afd doctor` and the tests. On one batch the loss of a working engine falls fast.

import ort from 'onnxruntime-node';
import { gpt2Defaults, gpt2Init, gpt2NextTokenLoss, gpt2ParamShapes, type Gpt2Config } from '../models/gpt2.ts';
import { adamw } from '../optim/adamw.ts';
import { Rng } from './rng.ts';
import { buildTrainStep } from './step.ts';
import { Trainer, type StepResult } from './trainer.ts';

export interface TinyLmOptions {
  steps?: number;
  provider?: 'cpu' | 'webgpu' | 'cuda';
  threads?: number;
  seed?: number;
  lr?: number;
  config?: Partial<Gpt2Config>;
  batch?: number;
  onStep?: (r: StepResult) => void;
}

export const tinyLmConfig = (c: Partial<Gpt2Config> = {}): Gpt2Config =>
  gpt2Defaults({ vocabSize: 64, nPositions: 32, nEmbd: 64, nLayer: 2, nHead: 4, ...c });

export const parameterCount = (c: Gpt2Config): number =>
  [...gpt2ParamShapes(c).values()].reduce((s, shape) => s + shape.reduce((a, b) => a * b, 1), 0);

/** The language-model training step of a GPT-2 config (mean next-token cross-entropy), as a trainer. */
export function gptTrainer(c: Gpt2Config, opts: { provider?: 'cpu' | 'webgpu' | 'cuda'; threads?: number; seed?: number }): Promise<Trainer> {
  const { loss, params } = gpt2NextTokenLoss(c);
  const graphs = buildTrainStep({ loss, trainable: [...params.values()], optimizer: adamw({ beta2: 0.95, weightDecay: 0.1 }), clipNorm: 1 });
  return Trainer.create(graphs, gpt2Init(c, new Rng(opts.seed ?? 0)), opts);
}

/** One batch of random token sequences; targets are the inputs shifted by one. */
export function randomLmBatch(c: Gpt2Config, batch: number, rng: Rng): Record<string, ort.Tensor> {
  const t = c.nPositions;
  const seq = BigInt64Array.from({ length: batch * (t + 1) }, () => BigInt(rng.int(c.vocabSize)));
  const tokens = new BigInt64Array(batch * t), targets = new BigInt64Array(batch * t);
  for (let b = 0; b < batch; b++) {
    tokens.set(seq.subarray(b * (t + 1), b * (t + 1) + t), b * t);
    targets.set(seq.subarray(b * (t + 1) + 1, (b + 1) * (t + 1)), b * t);
  }
  return { tokens: new ort.Tensor('int64', tokens, [batch, t]), targets: new ort.Tensor('int64', targets, [batch, t]) };
}

export async function trainTinyLm(opts: TinyLmOptions = {}): Promise<{ losses: number[]; config: Gpt2Config; params: number; ms: number }> {
  const c = tinyLmConfig(opts.config);
  const trainer = await gptTrainer(c, opts);
  const batch = randomLmBatch(c, opts.batch ?? 4, new Rng((opts.seed ?? 0) + 1));
  const losses: number[] = [];
  const t0 = performance.now();
  try {
    for (let i = 0; i < (opts.steps ?? 20); i++) {
      const r = await trainer.step(batch, opts.lr ?? 3e-3);
      losses.push(r.loss);
      opts.onStep?.(r);
    }
  } finally {
    await trainer.release();
  }
  return { losses, config: c, params: parameterCount(c), ms: performance.now() - t0 };
}

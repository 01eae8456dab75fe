// The worker side of `train-tiny-lm` (see train-tiny-lm.ts).
import { join } from 'node:path';
import { TokenStream } from '../../native-models/train/lm-data.ts';
import { Rng } from '../../native-models/train/rng.ts';
import { gptTrainer, parameterCount, tinyLmConfig } from '../../native-models/train/tiny-lm.ts';
import type { WorkerRun } from './kind.ts';
import type { TrainTinyConfig } from './train-tiny-lm.ts';
import { CHECKPOINT_FILE } from './train-tiny-lm.ts';

/** A learnable synthetic corpus, the same for a seed on every attempt: counting
 *  sequences (start, start + stride, ...) modulo the vocabulary, so that the loss falls
 *  well below that of random tokens (ln vocab) as the model learns to continue them. */
function corpus(vocabSize: number, seed: number): TokenStream {
  const rng = new Rng(seed ^ 0x5eed);
  const eos = vocabSize - 1;
  const docs = Array.from({ length: 256 }, () => {
    const start = rng.int(eos), stride = 1 + rng.int(3), length = 16 + rng.int(48);
    return Array.from({ length }, (_, i) => (start + i * stride) % eos);
  });
  return new TokenStream(docs, eos);
}

export const run: WorkerRun<TrainTinyConfig> = async (ctx) => {
  const cfg = ctx.config;
  const model = tinyLmConfig(cfg.model);
  const data = corpus(model.vocabSize, cfg.seed);
  const trainer = await gptTrainer(model, { provider: cfg.provider, threads: cfg.threads, seed: cfg.seed });
  try {
    if (ctx.checkpoint !== null) await trainer.load(ctx.checkpoint);
    ctx.started({ provider: trainer.provider, step: trainer.stepCount });
    ctx.progress(trainer.stepCount, cfg.steps);
    const file = join(ctx.runDir, CHECKPOINT_FILE);
    let saved = trainer.stepCount;
    const save = async (): Promise<void> => {
      if (saved === trainer.stepCount) return;
      await ctx.flush(); // the store has this step's metrics before the checkpoint exists
      await trainer.save(file);
      saved = trainer.stepCount;
      ctx.checkpointWritten(file, saved);
    };
    while (trainer.stepCount < cfg.steps) {
      if (ctx.stopRequested !== null) {
        await save();
        return { status: 'stopped', step: trainer.stepCount };
      }
      // Windows drawn from the trainer's RNG, which checkpoints save and restore.
      const r = await trainer.step(data.randomBatch(cfg.batch, model.nPositions, trainer.rng), cfg.lr);
      ctx.metric(r.step, { loss: r.loss, grad_norm: r.gradNorm, ...r.metrics });
      ctx.progress(r.step, cfg.steps);
      if (r.step % cfg.checkpointEvery === 0) await save();
    }
    await save();
    return { status: 'done', result: { steps: trainer.stepCount, params: parameterCount(model) } };
  } finally {
    await trainer.release();
  }
};

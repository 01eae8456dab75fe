// Stage `sft`: supervised fine-tuning = forward KL to the demonstrator (DESIGN.md §2.1).
// Cross-entropy on the response tokens of the train demonstrations only; the prompt's
// tokens are context, never targets.
import type { JsonObject } from '../../../db/json.ts';
import { sftLoss } from '../../../native-models/objectives/losses.ts';
import { Rng } from '../../../native-models/train/rng.ts';
import { integer } from '../../jobs/config.ts';
import { encodePair, loadModel, saveModel, sequenceFeeds, sequenceInputs, shuffled, trainableModel, type Encoded } from '../lm.ts';
import { modelDir, one, writeArtifactDetails, type Stage } from '../stage.ts';
import { createTrainer, trainSteps } from '../training.ts';
import { adaptation, adaptationSettings, ref, trainingConfig, trainingSettings } from './common.ts';
import { join } from 'node:path';

export type SftConfig = JsonObject & { model: string; epochs: number; batch: number; maxLength: number };

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

export const sftStage: Stage<SftConfig> = {
  kind: 'sft',
  summary: 'supervised fine-tuning on the demonstrations (response tokens only)',
  produces: 'model',
  inputs: { model: { types: ['model'] } },

  parse(raw) {
    return {
      model: ref(raw, 'model', 'pi0'),
      epochs: integer(raw, 'epochs', 2, 1, 1000),
      batch: integer(raw, 'batch', 8, 1, 4096),
      maxLength: integer(raw, 'maxLength', 384, 8, 1 << 20),
      ...adaptationSettings(adaptation(raw)),
      ...trainingConfig(raw, { lr: 3e-4 }),
    };
  },

  async run(ctx, config, inputs) {
    const model = await loadModel(modelDir(one(inputs, 'model')));
    const demos = (await ctx.data()).train;
    const maxLength = Math.min(config.maxLength, model.maxLength);
    const rows: Encoded[] = demos.map((d) => encodePair(model, d.prompt, d.response, maxLength));
    const batches = epochBatches(rows.length, config.batch, config.epochs, ctx.seed, (i) => rows[i].ids.length);
    const settings = trainingSettings(config, batches.length);
    const tm = trainableModel(model, adaptation(config), new Rng(ctx.seed));
    const x = sequenceInputs();
    const { logits } = model.family.forward(model.config, tm.params, { tokens: x.tokens, ...(tm.loraScale === undefined ? {} : { loraScale: tm.loraScale }) });
    const trainer = await createTrainer(ctx, tm, sftLoss(logits, x.targets, x.mask), settings);
    try {
      const status = await trainSteps(ctx, trainer, settings, (s) => sequenceFeeds(batches[s].map((i) => rows[i]), model.eosId));
      if (status === 'stopped') return { status, step: trainer.stepCount };
      await saveModel(join(ctx.dir, 'model'), model, tm.weights(trainer.parameters()));
    } finally {
      await trainer.release();
    }
    await writeArtifactDetails(ctx.dir, { type: 'model', from: 'sft' });
    return { status: 'done', summary: { steps: batches.length, examples: rows.length } };
  },
};

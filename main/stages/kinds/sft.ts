// Stage `sft`: supervised fine-tuning = forward KL to the demonstrator (DESIGN.md §2.1).
// Cross-entropy on the response tokens of the train demonstrations only; the prompt's
// tokens are context, never targets. `loss: dft` is dynamic fine-tuning (Wu et al. 2025;
// docs/methods.md): each token's cross-entropy weighted by its own probability.
import type { JsonObject } from '../../../db/json.ts';
import { dftLoss, sftLoss } from '../../../native-models/objectives/losses.ts';
import { Rng } from '../../../native-models/train/rng.ts';
import type { Demonstration } from '../data.ts';
import { encodePair, loadModel, saveModel, sequenceFeeds, sequenceInputs, trainableModel, type Encoded, type LoadedModel } from '../lm.ts';
import { modelDir, one, writeArtifactDetails, type Stage, type StageContext } from '../stage.ts';
import { createTrainer, epochBatches, trainSteps, type StageTraining } from '../training.ts';
import Type from 'typebox';
import { oneOf } from '../../schema/fields.ts';
import { adaptation, epochTraining, parseSettings, ref, settingsSchema, trainingSettings, withAdaptation } from './common.ts';
import { join } from 'node:path';

/** The per-token objective: plain negative log-likelihood, or DFT's probability-weighted one. */
export type SftLossKind = 'nll' | 'dft';

/** `loss` is present only when it is 'dft' (see parse). */
export type SftConfig = JsonObject & { model: string; epochs: number; batch: number; maxLength: number; loss?: SftLossKind };

/** The sft stage's training: step s trains on rows[batches[s]] (the demonstrations encoded, in epochs of seeded batches). */
export async function sftTraining(ctx: StageContext, config: SftConfig, model: LoadedModel, demos: readonly Demonstration[]): Promise<StageTraining & { rows: Encoded[]; batches: number[][] }> {
  const maxLength = Math.min(config.maxLength, model.maxLength);
  const rows: Encoded[] = demos.map((d) => encodePair(model, d.prompt, d.response, maxLength));
  const batches = epochBatches(rows.length, config.batch, config.epochs, ctx.seed, (i) => rows[i].ids.length);
  const settings = trainingSettings(config, batches.length);
  const tm = trainableModel(model, adaptation(config), new Rng(ctx.seed));
  const x = sequenceInputs();
  const { logits } = model.family.forward(model.config, tm.params, { tokens: x.tokens, ...(tm.loraScale === undefined ? {} : { loraScale: tm.loraScale }) });
  const dft = config.loss === 'dft';
  const loss = dft ? dftLoss(logits, x.targets, x.mask) : sftLoss(logits, x.targets, x.mask);
  // Under DFT the loss is no longer the likelihood; the NLL stays visible beside it.
  const trainer = await createTrainer(ctx, tm, loss, settings, dft ? { nll: sftLoss(logits, x.targets, x.mask) } : {});
  return { model: tm, loss, trainer, settings, rows, batches, batch: (s) => sequenceFeeds(batches[s].map((i) => rows[i]), model.eosId) };
}

const SETTINGS = settingsSchema({
  model: ref('pi0'),
  ...epochTraining({ epochs: 2, maxLength: 384, lr: 3e-4 }),
  loss: Type.Optional(oneOf(['nll', 'dft'], { description: 'nll (default) or dft' })),
});

export const sftStage: Stage<SftConfig> = {
  kind: 'sft',
  summary: 'supervised fine-tuning on the demonstrations (response tokens only)',
  produces: 'model',
  inputs: { model: { types: ['model'] } },

  settings: SETTINGS,
  parse(raw, where) {
    const { loss, ...rest } = withAdaptation(parseSettings('sft', SETTINGS, raw, where));
    // Absent for the default, so that SFT runs stored before the option existed still
    // match their definition (staleness compares parsed settings).
    return { ...rest, ...(loss === 'dft' ? { loss } : {}) };
  },

  async run(ctx, config, inputs) {
    const model = await loadModel(modelDir(one(inputs, 'model')));
    const t = await sftTraining(ctx, config, model, (await ctx.data()).train);
    try {
      const status = await trainSteps(ctx, t.trainer, t.settings, t.batch);
      if (status === 'stopped') return { status, step: t.trainer.stepCount };
      await saveModel(join(ctx.dir, 'model'), model, t.model.weights(t.trainer.parameters()));
    } finally {
      await t.trainer.release();
    }
    await writeArtifactDetails(ctx.dir, { type: 'model', from: 'sft', ...(config.loss === undefined ? {} : { loss: config.loss }) });
    return { status: 'done', summary: { steps: t.batches.length, examples: t.rows.length } };
  },
};

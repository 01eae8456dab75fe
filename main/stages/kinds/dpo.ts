// Stage `dpo` (baseline, DESIGN.md §2.7): Direct Preference Optimization on the train
// prompts' chosen/rejected pairs. The reference's log-probabilities never change, so they
// are computed once up front (Generator.score) and fed to the graph as inputs; the graph
// computes the policy's log-probabilities of both responses of each pair in one batch
// (chosen rows first, then rejected) and the DPO loss over them. SPIN (spin.ts) runs the
// same loop on other pairs, DITTO (ditto.ts) the same objective on pairs that change
// every iteration.
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import type { JsonObject } from '../../../db/json.ts';
import { Generator } from '../../../native-models/generate/generator.ts';
import * as T from '../../../native-models/ir/index.ts';
import { dpoLoss } from '../../../native-models/objectives/losses.ts';
import { Rng } from '../../../native-models/train/rng.ts';
import type { Feeds } from '../../../native-models/train/trainer.ts';
import Type from 'typebox';
import { number, text } from '../../schema/fields.ts';
import { encodePair, loadModel, responseLogProbs, saveModel, sequenceFeeds, sequenceInputs, trainableModel, type Encoded, type LoadedModel, type TrainableModel } from '../lm.ts';
import { modelDir, one, writeArtifactDetails, type Stage, type StageContext, type StageOutcome } from '../stage.ts';
import { createTrainer, epochBatches, trainSteps, type StageTraining } from '../training.ts';
import { adaptation, epochTraining, generatorRuntime, parseSettings, ref, settingsSchema, trainingSettings, withReference } from './common.ts';

/** The settings dpo, spin and ditto share. */
export type PairConfig = JsonObject & { policy: string; reference: string; beta: number; epochs: number; batch: number; maxLength: number };

export type DpoConfig = PairConfig;

export interface Pair {
  prompt: string;
  chosen: string;
  rejected: string;
}

/** The settings dpo, spin and ditto share, with a stage's defaults; settle them with withReference. */
export function pairSettings(defaults: { lr: number; epochs: number; beta?: number }) {
  return {
    policy: ref('sft'),
    reference: Type.Optional(text({ description: 'default: the policy' })),
    beta: number(1e-6, 1e6, { default: defaults.beta ?? 0.1 }),
    // batch counts pairs per step (each pair is two rows).
    ...epochTraining({ epochs: defaults.epochs, maxLength: 384, lr: defaults.lr }),
  };
}

const SETTINGS = settingsSchema(pairSettings({ lr: 5e-6, epochs: 1 }));

/** log ref(response | prompt) of every encoded row, by one generator over the reference's weights. */
export async function referenceLogProbs(ctx: StageContext, reference: LoadedModel, rows: readonly Encoded[]): Promise<Float32Array> {
  const gen = await Generator.create(reference.family, reference.config, reference.weights, generatorRuntime(ctx));
  try {
    const scored = await gen.score(rows.map((r) => r.ids.slice(0, r.start)), rows.map((r) => r.ids.slice(r.start)));
    return Float32Array.from(scored, (s) => s.sum);
  } finally {
    await gen.release();
  }
}

/** Loads the policy and its reference (once when they are the same folder); they must share a tokenizer. */
export async function loadPolicyAndReference(policyDir: string, referenceDir: string): Promise<{ policy: LoadedModel; reference: LoadedModel }> {
  const policy = await loadModel(policyDir);
  const reference = referenceDir === policyDir ? policy : await loadModel(referenceDir);
  if (reference.family.vocabSize(reference.config) !== policy.family.vocabSize(policy.config) || reference.eosId !== policy.eosId) {
    throw new Error(`The reference model (${referenceDir}) has another vocabulary than the policy (${policyDir}); choose a reference with the policy's tokenizer.`);
  }
  return { policy, reference };
}

/**
 * The DPO objective over a trainable copy of `policy`: each batch holds the chosen rows
 * then the rejected ones (pairFeeds). Metrics per step: margin = mean[(log pi - log
 * ref)(chosen) - (log pi - log ref)(rejected)], and accuracy = the share of pairs whose
 * margin is positive. dpo, spin and ditto train on it.
 */
export function pairObjective(policy: LoadedModel, tm: TrainableModel, beta: number): { loss: T.Value; metrics: Record<string, T.Value> } {
  const x = sequenceInputs();
  const refChosen = T.input('ref_chosen', 'float32', ['P']), refRejected = T.input('ref_rejected', 'float32', ['P']);
  const chosenIndex = T.input('chosen_index', 'int64', ['P']), rejectedIndex = T.input('rejected_index', 'int64', ['P']);
  const { logits } = policy.family.forward(policy.config, tm.params, { tokens: x.tokens, ...(tm.loraScale === undefined ? {} : { loraScale: tm.loraScale }) });
  const logp = responseLogProbs(logits, x.targets, x.mask);
  const pc = T.gather(logp, chosenIndex), pr = T.gather(logp, rejectedIndex);
  const margin = T.sub(T.sub(pc, refChosen), T.sub(pr, refRejected));
  const metrics = { margin: T.reduceMean(margin), accuracy: T.reduceMean(T.cast(T.less(0, margin), 'float32')) };
  return { loss: dpoLoss(pc, pr, refChosen, refRejected, beta), metrics };
}

/** The feeds of one pairObjective step: pairs[j] = [chosen row, rejected row, ref log p of each]. */
export function pairFeeds(pairs: readonly (readonly [Encoded, Encoded, number, number])[], eos: number): Feeds {
  const P = pairs.length;
  return {
    ...sequenceFeeds([...pairs.map((p) => p[0]), ...pairs.map((p) => p[1])], eos),
    ref_chosen: new ort.Tensor('float32', Float32Array.from(pairs, (p) => p[2]), [P]),
    ref_rejected: new ort.Tensor('float32', Float32Array.from(pairs, (p) => p[3]), [P]),
    chosen_index: new ort.Tensor('int64', BigInt64Array.from(pairs, (_, j) => BigInt(j)), [P]),
    rejected_index: new ort.Tensor('int64', BigInt64Array.from(pairs, (_, j) => BigInt(P + j)), [P]),
  };
}

/**
 * The DPO training of `policy` on `pairs` against `reference`: step s trains on
 * pairs[batches[s]], the chosen rows then the rejected ones in one batch; `refLogp` holds
 * the reference's log-probabilities of chosen[0..n) then rejected[0..n).
 */
export async function pairTraining(
  ctx: StageContext,
  config: PairConfig,
  policy: LoadedModel,
  reference: LoadedModel,
  pairs: readonly Pair[],
): Promise<StageTraining & { chosen: Encoded[]; rejected: Encoded[]; refLogp: Float32Array; batches: number[][] }> {
  const maxLength = Math.min(config.maxLength, policy.maxLength);
  const chosen = pairs.map((p) => encodePair(policy, p.prompt, p.chosen, maxLength));
  const rejected = pairs.map((p) => encodePair(policy, p.prompt, p.rejected, maxLength));
  ctx.log(`scoring ${pairs.length} pairs with the reference`);
  const refLogp = await referenceLogProbs(ctx, reference, [...chosen, ...rejected]);
  const n = pairs.length;
  const batches = epochBatches(n, config.batch, config.epochs, ctx.seed);
  const settings = trainingSettings(config, batches.length);
  const tm = trainableModel(policy, adaptation(config), new Rng(ctx.seed));
  const { loss, metrics } = pairObjective(policy, tm, config.beta);
  const trainer = await createTrainer(ctx, tm, loss, settings, metrics);
  const batch = (step: number): Feeds => pairFeeds(batches[step].map((i) => [chosen[i], rejected[i], refLogp[i], refLogp[n + i]] as const), policy.eosId);
  return { model: tm, loss, trainer, settings, batch, chosen, rejected, refLogp, batches };
}

/** Trains `policy` on `pairs` (pairTraining) and writes it as the stage's model artifact (`from` names the stage in artifact.json). */
export async function runPairs(ctx: StageContext, config: PairConfig, policy: LoadedModel, reference: LoadedModel, pairs: readonly Pair[], from: string): Promise<StageOutcome> {
  const t = await pairTraining(ctx, config, policy, reference, pairs);
  try {
    const status = await trainSteps(ctx, t.trainer, t.settings, t.batch);
    if (status === 'stopped') return { status, step: t.trainer.stepCount };
    await saveModel(join(ctx.dir, 'model'), policy, t.model.weights(t.trainer.parameters()));
  } finally {
    await t.trainer.release();
  }
  await writeArtifactDetails(ctx.dir, { type: 'model', from });
  return { status: 'done', summary: { steps: t.batches.length, pairs: pairs.length } };
}

export const dpoStage: Stage<DpoConfig> = {
  kind: 'dpo',
  summary: 'DPO on the chosen/rejected pairs of the train prompts (a preference baseline)',
  produces: 'model',
  inputs: { policy: { types: ['model'] }, reference: { types: ['model'] } },

  settings: SETTINGS,
  parse: (raw, where) => withReference(parseSettings('dpo', SETTINGS, raw, where)),

  async run(ctx, config, inputs) {
    const train = (await ctx.data()).train;
    const missing = train.filter((d) => d.rejected === undefined).length;
    if (missing > 0) throw new Error(`DPO needs a rejected response for every train prompt, but ${missing} of ${train.length} have none; use a dataset with chosen/rejected pairs.`);
    const pairs = train.map((d) => ({ prompt: d.prompt, chosen: d.response, rejected: d.rejected! }));
    const { policy, reference } = await loadPolicyAndReference(modelDir(one(inputs, 'policy')), modelDir(one(inputs, 'reference')));
    return runPairs(ctx, config, policy, reference, pairs, 'dpo');
  },
};

// Stage `reward` (DESIGN.md §2.3): a scorer trained to tell a positive source from a
// negative source on the same train prompts: Demo-vs-Init, SFT-vs-Init (the paper's
// recommendation), Demo-vs-SFT. Also the shared machinery of every scorer-training stage
// (pref-reward.ts, judge.ts): datasets of scored responses and the pairs among them, the
// training loop, and the report of DESIGN.md §3 (held-out accuracy, length correlation,
// extreme examples, agreement with chosen/rejected pairs).
import type { JsonObject } from '../../../db/json.ts';
import ort from 'onnxruntime-node';
import { bradleyTerry, pointwiseBce } from '../../../native-models/objectives/losses.ts';
import * as T from '../../../native-models/ir/index.ts';
import { Rng } from '../../../native-models/train/rng.ts';
import { stableSplit } from '../../datasets/split.ts';
import { number, oneOf } from '../../schema/fields.ts';
import { pearson } from '../../eval/stats.ts';
import type { Demonstration, Demonstrations } from '../data.ts';
import { encodePair, loadModel, sequenceFeeds, sequenceInputs, trainableModel, type Encoded, type LoadedModel } from '../lm.ts';
import type { RewardFunction } from '../reward-function.ts';
import { headOf, hiddenSize, loadScorerReward, saveScorer, scorerScores, withScoreHead, type ScoreHead } from '../scorer.ts';
import { modelDir, one, writeArtifactDetails, type Artifact, type Stage, type StageContext, type StageInputs, type StageOutcome } from '../stage.ts';
import { createTrainer, epochBatches, trainSteps, type StageTraining } from '../training.ts';
import { adaptation, epochTraining, parseSettings, ref, settingsSchema, trainingSettings, withAdaptation } from './common.ts';
import { readSamples } from './sample.ts';

/** The value of `positive` / `negative` that names the train demonstrations rather than a stage. */
export const DEMOS = 'demos';

export type ScorerLoss = 'bce' | 'bt';

/** One scored response: label 1 for the positive (or chosen) side. `source` says where it came from. */
export interface ScoredItem {
  prompt: string;
  response: string;
  label: 0 | 1;
  source: string;
}

/** Responses and the (positive, negative) pairs among them: indices into `items`, same prompt. */
export interface ScorerDataset {
  items: ScoredItem[];
  pairs: [number, number][];
}

export interface PromptResponses {
  prompt: string;
  positive: { text: string; source: string }[];
  negative: { text: string; source: string }[];
}

/**
 * Items of every prompt's responses, and pairs that share a prompt: positive k with
 * negative k, for k up to the larger count, the smaller side reused cyclically (one
 * demonstration against n samples gives n pairs).
 */
export function scorerDataset(prompts: readonly PromptResponses[]): ScorerDataset {
  const out: ScorerDataset = { items: [], pairs: [] };
  for (const p of prompts) {
    const pos = p.positive.map((r) => out.items.push({ prompt: p.prompt, response: r.text, label: 1, source: r.source }) - 1);
    const neg = p.negative.map((r) => out.items.push({ prompt: p.prompt, response: r.text, label: 0, source: r.source }) - 1);
    if (pos.length === 0 || neg.length === 0) continue;
    for (let k = 0; k < Math.max(pos.length, neg.length); k++) out.pairs.push([pos[k % pos.length], neg[k % neg.length]]);
  }
  return out;
}

/** Whether a prompt is kept out of a scorer's training (a stable hash, salted apart from the train/eval split). */
export const heldOutPrompt = (prompt: string, fraction: number): boolean => fraction > 0 && stableSplit(`afd-reward-held-out\n${prompt}`, fraction) === 'eval';

/** Chosen/rejected pairs of demonstrations that have a rejected response. */
export function preferencePrompts(demos: readonly Demonstration[]): PromptResponses[] {
  return demos.filter((d) => d.rejected !== undefined).map((d) => ({ prompt: d.prompt, positive: [{ text: d.response, source: 'chosen' }], negative: [{ text: d.rejected!, source: 'rejected' }] }));
}

export type ScorerTrainConfig = JsonObject & { backbone: string; epochs: number; batch: number; maxLength: number };
/** A scorer stage that keeps a fraction of its train prompts out of training to report on. */
export type HeldOutConfig = ScorerTrainConfig & { heldOut: number };

/** The settings every scorer-training stage has: backbone, epochs, batch (items, or pairs with bt), maxLength, adaptation, optimizer. */
export const SCORER_TRAIN_SETTINGS = {
  backbone: ref('pi0'),
  ...epochTraining({ epochs: 1, maxLength: 256, lr: 1e-4 }),
};

/** SCORER_TRAIN_SETTINGS plus `heldOut`, the fraction of train prompts kept out (default 0.1). */
export const HELD_OUT_SETTINGS = { ...SCORER_TRAIN_SETTINGS, heldOut: number(0, 0.9, { default: 0.1 }) };

export interface TrainedScorer {
  model: LoadedModel;
  backbone: Map<string, Float32Array>;
  head: ScoreHead;
  maxLength: number;
  steps: number;
}

/** Optimizer steps a training run of `data` takes (for progress across several runs). */
export function scorerSteps(data: ScorerDataset, loss: ScorerLoss, config: ScorerTrainConfig): number {
  const n = loss === 'bce' ? data.items.length : data.pairs.length;
  return config.epochs * Math.ceil(n / config.batch);
}

/**
 * A scorer's training on `data`: pointwise BCE over its items (step s trains on
 * items[batches[s]]), or Bradley-Terry over its pairs (on pairs[batches[s]]); step s's
 * batch depends on s and the seed only, so trainSteps can resume it.
 */
export async function scorerTraining(
  ctx: StageContext,
  model: LoadedModel,
  config: ScorerTrainConfig,
  loss: ScorerLoss,
  data: ScorerDataset,
): Promise<StageTraining & { rows: Encoded[]; batches: number[][]; maxLength: number }> {
  const maxLength = Math.min(config.maxLength, model.maxLength);
  const n = loss === 'bce' ? data.items.length : data.pairs.length;
  if (n === 0) throw new Error(`The scorer has nothing to train on (no ${loss === 'bce' ? 'responses' : 'pairs of responses to one prompt'}); check its sources and the held-out fraction.`);
  const rows = data.items.map((x) => encodePair(model, x.prompt, x.response, maxLength));
  // Batches of similar lengths (less padding): an item's length, or a pair's longer side.
  const length = loss === 'bce' ? (i: number) => rows[i].ids.length : (i: number) => Math.max(rows[data.pairs[i][0]].ids.length, rows[data.pairs[i][1]].ids.length);
  const batches = epochBatches(n, config.batch, config.epochs, ctx.seed, length);
  const settings = trainingSettings(config, batches.length);
  const rng = new Rng(ctx.seed);
  const tm = withScoreHead(trainableModel(model, adaptation(config), rng), hiddenSize(model), rng);
  const { tokens, last } = sequenceInputs();
  const scores = scorerScores(model, tm, { tokens, last }); // [B]
  let objective: T.Value, accuracy: T.Value;
  let feeds: (step: number) => Record<string, ort.Tensor>;
  if (loss === 'bce') {
    const labels = T.input('labels', 'float32', ['B']);
    objective = pointwiseBce(scores, labels);
    // The logit's sign against the label.
    accuracy = T.reduceMean(T.where(T.less(0, scores), labels, T.sub(1, labels)));
    feeds = (s) => {
      const idx = batches[s];
      return { ...sequenceFeeds(idx.map((i) => rows[i]), model.eosId), labels: new ort.Tensor('float32', Float32Array.from(idx, (i) => data.items[i].label), [idx.length]) };
    };
  } else {
    // Chosen rows first, then rejected ones, in one padded batch; the indices pick them out of the scores.
    const ci = T.input('chosen_index', 'int64', ['P']), ri = T.input('rejected_index', 'int64', ['P']);
    const chosen = T.gather(scores, ci), rejected = T.gather(scores, ri);
    objective = bradleyTerry(chosen, rejected);
    accuracy = T.reduceMean(T.cast(T.less(rejected, chosen), 'float32'));
    feeds = (s) => {
      const pairs = batches[s].map((i) => data.pairs[i]);
      const P = pairs.length;
      return {
        ...sequenceFeeds([...pairs.map(([a]) => rows[a]), ...pairs.map(([, b]) => rows[b])], model.eosId),
        chosen_index: new ort.Tensor('int64', BigInt64Array.from(pairs, (_, i) => BigInt(i)), [P]),
        rejected_index: new ort.Tensor('int64', BigInt64Array.from(pairs, (_, i) => BigInt(P + i)), [P]),
      };
    };
  }
  const trainer = await createTrainer(ctx, tm, objective, settings, { accuracy });
  return { model: tm, loss: objective, trainer, settings, batch: feeds, rows, batches, maxLength };
}

/** Trains a scorer on `data` (scorerTraining), resumable through trainSteps. */
export async function trainScorer(
  ctx: StageContext,
  model: LoadedModel,
  config: ScorerTrainConfig,
  loss: ScorerLoss,
  data: ScorerDataset,
): Promise<{ status: 'stopped'; step: number } | ({ status: 'done' } & TrainedScorer)> {
  const t = await scorerTraining(ctx, model, config, loss, data);
  try {
    const status = await trainSteps(ctx, t.trainer, t.settings, t.batch);
    if (status === 'stopped') return { status, step: t.trainer.stepCount };
    const trained = t.trainer.parameters();
    return { status: 'done', model, backbone: t.model.weights(trained), head: headOf(trained), maxLength: t.maxLength, steps: t.batches.length };
  } finally {
    await t.trainer.release();
  }
}

const mean = (xs: readonly number[]): number => (xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length);
/** JSON has no NaN: an undefined statistic is null. */
const finite = (x: number): number | null => (Number.isFinite(x) ? x : null);

/** Fraction of pairs whose first member scores above the second. */
export const pairAccuracy = (scores: readonly number[], pairs: readonly [number, number][]): number => mean(pairs.map(([a, b]) => (scores[a] > scores[b] ? 1 : 0)));

/** Fraction of chosen/rejected pairs of `demos` that the reward orders as the data does. */
export async function preferenceAgreement(reward: RewardFunction, demos: readonly Demonstration[]): Promise<{ agreement: number; pairs: number }> {
  const pairs = demos.filter((d) => d.rejected !== undefined);
  if (pairs.length === 0) return { agreement: NaN, pairs: 0 };
  const s = await reward.score([...pairs.map((d) => ({ prompt: d.prompt, response: d.response })), ...pairs.map((d) => ({ prompt: d.prompt, response: d.rejected! }))]);
  return { agreement: mean(pairs.map((_, i) => (s[i] > s[pairs.length + i] ? 1 : 0))), pairs: pairs.length };
}

const clip = (s: string, n: number): string => (s.length <= n ? s : `${s.slice(0, n - 1)}…`);
const tail = (s: string, n: number): string => (s.length <= n ? s : `…${s.slice(s.length - n + 1)}`);

/**
 * The report of DESIGN.md §3 for a trained scorer: held-out accuracy (the logit's sign
 * with bce, positive above negative with bt), the correlation of scores with response
 * length, the 5 highest- and lowest-scored held-out responses, and agreement with the
 * chosen/rejected pairs of the evaluation prompts when the data has them.
 */
export async function scorerReport(ctx: StageContext, reward: RewardFunction, loss: ScorerLoss, held: ScorerDataset, data: Demonstrations, step: number): Promise<JsonObject> {
  const scores = await reward.score(held.items.map((x) => ({ prompt: x.prompt, response: x.response })), (done, total) => ctx.progress(done, total, 'held-out responses'));
  const pointwise = mean(held.items.map((x, i) => ((scores[i] > 0) === (x.label === 1) ? 1 : 0)));
  const pairwise = pairAccuracy(scores, held.pairs);
  const accuracy = loss === 'bce' ? pointwise : pairwise;
  const lengthPearson = pearson(scores, held.items.map((x) => x.response.length));
  const { agreement, pairs } = await preferenceAgreement(reward, data.eval);
  const example = (i: number): JsonObject => ({ prompt: tail(held.items[i].prompt, 80), response: clip(held.items[i].response, 200), score: scores[i], source: held.items[i].source });
  const order = scores.map((_, i) => i).sort((a, b) => scores[b] - scores[a]);
  const highest = order.slice(0, 5).map(example), lowest = order.slice(-5).reverse().map(example);

  const metrics: Record<string, number> = {};
  const put = (k: string, v: number): void => {
    if (Number.isFinite(v)) metrics[k] = v;
  };
  put('held_out_accuracy', accuracy);
  put('held_out_pair_accuracy', pairwise);
  put('held_out_length_pearson', lengthPearson);
  put('eval_preference_agreement', agreement);
  ctx.metric(step, metrics);
  const pct = (x: number): string => (Number.isFinite(x) ? `${(100 * x).toFixed(1)}%` : 'n/a');
  ctx.log(`held-out: ${held.items.length} responses, ${held.pairs.length} pairs; accuracy ${pct(accuracy)} (pairs ${pct(pairwise)}); score-length correlation ${Number.isFinite(lengthPearson) ? lengthPearson.toFixed(3) : 'n/a'}`);
  if (pairs > 0) ctx.log(`agreement with chosen/rejected on ${pairs} evaluation prompts: ${pct(agreement)}`);
  const show = (e: JsonObject): string => `  ${(e.score as number).toFixed(3)} [${String(e.source)}] ...${JSON.stringify(e.prompt)} -> ${JSON.stringify(e.response)}`;
  ctx.log(`highest-scored held-out responses:\n${highest.map(show).join('\n')}`);
  ctx.log(`lowest-scored held-out responses:\n${lowest.map(show).join('\n')}`);
  return {
    held_out_accuracy: finite(accuracy), held_out_pair_accuracy: finite(pairwise), held_out_length_pearson: finite(lengthPearson),
    held_out_responses: held.items.length, held_out_pairs: held.pairs.length,
    eval_preference_agreement: finite(agreement), eval_preference_pairs: pairs,
    highest, lowest,
  };
}

/**
 * What reward and pref-reward share after building their data: split the prompts into
 * training and held-out ones, train, save the scorer, report, write the artifact.
 */
export async function runScorerStage(ctx: StageContext, config: HeldOutConfig, inputs: StageInputs, loss: ScorerLoss, prompts: readonly PromptResponses[], details: JsonObject): Promise<StageOutcome> {
  const model = await loadModel(modelDir(one(inputs, 'backbone')));
  const train = scorerDataset(prompts.filter((p) => !heldOutPrompt(p.prompt, config.heldOut)));
  const held = scorerDataset(prompts.filter((p) => heldOutPrompt(p.prompt, config.heldOut)));
  ctx.log(`training on ${train.items.length} responses (${train.pairs.length} pairs), ${held.items.length} held out, loss ${loss}`);
  const r = await trainScorer(ctx, model, config, loss, train);
  if (r.status === 'stopped') return r;
  const dir = await saveScorer(ctx.dir, model, r.backbone, r.head, r.maxLength);
  const reward = await loadScorerReward(dir, { provider: ctx.provider, threads: ctx.threads });
  let report: JsonObject;
  try {
    report = await scorerReport(ctx, reward, loss, held, await ctx.data(), r.steps);
  } finally {
    await reward.release();
  }
  await writeArtifactDetails(ctx.dir, { type: 'reward', reward: 'scorer', dir, loss, ...details, heldOutAccuracy: report.held_out_accuracy });
  return { status: 'done', summary: { steps: r.steps, train_responses: train.items.length, train_pairs: train.pairs.length, ...report } };
}

export type RewardConfig = HeldOutConfig & { positive: string; negative: string; loss: ScorerLoss };

/** The responses of one source on each train prompt: the demonstrations, or a samples stage's. */
function sourceResponses(name: string, artifact: Artifact | undefined, train: readonly Demonstration[]): { text: string; source: string }[][] {
  if (name === DEMOS) return train.map((d) => [{ text: d.response, source: DEMOS }]);
  if (artifact === undefined || Array.isArray(artifact)) throw new Error(`The reward's source ${name} must be '${DEMOS}' or one samples stage.`);
  const set = readSamples(artifact);
  if (set.split !== 'train' || set.byPrompt.length !== train.length || set.byPrompt.some((ks, i) => ks?.[0]?.prompt !== train[i].prompt)) {
    throw new Error(`The samples of ${name} were not drawn on this experiment's train prompts; sample with split 'train' on the same data.`);
  }
  return set.byPrompt.map((ks) => ks.map((s) => ({ text: s.text, source: name })));
}

const SETTINGS = settingsSchema({ positive: ref(), negative: ref(), loss: oneOf(['bce', 'bt'], { default: 'bce' }), ...HELD_OUT_SETTINGS });

export const rewardStage: Stage<RewardConfig> = {
  kind: 'reward',
  summary: 'reward model from demonstrations: a scorer trained to tell a positive source from a negative one on the same prompts',
  produces: 'reward',
  // `demos` in positive/negative names the demonstrations, not a stage: the driver resolves other values only.
  inputs: { backbone: { types: ['model'] }, positive: { types: ['samples'], optional: true }, negative: { types: ['samples'], optional: true } },

  settings: SETTINGS,
  parse(raw, where) {
    const c = withAdaptation(parseSettings('reward', SETTINGS, raw, where));
    if (c.positive === c.negative) throw new Error(`The reward's positive and negative sources are both ${c.positive}; name two different sources.`);
    return c;
  },

  async run(ctx, config, inputs) {
    const train = (await ctx.data()).train;
    const pos = sourceResponses(config.positive, inputs.positive as Artifact | undefined, train);
    const neg = sourceResponses(config.negative, inputs.negative as Artifact | undefined, train);
    const prompts = train.map((d, i) => ({ prompt: d.prompt, positive: pos[i], negative: neg[i] }));
    return runScorerStage(ctx, config, inputs, config.loss, prompts, { positive: config.positive, negative: config.negative });
  },
};

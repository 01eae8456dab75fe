// Stage `airl`: adversarial imitation = reverse KL to the demonstrator (DESIGN.md §2.2),
// an extension the paper describes but does not run. Each step alternates:
//   1. sample k responses per prompt from the current policy (rl.ts's PolicyUpdate);
//   2. one discriminator step: the scorer (LM backbone + scalar head, scorer.ts) trained
//      with balanced BCE, the prompts' demonstrations = 1 and the policy's samples = 0;
//   3. the updated discriminator's logit z on the samples becomes the reward airlReward(z,
//      shape), and the policy takes one KL-penalized policy-gradient step on it.
// The checkpoint is a folder holding both trainers' states, written whole and then named,
// so a resumed run continues both players exactly where they stopped.
import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import * as T from '../../../native-models/ir/index.ts';
import { softplus } from '../../../native-models/objectives/functions.ts';
import { airlReward, type AirlShape } from '../../../native-models/objectives/rewards.ts';
import { learningRate, type Schedule } from '../../../native-models/optim/schedule.ts';
import { graphSession, type GraphSession } from '../graph-session.ts';
import { Rng } from '../../../native-models/train/rng.ts';
import type { Feeds, Trainer } from '../../../native-models/train/trainer.ts';
import Type from 'typebox';
import { integer, number, oneOf } from '../../schema/fields.ts';
import type { Demonstration } from '../data.ts';
import { encodePair, saveModel, sequenceFeeds, sequenceInputs, trainableModel, type Encoded, type LoadedModel, type TrainableModel } from '../lm.ts';
import { headOf, hiddenSize, saveScorer, scorerScores, withScoreHead } from '../scorer.ts';
import { modelDir, one, writeArtifactDetails, type Stage, type StageContext, type StageOutcome } from '../stage.ts';
import { createTrainer, type TrainingSettings } from '../training.ts';
import { adaptation, parseSettings, settingsSchema, withReference } from './common.ts';
import { loadPolicyAndReference } from './dpo.ts';
import { POLICY_SETTINGS, PolicyUpdate, stepPrompts, type PolicyConfig, type Rollout } from './rl.ts';

export type AirlConfig = PolicyConfig & {
  shape: AirlShape;
  /** The discriminator's learning rate (same warm-up and decay as the policy's). */
  discriminatorLr: number;
  /** Longest demonstration (prompt + response) the discriminator reads, in tokens. */
  maxLength: number;
};

const POLICY_FILE = 'policy.safetensors';

const SETTINGS = settingsSchema({
  ...POLICY_SETTINGS,
  shape: oneOf(['logit', 'logD', 'neglog1mD'], { default: 'logit' }),
  discriminatorLr: Type.Optional(number(0, 10, { description: "default: the policy's lr" })),
  maxLength: integer(8, 1 << 20, { default: 384 }),
});
const DISCRIMINATOR_FILE = 'discriminator.safetensors';

/** The discriminator: a scorer over the policy's starting weights, its loss graph and a forward-only scoring session. */
class Discriminator {
  private constructor(
    readonly model: TrainableModel,
    readonly trainer: Trainer,
    private readonly session: GraphSession,
    private readonly paramNames: string[],
  ) {}

  static async create(ctx: StageContext, config: AirlConfig, policy: LoadedModel, settings: TrainingSettings): Promise<Discriminator> {
    const rng = new Rng(ctx.seed + 1);
    const tm = withScoreHead(trainableModel(policy, adaptation(config), rng), hiddenSize(policy), rng);
    const x = sequenceInputs();
    const labels = T.input('labels', 'float32', ['B']), weights = T.input('weights', 'float32', ['B']);
    const scores = scorerScores(policy, tm, x);
    // Weighted BCE on the logit (weights sum to 1, half on each class): softplus(z) - y z.
    const loss = T.reduceSum(T.mul(weights, T.sub(softplus(scores), T.mul(labels, scores))));
    const trainer = await createTrainer(ctx, tm, loss, settings);
    try {
      // Parameters are inputs here (fed from the trainer's state); LoRA's frozen weights are initializers.
      const external = tm.external ? { externalDataDir: tm.external.dir, externalDataIdentity: tm.external.identity } : {};
      const session = await graphSession({ outputs: { scores }, initializers: tm.frozen, name: 'afd-discriminator-scores' }, { provider: ctx.provider, intraOpThreads: ctx.threads, ...external });
      return new Discriminator(tm, trainer, session, session.inputNames.filter((n) => n !== 'tokens' && n !== 'last'));
    } catch (e) {
      await trainer.release();
      throw e;
    }
  }

  /** The balanced BCE batch: demonstrations (label 1) and policy samples (label 0), each class weighing 1/2. */
  batch(demos: readonly Encoded[], samples: readonly Encoded[], eos: number): Feeds {
    const n = demos.length + samples.length;
    const labels = new Float32Array(n), weights = new Float32Array(n);
    for (let j = 0; j < n; j++) {
      const demo = j < demos.length;
      labels[j] = demo ? 1 : 0;
      weights[j] = demo ? 0.5 / demos.length : 0.5 / samples.length;
    }
    return { ...sequenceFeeds([...demos, ...samples], eos), labels: new ort.Tensor('float32', labels, [n]), weights: new ort.Tensor('float32', weights, [n]) };
  }

  /** Logits z = log D - log(1 - D) of the rows under the current parameters. */
  async scores(rows: readonly Encoded[], eos: number): Promise<number[]> {
    const f = sequenceFeeds(rows, eos);
    const feeds: Feeds = { tokens: f.tokens, last: f.last };
    for (const n of this.paramNames) feeds[n] = this.trainer.state.get(n)!;
    const out = await this.session.run(feeds);
    return Array.from(out.scores.data as Float32Array);
  }

  async release(): Promise<void> {
    await this.session.release();
    await this.trainer.release();
  }
}

/** Writes both trainers' states into a fresh folder and names it `checkpoint-<step>` only once complete. */
async function saveBoth(dir: string, step: number, policy: Trainer, disc: Trainer): Promise<string> {
  const temp = join(dir, `.checkpoint.${randomBytes(6).toString('hex')}.tmp`);
  const final = join(dir, `checkpoint-${step}`);
  await mkdir(temp, { recursive: true });
  try {
    await policy.save(join(temp, POLICY_FILE));
    await disc.save(join(temp, DISCRIMINATOR_FILE));
    await rm(final, { recursive: true, force: true });
    await rename(temp, final);
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
  return final;
}

/** The airl stage's work on loaded models (policy, its reference, and the demonstrations). */
export async function runAirl(ctx: StageContext, config: AirlConfig, policy: LoadedModel, reference: LoadedModel): Promise<StageOutcome> {
  const train: readonly Demonstration[] = (await ctx.data()).train;
  const pu = await PolicyUpdate.create(ctx, config, policy, reference, train.map((d) => d.prompt));
  const s = pu.settings;
  let disc: Discriminator | undefined;
  let last: Record<string, number> = {};
  try {
    disc = await Discriminator.create(ctx, config, policy, s);
    const d = disc;
    const maxLength = Math.min(config.maxLength, policy.maxLength);
    if (ctx.checkpoint !== null) {
      await pu.trainer.load(join(ctx.checkpoint, POLICY_FILE));
      await d.trainer.load(join(ctx.checkpoint, DISCRIMINATOR_FILE));
    }
    let saved = pu.trainer.stepCount, savedDir = ctx.checkpoint;
    const save = async (): Promise<void> => {
      if (saved === pu.trainer.stepCount) return;
      const dir = await saveBoth(ctx.dir, pu.trainer.stepCount, pu.trainer, d.trainer);
      saved = pu.trainer.stepCount;
      await ctx.checkpointed(dir, saved);
      if (savedDir !== null && savedDir !== dir && savedDir.startsWith(ctx.dir)) await rm(savedDir, { recursive: true, force: true });
      savedDir = dir;
    };
    const schedule = (lr: number): Schedule => ({ kind: 'cosine', lr, warmupSteps: s.warmupSteps, totalSteps: s.steps, minLr: lr / 10 });
    ctx.progress(pu.trainer.stepCount, s.steps, 'steps');
    while (pu.trainer.stepCount < s.steps) {
      if (ctx.stopRequested()) {
        await save();
        return { status: 'stopped', step: pu.trainer.stepCount };
      }
      const step = pu.trainer.stepCount;
      const r: Rollout = await pu.rollout(step);
      const demos = stepPrompts(train.length, config.promptsPerStep, step, ctx.seed).map((i) => encodePair(policy, train[i].prompt, train[i].response, maxLength));
      const dr = await d.trainer.step(d.batch(demos, r.rows, policy.eosId), learningRate(schedule(config.discriminatorLr), step));
      // The updated discriminator rewards the samples, and says how well it separates this step's two sources.
      const z = await d.scores([...demos, ...r.rows], policy.eosId);
      const zDemo = z.slice(0, demos.length), zSample = z.slice(demos.length);
      const { feeds, metrics } = pu.batch(r, zSample.map((v) => airlReward(v, config.shape)));
      const pr = await pu.trainer.step(feeds, learningRate(schedule(config.lr as number), step));
      const accuracy = (zDemo.filter((v) => v > 0).length + zSample.filter((v) => v < 0).length) / z.length;
      last = { loss: pr.loss, grad_norm: pr.gradNorm, ...metrics, discriminator_loss: dr.loss, discriminator_accuracy: accuracy };
      ctx.metric(pr.step, last);
      ctx.progress(pr.step, s.steps, 'steps');
      if (pr.step % s.checkpointEvery === 0 && pr.step < s.steps) await save();
    }
    await saveModel(join(ctx.dir, 'model'), policy, pu.weights());
    // The final discriminator is a reward model in its own right (demonstrations vs the late policy).
    const trained = d.trainer.parameters();
    await saveScorer(ctx.dir, policy, d.model.weights(trained), headOf(trained), maxLength);
  } finally {
    await disc?.release();
    await pu.release();
  }
  await writeArtifactDetails(ctx.dir, { type: 'model', from: 'airl', shape: config.shape });
  return { status: 'done', summary: { steps: config.steps, reward: last.reward ?? null, kl: last.kl ?? null, discriminatorAccuracy: last.discriminator_accuracy ?? null } };
}

export const airlStage: Stage<AirlConfig> = {
  kind: 'airl',
  summary: 'adversarial imitation (reverse KL): alternating discriminator and KL-penalized policy updates',
  produces: 'model',
  inputs: { policy: { types: ['model'] }, reference: { types: ['model'] } },

  settings: SETTINGS,
  parse(raw, where) {
    const c = withReference(parseSettings('airl', SETTINGS, raw, where));
    return { ...c, discriminatorLr: c.discriminatorLr ?? c.lr };
  },

  async run(ctx, config, inputs) {
    const { policy, reference } = await loadPolicyAndReference(modelDir(one(inputs, 'policy')), modelDir(one(inputs, 'reference')));
    return runAirl(ctx, config, policy, reference);
  },
};

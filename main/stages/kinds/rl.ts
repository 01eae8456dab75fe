// Stage `rl`: policy optimization against a reward with a KL penalty to a reference
// (DESIGN.md §2.2-2.3): each step samples k responses per prompt from the current policy,
// scores them, subtracts beta (log pi - log ref), turns the rewards into RLOO or GRPO
// advantages within each prompt's group, and takes one policy-gradient step. Sampling
// seeds come from (stage seed, step, prompt, k) and the weights a step samples from are
// the checkpointed ones, so a resumed run repeats an uninterrupted one exactly.
// Under LoRA the policy's generator is compiled once and each step feeds it the current
// adapters; under full fine-tuning each step compiles one from the new weights (as
// inputs they would lose ONNX Runtime's packing of them: docs/benchmarks.md).
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import type { JsonObject } from '../../../db/json.ts';
import { Generator } from '../../../native-models/generate/generator.ts';
import * as T from '../../../native-models/ir/index.ts';
import { policyGradientLoss } from '../../../native-models/objectives/losses.ts';
import { grpoAdvantages, klEstimate, klPenalizedReward, rlooAdvantages } from '../../../native-models/objectives/rewards.ts';
import { Rng } from '../../../native-models/train/rng.ts';
import type { Feeds, Trainer } from '../../../native-models/train/trainer.ts';
import Type from 'typebox';
import { integer, number, oneOf, text } from '../../schema/fields.ts';
import { encodePrompt, responseLogProbs, saveModel, sequenceFeeds, sequenceInputs, shuffled, trainableModel, type Encoded, type LoadedModel, type TrainableModel, TURN_STOPS } from '../lm.ts';
import { loadRewardFunction } from '../reward-artifact.ts';
import type { RewardFunction } from '../reward-function.ts';
import { modelDir, one, writeArtifactDetails, type Stage, type StageContext, type StageOutcome } from '../stage.ts';
import { createTrainer, trainSteps, type TrainingSettings } from '../training.ts';
import { adaptation, ADAPTATION, generatorRuntime, mixSeed, parseSettings, ref, settingsSchema, training, trainingSettings, withReference } from './common.ts';
import { loadPolicyAndReference } from './dpo.ts';

/** What every on-policy stage (rl, airl) samples and how it turns rewards into a step. */
export type PolicyConfig = JsonObject & {
  policy: string;
  reference: string;
  estimator: 'rloo' | 'grpo';
  k: number;
  promptsPerStep: number;
  steps: number;
  beta: number;
  maxNewTokens: number;
  /** Keep at most this many of each prompt's last tokens (absent: all that fit with the response). */
  maxPromptTokens?: number;
  temperature: number;
};

export type RlConfig = PolicyConfig & { reward: string };

/** The policy settings, with their defaults (shared by rl and airl); `reference` defaults to the policy. */
export const POLICY_SETTINGS = {
  policy: ref('sft'),
  reference: Type.Optional(text({ description: 'default: the policy' })),
  estimator: oneOf(['rloo', 'grpo'], { default: 'rloo' }),
  k: integer(2, 1024, { default: 4 }),
  promptsPerStep: integer(1, 4096, { default: 8 }),
  steps: integer(1, 1_000_000, { default: 100 }),
  beta: number(0, 1e6, { default: 0.05 }),
  maxNewTokens: integer(1, 1 << 16, { default: 64 }),
  // Optional, so that stages stored before it match their definition: without it a long
  // prompt (835 SmolLM2 tokens in HH-Harmless) makes every row of its step that wide.
  maxPromptTokens: Type.Optional(integer(1, 1 << 20, { description: "keep at most this many of each prompt's last tokens (default: all that fit)" })),
  // 1 keeps the samples on-policy, which the policy gradient assumes.
  temperature: number(0.01, 100, { default: 1 }),
  ...ADAPTATION,
  ...training({ lr: 1e-5 }),
};

const POLICY = settingsSchema(POLICY_SETTINGS);

/** The policy settings of a raw config alone, with their defaults. */
export function parsePolicyConfig(raw: JsonObject, where?: string): PolicyConfig {
  return withReference(parseSettings('rl', POLICY, raw, where));
}

const SETTINGS = settingsSchema({ ...POLICY_SETTINGS, reward: ref() });

/** The seed of sample k of prompt i at step `step`. */
export const rolloutSeed = (seed: number, step: number, i: number, k: number): number => mixSeed(seed, step, i, k);

/** Prompt indices of step `step`: consecutive slices of a fresh seeded shuffle per pass over the prompts. */
export function stepPrompts(n: number, perStep: number, step: number, seed: number): number[] {
  const orders = new Map<number, number[]>();
  return Array.from({ length: perStep }, (_, j) => {
    const pos = step * perStep + j, pass = Math.floor(pos / n);
    let order = orders.get(pass);
    if (!order) orders.set(pass, (order = shuffled(n, new Rng(mixSeed(seed, 0x5eed, pass)))));
    return order[pos % n];
  });
}

/** The k samples of every prompt of one step, with what the policy update needs of them. */
export interface Rollout {
  /** Prompt index (into the train prompts) of each row; rows of a prompt are consecutive, k per prompt. */
  prompt: number[];
  /** Prompt tokens + sampled tokens (EOS included when the row stopped on it). */
  rows: Encoded[];
  /** The responses as text (without EOS), for the reward. */
  texts: string[];
  logpPolicy: number[];
  logpRef: number[];
}

const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / Math.max(1, xs.length);

/** The on-policy half of rl and airl: sampling from the current weights, and the policy-gradient step. */
export class PolicyUpdate {
  private constructor(
    readonly ctx: StageContext,
    readonly config: PolicyConfig,
    readonly policy: LoadedModel,
    readonly model: TrainableModel,
    readonly trainer: Trainer,
    readonly settings: TrainingSettings,
    private readonly reference: Generator,
    readonly prompts: readonly string[],
    /** Under LoRA: the policy's generator of the base weights, its adapters set at every rollout. */
    private readonly sampler?: Generator,
  ) {}

  static async create(ctx: StageContext, config: PolicyConfig, policy: LoadedModel, reference: LoadedModel, prompts: readonly string[]): Promise<PolicyUpdate> {
    if (prompts.length === 0) throw new Error('RL needs train prompts; the experiment has none.');
    if (reference.family.vocabSize(reference.config) !== policy.family.vocabSize(policy.config) || reference.eosId !== policy.eosId) {
      throw new Error(`The reference model (${reference.dir}) has another vocabulary than the policy (${policy.dir}); choose a reference with the policy's tokenizer.`);
    }
    const settings = trainingSettings(config, config.steps);
    const how = adaptation(config);
    const tm = trainableModel(policy, how, new Rng(ctx.seed));
    const x = sequenceInputs();
    const advantages = T.input('advantages', 'float32', ['B']);
    const { logits } = policy.family.forward(policy.config, tm.params, { tokens: x.tokens, ...(tm.loraScale === undefined ? {} : { loraScale: tm.loraScale }) });
    const trainer = await createTrainer(ctx, tm, policyGradientLoss(responseLogProbs(logits, x.targets, x.mask), advantages), settings);
    const runtime = generatorRuntime(ctx);
    let refGen: Generator | undefined;
    try {
      // The reference never changes: one generator (compiled once) scores every step's samples.
      refGen = await Generator.create(reference.family, reference.config, reference.weights, runtime);
      const sampler = how.kind === 'lora' ? await Generator.create(policy.family, policy.config, policy.mapped ?? policy.weights, { ...runtime, lora: { spec: { rank: how.rank, alpha: how.alpha }, adapters: tm.init } }) : undefined;
      return new PolicyUpdate(ctx, config, policy, tm, trainer, settings, refGen, prompts, sampler);
    } catch (e) {
      await refGen?.release();
      await trainer.release();
      throw e;
    }
  }

  /** The policy's current weights (adapters merged). */
  weights(): Map<string, Float32Array> {
    return this.model.weights(this.trainer.parameters());
  }

  /** k samples of each of step `step`'s prompts from the current weights, scored by the policy and the reference. */
  async rollout(step: number): Promise<Rollout> {
    const { config, policy, ctx } = this;
    const idx = stepPrompts(this.prompts.length, config.promptsPerStep, step, ctx.seed);
    const prompt: number[] = [], ids: number[][] = [], seeds: number[] = [];
    idx.forEach((i, j) => {
      const p = encodePrompt(policy, this.prompts[i], config.maxPromptTokens === undefined ? config.maxNewTokens : Math.max(config.maxNewTokens, policy.maxLength - config.maxPromptTokens));
      // j, not i: a prompt drawn twice in one step gets distinct samples.
      for (let k = 0; k < config.k; k++) {
        prompt.push(i);
        ids.push(p);
        seeds.push(rolloutSeed(ctx.seed, step, j, k));
      }
    });
    // Generation graphs hold the weights as initializers: without adapters to feed, each step compiles its own.
    if (this.sampler) await this.sampler.setAdapters(this.trainer.parameters());
    const gen = this.sampler ?? await Generator.create(policy.family, policy.config, this.weights(), generatorRuntime(ctx));
    try {
      const decode = (t: readonly number[]): string => policy.tokenizer.decode(t, { skipSpecialTokens: true });
      const results = await gen.generate(ids, { maxNewTokens: config.maxNewTokens, temperature: config.temperature, eosTokenIds: [policy.eosId], stopStrings: TURN_STOPS, decode, seed: seeds });
      const responses = results.map((r) => r.tokens);
      const [own, base] = [await gen.score(ids, responses), await this.reference.score(ids, responses)];
      return {
        prompt, texts: results.map((r) => r.text ?? ''),
        rows: ids.map((p, j) => ({ ids: [...p, ...responses[j]], start: p.length })),
        logpPolicy: own.map((s) => s.sum), logpRef: base.map((s) => s.sum),
      };
    } finally {
      if (gen !== this.sampler) await gen.release();
    }
  }

  /** The training batch of a rollout given its rewards, and the step's host-side metrics. */
  batch(r: Rollout, rewards: readonly number[]): { feeds: Feeds; metrics: Record<string, number> } {
    const { k, beta, estimator } = this.config;
    const n = r.rows.length;
    if (rewards.length !== n) throw new Error(`the reward function returned ${rewards.length} rewards for ${n} responses`);
    const bad = rewards.findIndex((x) => !Number.isFinite(x));
    if (bad >= 0) throw new Error(`the reward of response ${bad} is ${rewards[bad]}, not a finite number; check the reward function.`);
    const penalized = rewards.map((x, j) => klPenalizedReward(x, r.logpPolicy[j], r.logpRef[j], beta));
    const adv = new Float32Array(n);
    for (let g = 0; g < n; g += k) {
      const group = penalized.slice(g, g + k);
      adv.set(estimator === 'rloo' ? rlooAdvantages(group) : grpoAdvantages(group), g);
    }
    return {
      feeds: { ...sequenceFeeds(r.rows, this.policy.eosId), advantages: new ort.Tensor('float32', adv, [n]) },
      metrics: {
        reward: mean(rewards),
        reward_penalized: mean(penalized),
        kl: mean(r.logpPolicy.map((lp, j) => klEstimate(lp, r.logpRef[j], 'k1'))),
        response_tokens: mean(r.rows.map((x) => x.ids.length - x.start)),
      },
    };
  }

  /** Step `step`'s training batch: a rollout from the current weights, rewarded by `reward` (which sees each response with its prompt). */
  async next(step: number, reward: RewardFunction): Promise<{ rollout: Rollout; rewards: number[]; feeds: Feeds; metrics: Record<string, number> }> {
    const rollout = await this.rollout(step);
    const rewards = await reward.score(rollout.texts.map((response, j) => ({ prompt: this.prompts[rollout.prompt[j]], response })));
    return { rollout, rewards, ...this.batch(rollout, rewards) };
  }

  async release(): Promise<void> {
    await this.sampler?.release();
    await this.reference.release();
    await this.trainer.release();
  }
}

/** The rl stage's work on loaded models and a reward function (tests inject their own reward). */
export async function runRl(ctx: StageContext, config: PolicyConfig, policy: LoadedModel, reference: LoadedModel, reward: RewardFunction): Promise<StageOutcome> {
  const prompts = (await ctx.data()).train.map((d) => d.prompt);
  const pu = await PolicyUpdate.create(ctx, config, policy, reference, prompts);
  ctx.log(`reward: ${reward.describe}; ${config.k} samples for each of ${config.promptsPerStep} prompts per step, ${config.estimator} advantages, beta ${config.beta}`);
  const extra = new Map<number, Record<string, number>>();
  let last: Record<string, number> = {};
  try {
    const status = await trainSteps(
      ctx, pu.trainer, pu.settings,
      async (step) => {
        const { feeds, metrics } = await pu.next(step, reward);
        extra.set(step + 1, metrics);
        return feeds;
      },
      (r) => {
        last = extra.get(r.step) ?? {};
        extra.delete(r.step);
        ctx.metric(r.step, last);
      },
    );
    if (status === 'stopped') return { status, step: pu.trainer.stepCount };
    await saveModel(join(ctx.dir, 'model'), policy, pu.weights());
  } finally {
    await pu.release();
  }
  await writeArtifactDetails(ctx.dir, { type: 'model', from: 'rl' });
  return { status: 'done', summary: { steps: config.steps, reward: last.reward ?? null, kl: last.kl ?? null } };
}

export const rlStage: Stage<RlConfig> = {
  kind: 'rl',
  summary: 'RL (RLOO or GRPO) against a reward with a KL penalty to a reference policy',
  produces: 'model',
  inputs: { policy: { types: ['model'] }, reference: { types: ['model'] }, reward: { types: ['reward'] } },

  settings: SETTINGS,
  parse: (raw, where) => withReference(parseSettings('rl', SETTINGS, raw, where)),

  async run(ctx, config, inputs) {
    const { policy, reference } = await loadPolicyAndReference(modelDir(one(inputs, 'policy')), modelDir(one(inputs, 'reference')));
    const reward = await loadRewardFunction(one(inputs, 'reward'), { provider: ctx.provider, threads: ctx.threads });
    try {
      return await runRl(ctx, config, policy, reference, reward);
    } finally {
      await reward.release();
    }
  },
};

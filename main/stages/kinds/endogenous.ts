// Stage `reward:endogenous` (Li et al. 2025; docs/methods.md): the reward one model's
// logits already hold, read by the inverse soft Bellman operator: no reward-model
// training, no pi_0. Like density-ratio it records what the reward needs (the model's
// folder and the operator's settings), and reports its mean on (up to 64) evaluation
// demonstrations as a check that it loads and runs; Best-of-N and RL use it like any
// reward artifact.
import type { JsonObject } from '../../../db/json.ts';
import { flag, number } from '../../schema/fields.ts';
import { endogenousReward } from '../endogenous.ts';
import type { RewardDetails } from '../reward-function.ts';
import { modelDir, one, writeArtifactDetails, type Stage } from '../stage.ts';
import { checkOnDemonstrations, parseSettings, ref, settingsSchema } from './common.ts';

export type EndogenousConfig = JsonObject & { model: string; alpha: number; gamma: number; perToken: boolean };


const SETTINGS = settingsSchema({
  model: ref('sft'),
  // The paper's operator: the model read at the temperature it samples at, undiscounted.
  alpha: number(1e-3, 1e3, { default: 1 }),
  gamma: number(0, 1, { default: 1 }),
  perToken: flag({ default: false }),
});

export const endogenousStage: Stage<EndogenousConfig> = {
  kind: 'reward:endogenous',
  summary: "reward from one model's logits by inverse soft Bellman (Q = logits, V = logsumexp), no training",
  produces: 'reward',
  inputs: { model: { types: ['model'] } },

  settings: SETTINGS,
  parse: (raw, where) => parseSettings('reward:endogenous', SETTINGS, raw, where),

  async run(ctx, config, inputs) {
    const model = modelDir(one(inputs, 'model'));
    const settings = { alpha: config.alpha, gamma: config.gamma, perToken: config.perToken };
    const reward = await endogenousReward(model, settings, { provider: ctx.provider, threads: ctx.threads });
    const mean = await checkOnDemonstrations(ctx, reward, 'endogenous reward');
    const details: RewardDetails = { type: 'reward', reward: 'endogenous', model, ...settings };
    await writeArtifactDetails(ctx.dir, details);
    return { status: 'done', summary: { model, ...settings, eval_demo_reward_mean: mean } };
  },
};

// Stage `density-ratio` (DESIGN.md §2.5): the reward log pi_policy(y|x) - log pi_base(y|x),
// no training. It records the two model folders; as a check that the reward loads and
// points the right way, it reports its mean on (up to 64) evaluation demonstrations,
// which should be positive when the policy was fine-tuned on demonstrations.
import type { JsonObject } from '../../../db/json.ts';
import { flag } from '../../schema/fields.ts';
import { densityRatioReward } from '../density-ratio.ts';
import type { RewardDetails } from '../reward-function.ts';
import { modelDir, one, writeArtifactDetails, type Stage } from '../stage.ts';
import { checkOnDemonstrations, parseSettings, ref, settingsSchema } from './common.ts';

export type DensityRatioConfig = JsonObject & { policy: string; base: string; perToken: boolean };


const SETTINGS = settingsSchema({ policy: ref('sft'), base: ref('pi0'), perToken: flag({ default: false }) });

export const densityRatioStage: Stage<DensityRatioConfig> = {
  kind: 'density-ratio',
  summary: 'reward log pi_policy - log pi_base (summed or per token), no training',
  produces: 'reward',
  inputs: { policy: { types: ['model'] }, base: { types: ['model'] } },

  settings: SETTINGS,
  parse: (raw, where) => parseSettings('density-ratio', SETTINGS, raw, where),

  async run(ctx, config, inputs) {
    const policy = modelDir(one(inputs, 'policy')), base = modelDir(one(inputs, 'base'));
    const reward = await densityRatioReward(policy, base, config.perToken, { provider: ctx.provider, threads: ctx.threads });
    const mean = await checkOnDemonstrations(ctx, reward, 'density ratio');
    const details: RewardDetails = { type: 'reward', reward: 'density-ratio', policy, base, perToken: config.perToken };
    await writeArtifactDetails(ctx.dir, details);
    return { status: 'done', summary: { policy, base, perToken: config.perToken, eval_demo_reward_mean: mean } };
  },
};

// Stage `pref-reward` (DESIGN.md §2.7): the preference reward-model baseline, Bradley-Terry
// on the chosen vs rejected responses of the train prompts. It needs data with `rejected`,
// which AfD methods never read; the training and report are reward.ts's.
import { parseSettings, settingsSchema, withAdaptation } from './common.ts';
import { HELD_OUT_SETTINGS, preferencePrompts, runScorerStage, type HeldOutConfig } from './reward.ts';
import type { Stage } from '../stage.ts';

const SETTINGS = settingsSchema(HELD_OUT_SETTINGS);

export const prefRewardStage: Stage<HeldOutConfig> = {
  kind: 'pref-reward',
  summary: 'preference reward model (baseline): Bradley-Terry on chosen vs rejected of the train prompts',
  produces: 'reward',
  inputs: { backbone: { types: ['model'] } },

  settings: SETTINGS,
  parse: (raw, where) => withAdaptation(parseSettings('pref-reward', SETTINGS, raw, where)),

  async run(ctx, config, inputs) {
    const train = (await ctx.data()).train;
    const prompts = preferencePrompts(train);
    if (prompts.length === 0) throw new Error('The preference reward needs chosen/rejected pairs, but no train demonstration has a rejected response; use data with a rejected column (e.g. hh-harmless).');
    if (prompts.length < train.length) ctx.log(`${train.length - prompts.length} of ${train.length} train demonstrations have no rejected response and are left out`);
    return runScorerStage(ctx, config, inputs, 'bt', prompts, { source: 'preferences' });
  },
};

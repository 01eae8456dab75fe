// Every AfD stage by kind (DESIGN.md §2): what an experiment's `kind:` may name.
import type { Stage } from '../stage.ts';
import { airlStage } from './airl.ts';
import { bonLengthStage, bonStage } from './bon.ts';
import { densityRatioStage } from './density-ratio.ts';
import { dittoStage } from './ditto.ts';
import { dpoStage } from './dpo.ts';
import { endogenousStage } from './endogenous.ts';
import { evalStage } from './eval.ts';
import { extrapolateStage } from './extrapolate.ts';
import { judgeStage } from './judge.ts';
import { prefRewardStage } from './pref-reward.ts';
import { pretrainStage } from './pretrain.ts';
import { rewardStage } from './reward.ts';
import { rlStage } from './rl.ts';
import { sampleStage } from './sample.ts';
import { sftStage } from './sft.ts';
import { spinStage } from './spin.ts';

export const STAGES: Readonly<Record<string, Stage>> = Object.fromEntries(
  ([pretrainStage, sftStage, sampleStage, rewardStage, prefRewardStage, judgeStage, densityRatioStage, endogenousStage, bonStage, bonLengthStage, rlStage, airlStage, dpoStage, spinStage, dittoStage, extrapolateStage, evalStage] as Stage[]).map((s) => [s.kind, s]),
);

// PLACEHOLDER being written by a helper: the reward scorer (LM backbone + scalar head).
import type { RewardFunction, RewardRuntime } from './reward-function.ts';

export async function loadScorerReward(dir: string, _runtime: RewardRuntime): Promise<RewardFunction> {
  throw new Error(`scorer rewards are not built yet (${dir})`);
}

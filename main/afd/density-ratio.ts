// PLACEHOLDER being written by a helper: r(x, y) = log pi_policy(y|x) - log pi_base(y|x).
import type { RewardFunction, RewardRuntime } from './reward-function.ts';

export async function densityRatioReward(policy: string, base: string, _perToken: boolean, _runtime: RewardRuntime): Promise<RewardFunction> {
  throw new Error(`density-ratio rewards are not built yet (${policy} vs ${base})`);
}

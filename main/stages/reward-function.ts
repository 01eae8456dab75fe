// A reward function r(x, y) as Best-of-N, RL and evaluation use it, whatever made it:
// a trained scorer (kinds/reward.ts: demonstrations vs samples, preferences, the gold
// judge), the density ratio log pi_SFT - log pi_0 (kinds/density-ratio.ts), one model's
// endogenous reward (kinds/endogenous.ts), or a length heuristic (bon:length, below).
// The reward artifact's artifact.json says which; every reward stage writes one of the
// RewardDetails below, and reward-artifact.ts loads it. The implementations import this
// module, never the other way round.
import type { ProviderName } from '../../native-models/runtime/providers.ts';

export interface Scored {
  prompt: string;
  response: string;
}

export interface RewardFunction {
  /** A short description for logs and tables. */
  readonly describe: string;
  /** One reward per item, in order. */
  score(items: readonly Scored[], onProgress?: (done: number, total: number) => void): Promise<number[]>;
  release(): Promise<void>;
}

export interface RewardRuntime {
  provider: ProviderName;
  threads: number | undefined;
}

/** The details a reward artifact's artifact.json holds. */
export type RewardDetails =
  | { type: 'reward'; reward: 'scorer'; dir: string }
  | { type: 'reward'; reward: 'density-ratio'; policy: string; base: string; perToken: boolean }
  | { type: 'reward'; reward: 'endogenous'; model: string; alpha: number; gamma: number; perToken: boolean }
  | { type: 'reward'; reward: 'length'; mode: LengthMode; target: number };

/** Length heuristics: the longest or the shortest response, or the one closest to the demonstrations' median length (in characters). */
export type LengthMode = 'longest' | 'shortest' | 'median';

export function lengthReward(mode: LengthMode, target: number): RewardFunction {
  const score = { longest: (n: number) => n, shortest: (n: number) => -n, median: (n: number) => -Math.abs(n - target) }[mode];
  return {
    describe: mode === 'median' ? `length (closest to ${target} characters)` : `length (${mode})`,
    score: async (items) => items.map((x) => score(x.response.length)),
    release: async () => {},
  };
}

// A reward artifact loaded as the RewardFunction its artifact.json names (a trained
// scorer, the density ratio, an endogenous reward or a length heuristic).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { densityRatioReward } from './density-ratio.ts';
import { endogenousReward } from './endogenous.ts';
import { lengthReward, type RewardDetails, type RewardFunction, type RewardRuntime } from './reward-function.ts';
import { loadScorerReward, SCORER_DIR } from './scorer.ts';
import { artifactDetails, type Artifact } from './stage.ts';

export async function loadRewardFunction(a: Artifact, runtime: RewardRuntime): Promise<RewardFunction> {
  const d = artifactDetails(a) as unknown as RewardDetails;
  switch (d.reward) {
    case 'scorer': {
      // The scorer's folder inside the artifact's own, wherever the store now is (the
      // recorded absolute path is only a fallback for artifacts written elsewhere).
      const own = join(a.dir, SCORER_DIR);
      return loadScorerReward(existsSync(own) ? own : d.dir, runtime);
    }
    case 'density-ratio':
      return densityRatioReward(d.policy, d.base, d.perToken, runtime);
    case 'endogenous':
      return endogenousReward(d.model, { alpha: d.alpha, gamma: d.gamma, perToken: d.perToken }, runtime);
    case 'length':
      return lengthReward(d.mode, d.target);
    default:
      throw new Error(`${a.dir}: unknown reward kind ${JSON.stringify((d as { reward?: unknown }).reward)}`);
  }
}

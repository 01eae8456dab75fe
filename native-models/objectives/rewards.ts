// Host-side reward arithmetic: advantages for RL, KL estimates, and the adversarial
// imitation reward shapes. Plain numbers: these run between graph calls.

/** RLOO (Ahmadian et al. 2024): each sample's reward minus the mean of the other k-1 samples of its prompt. */
export function rlooAdvantages(rewards: readonly number[]): number[] {
  const k = rewards.length;
  if (k < 2) throw new Error('RLOO needs at least two samples per prompt');
  const sum = rewards.reduce((a, b) => a + b, 0);
  return rewards.map((r) => r - (sum - r) / (k - 1));
}

/** GRPO-style group baseline (Shao et al. 2024): (r - mean) / (std + eps), std over the group (population). */
export function grpoAdvantages(rewards: readonly number[], eps = 1e-6): number[] {
  const k = rewards.length;
  const mean = rewards.reduce((a, b) => a + b, 0) / k;
  const std = Math.sqrt(rewards.reduce((a, r) => a + (r - mean) ** 2, 0) / k);
  return rewards.map((r) => (r - mean) / (std + eps));
}

/**
 * Per-token KL estimates of KL(pi || ref) from samples of pi (Schulman's k1 and k3):
 * k1 = log pi - log ref (unbiased, can be negative); k3 = (r - 1) - log r with
 * r = ref / pi (unbiased and never negative).
 */
export function klEstimate(logpPolicy: number, logpRef: number, kind: 'k1' | 'k3' = 'k1'): number {
  const d = logpRef - logpPolicy;
  return kind === 'k1' ? -d : Math.expm1(d) - d;
}

/** The reward of a sample under a KL penalty: r - beta * (log pi - log ref), summed over the response. */
export const klPenalizedReward = (reward: number, logpPolicy: number, logpRef: number, beta: number): number => reward - beta * (logpPolicy - logpRef);

export type AirlShape = 'logit' | 'logD' | 'neglog1mD';

const softplus = (x: number): number => Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));

/**
 * Reward from a discriminator logit z = log D - log(1 - D) (D = P(demonstration)):
 * 'logit' -> z (reverse KL, the paper's choice); 'logD' -> log D = -softplus(-z) (GAIL,
 * Jensen-Shannon); 'neglog1mD' -> -log(1 - D) = softplus(z).
 */
export function airlReward(z: number, shape: AirlShape): number {
  switch (shape) {
    case 'logit': return z;
    case 'logD': return -softplus(-z);
    case 'neglog1mD': return softplus(z);
  }
}

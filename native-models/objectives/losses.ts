// The training objectives of Alignment from Demonstrations (DESIGN.md §2), as IR graphs.
// Every function returns a scalar loss to minimize.

import * as T from '../ir/index.ts';
import { logSigmoid, softplus } from './functions.ts';

/**
 * SFT = forward KL to the demonstrator: mean cross-entropy of the response tokens only.
 * `responseMask` [B, T] is 1 on positions whose target is a response token, 0 on prompt
 * and padding positions.
 */
export const sftLoss = (logits: T.Value, targets: T.Value, responseMask: T.Value): T.Value => T.crossEntropy(logits, targets, responseMask);

/**
 * Dynamic fine-tuning (Wu et al. 2025, "On the Generalization of SFT"): SFT with each
 * response token's loss weighted by that token's own probability, the weight a constant
 * (stop-gradient): -sum_t m_t sg(p_t) log p_t / sum_t m_t, normalized over response tokens
 * like sftLoss. Its gradient is SFT's token by token times p_t: a token the model finds
 * unlikely pulls less, which undoes the 1/p_t that SFT's gradient carries as an implicit
 * reward when read as a policy gradient.
 */
export function dftLoss(logits: T.Value, targets: T.Value, responseMask: T.Value): T.Value {
  const logp = T.tokenLogProb(logits, T.cast(targets, 'int64')); // [B, T]
  const m = T.cast(responseMask, logits.dtype);
  const weighted = T.mul(T.mul(T.stopGradient(T.exp(logp)), logp), m);
  return T.div(T.neg(T.reduceSum(weighted)), T.reduceSum(m));
}

/**
 * Pointwise reward-model loss: binary cross-entropy on the scorer's logit r, label 1 for
 * the positive source and 0 for the negative one (the reward is the logit itself):
 * mean(-y log sigmoid(r) - (1 - y) log sigmoid(-r)) = mean(softplus(r) - y r).
 */
export function pointwiseBce(scores: T.Value, labels: T.Value): T.Value {
  const y = T.cast(labels, scores.dtype);
  return T.reduceMean(T.sub(softplus(scores), T.mul(y, scores)));
}

/** Pairwise Bradley-Terry loss over pairs sharing a prompt: mean(-log sigmoid(r+ - r-)). */
export const bradleyTerry = (chosen: T.Value, rejected: T.Value): T.Value => T.neg(T.reduceMean(logSigmoid(T.sub(chosen, rejected))));

/**
 * DPO (Rafailov et al. 2023): -log sigmoid(beta [(log pi(y+) - log ref(y+)) - (log pi(y-) - log ref(y-))]),
 * averaged over pairs; inputs are summed sequence log-probabilities [N]. SPIN is this loss with
 * demonstrations as y+ and the current policy's own samples as y-.
 */
export function dpoLoss(policyChosen: T.Value, policyRejected: T.Value, refChosen: T.Value, refRejected: T.Value, beta: number): T.Value {
  const margin = T.sub(T.sub(policyChosen, refChosen), T.sub(policyRejected, refRejected));
  return T.neg(T.reduceMean(logSigmoid(T.mul(margin, beta))));
}

/**
 * Policy-gradient loss for RL from a reward with a per-sample advantage (RLOO or GRPO,
 * computed on the host): -mean(A * log pi(y|x)) over samples, where `logp` [N] are summed
 * response log-probs of the policy and `advantages` [N] are constants. The KL penalty to
 * the reference is part of the reward the advantages come from (the usual RLHF form).
 */
export const policyGradientLoss = (logp: T.Value, advantages: T.Value): T.Value => T.neg(T.reduceMean(T.mul(T.stopGradient(advantages), logp)));

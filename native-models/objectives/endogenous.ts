// The endogenous reward (Li et al. 2025, "Generalist Reward Models: Found Inside Large
// Language Models"): next-token training makes a model's logits a soft Q-function, so a
// reward can be read off one model by the inverse soft Bellman operator, with no reward
// model trained and no second model.
//
// States are prefixes s_t = (x, y_<t), actions tokens, transitions deterministic. With
// Q(s, a) = the logit of a at s and V(s) = alpha log sum_a exp(Q(s, a) / alpha) (the soft
// value of the policy softmax(Q / alpha), i.e. the model sampled at temperature alpha):
//
//     r(s_t, a_t) = Q(s_t, a_t) - gamma V(s_{t+1}),
//
// and V = 0 after the end-of-text token (the episode is over). A response's reward is the
// sum over its tokens. With gamma = 1 the sum telescopes to
// alpha log pi_alpha(y|x) + V(s_1) - V(s_{H+1}): the model's own log-likelihood of the
// response plus a value of the prompt, so within one prompt it ranks responses as the
// model's likelihood does.

import * as T from '../ir/index.ts';

export interface EndogenousOptions {
  /** Entropy temperature: V(s) = alpha logsumexp(Q(s, .) / alpha). 1 reads the model as it samples at temperature 1. */
  alpha: number;
  /** Discount of the next state's value. */
  gamma: number;
}

/**
 * Each row's summed endogenous reward [B], from the logits [B, T, V] of its tokens:
 * `targets` [B, T] the token taken after position t (a_t), `actionMask` [B, T] 1 where
 * that action is a response token, `valueMask` [B, T] 1 at each position u that is the
 * non-terminal next state s_{t+1} of a response action at t = u - 1. Written as
 *   R = sum_t actionMask_t Q_t - gamma sum_u valueMask_u V_u,
 * which needs no shifted copy of the logits.
 */
export function endogenousReturn(logits: T.Value, targets: T.Value, actionMask: T.Value, valueMask: T.Value, o: EndogenousOptions): T.Value {
  if (!(o.alpha > 0)) throw new Error(`the endogenous reward's alpha must be positive, not ${o.alpha}`);
  const t = T.cast(targets, 'int64');
  const z = o.alpha === 1 ? logits : T.mul(logits, 1 / o.alpha); // Q / alpha, [B, T, V]
  const picked = T.squeeze(T.gatherElements(z, T.unsqueeze(t, -1), -1), -1); // Q(s_t, a_t) / alpha, [B, T]
  // logsumexp = picked - log softmax[picked]: the fused log-softmax, no second [B, T, V] pass.
  const lse = T.sub(picked, T.tokenLogProb(z, t)); // V(s_t) / alpha, [B, T]
  const q = T.reduceSum(T.mul(picked, T.cast(actionMask, logits.dtype)), 1);
  const v = T.reduceSum(T.mul(lse, T.cast(valueMask, logits.dtype)), 1);
  return T.mul(T.sub(q, T.mul(v, o.gamma)), o.alpha); // [B]
}

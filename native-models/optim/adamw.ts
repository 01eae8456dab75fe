// AdamW (Loshchilov & Hutter): Adam with weight decay decoupled from the gradient.
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
//   p = p (1 - lr wd) - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
// (PyTorch's torch.optim.AdamW computes exactly this, with the decay applied first.)

import * as T from '../ir/index.ts';
import { decayRank2, type Optimizer, type UpdateArgs } from './optimizer.ts';

export interface AdamWConfig {
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  /** Which parameters are decayed (default: rank >= 2). */
  decay?: (param: T.Value) => boolean;
}

export function adamw(cfg: AdamWConfig = {}): Optimizer {
  const b1 = cfg.beta1 ?? 0.9, b2 = cfg.beta2 ?? 0.999, eps = cfg.eps ?? 1e-8, wd = cfg.weightDecay ?? 0.01;
  const decays = cfg.decay ?? decayRank2;
  return {
    name: 'adamw',
    slots: ['m', 'v'],
    config: { beta1: b1, beta2: b2, eps, weightDecay: wd },
    update({ param, grad, state, step, lr }: UpdateArgs) {
      const m = T.add(T.mul(b1, state.m), T.mul(1 - b1, grad));
      const v = T.add(T.mul(b2, state.v), T.mul(1 - b2, T.mul(grad, grad)));
      const bc1 = T.sub(1, T.pow(T.scalar(b1, param.dtype), step));
      const bc2 = T.sub(1, T.pow(T.scalar(b2, param.dtype), step));
      const stepSize = T.div(lr, bc1);
      const denom = T.add(T.div(T.sqrt(v), T.sqrt(bc2)), eps);
      const decayed = decays(param) && wd !== 0 ? T.mul(param, T.sub(1, T.mul(lr, wd))) : param;
      return { param: T.sub(decayed, T.mul(stepSize, T.div(m, denom))), state: { m, v } };
    },
  };
}

// SGD with momentum (PyTorch's form: buf = mu buf + g; p = p - lr buf) and optional
// decoupled weight decay.

import * as T from '../ir/index.ts';
import { decayRank2, type Optimizer, type UpdateArgs } from './optimizer.ts';

export interface SgdConfig {
  momentum?: number;
  weightDecay?: number;
  decay?: (param: T.Value) => boolean;
}

export function sgd(cfg: SgdConfig = {}): Optimizer {
  const mu = cfg.momentum ?? 0, wd = cfg.weightDecay ?? 0;
  const decays = cfg.decay ?? decayRank2;
  return {
    name: 'sgd',
    slots: mu > 0 ? ['momentum'] : [],
    config: { momentum: mu, weightDecay: wd },
    update({ param, grad, state, lr }: UpdateArgs) {
      const buf = mu > 0 ? T.add(T.mul(mu, state.momentum), grad) : grad;
      const decayed = decays(param) && wd !== 0 ? T.mul(param, T.sub(1, T.mul(lr, wd))) : param;
      const next: Record<string, T.Value> = mu > 0 ? { momentum: buf } : {};
      return { param: T.sub(decayed, T.mul(lr, buf)), state: next };
    },
  };
}

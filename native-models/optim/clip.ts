// Global-norm gradient clipping: if ||g|| > max, every gradient is scaled by max / ||g||.

import * as T from '../ir/index.ts';

export function globalNorm(grads: readonly T.Value[]): T.Value {
  const sq = grads.map((g) => T.reduceSum(T.mul(g, g)));
  return T.sqrt(sq.reduce((a, b) => T.add(a, b)));
}

/** Returns the clipped gradients and the norm before clipping (PyTorch's clip_grad_norm_, eps 1e-6). */
export function clipByGlobalNorm(grads: readonly T.Value[], maxNorm: number): { grads: T.Value[]; norm: T.Value } {
  const norm = globalNorm(grads);
  const scale = T.where(T.less(maxNorm, T.add(norm, 1e-6)), T.div(maxNorm, T.add(norm, 1e-6)), 1);
  return { grads: grads.map((g) => T.mul(g, scale)), norm };
}

// The optimizer interface: an update rule written in IR ops, so that the whole update
// runs inside the training-step graph.

import type { Value } from '../ir/index.ts';

/** What one parameter's update sees. `step` is the 1-based step count, `lr` the learning rate (scalars). */
export interface UpdateArgs {
  param: Value;
  grad: Value;
  state: Record<string, Value>;
  step: Value;
  lr: Value;
}

export interface Optimizer {
  readonly name: string;
  /** Names of the per-parameter state tensors (each shaped like its parameter), e.g. ['m', 'v']. */
  readonly slots: readonly string[];
  update(args: UpdateArgs): { param: Value; state: Record<string, Value> };
  /** The hyperparameters, for the run's record. */
  readonly config: Readonly<Record<string, number | boolean | string>>;
}

/** nanoGPT's rule: decay matrices and embeddings (rank >= 2), not biases or norm gains. */
export const decayRank2 = (p: Value): boolean => p.rank >= 2;

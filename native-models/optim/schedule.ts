// Learning-rate schedules: pure functions of the step, evaluated on the host and fed to
// the training graph as its `lr` input (so changing the schedule never rebuilds a graph).

export type Schedule =
  | { kind: 'constant'; lr: number }
  | { kind: 'cosine'; lr: number; warmupSteps: number; totalSteps: number; minLr?: number }
  | { kind: 'linear'; lr: number; warmupSteps: number; totalSteps: number; minLr?: number };

/** Learning rate for 0-based `step`: linear warm-up to `lr`, then cosine or linear decay to `minLr`. */
export function learningRate(s: Schedule, step: number): number {
  if (s.kind === 'constant') return s.lr;
  const minLr = s.minLr ?? 0;
  if (step < s.warmupSteps) return (s.lr * (step + 1)) / s.warmupSteps;
  const span = Math.max(1, s.totalSteps - s.warmupSteps);
  const progress = Math.min(1, (step - s.warmupSteps) / span);
  const factor = s.kind === 'cosine' ? 0.5 * (1 + Math.cos(Math.PI * progress)) : 1 - progress;
  return minLr + (s.lr - minLr) * factor;
}

// Progress as a user reads it: a fraction (or 'unknown' when the total is not known) and
// the time left, estimated from the rate of the recent steps only, so that the slow first
// step (graph compilation) and earlier phases do not skew it.

export interface ProgressEstimate {
  fraction: number | 'unknown';
  /** Milliseconds left, or null until there is a rate to go by. */
  etaMs: number | null;
  /** Units (steps, bytes...) per second over the recent window, or null. */
  rate: number | null;
}

export class ProgressClock {
  private readonly samples: { done: number; at: number }[] = [];
  private readonly windowMs: number;
  private readonly maxSamples: number;

  constructor(options: { windowMs?: number; maxSamples?: number } = {}) {
    this.windowMs = options.windowMs ?? 20_000;
    this.maxSamples = options.maxSamples ?? 50;
  }

  /** Records that `done` of `total` units are complete at time `now` (ms). */
  update(done: number, total: number | null, now = performance.now()): ProgressEstimate {
    const last = this.samples.at(-1);
    // A step count that goes back (a run resumed from an earlier checkpoint) starts over.
    if (last !== undefined && done < last.done) this.samples.length = 0;
    this.samples.push({ done, at: now });
    while (this.samples.length > this.maxSamples || (this.samples.length > 2 && now - this.samples[0].at > this.windowMs)) this.samples.shift();

    const fraction = total !== null && total > 0 ? Math.min(1, Math.max(0, done / total)) : 'unknown';
    const first = this.samples[0];
    const span = now - first.at;
    const rate = this.samples.length >= 2 && span > 0 && done > first.done ? ((done - first.done) / span) * 1000 : null;
    const etaMs = rate !== null && total !== null ? Math.max(0, ((total - done) / rate) * 1000) : null;
    return { fraction, etaMs, rate };
  }
}

// Histogram bins and quantiles for the datasets view's response-length chart.

export interface Bin {
  /** Inclusive lower and exclusive upper edge (the last bin includes its upper edge). */
  from: number;
  to: number;
  count: number;
}

/** A "nice" step (1, 2 or 5 times a power of ten) at least `raw`. */
export function niceStep(raw: number): number {
  if (!(raw > 0) || !Number.isFinite(raw)) return 1;
  const power = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 5, 10]) if (m * power >= raw) return m * power;
  return 10 * power;
}

/** The bins of a histogram given as edges (length counts + 1) and counts, as the API
 *  sends it; mismatched lengths are cut to what both describe. */
export function binsFromEdges(h: { edges: readonly number[]; counts: readonly number[] }): Bin[] {
  const n = Math.max(0, Math.min(h.counts.length, h.edges.length - 1));
  return Array.from({ length: n }, (_, i) => ({ from: h.edges[i], to: h.edges[i + 1], count: h.counts[i] }));
}

/** Median and a few quantiles of lengths, for the statistics panel. */
export function quantile(values: readonly number[], q: number): number {
  const xs = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b);
  if (xs.length === 0) return Number.NaN;
  const pos = Math.min(1, Math.max(0, q)) * (xs.length - 1);
  const i = Math.floor(pos);
  const frac = pos - i;
  return i + 1 < xs.length ? xs[i] * (1 - frac) + xs[i + 1] * frac : xs[i];
}

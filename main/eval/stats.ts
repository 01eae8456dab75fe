// The statistics of the evaluation (DESIGN.md §3): every number comes with an interval.

/** Two-sided 97.5% quantile of Student's t with `df` degrees of freedom (exact table to 30, then a series). */
export function tQuantile975(df: number): number {
  const table = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042];
  if (df < 1) return Infinity;
  if (df <= 30) return table[Math.floor(df) - 1];
  // Cornish-Fisher expansion around the normal quantile.
  const z = 1.959964, z3 = z ** 3, z5 = z ** 5;
  return z + (z3 + z) / (4 * df) + (5 * z5 + 16 * z3 + 3 * z) / (96 * df * df);
}

export interface MeanCI { mean: number; ci95: [number, number]; n: number }

/** Mean with a 95% t-interval. */
export function meanCI(xs: readonly number[]): MeanCI {
  const n = xs.length;
  if (n === 0) return { mean: NaN, ci95: [NaN, NaN], n };
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  if (n === 1) return { mean, ci95: [-Infinity, Infinity], n };
  const sd = Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (n - 1));
  const h = tQuantile975(n - 1) * sd / Math.sqrt(n);
  return { mean, ci95: [mean - h, mean + h], n };
}

/** Middle value (the mean of the two middle ones for an even count); NaN when empty. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? NaN : s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export interface WinRate { rate: number; ci95: [number, number]; n: number; wins: number; ties: number; losses: number }

/**
 * Win rate with a Wilson score interval (95%); a tie counts as half a win. Outcomes: 1 win,
 * 0.5 tie, 0 loss.
 */
export function winRate(outcomes: readonly number[]): WinRate {
  const n = outcomes.length;
  const wins = outcomes.filter((o) => o === 1).length, ties = outcomes.filter((o) => o === 0.5).length;
  if (wins + ties + outcomes.filter((o) => o === 0).length !== n) throw new Error('win-rate outcomes must be 1 (win), 0.5 (tie) or 0 (loss)');
  const k = wins + ties / 2;
  return { ...wilson(k, n), n, wins, ties, losses: n - wins - ties };
}

/** Wilson score interval for k successes out of n (k may be fractional), z = 1.96. */
export function wilson(k: number, n: number, z = 1.959964): { rate: number; ci95: [number, number] } {
  if (n === 0) return { rate: NaN, ci95: [0, 1] };
  const p = k / n, z2 = z * z;
  const centre = (p + z2 / (2 * n)) / (1 + z2 / n);
  const half = (z / (1 + z2 / n)) * Math.sqrt((p * (1 - p)) / n + z2 / (4 * n * n));
  return { rate: p, ci95: [Math.max(0, centre - half), Math.min(1, centre + half)] };
}

/** distinct-n: unique n-grams over all n-grams of the responses (token or word sequences). */
export function distinctN(sequences: readonly (readonly (string | number)[])[], n: number): number {
  const seen = new Set<string>();
  let total = 0;
  for (const s of sequences) {
    for (let i = 0; i + n <= s.length; i++) {
      seen.add(s.slice(i, i + n).join('\u0001'));
      total++;
    }
  }
  return total === 0 ? 0 : seen.size / total;
}

/** Pearson correlation (NaN when either side is constant). */
export function pearson(xs: readonly number[], ys: readonly number[]): number {
  const n = xs.length;
  if (n !== ys.length || n < 2) return NaN;
  const mx = xs.reduce((a, b) => a + b, 0) / n, my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0, sxx = 0, syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i] - mx) * (ys[i] - my);
    sxx += (xs[i] - mx) ** 2;
    syy += (ys[i] - my) ** 2;
  }
  return sxx === 0 || syy === 0 ? NaN : sxy / Math.sqrt(sxx * syy);
}

export interface Line { slope: number; intercept: number; correlation: number; n: number }

/** Least-squares line y = intercept + slope x (slope 0 when x is constant). */
export function fitLine(xs: readonly number[], ys: readonly number[]): Line {
  const n = xs.length;
  if (n !== ys.length || n === 0) throw new Error('a line needs as many y as x values, and at least one');
  const mx = xs.reduce((a, b) => a + b, 0) / n, my = ys.reduce((a, b) => a + b, 0) / n;
  let sxy = 0, sxx = 0;
  for (let i = 0; i < n; i++) {
    sxy += (xs[i] - mx) * (ys[i] - my);
    sxx += (xs[i] - mx) ** 2;
  }
  const slope = sxx === 0 ? 0 : sxy / sxx;
  return { slope, intercept: my - slope * mx, correlation: pearson(xs, ys), n };
}

/** Index of the highest score (the first one on ties): Best-of-N's choice. */
export function argmax(scores: readonly number[]): number {
  if (scores.length === 0) throw new Error('Best-of-N needs at least one candidate');
  let best = 0;
  for (let i = 1; i < scores.length; i++) if (scores[i] > scores[best]) best = i;
  return best;
}

/** The analytic bound KL(Best-of-N || base) <= log N - (N - 1) / N. */
export const bonKlBound = (n: number): number => Math.log(n) - (n - 1) / n;

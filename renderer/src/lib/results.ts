// The results view's data: Best-of-N rows grouped into one line per method (reward model)
// with interval bands, single rows as reference lines, and the table as CSV.
import type { ResultRow } from '../../../main/experiments/contract.ts';
import { toCsv } from './csv.ts';

export interface Series {
  name: string;
  points: { x: number; y: number }[];
  band: { x: number; lo: number; hi: number }[];
}

export interface Reference {
  name: string;
  y: number;
  lo: number;
  hi: number;
}

/** Rows with an N become one series per method (sorted by N); rows without one (pi_0, SFT)
 *  become horizontal reference lines. */
export function goldVsN(rows: readonly ResultRow[]): { series: Series[]; references: Reference[] } {
  const byMethod = new Map<string, ResultRow[]>();
  const references: Reference[] = [];
  for (const r of rows) {
    if (r.n === undefined || r.n === null) references.push({ name: r.method, y: r.gold_mean, lo: r.gold_ci95[0], hi: r.gold_ci95[1] });
    else byMethod.set(r.method, [...(byMethod.get(r.method) ?? []), r]);
  }
  const series = [...byMethod].map(([name, rs]) => {
    const sorted = [...rs].sort((a, b) => (a.n ?? 0) - (b.n ?? 0));
    return {
      name,
      points: sorted.map((r) => ({ x: r.n as number, y: r.gold_mean })),
      band: sorted.map((r) => ({ x: r.n as number, lo: r.gold_ci95[0], hi: r.gold_ci95[1] })),
    };
  });
  return { series, references };
}

export const RESULT_COLUMNS = ['method', 'n', 'gold_mean', 'gold_ci95_lo', 'gold_ci95_hi', 'gold_gain_vs_sft', 'gold_gain_ci95_lo', 'gold_gain_ci95_hi', 'win_rate_vs_sft', 'win_rate_ci95_lo', 'win_rate_ci95_hi', 'mean_length', 'distinct_2', 'kl_estimate'] as const;

/** The length-control columns, when the evaluation has them (an `eval` stage with `lengthFit` and `shortest`). */
export const LENGTH_CONTROL_COLUMNS = ['gold_gain_length_adjusted', 'gold_gain_length_adjusted_ci95_lo', 'gold_gain_length_adjusted_ci95_hi', 'win_rate_vs_shortest', 'win_rate_vs_shortest_ci95_lo', 'win_rate_vs_shortest_ci95_hi', 'gain_vs_shortest_length_adjusted', 'gain_vs_shortest_length_adjusted_ci95_lo', 'gain_vs_shortest_length_adjusted_ci95_hi'] as const;

/** Whether any row has the length-controlled numbers. */
export const hasLengthControl = (rows: readonly ResultRow[]): boolean => rows.some((r) => r.gold_gain_length_adjusted !== undefined || r.win_rate_vs_shortest !== undefined);

/** The results table as CSV, one row per table row, intervals as two columns. */
export function resultsCsv(rows: readonly ResultRow[]): string {
  const controlled = hasLengthControl(rows);
  return toCsv([...RESULT_COLUMNS, ...(controlled ? LENGTH_CONTROL_COLUMNS : [])], rows.map((r) => [
    r.method, r.n, r.gold_mean, r.gold_ci95[0], r.gold_ci95[1], r.gold_gain_vs_sft, r.gold_gain_ci95?.[0], r.gold_gain_ci95?.[1], r.win_rate_vs_sft,
    r.win_rate_ci95?.[0], r.win_rate_ci95?.[1], r.mean_length, r.distinct_2, r.kl_estimate,
    ...(controlled ? [
      r.gold_gain_length_adjusted, r.gold_gain_length_adjusted_ci95?.[0], r.gold_gain_length_adjusted_ci95?.[1],
      r.win_rate_vs_shortest, r.win_rate_vs_shortest_ci95?.[0], r.win_rate_vs_shortest_ci95?.[1],
      r.gain_vs_shortest_length_adjusted, r.gain_vs_shortest_length_adjusted_ci95?.[0], r.gain_vs_shortest_length_adjusted_ci95?.[1],
    ] : []),
  ]));
}

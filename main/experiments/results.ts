// The results of an experiment (DESIGN.md §3): the table its `eval` stage wrote, as the
// CLI, `afd serve` and the results view show it, plus the gold-reward-against-N plot.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { StudioDatabase } from '../../db/database.ts';
import { RunStore } from '../../db/runs.ts';
import { linePlotSvg, type PlotSeries } from '../report/svg-plot.ts';
import type { ResultRow, ResultsTable } from './contract.ts';
import { EVALUATION_FILE, type Evaluation } from '../stages/kinds/eval.ts';

/**
 * The latest finished evaluation of the experiment, or null when none has finished. The
 * evaluation is read from the run's folder under the store's files as they are now (not
 * the folder recorded when the stage ran), so results survive moving the data folder.
 */
export function experimentResults(db: StudioDatabase, files: { runDir(runId: number): string }, experimentId: number): ResultsTable | null {
  const runs = new RunStore(db).list({ experimentId, status: 'done' }).filter((r) => r.stage === 'afd-stage' && r.config.stage === 'eval').sort((a, b) => b.id - a.id);
  for (const r of runs) {
    const file = join(files.runDir(r.id), EVALUATION_FILE);
    if (existsSync(file)) return JSON.parse(readFileSync(file, 'utf8')) as Evaluation;
  }
  return null;
}

const fmt = (x: number, d = 3): string => x.toFixed(d);

/** The results as a Markdown table; the length-controlled columns appear when the evaluation has them. */
export function resultsMarkdown(t: ResultsTable): string {
  const ci = (x: number | undefined, c: [number, number] | undefined, d = 3): string => (x === undefined || c === undefined ? '' : `${fmt(x, d)} [${fmt(c[0], d)}, ${fmt(c[1], d)}]`);
  const adjusted = t.rows.some((r) => r.gold_gain_length_adjusted !== undefined), vsShortest = t.rows.some((r) => r.win_rate_vs_shortest !== undefined);
  const overShortest = t.rows.some((r) => r.gain_vs_shortest_length_adjusted !== undefined);
  const lines = [
    `Gold judge pair accuracy (cross-validated): ${t.gold_judge_accuracy === null ? 'n/a' : fmt(t.gold_judge_accuracy)}`,
    '',
    `| method | N | gold reward (95% CI) | gain over SFT, paired (95% CI) |${adjusted ? ' gain, length removed (95% CI) |' : ''} win rate vs SFT (95% CI) |${vsShortest ? ' win rate vs shortest-of-N (95% CI) |' : ''}${overShortest ? ' gain over shortest-of-N, length removed (95% CI) |' : ''} mean length (tokens) | distinct-2 | KL bound |`,
    `| --- | ---: | --- | --- |${adjusted ? ' --- |' : ''} --- |${vsShortest ? ' --- |' : ''}${overShortest ? ' --- |' : ''} ---: | ---: | ---: |`,
  ];
  for (const r of t.rows) {
    const win = r.win_rate_ci95 ? ci(r.win_rate_vs_sft, r.win_rate_ci95) : fmt(r.win_rate_vs_sft);
    lines.push(`| ${r.method} | ${r.n ?? ''} | ${ci(r.gold_mean, r.gold_ci95)} | ${ci(r.gold_gain_vs_sft, r.gold_gain_ci95)} |${adjusted ? ` ${ci(r.gold_gain_length_adjusted, r.gold_gain_length_adjusted_ci95)} |` : ''} ${win} |${vsShortest ? ` ${ci(r.win_rate_vs_shortest, r.win_rate_vs_shortest_ci95)} |` : ''}${overShortest ? ` ${ci(r.gain_vs_shortest_length_adjusted, r.gain_vs_shortest_length_adjusted_ci95)} |` : ''} ${fmt(r.mean_length, 1)} | ${r.distinct_2 === undefined ? '' : fmt(r.distinct_2)} | ${r.kl_estimate === undefined ? '' : fmt(r.kl_estimate)} |`);
  }
  return `${lines.join('\n')}\n`;
}

/** Gold reward against N: one line per Best-of-N method, with interval bands; policies as flat dashed lines. */
export function goldVsNSeries(rows: readonly ResultRow[]): PlotSeries[] {
  const bon = new Map<string, ResultRow[]>();
  for (const r of rows) if (r.n !== undefined) bon.set(r.method, [...(bon.get(r.method) ?? []), r]);
  const ns = [...new Set(rows.flatMap((r) => (r.n === undefined ? [] : [r.n])))].sort((a, b) => a - b);
  const series: PlotSeries[] = [...bon].map(([name, rs]) => ({ name, points: rs.sort((a, b) => a.n! - b.n!).map((r) => ({ x: r.n!, y: r.gold_mean, lo: r.gold_ci95[0], hi: r.gold_ci95[1] })) }));
  if (ns.length > 1) {
    for (const r of rows) if (r.n === undefined) series.push({ name: r.method, dashed: true, points: [ns[0], ns[ns.length - 1]].map((x) => ({ x, y: r.gold_mean })) });
  }
  return series;
}

export function goldVsNSvg(t: ResultsTable): string {
  return linePlotSvg(goldVsNSeries(t.rows), { title: 'Gold reward against N (Best-of-N), 95% intervals', xLabel: 'N', yLabel: 'gold reward', logX: true });
}

/** Gold reward against the KL bound of Best-of-N (log N - (N - 1) / N): how much reward each method buys per nat of drift from the sampling policy. */
export function goldVsKlSvg(t: ResultsTable): string {
  const bon = new Map<string, ResultRow[]>();
  for (const r of t.rows) if (r.n !== undefined && r.kl_estimate !== undefined) bon.set(r.method, [...(bon.get(r.method) ?? []), r]);
  const series: PlotSeries[] = [...bon].map(([name, rs]) => ({ name, points: rs.sort((a, b) => a.kl_estimate! - b.kl_estimate!).map((r) => ({ x: r.kl_estimate!, y: r.gold_mean, lo: r.gold_ci95[0], hi: r.gold_ci95[1] })) }));
  return linePlotSvg(series, { title: 'Gold reward against KL(Best-of-N || SFT) bound, 95% intervals', xLabel: 'KL bound (nats)', yLabel: 'gold reward' });
}

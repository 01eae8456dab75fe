// Training curves: metric series grown by live events, grouped into charts (losses in one,
// rewards in another) so that scales stay comparable within a chart.
import type { MetricSeries } from '../../../main/api/contract.ts';

/** The series with one step's values added (a repeated step replaces its value, as the
 *  store does when a resumed run logs a step again). Returns new arrays for reactivity. */
export function appendMetric(series: readonly MetricSeries[], step: number, values: Record<string, number | null>): MetricSeries[] {
  const out = series.map((s) => ({ ...s, points: [...s.points] }));
  for (const [name, value] of Object.entries(values)) {
    let s = out.find((x) => x.name === name);
    if (s === undefined) out.push((s = { name, points: [] }));
    const at = s.points.findIndex((p) => p.step >= step);
    if (at === -1) s.points.push({ step, value });
    else if (s.points[at].step === step) s.points[at] = { step, value };
    else s.points.splice(at, 0, { step, value });
  }
  return out;
}

/** The chart a metric belongs in, by name: loss, reward, accuracy, or its own. */
export function metricGroup(name: string): string {
  const n = name.toLowerCase();
  if (n.includes('loss')) return 'loss';
  if (n.includes('reward') || n.includes('score')) return 'reward';
  if (n.includes('acc')) return 'accuracy';
  if (n === 'lr' || n.includes('learning')) return 'learning rate';
  return name;
}

export interface ChartGroup {
  title: string;
  series: { name: string; points: { x: number; y: number }[] }[];
}

/** One chart per group, loss and reward first; series without points are left out. */
export function chartGroups(series: readonly MetricSeries[]): ChartGroup[] {
  const groups = new Map<string, ChartGroup>();
  for (const s of series) {
    if (s.points.length === 0) continue;
    const title = metricGroup(s.name);
    const g = groups.get(title) ?? { title, series: [] };
    g.series.push({ name: s.name, points: s.points.map((p) => ({ x: p.step, y: p.value ?? Number.NaN })) });
    groups.set(title, g);
  }
  const order = ['loss', 'reward', 'accuracy'];
  const rank = (t: string): number => (order.includes(t) ? order.indexOf(t) : order.length);
  return [...groups.values()].sort((a, b) => rank(a.title) - rank(b.title) || a.title.localeCompare(b.title));
}

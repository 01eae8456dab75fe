// Chart scaling for the inline SVG charts: linear scales, round tick values, and the path
// strings of lines and interval bands.
import { niceStep } from './histogram.ts';

export interface Scale {
  (value: number): number;
  domain: [number, number];
  range: [number, number];
}

/** A linear map from `domain` to `range`; a zero-width domain maps to the range's middle. */
export function linearScale(domain: [number, number], range: [number, number]): Scale {
  const [d0, d1] = domain;
  const [r0, r1] = range;
  const span = d1 - d0;
  const f = ((v: number) => (span === 0 ? (r0 + r1) / 2 : r0 + ((v - d0) / span) * (r1 - r0))) as Scale;
  f.domain = domain;
  f.range = range;
  return f;
}

/** The smallest and largest finite values; [0, 1] when there are none. */
export function extent(values: Iterable<number>): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (!Number.isFinite(v)) continue;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return lo === Infinity ? [0, 1] : [lo, hi];
}

/** About `count` round tick values covering [lo, hi]; the domain widened to the outer ticks. */
export function niceTicks(lo: number, hi: number, count = 5): { ticks: number[]; domain: [number, number] } {
  if (lo === hi) {
    const pad = lo === 0 ? 1 : Math.abs(lo) * 0.1;
    lo -= pad;
    hi += pad;
  }
  const step = niceStep((hi - lo) / Math.max(1, count));
  const start = Math.floor(lo / step) * step;
  const end = Math.ceil(hi / step) * step;
  const ticks: number[] = [];
  // Rounded to the step's precision so that 0.1 + 0.2 reads as 0.3.
  const digits = Math.max(0, -Math.floor(Math.log10(step)));
  for (let v = start; v <= end + step / 2; v += step) ticks.push(Number(v.toFixed(digits)));
  return { ticks, domain: [start, end] };
}

/** A short label for a tick: at most 3 significant digits, k/M suffixes for large values. */
export function formatTick(v: number): string {
  const a = Math.abs(v);
  if (a >= 1e6) return `${Number((v / 1e6).toPrecision(3))}M`;
  if (a >= 1e4) return `${Number((v / 1e3).toPrecision(3))}k`;
  if (a === 0) return '0';
  return String(Number(v.toPrecision(3)));
}

export interface Point {
  x: number;
  y: number;
}

/** An SVG path through the points; a non-finite value breaks the line (a gap, not a zero). */
export function linePath(points: readonly Point[], x: Scale, y: Scale): string {
  let d = '';
  let pen = false;
  for (const p of points) {
    if (!Number.isFinite(p.x) || !Number.isFinite(p.y)) {
      pen = false;
      continue;
    }
    d += `${pen ? 'L' : 'M'}${round(x(p.x))},${round(y(p.y))}`;
    pen = true;
  }
  return d;
}

/** A closed SVG path of the band between `lo` and `hi` along x (an interval band). */
export function bandPath(points: readonly { x: number; lo: number; hi: number }[], x: Scale, y: Scale): string {
  const ok = points.filter((p) => Number.isFinite(p.x) && Number.isFinite(p.lo) && Number.isFinite(p.hi));
  if (ok.length === 0) return '';
  const top = ok.map((p, i) => `${i === 0 ? 'M' : 'L'}${round(x(p.x))},${round(y(p.hi))}`).join('');
  const bottom = [...ok].reverse().map((p) => `L${round(x(p.x))},${round(y(p.lo))}`).join('');
  return `${top}${bottom}Z`;
}

function round(v: number): number {
  return Math.round(v * 100) / 100;
}

/** Ticks at powers of two covering [lo, hi] (both > 0), for Best-of-N's N on a log axis. */
export function log2Ticks(lo: number, hi: number): number[] {
  const a = Math.floor(Math.log2(Math.max(1e-9, lo)));
  const b = Math.ceil(Math.log2(Math.max(1e-9, hi)));
  const ticks: number[] = [];
  for (let k = a; k <= Math.max(a, b); k++) ticks.push(2 ** k);
  return ticks;
}

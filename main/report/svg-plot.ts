// Line plots as standalone SVG (no dependencies): training curves, gold reward against N.
// Each series may carry a 95% interval per point, drawn as a shaded band.

export interface PlotPoint { x: number; y: number; lo?: number; hi?: number }
export interface PlotSeries { name: string; points: PlotPoint[]; dashed?: boolean }
export interface PlotOptions { title: string; xLabel: string; yLabel: string; logX?: boolean; width?: number; height?: number }

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22'];

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** "Nice" tick values covering [lo, hi]. */
function ticks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

export function linePlotSvg(series: readonly PlotSeries[], o: PlotOptions): string {
  // The legend sits in the right margin: wide enough for the longest name (about 7 px a
  // character at 12 px sans-serif) after its 40 px line sample.
  const legend = 40 + 7 * Math.max(0, ...series.map((s) => s.name.length)) + 8;
  const W = o.width ?? 720, H = o.height ?? 420, m = { l: 64, r: Math.max(170, legend), t: 36, b: 48 };
  const all = series.flatMap((s) => s.points);
  if (all.length === 0) throw new Error(`plot "${o.title}" has no points`);
  const fx = (x: number) => (o.logX ? Math.log2(x) : x);
  const xs = all.map((p) => fx(p.x));
  const ys = all.flatMap((p) => [p.y, p.lo ?? p.y, p.hi ?? p.y]).filter(Number.isFinite);
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (x0 === x1) [x0, x1] = [x0 - 1, x1 + 1];
  if (y0 === y1) [y0, y1] = [y0 - 1, y1 + 1];
  const pad = (y1 - y0) * 0.05;
  [y0, y1] = [y0 - pad, y1 + pad];
  const px = (x: number) => m.l + ((fx(x) - x0) / (x1 - x0)) * (W - m.l - m.r);
  const py = (y: number) => H - m.b - ((y - y0) / (y1 - y0)) * (H - m.t - m.b);
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">${esc(o.title)}</text>`,
  ];
  const xTicks = o.logX ? Array.from({ length: Math.floor(x1) - Math.ceil(x0) + 1 }, (_, i) => 2 ** (Math.ceil(x0) + i)) : ticks(x0, x1);
  for (const t of xTicks) {
    const x = px(t);
    parts.push(`<line x1="${x}" y1="${m.t}" x2="${x}" y2="${H - m.b}" stroke="#eee"/><text x="${x}" y="${H - m.b + 16}" text-anchor="middle">${t}</text>`);
  }
  for (const t of ticks(y0, y1)) {
    const y = py(t);
    parts.push(`<line x1="${m.l}" y1="${y}" x2="${W - m.r}" y2="${y}" stroke="#eee"/><text x="${m.l - 6}" y="${y + 4}" text-anchor="end">${t}</text>`);
  }
  parts.push(`<rect x="${m.l}" y="${m.t}" width="${W - m.l - m.r}" height="${H - m.t - m.b}" fill="none" stroke="#333"/>`);
  parts.push(`<text x="${(m.l + W - m.r) / 2}" y="${H - 10}" text-anchor="middle">${esc(o.xLabel)}</text>`);
  parts.push(`<text transform="translate(16 ${(m.t + H - m.b) / 2}) rotate(-90)" text-anchor="middle">${esc(o.yLabel)}</text>`);
  series.forEach((s, i) => {
    const c = COLORS[i % COLORS.length];
    const pts = [...s.points].sort((a, b) => a.x - b.x);
    const band = pts.filter((p) => p.lo !== undefined && p.hi !== undefined && Number.isFinite(p.lo) && Number.isFinite(p.hi));
    if (band.length > 1) {
      const poly = [...band.map((p) => `${px(p.x)},${py(p.hi!)}`), ...band.reverse().map((p) => `${px(p.x)},${py(p.lo!)}`)].join(' ');
      parts.push(`<polygon points="${poly}" fill="${c}" fill-opacity="0.15" stroke="none"/>`);
    }
    parts.push(`<polyline points="${pts.map((p) => `${px(p.x)},${py(p.y)}`).join(' ')}" fill="none" stroke="${c}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`);
    if (pts.length <= 12) for (const p of pts) parts.push(`<circle cx="${px(p.x)}" cy="${py(p.y)}" r="3" fill="${c}"/>`);
    const ly = m.t + 12 + i * 18;
    parts.push(`<line x1="${W - m.r + 12}" y1="${ly - 4}" x2="${W - m.r + 34}" y2="${ly - 4}" stroke="${c}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/><text x="${W - m.r + 40}" y="${ly}">${esc(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}

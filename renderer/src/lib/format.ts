// Short human-readable numbers for the views.

/** "1 h 5 min", "3 min 20 s", "12 s"; "" for an unknown or negative duration. */
export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return '';
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min${s % 60 === 0 ? '' : ` ${s % 60} s`}`;
  const h = Math.floor(m / 60);
  return `${h} h${m % 60 === 0 ? '' : ` ${m % 60} min`}`;
}

/** "512 B", "8.7 MB", "3.2 GB" (decimal units, as disk and GPU vendors use). */
export function formatBytes(bytes: number | null | undefined): string {
  if (bytes === null || bytes === undefined || !Number.isFinite(bytes)) return '';
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let v = bytes;
  let i = 0;
  while (Math.abs(v) >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return `${i === 0 ? v : v.toPrecision(v >= 100 ? 3 : 2)} ${units[i]}`;
}

/** A number with up to `digits` significant digits; "–" for NaN or missing. */
export function formatNumber(v: number | null | undefined, digits = 3): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  if (Number.isInteger(v) && Math.abs(v) < 1e6) return String(v);
  return String(Number(v.toPrecision(digits)));
}

/** "42%" for a rate in [0, 1]. */
export function formatPercent(v: number | null | undefined, digits = 0): string {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  return `${(v * 100).toFixed(digits)}%`;
}

/** "12/40 steps", "3/272 tensors", "1.2 MB of 5.0 MB" for a job's progress in its unit. */
export function formatProgress(step: number, total: number | null, unit: string): string {
  if (unit === 'byte' || unit === 'bytes') return total === null ? formatBytes(step) : `${formatBytes(step)} of ${formatBytes(total)}`;
  const units = unit === '' || unit.endsWith('s') || (total ?? step) === 1 ? unit : `${unit}s`;
  return `${step}${total === null ? '' : `/${total}`}${units === '' ? '' : ` ${units}`}`;
}

/** Percent of progress, 0..100, or null when the total is unknown. */
export function progressPercent(step: number, total: number | null | undefined): number | null {
  if (total === null || total === undefined || !(total > 0)) return null;
  return Math.max(0, Math.min(100, (100 * step) / total));
}

// Following a job in the foreground: a progress line on stderr (a bar with the time left
// on a terminal, a line every few seconds otherwise), the job's log lines, and Ctrl-C to
// cancel cleanly (a second Ctrl-C stops at once; the run then shows as interrupted).
import type { RunInfo, RunStatus, StudioEvent } from '../api/contract.ts';
import type { StudioService } from '../api/service.ts';
import type { JobEvent } from '../jobs/runner.ts';
import { formatEta, StatusLine } from './progress.ts';

export interface FollowOptions {
  /** What the line starts with, e.g. "Training". */
  label: string;
  stream?: NodeJS.WriteStream;
  /** Metrics shown beside the progress, e.g. ['loss']. */
  metrics?: readonly string[];
}

export interface FollowResult {
  run: RunInfo;
  /** The user pressed Ctrl-C. */
  interrupted: boolean;
}

const BAR = 24;
const ENDED: readonly RunStatus[] = ['done', 'failed', 'cancelled', 'paused', 'interrupted'];

/** Follows a run from the service's events (the window's stream) until it ends; Ctrl-C asks runs.cancel. */
export async function followRun(service: StudioService, runId: number, options: FollowOptions): Promise<FollowResult> {
  const status = new StatusLine(options.stream ?? process.stderr);
  const shown = options.metrics ?? [];
  const latest: Record<string, number | null> = {};
  let completeShown = false;
  let interrupted = false;
  const draw = (progress: Extract<StudioEvent, { type: 'run.progress' }>, force: boolean): void => {
    const extras = shown.filter((m) => m in latest).map((m) => `${m} ${latest[m] === null ? 'NaN' : formatNumber(latest[m]!)}`);
    status.show(progressLine(options.label, { ...progress, fraction: progress.fraction ?? 'unknown' }, extras, status.tty), force);
  };

  let settle: (run: RunInfo) => void = () => {};
  const ended = new Promise<RunInfo>((resolve) => (settle = resolve));
  const unsubscribe = service.onEvent((e) => {
    if (e.type === 'run.status') {
      if (e.run.id === runId && ENDED.includes(e.run.status)) settle(e.run);
    } else if (!('runId' in e) || e.runId !== runId) return;
    else if (e.type === 'run.progress') {
      const complete = e.fraction === 1 && !completeShown;
      completeShown ||= complete;
      draw(e, complete);
    } else if (e.type === 'run.metric') {
      Object.assign(latest, e.values);
    } else if (e.type === 'run.log') {
      status.print(`${e.level === 'info' ? '' : `${e.level}: `}${e.text}`);
      status.redraw();
    }
  });
  const onSigint = (): void => {
    if (interrupted) {
      status.print('Stopped without a checkpoint; the run will show as interrupted, and `afd runs resume` continues it from its last checkpoint.');
      process.exit(130);
    }
    interrupted = true;
    status.print('Cancelling at the next step boundary (press Ctrl-C again to stop at once)...');
    service.call('runs.cancel', { runId }).catch((err: Error) => status.print(err.message));
  };
  process.on('SIGINT', onSigint);
  try {
    // It may have ended before the subscription.
    const now = (await service.call('runs.get', { runId, logs: 0 })).run;
    if (ENDED.includes(now.status)) settle(now);
    const run = await ended;
    status.clear();
    return { run, interrupted };
  } finally {
    process.off('SIGINT', onSigint);
    unsubscribe();
  }
}

export function progressLine(label: string, p: Pick<Extract<JobEvent, { type: 'progress' }>, 'step' | 'total' | 'unit' | 'fraction' | 'etaMs'>, extras: string[], bar: boolean): string {
  const parts: string[] = [label];
  if (p.fraction !== 'unknown') {
    const filled = Math.round(p.fraction * BAR);
    parts.push(`${bar ? `[${'#'.repeat(filled)}${'.'.repeat(BAR - filled)}] ` : ''}${Math.floor(p.fraction * 100)}%`);
  }
  parts.push(p.unit === 'byte' ? `${formatBytes(p.step)}${p.total !== null ? ` of ${formatBytes(p.total)}` : ''}` : `${p.unit} ${p.step}${p.total !== null ? `/${p.total}` : ''}`);
  parts.push(...extras);
  if (p.fraction !== 1) parts.push(formatEta(p.etaMs === null ? undefined : p.etaMs / 1000));
  return parts.join('  ');
}

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

export function formatNumber(v: number): string {
  return Number.isFinite(v) ? (Math.abs(v) >= 1000 || Math.abs(v) < 0.01 ? v.toExponential(2) : v.toFixed(3)) : String(v);
}

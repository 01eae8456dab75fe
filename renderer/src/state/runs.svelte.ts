// The runs the page knows of (imports, exports, experiment stages), kept current by the
// studio's events: 'run.status' replaces that run, 'run.progress' its progress, and
// 'run.metric' and 'run.log' extend the metric series and logs that a view has loaded.
// Nothing here reloads on an event; a view asks for what the events cannot tell (a run
// it has not heard of, the series and log lines written before the page opened).
import type { LogLine, MetricSeries, RunInfo, StudioApi, StudioEvent } from '../../../main/api/contract.ts';
import { errorText } from '../lib/context.ts';
import { appendMetric } from '../lib/metrics.ts';
import { EventClock } from './event-clock.ts';
import { joinTail, keepLast } from './log-tail.ts';
import { Refresh } from './refresh.ts';

/** A run's last 'run.progress' event. */
export interface ProgressReport {
  step: number;
  total: number | null;
  unit: string;
  fraction: number | null;
  etaMs: number | null;
}

/** Lines read when a view opens a run's log, and the most kept per run as events add more. */
const LOG_TAIL = 500;
const LOG_KEPT = 2000;

type MetricEvent = { step: number; values: Record<string, number | null> };

export class RunsState {
  readonly #api: StudioApi;
  #byId = $state<Record<number, RunInfo>>({});
  #progress = $state<Record<number, ProgressReport>>({});
  // Replaced whole on each event (appendMetric copies), so not proxied point by point.
  #metrics = $state.raw<Record<number, MetricSeries[]>>({});
  #logs = $state<Record<number, LogLine[]>>({});
  #listed = $state(false);
  #error = $state<string | null>(null);
  #all = $derived(Object.values(this.#byId).sort((a, b) => b.id - a.id));

  readonly #clock = new EventClock<number>();
  readonly #list = new Refresh(() => this.#fetchList());
  readonly #metricLoads = new Map<number, Promise<void>>();
  readonly #logLoads = new Map<number, Promise<void>>();
  /** Events that came while a run's series or log was being read. */
  readonly #pendingMetrics = new Map<number, MetricEvent[]>();
  readonly #pendingLogs = new Map<number, LogLine[]>();
  /** Lines from events have no store id: negative ones, unique on the page. */
  #nextLogId = -1;

  constructor(api: StudioApi) {
    this.#api = api;
  }

  /** Every run the page knows, newest first: all of them once the list has been read. */
  get all(): RunInfo[] {
    return this.#all;
  }
  /** Whether the list has been read. */
  get listed(): boolean {
    return this.#listed;
  }
  /** Why the list could not be read, if it could not. */
  get error(): string | null {
    return this.#error;
  }
  get(runId: number): RunInfo | undefined {
    return this.#byId[runId];
  }
  progress(runId: number): ProgressReport | undefined {
    return this.#progress[runId];
  }
  /** The run's metric series, once loadMetrics() has answered. */
  metrics(runId: number): MetricSeries[] | undefined {
    return this.#metrics[runId];
  }
  /** The run's log, once loadLogs() has answered. */
  logs(runId: number): LogLine[] | undefined {
    return this.#logs[runId];
  }

  /** A view shows every run (Settings' job log): the list is read; its error is `error`.
   *  Events keep it current from then on. */
  watchAll(): () => void {
    return this.#list.watch();
  }

  /** One run, for a view that follows it; rejects with the reason it could not be read. */
  async load(runId: number): Promise<void> {
    const since = this.#clock.now();
    const detail = await this.#api.call('runs.get', { runId });
    this.put([detail.run], since);
  }

  /** Reads the run's series once; events extend them from then on. */
  loadMetrics(runId: number): Promise<void> {
    return this.#once(this.#metricLoads, runId, async () => {
      const pending: MetricEvent[] = [];
      this.#pendingMetrics.set(runId, pending);
      try {
        let series = await this.#api.call('runs.metrics', { runId });
        for (const p of pending) series = appendMetric(series, p.step, p.values);
        this.#metrics = { ...this.#metrics, [runId]: series };
      } finally {
        this.#pendingMetrics.delete(runId);
      }
    });
  }

  /** Reads the run's last log lines once; events add to them from then on. */
  loadLogs(runId: number): Promise<void> {
    return this.#once(this.#logLoads, runId, async () => {
      const pending: LogLine[] = [];
      this.#pendingLogs.set(runId, pending);
      try {
        const tail = await this.#api.call('runs.logs', { runId, limit: LOG_TAIL });
        const lines = joinTail(tail, pending, (a, b) => a.level === b.level && a.text === b.text);
        keepLast(lines, LOG_KEPT);
        this.#logs[runId] = lines;
      } finally {
        this.#pendingLogs.delete(runId);
      }
    });
  }

  /** Asks the studio to cancel the run; rejects with its refusal. */
  async cancel(runId: number): Promise<void> {
    const since = this.#clock.now();
    this.put([await this.#api.call('runs.cancel', { runId })], since);
  }

  /** The clock for a fetch that returns runs (see put). */
  now(): number {
    return this.#clock.now();
  }

  /** Runs a fetch begun at `since` returned; a run with an event since then keeps the event's. */
  put(runs: readonly RunInfo[], since: number): void {
    for (const r of runs) if (!this.#clock.changedSince(r.id, since)) this.#byId[r.id] = r;
  }

  handle(e: StudioEvent): void {
    switch (e.type) {
      case 'run.status':
        this.#clock.tick(e.run.id);
        this.#byId[e.run.id] = e.run;
        break;
      case 'run.progress':
        this.#progress[e.runId] = { step: e.step, total: e.total, unit: e.unit, fraction: e.fraction, etaMs: e.etaMs };
        break;
      case 'run.metric': {
        const series = this.#metrics[e.runId];
        if (series !== undefined) this.#metrics = { ...this.#metrics, [e.runId]: appendMetric(series, e.step, e.values) };
        else this.#pendingMetrics.get(e.runId)?.push({ step: e.step, values: e.values });
        break;
      }
      case 'run.log': {
        const line: LogLine = { id: this.#nextLogId--, runId: e.runId, at: new Date().toISOString(), level: e.level, text: e.text };
        const lines = this.#logs[e.runId];
        if (lines !== undefined) {
          lines.push(line);
          keepLast(lines, LOG_KEPT);
        } else this.#pendingLogs.get(e.runId)?.push(line);
        break;
      }
    }
  }

  close(): void {
    this.#list.cancel();
  }

  async #fetchList(): Promise<void> {
    const since = this.#clock.now();
    try {
      this.put(await this.#api.call('runs.list', {}), since);
      this.#listed = true;
      this.#error = null;
    } catch (err) {
      this.#error = errorText(err);
    }
  }

  /** One load per run at a time, kept once it succeeds; a failed one may be tried again. */
  #once(loads: Map<number, Promise<void>>, runId: number, load: () => Promise<void>): Promise<void> {
    let p = loads.get(runId);
    if (p === undefined) {
      p = load().catch((err: unknown) => {
        loads.delete(runId);
        throw err;
      });
      loads.set(runId, p);
    }
    return p;
  }
}

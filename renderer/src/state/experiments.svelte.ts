// The experiments: the list (Experiments, Results) and the ones a view has opened, kept
// current by 'experiment.progress' events, which carry an experiment's whole progress: the
// list's summary is derived from it by the server's own rule (experimentSummary), and an
// opened experiment takes it as it is. The list is read again only for an experiment it
// does not hold (started elsewhere), while a view shows it. The runs of an experiment
// live in RunsState.
import { experimentSummary } from '../../../main/api/experiment-summary.ts';
import type { ExperimentDetail, ExperimentProgress, ExperimentSummary, JsonObject, StudioApi, StudioEvent } from '../../../main/api/contract.ts';
import { errorText } from '../lib/context.ts';
import { EventClock } from './event-clock.ts';
import { Refresh } from './refresh.ts';
import type { RunsState } from './runs.svelte.ts';

/** An opened experiment: its detail without the runs, which RunsState keeps. */
export type ExperimentInfo = Omit<ExperimentDetail, 'runs'>;

export class ExperimentsState {
  readonly #api: StudioApi;
  readonly #runs: RunsState;
  #list = $state<ExperimentSummary[] | null>(null);
  #error = $state<string | null>(null);
  #opened = $state<Record<number, ExperimentInfo>>({});

  readonly #clock = new EventClock<number>();
  /** The latest progress events told of each experiment, for a list read meanwhile. */
  readonly #latest = new Map<number, ExperimentProgress>();
  readonly #refresh = new Refresh(() => this.#fetchList());

  constructor(api: StudioApi, runs: RunsState) {
    this.#api = api;
    this.#runs = runs;
  }

  /** Newest first; null until the first read has answered. */
  get list(): ExperimentSummary[] | null {
    return this.#list;
  }
  /** Why the list could not be read, if it could not. */
  get error(): string | null {
    return this.#error;
  }
  /** An experiment opened with open(). */
  get(experimentId: number): ExperimentInfo | undefined {
    return this.#opened[experimentId];
  }

  /** A view shows the list (see Refresh.watch); its error is `error`. */
  watch(): () => void {
    return this.#refresh.watch();
  }

  /** Reads one experiment and its runs for a view; rejects with the reason it could not. */
  async open(experimentId: number): Promise<void> {
    this.#put(await this.#fetching((api) => api.call('experiments.get', { experimentId })));
  }

  /** Checks and starts a definition; rejects with the studio's sentence. */
  async start(definition: JsonObject): Promise<ExperimentInfo> {
    return this.#put(await this.#fetching((api) => api.call('experiments.start', { definition })));
  }

  async resume(experimentId: number): Promise<void> {
    this.#put(await this.#fetching((api) => api.call('experiments.resume', { experimentId })));
  }

  /** Pauses or cancels its running stage; the stages' new states come as events too. */
  async stop(experimentId: number, reason: 'pause' | 'cancel'): Promise<void> {
    const since = this.#clock.now();
    const progress = await this.#api.call('experiments.stop', { experimentId, reason });
    if (!this.#clock.changedSince(experimentId, since)) this.#progress(progress);
  }

  handle(e: StudioEvent): void {
    if (e.type !== 'experiment.progress') return;
    this.#clock.tick(e.progress.experimentId);
    this.#latest.set(e.progress.experimentId, e.progress);
    this.#progress(e.progress);
  }

  close(): void {
    this.#refresh.cancel();
  }

  /** An experiment's new progress, into the opened one and the list. */
  #progress(p: ExperimentProgress): void {
    const opened = this.#opened[p.experimentId];
    if (opened !== undefined) opened.progress = p;
    if (this.#list === null) return;
    const at = this.#list.findIndex((x) => x.id === p.experimentId);
    if (at !== -1) this.#list[at] = experimentSummary(this.#list[at], p);
    else if (opened !== undefined) this.#insert(experimentSummary(opened, p));
    else this.#refresh.soon();
  }

  /** A detail a call returned, begun at the clock times given: the events since then win. */
  async #fetching(call: (api: StudioApi) => Promise<ExperimentDetail>): Promise<{ detail: ExperimentDetail; since: number; runsSince: number }> {
    const since = this.#clock.now();
    const runsSince = this.#runs.now();
    return { detail: await call(this.#api), since, runsSince };
  }

  #put({ detail, since, runsSince }: { detail: ExperimentDetail; since: number; runsSince: number }): ExperimentInfo {
    const { runs, ...info } = detail;
    this.#runs.put(runs, runsSince);
    const progress = this.#clock.changedSince(info.id, since) ? this.#latest.get(info.id) : undefined;
    this.#opened[info.id] = progress === undefined ? info : { ...info, progress };
    const summary = experimentSummary(info, this.#opened[info.id].progress);
    const at = this.#list?.findIndex((x) => x.id === info.id) ?? -1;
    if (this.#list !== null && at !== -1) this.#list[at] = summary;
    else this.#insert(summary);
    return this.#opened[info.id];
  }

  /** Into the list, newest first. */
  #insert(summary: ExperimentSummary): void {
    if (this.#list === null) return;
    const at = this.#list.findIndex((x) => x.id < summary.id);
    this.#list.splice(at === -1 ? this.#list.length : at, 0, summary);
  }

  async #fetchList(): Promise<void> {
    const since = this.#clock.now();
    try {
      const list = await this.#api.call('experiments.list', {});
      this.#list = list.map((s) => {
        const latest = this.#clock.changedSince(s.id, since) ? this.#latest.get(s.id) : undefined;
        return latest === undefined ? s : experimentSummary(s, latest);
      });
      this.#error = null;
    } catch (err) {
      this.#error = errorText(err);
    }
  }
}

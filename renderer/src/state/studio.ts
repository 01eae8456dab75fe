// The renderer's state in one place: one instance per page, handed to the views through
// Svelte's context (lib/context.ts). It holds the page's one subscription to the studio's
// events and gives each event to every state class, which keeps its part current (see
// docs/ARCHITECTURE.md, "The renderer's state"). Views read the classes and call their
// methods; they neither fetch runs, experiments, models or the status themselves nor
// subscribe to events.
import type { StudioApi, StudioEvent } from '../../../main/api/contract.ts';
import { AppLogState } from './app-log.svelte.ts';
import { ExperimentsState } from './experiments.svelte.ts';
import { GenerationsState } from './generations.svelte.ts';
import { ModelsState } from './models.svelte.ts';
import { RunsState } from './runs.svelte.ts';
import { StatusState } from './status.svelte.ts';

/** What each state class offers the events: its handler, and timers to stop when the page goes. */
interface EventPart {
  handle(e: StudioEvent): void;
  close?(): void;
}

export class Studio {
  readonly #api: StudioApi;
  readonly status: StatusState;
  readonly runs: RunsState;
  readonly experiments: ExperimentsState;
  readonly models: ModelsState;
  readonly generations: GenerationsState;
  readonly appLog: AppLogState;

  constructor(api: StudioApi) {
    this.#api = api;
    this.status = new StatusState(api);
    this.runs = new RunsState(api);
    this.experiments = new ExperimentsState(api, this.runs);
    this.models = new ModelsState(api);
    this.generations = new GenerationsState(api);
    this.appLog = new AppLogState(api);
  }

  /** Subscribes to the studio's events (once per page, before any view asks for data); returns the unsubscribe. */
  connect(): () => void {
    const parts: EventPart[] = [this.status, this.runs, this.experiments, this.models, this.generations, this.appLog];
    const off = this.#api.onEvent((e) => {
      for (const p of parts) p.handle(e);
    });
    return () => {
      off();
      for (const p of parts) p.close?.();
    };
  }
}

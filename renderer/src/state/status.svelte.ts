// The studio's status: the compute device (header, Settings), the version and what runs
// (the status bar, always shown). The counts of running jobs and generations change when
// a run changes status and when a generation is queued or ends; the events do not carry
// the counts, so the status is read again then, once per burst (a comparison starts a
// stream per model and prompt).
import type { ComputeDevice, StudioApi, StudioEvent, StudioStatus } from '../../../main/api/contract.ts';
import { errorText } from '../lib/context.ts';
import { Refresh } from './refresh.ts';

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

export class StatusState {
  readonly #api: StudioApi;
  #current = $state<StudioStatus | null>(null);
  #error = $state<string | null>(null);
  readonly #refresh = new Refresh(() => this.#fetch());
  /** "idle", or what runs: "2 generations · 1 job running"; '' before the first answer. */
  #activity = $derived.by(() => {
    const s = this.#current;
    if (s === null) return '';
    const parts = [s.runningGenerations > 0 ? plural(s.runningGenerations, 'generation') : '', s.runningRuns.length > 0 ? plural(s.runningRuns.length, 'job') : ''].filter((x) => x !== '');
    return parts.length === 0 ? 'idle' : `${parts.join(' · ')} running`;
  });

  constructor(api: StudioApi) {
    this.#api = api;
  }

  get current(): StudioStatus | null {
    return this.#current;
  }
  get device(): ComputeDevice | null {
    return this.#current?.device ?? null;
  }
  get error(): string | null {
    return this.#error;
  }
  get activity(): string {
    return this.#activity;
  }

  /** The shell shows it (see Refresh.watch). */
  watch(): () => void {
    return this.#refresh.watch();
  }

  /** After a change the page made (a setting). */
  refresh(): Promise<void> {
    return this.#refresh.refresh();
  }

  handle(e: StudioEvent): void {
    if (e.type === 'run.status' || e.type === 'generation.done' || (e.type === 'generation.phase' && e.phase === 'queued')) this.#refresh.soon();
  }

  close(): void {
    this.#refresh.cancel();
  }

  async #fetch(): Promise<void> {
    try {
      this.#current = await this.#api.call('status', {});
      this.#error = null;
    } catch (err) {
      this.#error = errorText(err);
    }
  }
}

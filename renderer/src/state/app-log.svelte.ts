// The studio's own log (Settings): its last lines read once, then 'app.log' events.
import type { AppLogLine, StudioApi, StudioEvent } from '../../../main/api/contract.ts';
import { errorText } from '../lib/context.ts';
import { joinTail, keepLast } from './log-tail.ts';

const TAIL = 200;
const KEPT = 2000;

export class AppLogState {
  readonly #api: StudioApi;
  #lines = $state<AppLogLine[] | null>(null);
  #error = $state<string | null>(null);
  #loading: Promise<void> | null = null;
  /** Not $state: load() is called from views' effects, which must not depend on it. */
  #loaded = false;
  /** Lines that came while the tail was being read. */
  #pending: AppLogLine[] | null = null;

  constructor(api: StudioApi) {
    this.#api = api;
  }

  /** null until load() has answered. */
  get lines(): AppLogLine[] | null {
    return this.#lines;
  }
  get error(): string | null {
    return this.#error;
  }

  /** Reads the tail once; its error is `error`, and a later load() tries again. */
  load(): Promise<void> {
    if (this.#loaded) return Promise.resolve();
    this.#loading ??= this.#fetch().finally(() => (this.#loading = null));
    return this.#loading;
  }

  handle(e: StudioEvent): void {
    if (e.type !== 'app.log') return;
    if (this.#lines !== null) {
      this.#lines.push(e.line);
      keepLast(this.#lines, KEPT);
    } else this.#pending?.push(e.line);
  }

  async #fetch(): Promise<void> {
    const pending: AppLogLine[] = [];
    this.#pending = pending;
    try {
      const lines = joinTail(await this.#api.call('logs.app', { limit: TAIL }), pending, (a, b) => a.at === b.at && a.text === b.text);
      keepLast(lines, KEPT);
      this.#lines = lines;
      this.#loaded = true;
      this.#error = null;
    } catch (err) {
      this.#error = errorText(err);
    } finally {
      this.#pending = null;
    }
  }
}

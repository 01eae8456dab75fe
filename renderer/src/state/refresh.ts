// How a state class reads what events cannot tell it (a list, the studio's status) while a
// view shows it: a view that opens reads it (sharing a read in flight), and events ask
// for a refresh only while some view shows it (soon(): once per burst). A refresh asked
// for while a read is in flight runs once more after it, since that answer may predate
// the change that asked.

export class Refresh {
  readonly #fetch: () => Promise<void>;
  readonly #delayMs: number;
  #watchers = 0;
  #inflight: Promise<void> | null = null;
  #queued: Promise<void> | null = null;
  #timer: ReturnType<typeof setTimeout> | undefined;

  /** `fetch` stores its answer (or its error) itself and does not throw. */
  constructor(fetch: () => Promise<void>, delayMs = 50) {
    this.#fetch = fetch;
    this.#delayMs = delayMs;
  }

  /** A view shows the value from now until the returned function is called (an $effect's cleanup). */
  watch(): () => void {
    this.#watchers++;
    void (this.#inflight ?? this.#start());
    let watching = true;
    return () => {
      if (watching) this.#watchers--;
      watching = false;
    };
  }

  /** Whether a view shows the value. */
  get watched(): boolean {
    return this.#watchers > 0;
  }

  /** An answer read after this call: for a change the caller knows of. */
  refresh(): Promise<void> {
    if (this.#inflight === null) return this.#start();
    this.#queued ??= this.#inflight.then(() => {
      this.#queued = null;
      return this.#start();
    });
    return this.#queued;
  }

  /** A refresh once a burst of events has settled, if a view shows the value. */
  soon(): void {
    if (this.#watchers === 0 || this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#watchers > 0) void this.refresh();
    }, this.#delayMs);
  }

  /** Drops a pending soon(). */
  cancel(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #start(): Promise<void> {
    const p = this.#fetch().finally(() => {
      if (this.#inflight === p) this.#inflight = null;
    });
    this.#inflight = p;
    return p;
  }
}

// The models the generation worker keeps loaded, within a memory budget: a second
// generation with the same model and provider starts at once instead of loading it again
// (seconds for a 135M model). Least recently used models are released first; a model in
// use is never released under a generation, and one larger than the whole budget is loaded
// all the same and released when its generation ends.
//
// Pure bookkeeping over a `load` and a `dispose` function, so it is tested without ONNX
// Runtime; generation.worker.ts gives it the real ones.

export interface CachedModelInfo {
  /** The model's Hugging Face folder. */
  dir: string;
  /** The provider asked for ('auto' too), and the one the model runs on when its load says. */
  provider: string;
  runsOn: string | null;
  /** Memory the model took when it was loaded (bytes; see the worker for how it is measured). */
  bytes: number;
  /** The memory is an estimate, not a measurement. */
  estimated: boolean;
  /** How long reading and preparing it took (ms). */
  loadMs: number;
  /** When a generation last used it (ms since the epoch). */
  lastUsedAt: number;
  /** Generations using it right now. */
  users: number;
}

export interface ModelCacheState {
  budgetBytes: number;
  /** Memory of the loaded models together. */
  usedBytes: number;
  /** Most recently used first. */
  models: CachedModelInfo[];
}

/** What a load gives: the model, its memory, and optionally what it runs on and whether the memory is estimated. */
export interface Loaded<T> {
  value: T;
  bytes: number;
  runsOn?: string;
  estimated?: boolean;
}

interface Entry<T> {
  dir: string;
  provider: string;
  value: Promise<T>;
  /** Known once loaded; until then the entry cannot be released. */
  ready: boolean;
  bytes: number;
  runsOn: string | null;
  estimated: boolean;
  loadMs: number;
  lastUsedAt: number;
  users: number;
  /** Emptied from the cache while in use: released when its last generation ends. */
  dropped: boolean;
}

export interface Acquired<T> {
  value: T;
  /** True when the model was already loaded (or being loaded by an earlier request). */
  hit: boolean;
  /** Ends this use; the model may then be released to keep within the budget. */
  release(): void;
}

export class ModelCache<T> {
  private readonly entries = new Map<string, Entry<T>>();
  private budget: number;
  private readonly dispose: (value: T) => Promise<void>;
  private readonly now: () => number;

  constructor(options: { budgetBytes: number; dispose: (value: T) => Promise<void>; now?: () => number }) {
    this.budget = options.budgetBytes;
    this.dispose = options.dispose;
    this.now = options.now ?? Date.now;
  }

  /**
   * The model of (dir, provider), loaded by `load` on a miss after releasing idle models
   * until `estimate` more bytes fit the budget. Held until the returned release() is called.
   */
  async acquire(dir: string, provider: string, estimate: number, load: () => Promise<Loaded<T>>): Promise<Acquired<T>> {
    const key = `${provider}|${dir}`;
    let entry = this.entries.get(key);
    const hit = entry !== undefined;
    if (entry === undefined) {
      this.shrink(this.budget - estimate);
      const started = this.now();
      const e: Entry<T> = { dir, provider, value: undefined as unknown as Promise<T>, ready: false, bytes: 0, runsOn: null, estimated: false, loadMs: 0, lastUsedAt: started, users: 0, dropped: false };
      e.value = load().then(({ value, bytes, runsOn, estimated }) => {
        e.ready = true;
        e.bytes = bytes;
        e.runsOn = runsOn ?? null;
        e.estimated = estimated ?? false;
        e.loadMs = this.now() - started;
        return value;
      });
      // A failed load leaves nothing behind: the next request tries again.
      e.value.catch(() => {
        if (this.entries.get(key) === e) this.entries.delete(key);
      });
      this.entries.set(key, e);
      entry = e;
    }
    const e = entry;
    e.users++;
    e.lastUsedAt = this.now();
    let value: T;
    try {
      value = await e.value;
    } catch (err) {
      e.users--;
      throw err;
    }
    this.shrink(this.budget);
    let released = false;
    return {
      value, hit,
      release: () => {
        if (released) return;
        released = true;
        e.users--;
        e.lastUsedAt = this.now();
        if (e.dropped && e.users === 0) void this.dispose(value).catch(() => undefined);
        this.shrink(this.budget);
      },
    };
  }

  /** Whether the model of (dir, provider) is loaded or being loaded. */
  has(dir: string, provider: string): boolean {
    return this.entries.has(`${provider}|${dir}`);
  }

  /** Changes the budget, releasing idle models that no longer fit. */
  setBudget(bytes: number): void {
    this.budget = bytes;
    this.shrink(bytes);
  }

  /** Empties the cache: idle models are released now, those in use when their generations end. */
  clear(): void {
    this.shrink(0);
    for (const [key, e] of this.entries) {
      this.entries.delete(key);
      e.dropped = true;
    }
  }

  state(): ModelCacheState {
    const models = [...this.entries.values()]
      .filter((e) => e.ready)
      .map((e) => ({ dir: e.dir, provider: e.provider, runsOn: e.runsOn, bytes: e.bytes, estimated: e.estimated, loadMs: e.loadMs, lastUsedAt: e.lastUsedAt, users: e.users }))
      .sort((a, b) => b.lastUsedAt - a.lastUsedAt);
    return { budgetBytes: this.budget, usedBytes: this.used(), models };
  }

  private used(): number {
    let n = 0;
    for (const e of this.entries.values()) n += e.bytes;
    return n;
  }

  /** Releases idle, loaded models, least recently used first, until at most `limit` bytes are held. */
  /** Releases idle models, least recently used first, until `bytes` more fit the budget:
   *  room for memory the cache does not hold (Best-of-N's reward model, loaded for one
   *  request). Models in use stay. */
  makeRoom(bytes: number): void {
    this.shrink(this.budget - bytes);
  }

  private shrink(limit: number): void {
    const idle = [...this.entries.entries()].filter(([, e]) => e.ready && e.users === 0).sort(([, a], [, b]) => a.lastUsedAt - b.lastUsedAt);
    let used = this.used();
    for (const [key, e] of idle) {
      if (used <= limit) break;
      this.entries.delete(key);
      used -= e.bytes;
      void e.value.then((v) => this.dispose(v)).catch(() => undefined);
    }
  }
}

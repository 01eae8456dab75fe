// Interactive generation for the views (playground, compare), off the main thread: one
// worker thread, started on first use, that keeps models loaded within a memory budget.
// The service talks to it through GenerationBackend, which tests replace with a fake.
import { Worker } from 'node:worker_threads';
import type { ProviderSetting } from './contract.ts';
import type { GenCommand, GeneratedRow, GenerateRequest, GenReply, ModelCacheState, ProviderProbe, WorkerPhase } from './generation-protocol.ts';

export type { GeneratedRow, GenerateRequest, ModelCacheState, ProviderProbe, WorkerPhase } from './generation-protocol.ts';

/** What a generation reports while it runs. */
export interface GenerationListener {
  /** Each token's new text. */
  token(row: number, index: number, text: string): void;
  /** The phase the request entered, and its progress within it. */
  phase(p: WorkerPhase): void;
}

export interface GenerationBackend {
  /** Generates every prompt, reporting phases and tokens. Rejects with a
   *  GenerationStopped (carrying what was generated) when the signal aborts. */
  generate(request: GenerateRequest, on: GenerationListener, signal: AbortSignal): Promise<GeneratedRow[]>;
  /** Which execution provider ONNX Runtime would use with this setting, and why. */
  probe(provider: ProviderSetting): Promise<ProviderProbe>;
  /** The models kept loaded, after applying the memory budget (bytes). */
  cache(budgetBytes: number): Promise<ModelCacheState>;
  /** Empties the cache of loaded models (those in use are released when their generations end). */
  unload(budgetBytes: number): Promise<ModelCacheState>;
  close(): Promise<void>;
}

/** Generation stopped by its signal; `partial` holds each row's text so far. */
export class GenerationStopped extends Error {
  override readonly name = 'AbortError';
  readonly partial: GeneratedRow[];
  constructor(partial: GeneratedRow[]) {
    super('The generation was stopped.');
    this.partial = partial;
  }
}

const ENTRY = new URL('./generation-entry.mjs', import.meta.url);

interface Pending {
  on?: GenerationListener;
  resolve(value: GeneratedRow[] | ProviderProbe | ModelCacheState): void;
  reject(err: Error): void;
}

export class WorkerGeneration implements GenerationBackend {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;

  generate(request: GenerateRequest, on: GenerationListener, signal: AbortSignal): Promise<GeneratedRow[]> {
    const id = this.nextId++;
    return new Promise<GeneratedRow[]>((resolve, reject) => {
      this.pending.set(id, { on, resolve: (v) => resolve(v as GeneratedRow[]), reject });
      const cancel = (): void => this.post({ type: 'cancel', id });
      signal.addEventListener('abort', cancel, { once: true });
      this.post({ type: 'generate', id, request });
    });
  }

  probe(provider: ProviderSetting): Promise<ProviderProbe> {
    const id = this.nextId++;
    return new Promise<ProviderProbe>((resolve, reject) => {
      this.pending.set(id, { resolve: (v) => resolve(v as ProviderProbe), reject });
      this.post({ type: 'probe', id, provider });
    });
  }

  cache(budgetBytes: number): Promise<ModelCacheState> {
    return this.ask({ type: 'cache', id: this.nextId++, budget: budgetBytes }, budgetBytes);
  }

  unload(budgetBytes: number): Promise<ModelCacheState> {
    return this.ask({ type: 'unload', id: this.nextId++ }, budgetBytes);
  }

  /** A question about the cache; without a worker nothing is loaded, and none is started to say so. */
  private ask(cmd: Extract<GenCommand, { type: 'cache' | 'unload' }>, budgetBytes: number): Promise<ModelCacheState> {
    if (this.worker === undefined) return Promise.resolve({ budgetBytes, usedBytes: 0, models: [] });
    return new Promise<ModelCacheState>((resolve, reject) => {
      this.pending.set(cmd.id, { resolve: (v) => resolve(v as ModelCacheState), reject });
      this.post(cmd);
    });
  }

  async close(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    if (w !== undefined) await w.terminate();
    this.failAll(new Error('The studio is shutting down; the generation was stopped.'));
  }

  private post(cmd: GenCommand): void {
    this.ensure().postMessage(cmd);
  }

  private ensure(): Worker {
    if (this.worker !== undefined) return this.worker;
    // execArgv: [] so that test or --import flags of the parent do not reach the worker.
    const w = new Worker(ENTRY, { execArgv: [], name: 'afd generation' });
    w.unref();
    w.on('message', (m: GenReply) => this.onReply(m));
    const lost = (err: Error): void => {
      if (this.worker === w) this.worker = undefined;
      this.failAll(err);
    };
    w.on('error', (err) => lost(new Error(`The generation worker failed (${err.message}); try again.`)));
    w.on('exit', (code) => lost(new Error(`The generation worker stopped unexpectedly (exit code ${code}); try again.`)));
    this.worker = w;
    return w;
  }

  private onReply(m: GenReply): void {
    const p = this.pending.get(m.id);
    if (p === undefined) return;
    switch (m.type) {
      case 'phase':
        p.on?.phase({ phase: m.phase, done: m.done, total: m.total, etaMs: m.etaMs, ...(m.prompt === undefined ? {} : { prompt: m.prompt }) });
        return;
      case 'token':
        p.on?.token(m.row, m.index, m.text);
        return;
      case 'done':
        this.pending.delete(m.id);
        p.resolve(m.rows);
        return;
      case 'probed':
        this.pending.delete(m.id);
        p.resolve(m.probe);
        return;
      case 'cached':
        this.pending.delete(m.id);
        p.resolve(m.state);
        return;
      case 'failed':
        this.pending.delete(m.id);
        p.reject(m.cancelled ? new GenerationStopped(m.partial ?? []) : new Error(m.message));
        return;
    }
  }

  private failAll(err: Error): void {
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.reject(err);
    }
  }
}

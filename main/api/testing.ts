// Test helpers: a studio service over a throwaway database and runner, with a fake
// generation backend (no ONNX Runtime) that answers "<model folder name>: <prompt>", and
// for Best-of-N samples "<model folder name>: <prompt> #k" with rewards it makes up.
import { basename } from 'node:path';
import type { StudioDatabase } from '../../db/database.ts';
import { openDatabase } from '../../db/database.ts';
import type { Pipeline } from '../experiments/pipeline.ts';
import { StudioFiles } from '../jobs/files.ts';
import { JobRunner } from '../jobs/runner.ts';
import type { ProviderSetting, StudioEvent } from './contract.ts';
import type { GenerationBackend, GenerationListener, GeneratedRow, GenerateRequest, ModelCacheState, ProviderProbe } from './generation.ts';
import { GenerationStopped } from './generation.ts';
import type { ServiceOptions } from './service.ts';
import { StudioService } from './service.ts';

/**
 * A generation backend without ONNX Runtime: a model folder is "loaded" the first time
 * (phases loading of 100 bytes, then preparing), kept in a cache whose budget counts each
 * model as 100 bytes, and answers "<model folder name>: <prompt>" word by word. A
 * Best-of-N request samples "<model folder name>: <prompt> #k" (k < N) with the phases of
 * the real one and gives answer k the reward `bestOfReward(k)`, streaming no tokens.
 */
export class FakeGeneration implements GenerationBackend {
  readonly requests: GenerateRequest[] = [];
  /** Milliseconds between tokens (lets tests cancel mid-way). */
  delayMs = 0;
  /** Loaded folders, most recently used last. */
  private loaded: string[] = [];
  private budget = 0;
  /** The reward of Best-of-N answer k (default: highest at k = 1, so the pick is not the first answer). */
  bestOfReward: (k: number) => number = (k) => 10 - (k - 1) ** 2;

  async generate(request: GenerateRequest, on: GenerationListener, signal: AbortSignal): Promise<GeneratedRow[]> {
    this.requests.push(request);
    this.budget = request.cacheBytes;
    const key = `${request.provider}|${request.modelDir}`;
    if (!this.loaded.includes(key)) {
      on.phase({ phase: 'loading', done: 0, total: 100, etaMs: null });
      on.phase({ phase: 'loading', done: 100, total: 100, etaMs: 0 });
      on.phase({ phase: 'preparing', done: 0, total: null, etaMs: null });
      on.phase({ phase: 'preparing', done: 1, total: null, etaMs: null });
    }
    this.loaded = [...this.loaded.filter((k) => k !== key), key];
    if (request.bestOf !== undefined) return this.bestOf(request, request.bestOf.n, on, signal);
    on.phase({ phase: 'generating', done: 0, total: request.sampling.maxTokens ?? 128, etaMs: null });
    const rows = request.prompts.map((p) => `${basename(request.modelDir)}: ${p}`.split(/(?<= )/));
    const done = rows.map(() => '');
    try {
      for (let i = 0; i < Math.max(...rows.map((r) => r.length)); i++) {
        if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
        if (signal.aborted) throw new GenerationStopped(done.map((text) => ({ text, tokens: 0, finishReason: 'cancelled' })));
        rows.forEach((r, row) => {
          if (i >= r.length) return;
          done[row] += r[i];
          on.token(row, i, r[i]);
        });
      }
    } finally {
      this.shrink();
    }
    return rows.map((r) => ({ text: r.join(''), tokens: r.length, finishReason: 'length' }));
  }

  private async bestOf(request: GenerateRequest, n: number, on: GenerationListener, signal: AbortSignal): Promise<GeneratedRow[]> {
    const stop = (): GenerationStopped => new GenerationStopped(request.prompts.map(() => ({ text: '', tokens: 0, finishReason: 'cancelled' })));
    try {
      for (const [prompt] of request.prompts.entries()) {
        for (let done = 0; done <= n; done++) {
          if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
          if (signal.aborted) throw stop();
          on.phase({ phase: 'sampling', done, total: n, etaMs: null, prompt });
        }
      }
      const total = n * request.prompts.length;
      on.phase({ phase: 'scoring', done: 0, total, etaMs: null });
      on.phase({ phase: 'scoring', done: total, total, etaMs: null });
    } finally {
      this.shrink();
    }
    return request.prompts.map((p) => {
      const candidates = Array.from({ length: n }, (_, k) => {
        const text = `${basename(request.modelDir)}: ${p} #${k}`;
        return { text, tokens: text.split(' ').length, finishReason: 'length' as const, reward: this.bestOfReward(k) };
      });
      const chosen = candidates.reduce((best, c, k) => (c.reward > candidates[best].reward ? k : best), 0);
      return { text: candidates[chosen].text, tokens: candidates[chosen].tokens, finishReason: 'length', bestOf: { chosen, candidates } };
    });
  }

  async cache(budgetBytes: number): Promise<ModelCacheState> {
    this.budget = budgetBytes;
    this.shrink();
    return this.state();
  }

  async unload(budgetBytes: number): Promise<ModelCacheState> {
    this.budget = budgetBytes;
    this.loaded = [];
    return this.state();
  }

  private shrink(): void {
    while (this.loaded.length * 100 > this.budget) this.loaded.shift();
  }

  private state(): ModelCacheState {
    const models = [...this.loaded].reverse().map((key, i) => {
      const [provider, dir] = key.split('|');
      return { dir, provider, runsOn: provider === 'auto' ? 'cpu' : provider, bytes: 100, estimated: false, loadMs: 5, lastUsedAt: Date.UTC(2025, 0, 1) - i * 1000, users: 0 };
    });
    return { budgetBytes: this.budget, usedBytes: models.length * 100, models };
  }

  async probe(provider: ProviderSetting): Promise<ProviderProbe> {
    if (provider === 'cuda') return { provider: null, reason: 'Cannot use the execution provider "cuda" that was asked for: not installed.', tried: [] };
    return { provider: 'cpu', reason: 'cpu: the CPU provider ran a test session', tried: [{ provider: 'webgpu', ok: false, reason: 'no hardware GPU adapter found' }, { provider: 'cpu', ok: true, reason: 'the CPU provider ran a test session' }] };
  }

  async close(): Promise<void> {}
}

export interface TestStudio {
  db: StudioDatabase;
  runner: JobRunner;
  service: StudioService;
  generation: FakeGeneration;
  events: StudioEvent[];
  /** Resolves with the first event (already seen or to come) that matches. */
  next(match: (e: StudioEvent) => boolean): Promise<StudioEvent>;
  close(): Promise<void>;
}

export async function openTestStudio(options: Partial<ServiceOptions> & { pipeline?: () => Promise<Pipeline> } = {}): Promise<TestStudio> {
  const db = options.db ?? (await openDatabase(':memory:'));
  const files = StudioFiles.forDatabase(db.file);
  const runner = options.runner ?? (await JobRunner.open({ db, files }));
  const generation = new FakeGeneration();
  const service = new StudioService({ generation, ...options, db, runner });
  const events: StudioEvent[] = [];
  const waiters: { match: (e: StudioEvent) => boolean; resolve: (e: StudioEvent) => void }[] = [];
  service.onEvent((e) => {
    events.push(e);
    for (const w of [...waiters]) {
      if (!w.match(e)) continue;
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve(e);
    }
  });
  return {
    db, runner, service, generation, events,
    next: (match) => {
      const seen = events.find(match);
      return seen !== undefined ? Promise.resolve(seen) : new Promise((resolve) => waiters.push({ match, resolve }));
    },
    close: async () => {
      await service.close();
      await runner.close();
      db.close();
      files.dispose();
    },
  };
}

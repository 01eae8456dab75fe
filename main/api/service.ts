// The studio's API implemented over the store and the job runner: one object with
// call(method, params) and an event stream, which IPC (main/electron/ipc.ts), HTTP
// (main/server/) and tests all use. Each area's methods live in their own module;
// this one wires them, turns the runner's events into StudioEvents, and keeps the app log.
import { dirname, join, resolve } from 'node:path';
import type { StudioDatabase } from '../../db/database.ts';
import type { Pipeline } from '../experiments/pipeline.ts';
import type { JobRunner } from '../jobs/runner.ts';
import { compareHandlers } from './compare.ts';
import type { AppLogLine, LogLevel, Method, Params, Result, Settings, StudioApi, StudioEvent, StudioEventListener } from './contract.ts';
import { validate } from './contract.ts';
import type { ApiContext, Handlers } from './context.ts';
import { datasetHandlers } from './datasets.ts';
import { experimentHandlers, loadPipeline } from './experiments.ts';
import type { GenerationBackend } from './generation.ts';
import { WorkerGeneration } from './generation.ts';
import { GenerationStreams, modelHandlers } from './models.ts';
import { jobEvent, runHandlers } from './runs.ts';
import { SettingsFile } from './settings.ts';
import { statusHandlers } from './status.ts';

export interface ServiceOptions {
  db: StudioDatabase;
  runner: JobRunner;
  /** Where settings are kept (default: settings.json beside the database; in memory for ':memory:'). */
  settingsFile?: string | null;
  /** The data folder the settings report by default (default: the database's folder). */
  dataFolder?: string;
  /** Interactive generation (default: a worker thread). */
  generation?: GenerationBackend;
  /** The experiments layer (default: main/experiments/pipeline.ts, loaded on first use). */
  pipeline?: () => Promise<Pipeline>;
  /** How a missing item's sentence ends (default: '...it may have been deleted, so reload
   *  the list'); the CLI names its list command instead. */
  findHint?: (list: 'runs') => string;
  /** Random numbers in [0, 1) for blind voting (default Math.random). */
  random?: () => number;
  /** The desktop app's open dialog (absent under `afd serve`: a browser page types paths). */
  choosePath?: (kind: 'file' | 'folder') => Promise<string | null>;
}

const APP_LOG_LINES = 2000;

export class StudioService implements StudioApi {
  readonly db: StudioDatabase;
  readonly runner: JobRunner;
  private readonly listeners = new Set<StudioEventListener>();
  private readonly logLines: AppLogLine[] = [];
  private readonly handlers: Handlers<Method>;
  private readonly generation: GenerationBackend;
  private readonly streams: GenerationStreams;
  private readonly closeExperiments: () => void;
  private readonly unsubscribe: () => void;

  constructor(options: ServiceOptions) {
    this.db = options.db;
    this.runner = options.runner;
    const memory = options.db.file === ':memory:' || options.db.file === '';
    const dataFolder = options.dataFolder ?? (memory ? process.cwd() : dirname(resolve(options.db.file)));
    const settingsFile = options.settingsFile !== undefined ? options.settingsFile : memory ? null : join(dirname(resolve(options.db.file)), 'settings.json');
    const defaults: Omit<Settings, 'modelCacheBytes'> = { dataFolder, forcedProvider: 'auto' };
    this.generation = options.generation ?? new WorkerGeneration();
    const ctx: ApiContext = {
      db: this.db,
      runner: this.runner,
      settings: new SettingsFile(settingsFile, defaults),
      generation: this.generation,
      emit: (e) => this.emit(e),
      log: (level, text) => this.log(level, text),
      appLog: (limit) => this.logLines.slice(-limit),
      findHint: options.findHint ?? (() => 'it may have been deleted, so reload the list'),
      random: options.random ?? Math.random,
    };
    this.streams = new GenerationStreams(ctx);
    let pipeline: Promise<Pipeline> | undefined;
    const experiments = experimentHandlers(ctx, options.pipeline ?? (() => (pipeline ??= loadPipeline().catch((err: Error) => {
      pipeline = undefined; // not cached: the next call tries again
      throw err;
    }))));
    const { close: closeExperiments, ...experimentMethods } = experiments;
    this.closeExperiments = closeExperiments;
    const choosePath = options.choosePath;
    this.handlers = {
      'system.choosePath': async (p) => {
        if (choosePath === undefined) throw new Error('Only the desktop app can open a file dialog; type the path instead.');
        return { path: await choosePath(p.kind) };
      },
      ...statusHandlers(ctx, () => this.streams.running()),
      ...datasetHandlers(ctx),
      ...modelHandlers(ctx, this.streams),
      ...experimentMethods,
      ...runHandlers(ctx),
      ...compareHandlers(ctx, this.streams),
    };
    this.unsubscribe = this.runner.onEvent((e) => {
      if (e.type === 'status' && ['done', 'failed', 'cancelled', 'paused', 'interrupted'].includes(e.run.status)) {
        this.log(e.run.status === 'failed' ? 'error' : 'info', `Run #${e.run.id} (${e.run.stage}) ${e.run.status}${e.run.error === null ? '' : `: ${e.run.error}`}.`);
      }
      this.emit(jobEvent(e));
    });
    this.log('info', `AfD Studio service started on ${this.db.file}.`);
  }

  /** Typed call, for callers inside the process. Params are validated all the same. */
  async call<M extends Method>(method: M, params: Params<M>): Promise<Result<M>> {
    return (await this.dispatch(method, params)) as Result<M>;
  }

  /** Untrusted call (IPC, HTTP): validates the method and params first; a refusal or a
   *  failure rejects with one sentence (ValidationError for bad params). */
  async dispatch(method: unknown, params: unknown): Promise<unknown> {
    const checked = validate(method, params);
    const handler = this.handlers[checked.method] as (p: Params<Method>) => unknown;
    try {
      return await handler(checked.params);
    } catch (err) {
      this.log('warn', `${checked.method}: ${(err as Error).message}`);
      throw err;
    }
  }

  onEvent(listener: StudioEventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  log(level: LogLevel, text: string): void {
    const line: AppLogLine = { at: new Date().toISOString(), level, text };
    this.logLines.push(line);
    if (this.logLines.length > APP_LOG_LINES) this.logLines.splice(0, this.logLines.length - APP_LOG_LINES);
    this.emit({ type: 'app.log', line });
  }

  /** Stops generations and the worker; the runner and database are the caller's. */
  async close(): Promise<void> {
    this.unsubscribe();
    this.closeExperiments();
    this.streams.cancelAll();
    await this.generation.close();
    this.listeners.clear();
  }

  private emit(event: StudioEvent): void {
    for (const l of this.listeners) {
      try {
        l(event);
      } catch {
        // A failing subscriber (a closed connection) must not stop the others.
      }
    }
  }
}

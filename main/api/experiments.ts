// The experiments view's methods over the AfD pipeline (main/afd: definitions, recipes,
// the driver that runs a definition's stages as jobs, the results table). The pipeline's
// modules are loaded here and nowhere else in the API, on first use.
import { isAbsolute } from 'node:path';
import type { StudioDatabase } from '../../db/database.ts';
import { ExperimentStore } from '../../db/experiments.ts';
import type { JsonObject } from '../../db/json.ts';
import { RunStore } from '../../db/runs.ts';
import type { ExperimentDefinition, ExperimentProgress, Recipe, ResultsTable } from '../afd/contract.ts';
import type { StudioFiles } from '../jobs/files.ts';
import type { JobRunner } from '../jobs/runner.ts';
import type { DefinitionProblem, ExperimentDetail, ExperimentSummary, StageKind } from './contract.ts';
import type { ApiContext, Handlers } from './context.ts';
import { experimentState, experimentSummary } from './experiment-summary.ts';
import { runInfo } from './runs.ts';

// The shapes the pipeline's modules export (main/afd/driver.ts, experiment.ts, recipes.ts,
// results.ts), as agreed in main/afd/contract.ts.
interface Driver {
  readonly experimentId: number;
  readonly done: Promise<ExperimentProgress>;
  progress(): ExperimentProgress;
  onProgress(listener: (p: ExperimentProgress) => void): () => void;
  stop(reason: 'pause' | 'cancel'): void;
}

export interface Pipeline {
  start(db: StudioDatabase, runner: JobRunner, definition: ExperimentDefinition, opts?: { experimentId?: number }): Driver;
  progress(db: StudioDatabase, experimentId: number): ExperimentProgress;
  parse(raw: unknown): ExperimentDefinition;
  /** Every problem `parse` would refuse, each with its stage and setting. */
  check(raw: unknown): DefinitionProblem[];
  /** Every stage kind, its settings' schema as JSON. */
  stageKinds: StageKind[];
  /** null when this build has no recipes module. */
  recipes: Recipe[] | null;
  results(db: StudioDatabase, files: { runDir(runId: number): string }, experimentId: number): ResultsTable | null;
  /** Each sized stage's estimated peak memory, from the definition alone, and the memory available now. */
  memory(db: StudioDatabase, files: StudioFiles, definition: ExperimentDefinition): Promise<NonNullable<ExperimentDetail['memory']>>;
}

/** Loads the pipeline's modules; a clear sentence if this build lacks them. */
export async function loadPipeline(): Promise<Pipeline> {
  const load = async <T>(file: string): Promise<T> => {
    try {
      return (await import(new URL(`../afd/${file}`, import.meta.url).href)) as T;
    } catch (err) {
      throw new Error(`The AfD pipeline could not be loaded (main/afd/${file}: ${(err as Error).message}); update or reinstall AfD Studio.`, { cause: err });
    }
  };
  const [driver, experiment, stages, recipes, results, memory] = await Promise.all([
    load<{ ExperimentDriver: { start: Pipeline['start'] }; experimentProgress: Pipeline['progress'] }>('driver.ts'),
    load<typeof import('../afd/experiment.ts')>('experiment.ts'),
    load<typeof import('../afd/stages/index.ts')>('stages/index.ts'),
    // Recipes are a convenience: experiments run without them.
    load<{ RECIPES: Recipe[] }>('recipes.ts').catch(() => ({ RECIPES: null })),
    load<{ experimentResults: Pipeline['results'] }>('results.ts'),
    load<typeof import('../afd/memory-check.ts')>('memory-check.ts'),
  ]);
  return {
    start: (db, runner, definition, opts) => driver.ExperimentDriver.start(db, runner, definition, opts),
    progress: driver.experimentProgress,
    parse: experiment.parseExperiment,
    check: (raw) => experiment.checkExperiment(raw).map((e) => ({ message: e.message, stage: e.stage, stageId: e.stageId, path: [...e.path] })),
    // TypeBox schemas are JSON Schema: as JSON they are the form's description.
    stageKinds: Object.values(stages.STAGES).map((s) => ({ kind: s.kind, summary: s.summary, produces: s.produces, inputs: JSON.parse(JSON.stringify(s.inputs)) as StageKind['inputs'], settings: JSON.parse(JSON.stringify(s.settings)) as StageKind['settings'] })),
    recipes: recipes.RECIPES,
    results: results.experimentResults,
    memory: async (db, files, definition) => ({ available: memory.availableMemory(), stages: memory.experimentEstimates(definition, await memory.outsideShapes(db, files, definition)) }),
  };
}

export function experimentHandlers(ctx: ApiContext, pipeline: () => Promise<Pipeline>): Handlers<'experiments.recipes' | 'experiments.stageKinds' | 'experiments.check' | 'experiments.start' | 'experiments.list' | 'experiments.get' | 'experiments.stop' | 'experiments.resume' | 'experiments.exportTrl' | 'results.get'> & { close(): void } {
  const experiments = new ExperimentStore(ctx.db);
  const runs = new RunStore(ctx.db);
  const drivers = new Map<number, { driver: Driver; unsubscribe: () => void }>();

  const experiment = (id: number) => {
    const e = experiments.get(id);
    if (e === undefined) throw new Error(`There is no experiment #${id}; it may have been deleted, so reload the list.`);
    return e;
  };
  const detail = async (pl: Pipeline, id: number): Promise<ExperimentDetail> => {
    const e = experiment(id);
    const d: ExperimentDetail = { id: e.id, name: e.name, createdAt: e.createdAt, definition: e.definition, progress: pl.progress(ctx.db, id), runs: runs.list({ experimentId: id }).map(runInfo) };
    try {
      return { ...d, memory: await pl.memory(ctx.db, ctx.runner.files, pl.parse(e.definition)) };
    } catch (err) {
      // An estimate is a help: the detail is shown without it.
      ctx.log('warn', `Experiment #${id}: its stages' memory could not be estimated (${(err as Error).message}).`);
      return d;
    }
  };
  const watch = (driver: Driver): void => {
    const unsubscribe = driver.onProgress((progress) => ctx.emit({ type: 'experiment.progress', progress }));
    drivers.set(driver.experimentId, { driver, unsubscribe });
    void driver.done.then(
      (p) => ctx.log('info', `Experiment #${driver.experimentId} ended: ${experimentState(p)}.`),
      (err: Error) => ctx.log('error', `Experiment #${driver.experimentId} failed: ${err.message}`),
    ).finally(() => {
      unsubscribe();
      if (drivers.get(driver.experimentId)?.driver === driver) drivers.delete(driver.experimentId);
    });
  };
  const launch = async (definition: JsonObject, experimentId?: number): Promise<ExperimentDetail> => {
    const pl = await pipeline();
    // A definition that names no provider follows the studio's setting.
    const forced = ctx.settings.get().forcedProvider;
    const parsed = pl.parse(definition.provider === undefined && forced !== 'auto' ? { ...definition, provider: forced } : definition);
    const driver = pl.start(ctx.db, ctx.runner, parsed, experimentId === undefined ? {} : { experimentId });
    watch(driver);
    ctx.emit({ type: 'experiment.progress', progress: driver.progress() });
    ctx.log('info', `Experiment #${driver.experimentId} "${parsed.name}" ${experimentId === undefined ? 'started' : 'resumed'}.`);
    return detail(pl, driver.experimentId);
  };

  return {
    'experiments.recipes': async () => {
      const recipes = (await pipeline()).recipes;
      if (recipes === null) throw new Error('This build of AfD Studio has no ready-made recipes; write an experiment definition instead.');
      return recipes;
    },
    'experiments.stageKinds': async () => (await pipeline()).stageKinds,
    'experiments.check': async (p) => (await pipeline()).check(p.definition),
    'experiments.start': (p) => launch(p.definition),
    'experiments.list': async (): Promise<ExperimentSummary[]> => {
      const pl = await pipeline();
      return experiments.list().map((e) => experimentSummary(e, pl.progress(ctx.db, e.id)));
    },
    'experiments.get': async (p) => detail(await pipeline(), p.experimentId),
    'experiments.stop': async (p) => {
      const pl = await pipeline();
      experiment(p.experimentId);
      const active = drivers.get(p.experimentId);
      if (active !== undefined) {
        active.driver.stop(p.reason);
      } else {
        // Started by another process or before a restart: stop its live runs directly.
        for (const r of runs.list({ experimentId: p.experimentId })) {
          if (r.status === 'queued' || r.status === 'running') ctx.runner[p.reason](r.id);
        }
      }
      ctx.log('info', `Experiment #${p.experimentId}: ${p.reason} asked.`);
      return pl.progress(ctx.db, p.experimentId);
    },
    'experiments.resume': async (p) => {
      const e = experiment(p.experimentId);
      if (drivers.has(p.experimentId)) throw new Error(`Experiment #${p.experimentId} is already running; pause or cancel it first.`);
      return launch(e.definition, e.id);
    },
    'experiments.exportTrl': async (p) => {
      const pl = await pipeline();
      const e = experiment(p.experimentId);
      if (!isAbsolute(p.out)) throw new Error(`Type the full path of a new folder for the project (${JSON.stringify(p.out)} is relative).`);
      // The exporter is loaded on first use, like the rest of the pipeline.
      const trl = (await import(new URL('../afd/trl/export.ts', import.meta.url).href)) as typeof import('../afd/trl/export.ts');
      const m = await trl.exportTrl(ctx.db, ctx.runner.files, pl.parse(e.definition), { out: p.out, experimentId: e.id, ...(p.gpus === undefined ? {} : { gpus: p.gpus }) });
      ctx.log('info', `Experiment #${e.id} exported for TRL to ${p.out}: ${m.stages.filter((s) => s.exported).length} of ${m.stages.length} stages.`);
      return { out: p.out, stages: m.stages.map(({ id, kind, exported, script, why }) => ({ id, kind, exported, ...(script === undefined ? {} : { script }), ...(why === undefined ? {} : { why }) })) };
    },
    'results.get': async (p) => {
      const pl = await pipeline();
      experiment(p.experimentId);
      return pl.results(ctx.db, ctx.runner.files, p.experimentId);
    },
    close: () => {
      for (const { unsubscribe } of drivers.values()) unsubscribe();
      drivers.clear();
    },
  };
}

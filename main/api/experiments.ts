// The experiments view's methods over the experiments layer (main/experiments:
// definitions, recipes, the driver that runs a definition's stages as jobs, the results
// table). The layer is loaded here and nowhere else in the API, on first use; its types
// are imported as types, which loads nothing.
import { isAbsolute } from 'node:path';
import { ExperimentStore } from '../../db/experiments.ts';
import type { JsonObject } from '../../db/json.ts';
import { RunStore } from '../../db/runs.ts';
import type { Pipeline, RunningExperiment } from '../experiments/pipeline.ts';
import type { ExperimentDetail, ExperimentEndStatus, ExperimentSummary } from './contract.ts';
import type { ApiContext, Handlers } from './context.ts';
import { experimentState, experimentSummary } from './experiment-summary.ts';
import { runInfo } from './runs.ts';

/** Loads the experiments layer (main/experiments/) on first use; a clear sentence if it cannot be. */
export async function loadPipeline(): Promise<Pipeline> {
  try {
    return (await import('../experiments/pipeline.ts')).PIPELINE;
  } catch (err) {
    throw new Error(`The AfD pipeline could not be loaded (main/experiments/pipeline.ts: ${(err as Error).message}); update or reinstall AfD Studio.`, { cause: err });
  }
}

export function experimentHandlers(ctx: ApiContext, pipeline: () => Promise<Pipeline>): Handlers<'experiments.recipes' | 'experiments.stageKinds' | 'experiments.check' | 'experiments.start' | 'experiments.list' | 'experiments.get' | 'experiments.stop' | 'experiments.resume' | 'experiments.exportTrl' | 'experiments.importTrl' | 'results.get'> & { close(): void } {
  const experiments = new ExperimentStore(ctx.db);
  const runs = new RunStore(ctx.db);
  const drivers = new Map<number, { driver: RunningExperiment; unsubscribe: () => void }>();

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
  const watch = (driver: RunningExperiment): void => {
    const unsubscribe = driver.onProgress((progress) => ctx.emit({ type: 'experiment.progress', progress }));
    drivers.set(driver.experimentId, { driver, unsubscribe });
    const ended = (status: ExperimentEndStatus, error: string | null): void => ctx.emit({ type: 'experiment.ended', experimentId: driver.experimentId, status, error });
    void driver.done.then(
      (p) => {
        ctx.log('info', `Experiment #${driver.experimentId} ended: ${experimentState(p)}.`);
        ended(p.status, p.error ?? null);
      },
      (err: Error) => {
        ctx.log('error', `Experiment #${driver.experimentId} failed: ${err.message}`);
        ended('failed', err.message);
      },
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
    let id: number | undefined = experimentId;
    // A line said while a new experiment is being stored, before its id is known, waits for it.
    const early: string[] = [];
    const say = (n: number, text: string): void => {
      ctx.log('info', `Experiment #${n}: ${text}`);
      ctx.emit({ type: 'experiment.log', experimentId: n, text });
    };
    const log = (text: string): void => (id === undefined ? void early.push(text) : say(id, text));
    const driver = pl.start(ctx.db, ctx.runner, parsed, experimentId === undefined ? { log } : { experimentId, log });
    id = driver.experimentId;
    for (const text of early.splice(0)) say(id, text);
    watch(driver);
    ctx.emit({ type: 'experiment.progress', progress: driver.progress() });
    ctx.log('info', `Experiment #${driver.experimentId} "${parsed.name}" ${experimentId === undefined ? 'started' : 'resumed'}.`);
    return detail(pl, driver.experimentId);
  };

  return {
    'experiments.recipes': async () => {
      return [...(await pipeline()).recipes];
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
      return launch(p.definition ?? e.definition, e.id);
    },
    'experiments.exportTrl': async (p) => {
      const pl = await pipeline();
      // A stored experiment, or a definition not stored (`afd export trl FILE`).
      const e = p.experimentId === undefined ? null : experiment(p.experimentId);
      const definition = pl.parse(e === null ? p.definition! : e.definition);
      if (!isAbsolute(p.out)) throw new Error(`Type the full path of a new folder for the project (${JSON.stringify(p.out)} is relative).`);
      // The exporter is loaded on first use, like the rest of the layer.
      const { exportTrl } = await import('../experiments/trl/export.ts');
      const m = await exportTrl(ctx.db, ctx.runner.files, definition, { out: p.out, experimentId: e?.id ?? null, ...(p.gpus === undefined ? {} : { gpus: p.gpus }), ...(p.pi0 === undefined ? {} : { pi0: p.pi0 }) });
      ctx.log('info', `Experiment ${e === null ? `'${definition.name}'` : `#${e.id}`} exported for TRL to ${p.out}: ${m.stages.filter((s) => s.exported).length} of ${m.stages.length} stages.`);
      return {
        out: p.out, experiment: m.experiment, gpus: m.gpus, data: m.data,
        stages: m.stages.map(({ id, kind, exported, script, why }) => ({ id, kind, exported, ...(script === undefined ? {} : { script }), ...(why === undefined ? {} : { why }) })),
      };
    },
    'experiments.importTrl': async (p) => {
      if (!isAbsolute(p.dir)) throw new Error(`Type the full path of the exported project's folder (${JSON.stringify(p.dir)} is relative).`);
      const { importTrlResults } = await import('../experiments/trl/import.ts');
      const r = await importTrlResults(ctx.db, ctx.runner.files, p.dir);
      ctx.log('info', `Experiment #${r.experimentId} (${r.definition.name}) imported from ${p.dir}: ${r.imported.length} stages; ${r.local.length} left to run here.`);
      return { experimentId: r.experimentId, name: r.definition.name, imported: r.imported, local: r.local };
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

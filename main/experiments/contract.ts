// What the rest of the application (CLI, `afd serve`, the Electron shell, the renderer
// through the API) may rely on from the experiments layer. The implementation lives in
// experiment.ts (definitions), driver.ts (running them on the job runner) and
// results.ts (the tables of DESIGN.md §3). What a stage run reads and writes that the
// layers above read too (the data, the results table) is the stage library's
// (main/stages/contract.ts), re-exported here so that one module is the whole contract.
import type { Static } from 'typebox';
import type { JsonObject } from '../../db/json.ts';
import type { EXPERIMENT, ORIGIN } from './definition-schema.ts';

export type { DataSpec, ResultRow, ResultsTable } from '../stages/contract.ts';

/** One step of a pipeline. `kind` is a stage name (sft, sample, reward, bon, eval...);
 *  the other fields are the stage's settings and its inputs, which name earlier stages
 *  by id (or `pi0`, the experiment's initial model). */
export interface StageSpec {
  id: string;
  kind: string;
  [setting: string]: JsonObject[string];
}

/**
 * An experiment as parsed (defaults filled in): the schema's static type (definition-schema.ts:
 * name, seed, pi_0 as `model` ('default', 'smollm2', a .gguf file, a folder or `store:NAME`),
 * other `models` stages may name beside `pi0`, `data`, `provider` and `threads` for every
 * stage, and `origin` for an experiment read back from a TRL project), with each stage as
 * its kind's schema parsed it.
 */
export type ExperimentDefinition = Omit<Static<typeof EXPERIMENT>, 'stages'> & { stages: StageSpec[] };

/** Where an imported experiment came from (`afd import results`): the experiment it was
 *  exported from (its id when the store had it) and the exported project's folder. */
export type ExperimentOrigin = Static<typeof ORIGIN>;

/** A named, ready-made pipeline (the experiments view's one-click recipes). */
export interface Recipe {
  id: string;
  title: string;
  summary: string;
  definition: JsonObject;
}

export type StageState = 'pending' | 'queued' | 'running' | 'paused' | 'done' | 'failed' | 'cancelled' | 'interrupted';

export interface ExperimentProgress {
  experimentId: number;
  /** Each stage with its run id once it has one. */
  stages: { id: string; kind: string; runId: number | null; state: StageState }[];
  /** The stage the driver is at (running it, or keeping it as finished earlier); absent when no driver follows the experiment. */
  current?: string;
}

/** How a drive of an experiment ended. */
export type ExperimentEndStatus = 'done' | 'paused' | 'cancelled' | 'failed' | 'interrupted';

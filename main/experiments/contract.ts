// What the rest of the application (CLI, `afd serve`, the Electron shell, the renderer
// through the API) may rely on from the experiments layer. The implementation lives in
// experiment.ts (definitions), driver.ts (running them on the job runner) and
// results.ts (the tables of DESIGN.md §3). What a stage run reads and writes that the
// layers above read too (the data, the results table) is the stage library's
// (main/stages/contract.ts), re-exported here so that one module is the whole contract.
import type { JsonObject } from '../../db/json.ts';
import type { DataSpec } from '../stages/contract.ts';

export type { DataSpec, ResultRow, ResultsTable } from '../stages/contract.ts';

/** One step of a pipeline. `kind` is a stage name (sft, sample, reward, bon, eval...);
 *  the other fields are the stage's settings and its inputs, which name earlier stages
 *  by id (or `pi0`, the experiment's initial model). */
export interface StageSpec {
  id: string;
  kind: string;
  [setting: string]: JsonObject[string];
}

export interface ExperimentDefinition {
  name: string;
  seed: number;
  /** pi_0: 'default' (the embedded model), a model folder, or `store:<model name>`. */
  model: string;
  /** Other models the stages may name as inputs beside `pi0` (for example a second gold
   *  judge's backbone): name -> the same forms as `model`. */
  models?: Record<string, string>;
  data: DataSpec;
  /** Execution provider and threads for every stage (stages may override). */
  provider: 'auto' | 'cpu' | 'webgpu' | 'cuda';
  threads: number | null;
  stages: StageSpec[];
  /** Where an imported experiment came from (`afd import results`): the experiment it was
   *  exported from (its id when the store had it) and the exported project's folder. */
  origin?: ExperimentOrigin;
}

export interface ExperimentOrigin {
  experimentId: number | null;
  name: string;
  project: string;
}

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

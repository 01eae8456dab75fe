// What the rest of the application (CLI, `afd serve`, the Electron shell, the renderer
// through the API) may rely on from the AfD pipeline. The implementation lives in
// experiment.ts (definitions), driver.ts (running them on the job runner) and
// results.ts (the tables of DESIGN.md §3).
import type { JsonObject } from '../../db/json.ts';

/** One step of a pipeline. `kind` is a stage name (sft, sample, reward, bon, eval...);
 *  the other fields are the stage's settings and its inputs, which name earlier stages
 *  by id (or `pi0`, the experiment's initial model). */
export interface StageSpec {
  id: string;
  kind: string;
  [setting: string]: JsonObject[string];
}

/** Where the demonstrations come from: the shipped HH-Harmless microcosm, a file, or a
 *  dataset in the store. Prompts are split into train and eval by a stable hash. */
export interface DataSpec {
  /** 'hh-harmless' (the shipped copy), a file path, or `store:<dataset name>`. */
  source: string;
  /** Format of a file source (default: from its extension). */
  format?: 'hh' | 'jsonl' | 'csv';
  evalFraction: number;
  /** Use at most this many train / eval prompts (a smaller, faster experiment). */
  maxTrain?: number;
  maxEval?: number;
  /** The model folder whose chat template turns `{"messages": [...]}` lines into (prompt,
   *  response); the driver sets it to pi_0's. */
  chatTemplateModel?: string;
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
}

/** One row of the results table (the `rows` of results.json, issue 4). */
export interface ResultRow {
  method: string;
  n?: number;
  gold_mean: number;
  gold_ci95: [number, number];
  win_rate_vs_sft: number;
  win_rate_ci95?: [number, number];
  /** Mean over prompts of gold(this response) - gold(the SFT reference's response to the
   *  same prompt), with its 95% interval: the paired comparison, far tighter than comparing
   *  two means when prompts differ much in difficulty. */
  gold_gain_vs_sft?: number;
  gold_gain_ci95?: [number, number];
  /** The paired gain after removing what length explains: gold - slope * tokens on both
   *  sides, with the slope of gold on length over pi_SFT's samples (the eval's length_fit). */
  gold_gain_length_adjusted?: number;
  gold_gain_length_adjusted_ci95?: [number, number];
  /** Win rate against the shortest of the first N SFT samples at the same N (N = 1 for policies). */
  win_rate_vs_shortest?: number;
  win_rate_vs_shortest_ci95?: [number, number];
  mean_length: number;
  distinct_2?: number;
  kl_estimate?: number;
}

export interface ResultsTable {
  gold_judge_accuracy: number | null;
  rows: ResultRow[];
}

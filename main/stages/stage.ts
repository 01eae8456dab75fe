// What an AfD stage is (DESIGN.md §2): a resumable unit of the pipeline that reads the
// outputs of earlier stages (artifacts) and writes its own into its folder. Stages know
// nothing of the store or the job runner: main/jobs/afd-stage.ts runs any stage as a job,
// and tests run them directly (kinds/testing.ts).
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { TObject } from 'typebox';
import type { JsonObject } from '../../db/json.ts';
import type { ProviderName } from '../../native-models/runtime/providers.ts';
import type { Demonstrations } from './data.ts';

/** What a stage produces:
 *  - model: a Hugging Face folder `<dir>/model`;
 *  - samples: `<dir>/samples.jsonl`, N responses per prompt (kinds/sample.ts);
 *  - reward: a reward function (`<dir>/artifact.json` says which: a trained scorer, a
 *    density ratio of two models, a length heuristic; see reward-function.ts);
 *  - selection: Best-of-N picks among samples for each N (kinds/bon.ts);
 *  - evaluation: gold-judge results (kinds/eval.ts). */
export type ArtifactType = 'model' | 'samples' | 'reward' | 'selection' | 'evaluation';

/** A stage's output as the next stages see it. */
export interface Artifact {
  type: ArtifactType;
  /** The producing stage's folder. */
  dir: string;
  /** The id of the stage in its experiment ('pi0' for the initial model, or a name from
   *  the experiment's `models`). */
  stage: string;
  /** A model from outside the experiment (pi_0 or a named model): `dir` is the Hugging
   *  Face folder itself. */
  external?: boolean;
  /** The store's model id of a model artifact (lineage), when there is a store. */
  modelId?: number | null;
}

export const ARTIFACT_FILE = 'artifact.json';

/** Where a model artifact's Hugging Face folder is (pi_0's and named models' folders are their own dir). */
export const modelDir = (a: Artifact): string => (a.stage === 'pi0' || a.external === true ? a.dir : join(a.dir, 'model'));

/** The details a stage wrote about its artifact (artifact.json). */
export function artifactDetails(a: Artifact): JsonObject {
  return JSON.parse(readFileSync(join(a.dir, ARTIFACT_FILE), 'utf8')) as JsonObject;
}

export async function writeArtifactDetails(dir: string, details: JsonObject): Promise<void> {
  await writeFile(join(dir, ARTIFACT_FILE), `${JSON.stringify(details, null, 1)}\n`);
}

/** A config field that names other stages' outputs, and the types it accepts. */
export interface InputSpec {
  types: readonly ArtifactType[];
  /** Several stage ids (a list) rather than one. */
  list?: boolean;
  optional?: boolean;
}

export interface StageContext {
  readonly seed: number;
  /** The stage's own folder (exists); outputs and checkpoints go here. */
  readonly dir: string;
  /** The checkpoint written by an earlier attempt (see `checkpointed`), or null. */
  readonly checkpoint: string | null;
  readonly provider: ProviderName;
  readonly threads: number | undefined;
  /** True once a pause or cancel is asked: stop at the next step boundary with a checkpoint. */
  stopRequested(): boolean;
  readonly signal: AbortSignal;
  /** The experiment's demonstrations (train and eval prompts). */
  data(): Promise<Demonstrations>;
  progress(step: number, total: number | null, unit?: string): void;
  metric(step: number, values: Record<string, number>): void;
  log(text: string): void;
  /** Records that `file` holds everything up to `step` (after the metrics of those steps are stored). */
  checkpointed(file: string, step: number): Promise<void>;
}

export type StageOutcome = { status: 'done'; summary: JsonObject } | { status: 'stopped'; step: number };

export type StageInputs = Record<string, Artifact | Artifact[] | undefined>;

export interface Stage<C extends JsonObject = JsonObject> {
  readonly kind: string;
  readonly summary: string;
  readonly produces: ArtifactType;
  /** Config fields naming other stages' outputs (the field's value is a stage id or a list of them). */
  readonly inputs: Readonly<Record<string, InputSpec>>;
  /** The settings' schema (strict: an unknown setting is refused), for checking and for forms. */
  readonly settings: TObject;
  /** Checks the settings by `settings` and fills in every default (inputs stay stage ids);
   *  throws one sentence, naming `where` for an unknown setting (default "the <kind> stage"). */
  parse(raw: JsonObject, where?: string): C;
  run(ctx: StageContext, config: C, inputs: StageInputs): Promise<StageOutcome>;
}

/** One input artifact, checked to be present and single. */
export function one(inputs: StageInputs, name: string): Artifact {
  const a = inputs[name];
  if (a === undefined || Array.isArray(a)) throw new Error(`input ${name} must be one stage's output`);
  return a;
}

export function many(inputs: StageInputs, name: string): Artifact[] {
  const a = inputs[name];
  if (a === undefined) return [];
  return Array.isArray(a) ? a : [a];
}

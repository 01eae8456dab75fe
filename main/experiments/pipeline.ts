// The experiments layer as the API uses it, in one object: the API loads it with one
// import on first use (the layer pulls in every stage, about a second and a half on
// start-up that `afd runs list` need not pay), and a test passes another `Pipeline`.
import type { StudioDatabase } from '../../db/database.ts';
import type { JsonObject } from '../../db/json.ts';
import type { StudioFiles } from '../jobs/files.ts';
import type { JobRunner } from '../jobs/runner.ts';
import { STAGES } from '../stages/kinds/index.ts';
import { availableMemory } from '../stages/memory-check.ts';
import type { StageMemoryEstimate } from '../stages/memory-estimate.ts';
import type { ExperimentDefinition } from './contract.ts';
import { ExperimentDriver, experimentProgress } from './driver.ts';
import { checkExperiment, parseExperiment } from './experiment.ts';
import { experimentEstimates, outsideShapes } from './memory.ts';
import { RECIPES } from './recipes.ts';
import { experimentResults } from './results.ts';

/** A running experiment as the API follows it: the driver's public face. */
export type RunningExperiment = Pick<ExperimentDriver, 'experimentId' | 'done' | 'progress' | 'onProgress' | 'stop'>;

/** How the API starts a drive: `experimentId` resumes a stored experiment; `log` hears the driver's lines. */
export interface StartOptions {
  experimentId?: number;
  log?: (text: string) => void;
}

/** Each sized stage's estimated peak memory, from the definition alone, and the memory available now. */
export interface ExperimentMemory {
  available: number;
  stages: Record<string, StageMemoryEstimate>;
}

/** Every problem `parse` would refuse, each with its stage and setting, as plain JSON. */
function definitionProblems(raw: unknown) {
  return checkExperiment(raw).map((e) => ({ message: e.message, stage: e.stage, stageId: e.stageId, path: [...e.path] }));
}

/** Every stage kind as a form is built from it: its inputs and its settings' schema as plain JSON (TypeBox schemas are JSON Schema). */
function stageKinds() {
  return Object.values(STAGES).map((s) => ({
    kind: s.kind, summary: s.summary, produces: s.produces,
    inputs: Object.fromEntries(Object.entries(s.inputs).map(([name, input]) => [name, { ...input, types: [...input.types] }])),
    settings: JSON.parse(JSON.stringify(s.settings)) as JsonObject,
  }));
}

export interface Pipeline {
  start(db: StudioDatabase, runner: JobRunner, definition: ExperimentDefinition, opts?: StartOptions): RunningExperiment;
  progress: typeof experimentProgress;
  parse: typeof parseExperiment;
  check: typeof definitionProblems;
  stageKinds: ReturnType<typeof stageKinds>;
  recipes: typeof RECIPES;
  results: typeof experimentResults;
  memory(db: StudioDatabase, files: StudioFiles, definition: ExperimentDefinition): Promise<ExperimentMemory>;
}

export const PIPELINE: Pipeline = {
  start: (db, runner, definition, opts) => ExperimentDriver.start(db, runner, definition, opts),
  progress: experimentProgress,
  parse: parseExperiment,
  check: definitionProblems,
  stageKinds: stageKinds(),
  recipes: RECIPES,
  results: experimentResults,
  memory: async (db, files, definition) => ({ available: availableMemory(), stages: experimentEstimates(definition, await outsideShapes(db, files, definition)) }),
};

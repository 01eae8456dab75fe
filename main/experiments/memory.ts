// Each stage's memory estimate for an experiment's view, from its definition alone,
// before any stage ran (`experiments.get`): every stage's model follows from the stages
// it reads, back to pi_0 and the named models as their folders are now. A stage about to
// run is checked inside the job runner (main/stages/memory-check.ts).
import { resolve } from 'node:path';
import type { StudioDatabase } from '../../db/database.ts';
import type { JsonObject } from '../../db/json.ts';
import { ModelStore } from '../../db/models.ts';
import { cachedGgufFolder, isGgufPath } from '../../native-models/checkpoint/gguf/to-hf.ts';
import type { ModelSpec } from '../../native-models/models/index.ts';
import type { StudioFiles } from '../jobs/files.ts';
import { DEFAULT_MODEL_DIR } from '../models/builtin.ts';
import { resolveModelArg } from '../models/known.ts';
import { STAGES } from '../stages/kinds/index.ts';
import { folderShape } from '../stages/memory-check.ts';
import { pretrainedShape, stageEstimate, type StageMemoryEstimate } from '../stages/memory-estimate.ts';
import type { ExperimentDefinition } from './contract.ts';

/** The shape of the model a stage's output holds (a model, or a scorer's backbone), from the shapes of its inputs. */
function outputShape(kind: string, settings: JsonObject, shapes: (field: string) => ModelSpec | undefined): ModelSpec | undefined {
  if (kind === 'pretrain') {
    const tok = shapes('tokenizer');
    return tok && pretrainedShape(settings, tok);
  }
  for (const field of ['model', 'policy', 'sft', 'backbone']) {
    const s = shapes(field);
    if (s) return s;
  }
  return undefined;
}

/**
 * Each stage's estimate from an experiment's definition, before any stage ran: every
 * stage's model follows from the stages it reads, back to pi_0 and the named models
 * (`outside`). Stages whose size depends on the data not read yet (SPIN without a
 * samples stage, DITTO) and stages that are not sized are left out; rl and airl assume
 * prompts of CALIBRATION.promptTokens tokens.
 */
export function experimentEstimates(def: ExperimentDefinition, outside: ReadonlyMap<string, ModelSpec>): Record<string, StageMemoryEstimate> {
  const models = new Map(outside);
  const out: Record<string, StageMemoryEstimate> = {};
  for (const spec of def.stages) {
    const stage = STAGES[spec.kind];
    if (stage === undefined) continue;
    const { id, kind, ...raw } = spec;
    let settings: JsonObject;
    try {
      settings = stage.parse(raw as JsonObject);
    } catch {
      continue;
    }
    const shapes = (field: string): ModelSpec | undefined => {
      const ref = settings[field];
      return typeof ref === 'string' ? models.get(ref) : undefined;
    };
    const e = stageEstimate(kind, settings, shapes);
    if (e !== null) out[id] = e;
    const produced = outputShape(kind, settings, shapes);
    if (produced) models.set(id, produced);
  }
  return out;
}

/** The folder of an experiment's model from outside (`model`, `models`) as it is now, without importing or converting anything; null when not there yet. */
async function outsideFolder(db: StudioDatabase, files: StudioFiles, m: string): Promise<string | null> {
  if (m === 'default') return DEFAULT_MODEL_DIR;
  if (m.startsWith('store:')) {
    const row = new ModelStore(db).list().find((x) => x.name === m.slice('store:'.length));
    return row?.path ? files.absolute(row.path) : null;
  }
  try {
    const path = resolve(resolveModelArg(m));
    return isGgufPath(path) ? await cachedGgufFolder(path) : path;
  } catch {
    return null;
  }
}

/** The shapes of pi_0 and the named models of a definition, where their folders can be read now. */
export async function outsideShapes(db: StudioDatabase, files: StudioFiles, def: ExperimentDefinition): Promise<Map<string, ModelSpec>> {
  const out = new Map<string, ModelSpec>();
  for (const [name, m] of [['pi0', def.model] as const, ...Object.entries(def.models ?? {})]) {
    const dir = await outsideFolder(db, files, m);
    if (dir === null) continue;
    try {
      out.set(name, folderShape(dir));
    } catch {
      // A folder without a readable config.json: its stages are not sized.
    }
  }
  return out;
}

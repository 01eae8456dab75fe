// Experiment definitions: a named pipeline of stages over one initial model and one set
// of demonstrations (YAML or JSON; see experiments/*.yaml). Parsing checks everything a
// run would otherwise trip on later: unknown stages, bad settings, inputs that name a
// stage not defined before them or of the wrong type; each error names the stage.
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import type Type from 'typebox';
import type { JsonObject } from '../../db/json.ts';
import { isObject, parseObject, SchemaError } from '../schema/parse.ts';
import type { ExperimentDefinition, StageSpec } from './contract.ts';
import { EXPERIMENT } from './definition-schema.ts';
import type { ArtifactType } from '../stages/stage.ts';
import { STAGES } from '../stages/kinds/index.ts';

/** Input values that are not stage ids: the initial model, and the demonstrations themselves. */
export const PI0 = 'pi0';
export const DEMOS = 'demos';

/** The stage ids an input field names (one or a list), as written. */
export function inputRefs(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value as string[];
  return [];
}

/** A definition's problem, with where it is for a form: `stage` the index of the stage
 *  (null: the definition's own keys), `stageId` its id when it has a valid one, `path` the
 *  setting (or key) it is about within it (empty: the stage, or the definition, as a whole). */
export class DefinitionError extends Error {
  constructor(message: string, readonly stage: number | null, readonly stageId: string | null, readonly path: readonly string[], options?: ErrorOptions) {
    super(message, options);
    this.name = 'DefinitionError';
  }
}

export function parseExperiment(raw: unknown): ExperimentDefinition {
  return readExperiment(raw, (problem) => {
    throw problem;
  });
}

/** Every problem parseExperiment would refuse, each with its place: the definition's own
 *  first one, or each stage's first one (a stage in error still counts as defined for the
 *  stages after it, so that they are checked on their own). None when it parses. */
export function checkExperiment(raw: unknown): DefinitionError[] {
  const problems: DefinitionError[] = [];
  try {
    readExperiment(raw, (problem) => problems.push(problem));
  } catch (err) {
    if (!(err instanceof DefinitionError)) throw err;
    problems.push(err);
  }
  return problems;
}

/** The definition; each stage's problem goes to `problem` (which throws, or records it and
 *  goes on with the next stage); a problem of the definition's own keys is thrown. */
function readExperiment(raw: unknown, problem: (e: DefinitionError) => void): ExperimentDefinition {
  const own = (message: string, path: readonly string[] = [], cause?: unknown) => new DefinitionError(message, null, null, path, cause === undefined ? undefined : { cause });
  if (!isObject(raw)) throw own('An experiment must be a mapping with a name and a list of stages.');
  if (!Array.isArray(raw.stages) || raw.stages.length === 0) throw own('An experiment needs `stages`: a list of at least one stage.', ['stages']);
  let parsedTop: Type.Static<typeof EXPERIMENT>;
  try {
    parsedTop = parseObject(EXPERIMENT, raw, { where: 'the experiment' });
  } catch (err) {
    throw err instanceof SchemaError ? own(err.message, err.path, err) : err;
  }
  const { stages: stagesRaw, models, origin, data, ...top } = parsedTop;
  const def: ExperimentDefinition = { ...top, name: top.name.trim(), data, stages: [] };
  if (origin !== undefined) def.origin = origin;
  const produced = new Map<string, ArtifactType>([[PI0, 'model']]);
  if (models !== undefined) {
    def.models = {};
    for (const [name, model] of Object.entries(models)) {
      if (!/^[A-Za-z0-9][\w.:-]*$/.test(name) || name === PI0 || name === DEMOS) throw own(`models: '${name}' cannot name a model (letters, digits, '-', '_', '.' or ':'; not '${PI0}' or '${DEMOS}').`, ['models', name]);
      def.models[name] = model;
      produced.set(name, 'model');
    }
  }
  for (const [index, s] of stagesRaw.entries()) {
    try {
      def.stages.push(readStage(s, index, produced, def));
    } catch (err) {
      if (!(err instanceof DefinitionError)) throw err;
      problem(err);
      // Later stages may name it: they are checked as if it were right.
      const stage = isObject(s) && typeof s.kind === 'string' ? STAGES[s.kind] : undefined;
      if (err.stageId !== null && stage !== undefined && !produced.has(err.stageId)) produced.set(err.stageId, stage.produces);
    }
  }
  return def;
}

/** One stage of the definition, its inputs checked against the stages before it (`produced`, to which it is added). */
function readStage(s: unknown, index: number, produced: Map<string, ArtifactType>, def: ExperimentDefinition): StageSpec {
  const where = `stage ${index + 1}`;
  if (!isObject(s)) throw new DefinitionError(`${where} must be a mapping with an id and a kind.`, index, null, []);
  const id = typeof s.id === 'string' && /^[A-Za-z0-9][\w.:-]*$/.test(s.id) ? s.id : null;
  if (id === null) throw new DefinitionError(`${where} needs an id made of letters, digits, '-', '_', '.' or ':' (got ${JSON.stringify(s.id ?? null)}).`, index, null, ['id']);
  const fail = (message: string, path: readonly string[], cause?: unknown) => new DefinitionError(message, index, id, path, cause === undefined ? undefined : { cause });
  if (produced.has(id)) throw fail(`stage id '${id}' is used twice${id === PI0 ? ` ('${PI0}' names the initial model)` : def.models?.[id] !== undefined ? ` (models: names a model '${id}')` : ''}.`, ['id']);
  const stage = typeof s.kind === 'string' ? STAGES[s.kind] : undefined;
  if (stage === undefined) throw fail(`stage '${id}': kind must be one of ${Object.keys(STAGES).join(', ')}, not ${JSON.stringify(s.kind ?? null)}.`, ['kind']);
  const { id: _id, kind: _kind, ...settings } = s;
  let parsed: JsonObject;
  try {
    parsed = stage.parse(settings as JsonObject, id === stage.kind ? `stage '${id}'` : `stage '${id}' (${stage.kind})`);
  } catch (err) {
    const path = err instanceof SchemaError ? err.path : [];
    // An unknown setting's sentence already names the stage.
    if (err instanceof SchemaError && err.placed) throw fail(err.message, path, err);
    throw fail(`stage '${id}' (${stage.kind}): ${(err as Error).message}`, path, err);
  }
  for (const [field, spec] of Object.entries(stage.inputs)) {
    const refs = inputRefs(parsed[field]);
    if (refs.length === 0 && !spec.optional) throw fail(`stage '${id}' (${stage.kind}): ${field} must name ${spec.list ? 'earlier stages' : 'an earlier stage'}.`, [field]);
    for (const r of refs) {
      if (r === DEMOS) continue; // stages that accept the demonstrations check it themselves
      const type = produced.get(r);
      if (type === undefined) throw fail(`stage '${id}' (${stage.kind}): ${field} names '${r}', which is not a stage defined before it.`, [field]);
      if (!spec.types.includes(type)) throw fail(`stage '${id}' (${stage.kind}): ${field} needs ${spec.types.join(' or ')} output, but '${r}' makes ${type}.`, [field]);
    }
  }
  produced.set(id, stage.produces);
  return { id, kind: stage.kind, ...parsed } as StageSpec;
}

/** Reads a YAML (or JSON) experiment file. */
export async function readExperimentFile(file: string): Promise<ExperimentDefinition> {
  let raw: unknown;
  try {
    raw = parseYaml(await readFile(file, 'utf8'));
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new Error(e.code === 'ENOENT' ? `${file} does not exist.` : `${file} is not valid YAML: ${e.message}`, { cause: err });
  }
  try {
    return parseExperiment(raw);
  } catch (err) {
    throw new Error(`${file}: ${(err as Error).message}`, { cause: err });
  }
}

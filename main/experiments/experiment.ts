// Experiment definitions: a named pipeline of stages over one initial model and one set
// of demonstrations (YAML or JSON; see experiments/*.yaml). Parsing checks everything a
// run would otherwise trip on later: unknown stages, bad settings, inputs that name a
// stage not defined before them or of the wrong type; each error names the stage.
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import Type from 'typebox';
import type { JsonObject } from '../../db/json.ts';
import { described, integer, nullable, number, oneOf, text } from '../schema/fields.ts';
import { isObject, parseObject, SchemaError } from '../schema/parse.ts';
import type { ExperimentDefinition, StageSpec } from './contract.ts';
import { HH_HARMLESS_SOURCE } from '../stages/data.ts';
import type { ArtifactType } from '../stages/stage.ts';
import { STAGES } from '../stages/kinds/index.ts';

/** Input values that are not stage ids: the initial model, and the demonstrations themselves. */
export const PI0 = 'pi0';
export const DEMOS = 'demos';

const DATA = Type.Object({
  source: text({ default: HH_HARMLESS_SOURCE, description: "'hh-harmless', a file, or store:NAME" }),
  format: Type.Optional(oneOf(['hh', 'jsonl', 'csv'])),
  evalFraction: number(0.01, 0.99, { default: 0.2 }),
  maxTrain: Type.Optional(integer(1)),
  maxEval: Type.Optional(integer(1)),
}, { additionalProperties: false, default: {}, must: 'a mapping (source, format, evalFraction, maxTrain, maxEval)' });

const ORIGIN = Type.Object({
  experimentId: nullable(integer(1), { default: null }),
  name: text(),
  project: text(),
}, { additionalProperties: false, must: 'a mapping with experimentId, name and project' });

/** The definition's own keys; each stage's settings are its kind's (stage.settings). */
const EXPERIMENT = Type.Object({
  name: text(),
  seed: integer(0, 2 ** 32 - 1, { default: 0 }),
  model: text({ default: 'default' }),
  models: Type.Optional(described(Type.Record(Type.String(), text()), 'a mapping from a name to a model (default, smollm2, a .gguf file, a folder or store:NAME)')),
  data: DATA,
  provider: oneOf(['auto', 'cpu', 'webgpu', 'cuda'], { default: 'auto' }),
  threads: nullable(integer(1, 1024), { default: null }),
  stages: described(Type.Array(Type.Unknown(), { minItems: 1 }), 'a list of at least one stage'),
  origin: Type.Optional(ORIGIN),
}, { additionalProperties: false });

/** The stage ids an input field names (one or a list), as written. */
export function inputRefs(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value as string[];
  return [];
}

export function parseExperiment(raw: unknown): ExperimentDefinition {
  if (!isObject(raw)) throw new Error('An experiment must be a mapping with a name and a list of stages.');
  if (!Array.isArray(raw.stages) || raw.stages.length === 0) throw new Error('An experiment needs `stages`: a list of at least one stage.');
  const { stages: stagesRaw, models, origin, data, ...top } = parseObject(EXPERIMENT, raw, { where: 'the experiment' });
  const def: ExperimentDefinition = { ...top, name: top.name.trim(), data, stages: [] };
  if (origin !== undefined) def.origin = origin;
  const produced = new Map<string, ArtifactType>([[PI0, 'model']]);
  if (models !== undefined) {
    def.models = {};
    for (const [name, model] of Object.entries(models)) {
      if (!/^[A-Za-z0-9][\w.:-]*$/.test(name) || name === PI0 || name === DEMOS) throw new Error(`models: '${name}' cannot name a model (letters, digits, '-', '_', '.' or ':'; not '${PI0}' or '${DEMOS}').`);
      def.models[name] = model;
      produced.set(name, 'model');
    }
  }
  for (const [index, s] of stagesRaw.entries()) {
    const where = `stage ${index + 1}`;
    if (!isObject(s)) throw new Error(`${where} must be a mapping with an id and a kind.`);
    const id = typeof s.id === 'string' && /^[A-Za-z0-9][\w.:-]*$/.test(s.id) ? s.id : null;
    if (id === null) throw new Error(`${where} needs an id made of letters, digits, '-', '_', '.' or ':' (got ${JSON.stringify(s.id ?? null)}).`);
    if (produced.has(id)) throw new Error(`stage id '${id}' is used twice${id === PI0 ? ` ('${PI0}' names the initial model)` : def.models?.[id] !== undefined ? ` (models: names a model '${id}')` : ''}.`);
    const stage = typeof s.kind === 'string' ? STAGES[s.kind] : undefined;
    if (stage === undefined) throw new Error(`stage '${id}': kind must be one of ${Object.keys(STAGES).join(', ')}, not ${JSON.stringify(s.kind ?? null)}.`);
    const { id: _id, kind: _kind, ...settings } = s;
    let parsed: JsonObject;
    try {
      parsed = stage.parse(settings as JsonObject, id === stage.kind ? `stage '${id}'` : `stage '${id}' (${stage.kind})`);
    } catch (err) {
      // An unknown setting's sentence already names the stage.
      if (err instanceof SchemaError && err.placed) throw err;
      throw new Error(`stage '${id}' (${stage.kind}): ${(err as Error).message}`, { cause: err });
    }
    for (const [field, spec] of Object.entries(stage.inputs)) {
      const refs = inputRefs(parsed[field]);
      if (refs.length === 0 && !spec.optional) throw new Error(`stage '${id}' (${stage.kind}): ${field} must name ${spec.list ? 'earlier stages' : 'an earlier stage'}.`);
      for (const r of refs) {
        if (r === DEMOS) continue; // stages that accept the demonstrations check it themselves
        const type = produced.get(r);
        if (type === undefined) throw new Error(`stage '${id}' (${stage.kind}): ${field} names '${r}', which is not a stage defined before it.`);
        if (!spec.types.includes(type)) throw new Error(`stage '${id}' (${stage.kind}): ${field} needs ${spec.types.join(' or ')} output, but '${r}' makes ${type}.`);
      }
    }
    produced.set(id, stage.produces);
    def.stages.push({ id, kind: stage.kind, ...parsed } as StageSpec);
  }
  return def;
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

// The schema an experiment file's own keys are read with (experiment.ts parses with it;
// each stage's settings are its kind's schema, main/stages/kinds/). The definition's types
// in contract.ts are this schema's static types, so a key added here is a typed field there.
import Type from 'typebox';
import { described, integer, nullable, number, oneOf, text } from '../schema/fields.ts';
import { HH_HARMLESS_SOURCE } from '../stages/data.ts';

export const DATA = Type.Object({
  source: text({ default: HH_HARMLESS_SOURCE, description: "'hh-harmless', a file, or store:NAME" }),
  format: Type.Optional(oneOf(['hh', 'jsonl', 'csv'])),
  evalFraction: number(0.01, 0.99, { default: 0.2 }),
  maxTrain: Type.Optional(integer(1)),
  maxEval: Type.Optional(integer(1)),
}, { additionalProperties: false, default: {}, must: 'a mapping (source, format, evalFraction, maxTrain, maxEval)' });

export const ORIGIN = Type.Object({
  experimentId: nullable(integer(1), { default: null }),
  name: text(),
  project: text(),
}, { additionalProperties: false, must: 'a mapping with experimentId, name and project' });

/** The definition's own keys; each stage's settings are its kind's (stage.settings). */
export const EXPERIMENT = Type.Object({
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

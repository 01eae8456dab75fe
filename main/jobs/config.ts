// Job configs: each kind's config is a strict object parsed by its schema (main/schema/),
// so a misspelt key is refused with the closest known one instead of being ignored. A run
// stores its parsed config and a resume parses it again, so what a kind's parseConfig
// returns must parse to itself.
import Type, { type TObject, type TProperties } from 'typebox';
import type { JsonObject } from '../../db/json.ts';
import { described } from '../schema/fields.ts';
import { parseObject } from '../schema/parse.ts';

export const configSchema = <P extends TProperties>(properties: P) => Type.Object(properties, { additionalProperties: false });

/** `raw` parsed by a kind's config schema, defaults filled in; errors are one sentence. */
export function parseConfig<S extends TObject>(kind: string, schema: S, raw: JsonObject): Type.Static<S> {
  return parseObject(schema, raw, { where: `the ${kind} job's config`, noun: 'key' });
}

/** A free-form object (checked by whoever reads it). */
export const anObject = (o?: { default?: JsonObject }) => described(Type.Record(Type.String(), Type.Unknown(), o?.default === undefined ? {} : { default: o.default }), 'an object');

// Reading a Hugging Face config.json by a TypeBox schema of the keys a family uses: each
// is type-checked, and an unusable value is refused in one sentence naming the family, the
// file and the key. Unknown keys are allowed: transformers adds keys every release (and
// every model type its own), and a config carries many this engine does not read
// (torch_dtype, bos_token_id, transformers_version...). So these objects are not strict,
// unlike the studio's own boundaries (main/schema/, which native-models may not import).
import Type, { type TObject, type TProperties, type TSchema } from 'typebox';
import Value from 'typebox/value';

/** The field types, each with the sentence of what its value must be. */
export const count = (o: { default?: number } = {}) => Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER, must: 'a positive integer', ...o });
export const real = (o: { default?: number } = {}) => Type.Number({ must: 'a number', ...o });
export const flag = (o: { default?: boolean } = {}) => Type.Boolean({ must: 'true or false', ...o });
export const name = (o: { default?: string } = {}) => Type.String({ must: 'a string', ...o });
/** A nested object (rope parameters), its keys as open as the config's. */
export const section = <P extends TProperties>(properties: P) => Type.Object(properties, { must: 'an object' });
/** The keys of a config.json a family reads; other keys are allowed (see above). */
export const hfConfig = <P extends TProperties>(properties: P) => Type.Object(properties);

/**
 * `json` read by `schema`, defaults filled in. A null counts as absent (transformers
 * writes null for an unset key, n_inner: null); `json` is not changed. `what` names the
 * family in the sentences: "GPT-2 config.json: "n_layer" must be a positive integer, got "two"."
 */
export function readHfConfig<S extends TObject>(schema: S, json: Record<string, unknown>, what: string): Type.Static<S> {
  const value = Value.Default(schema, withoutNulls(json));
  const error = Value.Errors(schema, value)[0];
  if (error === undefined) return value as Type.Static<S>;
  const path = error.instancePath === '' ? [] : error.instancePath.slice(1).split('/');
  if (error.keyword === 'required') {
    const key = [...path, (error.params as { requiredProperties: string[] }).requiredProperties[0]];
    throw new Error(`${what} config.json has no "${key.join('.')}"; it must be ${mustAt(schema, key)}.`);
  }
  throw new Error(`${what} config.json: "${path.join('.')}" must be ${mustAt(schema, path)}, got ${JSON.stringify(valueAt(value, path))}.`);
}

/** A key the family's sentences need but the schema leaves optional (rotary scaling's factor for its type). */
export function needed<T>(value: T | undefined, key: string, what: string, why: string): T {
  if (value === undefined) throw new Error(`${what} config.json has no "${key}", which ${why} needs.`);
  return value;
}

/** Refuses a setting this engine does not implement. */
export function refuse(what: string, key: string, value: unknown, unsupported: boolean, why: string): void {
  if (unsupported) throw new Error(`${what} config.json sets "${key}": ${JSON.stringify(value)}, which AfD Studio does not support (${why}).`);
}

function mustAt(schema: TSchema, path: readonly string[]): string {
  let s: TSchema | undefined = schema;
  for (const key of path) s = (s as { properties?: Record<string, TSchema> } | undefined)?.properties?.[key];
  const must = (s as { must?: unknown } | undefined)?.must;
  return typeof must === 'string' ? must : 'valid';
}

function valueAt(value: unknown, path: readonly string[]): unknown {
  let v = value;
  for (const key of path) v = typeof v === 'object' && v !== null ? (v as Record<string, unknown>)[key] : undefined;
  return v;
}

/** A copy without null values, in nested objects too (lists are left as they are). */
function withoutNulls(json: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(json)) {
    if (v === null) continue;
    out[key] = typeof v === 'object' && !Array.isArray(v) ? withoutNulls(v as Record<string, unknown>) : v;
  }
  return out;
}

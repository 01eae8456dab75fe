// Parsing a boundary value by its schema: defaults filled in, then checked whole; the first
// problem becomes one sentence. Objects are strict: an unknown key is refused with its name,
// where it was and the closest known key ("stage 'sft' has no setting 'epoch'; did you mean
// 'epochs'?"), so a misspelt setting never silently leaves its default in force.
import { closest, distance } from 'fastest-levenshtein';
import Type, { type TObject, type TSchema } from 'typebox';
import Value from 'typebox/value';

/** Where the value was and what its keys are called, for the sentences:
 *  `{ where: "stage 'sft'", noun: 'setting' }` gives "stage 'sft' has no setting 'epoch'". */
export interface Place {
  where: string;
  noun?: string;
}

/** A boundary value that does not fit its schema. `path` names the field (for a form);
 *  `placed` says that the sentence names where the value was (an unknown key's does). */
export class SchemaError extends Error {
  constructor(message: string, readonly path: readonly string[], readonly placed = false) {
    super(message);
    this.name = 'SchemaError';
  }
}

/** `raw` checked against `schema` with its defaults filled in, or a SchemaError. A null
 *  value counts as absent unless the field admits null. `raw` is not changed. */
export function parseObject<S extends TObject>(schema: S, raw: unknown, place: Place): Type.Static<S> {
  if (!isObject(raw)) throw new SchemaError(`${place.where} must be a mapping, not ${show(raw)}.`, [], true);
  const value = Value.Default(schema, withoutNulls(schema, Value.Clone(raw))) as Record<string, unknown>;
  const errors = Value.Errors(schema, value);
  if (errors.length === 0) return value as Type.Static<S>;
  const unknown = errors.find((e) => e.keyword === 'additionalProperties');
  if (unknown !== undefined) {
    const path = pointer(unknown.instancePath);
    const key = (unknown.params as { additionalProperties: string[] }).additionalProperties[0];
    const known = Object.keys(schemaAt(schema, path)?.properties ?? {});
    const where = path.length === 0 ? `${place.where} has no ${place.noun ?? 'key'}` : `${path.join('.')} has no key`;
    throw new SchemaError(`${where} '${key}'; ${suggestion(key, known)}`, [...path, key], path.length === 0);
  }
  const first = errors[0];
  const path = first.keyword === 'required' ? [...pointer(first.instancePath), (first.params as { requiredProperties: string[] }).requiredProperties[0]] : pointer(first.instancePath);
  throw new SchemaError(sentence(schema, value, path), path);
}

/** "did you mean 'epochs'?" when a known key is close (a typo, a case slip, a swap), else the known keys. */
export function suggestion(key: string, known: readonly string[]): string {
  if (known.length === 0) return 'it takes none.';
  const near = closeKey(key, known);
  return near !== null ? `did you mean '${near}'?` : `the known ones are ${known.join(', ')}.`;
}

/** The known key that `key` is probably a misspelling of, or null when none is close:
 *  at most half the longer name's letters differ (a swap counts 2), and never more than
 *  `most` (3; a caller that refuses on a guess alone asks for less). */
export function closeKey(key: string, known: readonly string[], most = 3): string | null {
  if (known.length === 0) return null;
  const lower = known.map((k) => k.toLowerCase());
  const near = closest(key.toLowerCase(), lower);
  const d = distance(key.toLowerCase(), near);
  return d <= Math.min(most, Math.floor(Math.max(key.length, near.length) / 2)) ? known[lower.indexOf(near)] : null;
}

/** "<field> must be <what>, not <value>." for the deepest field along `path` that says what
 *  it must be; a field inside a mapping is named by its path ("data.maxTrain"). */
function sentence(root: TSchema, value: unknown, path: readonly string[]): string {
  let schema: TSchema | undefined = root, at: unknown = value;
  let best: { field: string; must: string; value: unknown } | null = null;
  for (const [i, key] of path.entries()) {
    const item = Array.isArray(at);
    schema = schema === undefined ? undefined : child(schema, key);
    at = isObject(at) || Array.isArray(at) ? (at as Record<string, unknown>)[key] : undefined;
    // A list's items are told by the list's own sentence ("ns must be a list of ...").
    const must = (schema as { must?: unknown } | undefined)?.must;
    if (typeof must === 'string' && !item) best = { field: path.slice(0, i + 1).join('.'), must, value: at };
  }
  if (best === null) return `${path.length === 0 ? 'the value' : path.join('.')} is not valid${path.length === 0 ? '' : ` (${show(at)})`}.`;
  return `${best.field} must be ${best.must}, not ${show(best.value)}.`;
}

function child(schema: TSchema, key: string): TSchema | undefined {
  const s = schema as { properties?: Record<string, TSchema>; items?: TSchema; additionalProperties?: unknown; patternProperties?: Record<string, TSchema>; anyOf?: TSchema[] };
  if (s.properties?.[key] !== undefined) return s.properties[key];
  if (s.items !== undefined && /^\d+$/.test(key)) return s.items;
  if (s.patternProperties !== undefined) return Object.values(s.patternProperties)[0];
  if (typeof s.additionalProperties === 'object') return s.additionalProperties as TSchema;
  return s.anyOf?.map((a) => child(a, key)).find((c) => c !== undefined);
}

function schemaAt(root: TSchema, path: readonly string[]): { properties?: Record<string, TSchema> } | undefined {
  let s: TSchema | undefined = root;
  for (const key of path) s = s === undefined ? undefined : child(s, key);
  return s as { properties?: Record<string, TSchema> } | undefined;
}

/** A copy without the null values of fields that do not admit null (nested objects too). */
function withoutNulls(schema: TSchema, raw: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(raw)) {
    const field = child(schema, key);
    if (v === null && field !== undefined && !Value.Check(field, null)) continue;
    out[key] = isObject(v) && field !== undefined && (field as { type?: unknown }).type === 'object' ? withoutNulls(field, v) : v;
  }
  return out;
}

const pointer = (p: string): string[] => (p === '' ? [] : p.slice(1).split('/').map((k) => k.replaceAll('~1', '/').replaceAll('~0', '~')));

export const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A value as the sentences show it; a long one is cut (a sentence quotes, it does not echo
 *  a 100 MB upload). */
export function show(v: unknown): string {
  if (v === undefined) return 'missing';
  if (typeof v === 'string' && v.length > 60) return `a text of ${v.length} characters (${JSON.stringify(v.slice(0, 40)).slice(0, -1)}...")`;
  const json = JSON.stringify(v) ?? String(v);
  return json.length > 100 ? `${json.slice(0, 80)}...` : json;
}

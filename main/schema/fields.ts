// The field types of every boundary schema, each carrying the sentence that says what a
// value must be (`must`), so that an error reads "epochs must be a whole number from 1 to
// 1000, not 0." wherever it comes from. They are TypeBox schemas (JSON Schema), so their
// bounds, choices and defaults can also be read to build a form.
import Type, { type TSchema } from 'typebox';

/** What a value of the field must be, completing "<field> must be ...". */
export interface Must {
  must: string;
}

/** A field's optional default and description (shown in forms and help). */
export interface FieldOptions<T> {
  default?: T;
  description?: string;
}

/** The builders put `must` in the schema; this says so to the type checker. */
const told = <S extends TSchema>(schema: S): S & Must => schema as S & Must;

const options = <T>(o: FieldOptions<T> | undefined): FieldOptions<T> => ({ ...(o?.default === undefined ? {} : { default: o.default }), ...(o?.description === undefined ? {} : { description: o.description }) });

/** `Number.MAX_SAFE_INTEGER` as a maximum means "no upper bound" in the sentence. */
export function integer(min = 0, max = Number.MAX_SAFE_INTEGER, o?: FieldOptions<number>) {
  return told(Type.Integer({ minimum: min, maximum: max, must: `a whole number from ${min}${max === Number.MAX_SAFE_INTEGER ? ' up' : ` to ${max}`}`, ...options(o) }));
}

export function number(min: number, max: number, o?: FieldOptions<number>) {
  return told(Type.Number({ minimum: min, maximum: max, must: `a number from ${min} to ${max}`, ...options(o) }));
}

/** What a text field takes besides its default: `max` characters at most; `empty` admits
 *  a text without a non-space character (by default one is needed). */
export interface TextOptions extends FieldOptions<string> {
  max?: number;
  empty?: boolean;
}

/** Text with at least one non-space character (unless `empty`), of `max` characters at most. */
export function text(o?: TextOptions) {
  const limit = o?.max === undefined ? {} : { maxLength: o.max };
  const longest = o?.max === undefined ? '' : ` of at most ${o.max} characters`;
  if (o?.empty === true) return told(Type.String({ ...limit, must: `a text${longest}`, ...options(o) }));
  return told(Type.String({ minLength: 1, pattern: '\\S', ...limit, must: `a non-empty text${longest}`, ...options(o) }));
}

export function oneOf<const T extends string[]>(choices: readonly [...T], o?: FieldOptions<T[number]>) {
  return told(Type.Enum(choices, { must: `one of ${choices.join(', ')}`, ...options(o) }));
}

export function flag(o?: FieldOptions<boolean>) {
  return told(Type.Boolean({ must: 'true or false', ...options(o) }));
}

/** A field that may also be null (null is then a value, not "absent"). */
export function nullable<S extends TSchema>(schema: S & Must, o?: FieldOptions<null>) {
  return told(Type.Union([schema, Type.Null()], { must: `${schema.must}, or null`, ...options(o) }));
}

/** A field whose sentence is the caller's (a list, a mapping). */
export function described<S extends TSchema>(schema: S, must: string): S & Must {
  return Object.assign(schema, { must });
}

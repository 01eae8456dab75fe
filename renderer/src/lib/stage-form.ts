// A stage's form, built from its settings' JSON Schema (experiments.stageKinds: the TypeBox
// schema the server parses with, so bounds, choices, defaults and help are never written
// twice), and the server's problems (experiments.check) placed beside the field they name.
import type { DefinitionProblem, Json, JsonObject, StageKind } from '../../../main/api/contract.ts';
import { isObject } from './pipeline.ts';

/** How a setting is edited: numbers with their bounds, a choice, a flag, text, earlier
 *  stages' ids (an input), or JSON text for what has no control of its own (lists, mappings). */
export type Control = 'integer' | 'number' | 'select' | 'checkbox' | 'text' | 'stage' | 'json';

export interface FormField {
  key: string;
  control: Control;
  min?: number;
  max?: number;
  /** The select's choices. */
  choices?: string[];
  /** What an absent setting is (shown as the placeholder). */
  default?: Json;
  description?: string;
  /** What a value must be ("a whole number from 1 to 1000"). */
  must?: string;
  /** An input that takes several stage ids (comma-separated in the form). */
  list?: boolean;
}

/** The largest integer means "no upper bound" (fields.ts integer()). */
const bound = (v: unknown): number | undefined => (typeof v === 'number' && Math.abs(v) < Number.MAX_SAFE_INTEGER ? v : undefined);

/** One field per property of the stage's settings, in the schema's order. */
export function formFields(kind: StageKind): FormField[] {
  const properties = isObject(kind.settings.properties) ? kind.settings.properties : {};
  return Object.entries(properties).map(([key, raw]) => {
    const s = isObject(raw) ? raw : {};
    const input = kind.inputs[key];
    const field: FormField = { key, control: input !== undefined ? 'stage' : control(s) };
    if (field.control === 'integer' || field.control === 'number') {
      const min = bound(s.minimum), max = bound(s.maximum);
      if (min !== undefined) field.min = min;
      if (max !== undefined) field.max = max;
    }
    if (field.control === 'select') field.choices = (s.enum as Json[]).map(String);
    if (input?.list === true) field.list = true;
    if (s.default !== undefined) field.default = s.default;
    if (typeof s.description === 'string') field.description = s.description;
    if (typeof s.must === 'string') field.must = s.must;
    return field;
  });
}

function control(s: JsonObject): Control {
  if (Array.isArray(s.enum) && s.enum.every((c) => typeof c === 'string')) return 'select';
  if (s.type === 'integer') return 'integer';
  if (s.type === 'number') return 'number';
  if (s.type === 'boolean') return 'checkbox';
  if (s.type === 'string') return 'text';
  return 'json';
}

/** The text an input shows for a setting's value (empty when absent: the placeholder says the default). */
export function fieldText(field: FormField, value: Json | undefined): string {
  if (value === undefined || value === null) return '';
  if (field.control === 'stage' && Array.isArray(value)) return value.join(', ');
  if (field.control === 'json' && typeof value !== 'string') return JSON.stringify(value);
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** The setting a typed text makes; undefined leaves it out (its default applies). Text that
 *  is not what the field takes is kept as it was typed, for the server to say what it must be. */
export function fieldValue(field: FormField, text: string): Json | undefined {
  const t = text.trim();
  if (t === '') return undefined;
  switch (field.control) {
    case 'integer':
    case 'number': {
      const n = Number(t);
      return Number.isFinite(n) ? n : text;
    }
    case 'stage': {
      if (field.list !== true) return t;
      const ids = t.split(',').map((x) => x.trim()).filter((x) => x !== '');
      return ids.length === 1 ? ids[0] : ids;
    }
    case 'json':
      try {
        return JSON.parse(t) as Json;
      } catch {
        return text;
      }
    default:
      return text;
  }
}

/** The placeholder of an absent setting: its default, as the field would show it. */
export function placeholder(field: FormField): string {
  return field.default === undefined ? '' : fieldText(field, field.default) || '""';
}

/** The settings object of a stage's JSON text, or null when the text is not a JSON object. */
export function readSettings(text: string): JsonObject | null {
  if (text.trim() === '') return {};
  try {
    const v = JSON.parse(text) as unknown;
    return isObject(v) ? v : null;
  } catch {
    return null;
  }
}

/** The stage's settings text with one setting set (undefined: removed). */
export function withSetting(text: string, key: string, value: Json | undefined): string {
  const settings = { ...(readSettings(text) ?? {}) };
  if (value === undefined) delete settings[key];
  else settings[key] = value;
  return JSON.stringify(settings, null, 1);
}

/** The problems of one stage: beside each field of its form, and those of the stage as a whole. */
export interface StageProblems {
  fields: Record<string, string>;
  stage: string[];
}

/** The definition's own fields the composer shows, by their path joined with '.'. */
export const DEFINITION_FIELDS = ['name', 'seed', 'model', 'provider', 'data.source', 'data.evalFraction', 'data.maxTrain', 'data.maxEval'] as const;

/** The problems of a check placed where the form shows them: per stage (by index in the
 *  definition, which is the draft's order), beside a field the stage's form has (or its
 *  id), else at the stage; the definition's own beside its field (`definitionFields`, by
 *  DEFINITION_FIELDS) or at the top (`definition`). */
export function placeProblems(problems: readonly DefinitionProblem[], stages: readonly { kind: string }[], kinds: readonly StageKind[]): { stages: StageProblems[]; definitionFields: Record<string, string>; definition: string[] } {
  const out = stages.map((): StageProblems => ({ fields: {}, stage: [] }));
  const definitionFields: Record<string, string> = {};
  const definition: string[] = [];
  for (const p of problems) {
    const at = p.stage === null ? undefined : out[p.stage];
    if (at === undefined) {
      const field = p.path.join('.');
      if (p.stage === null && (DEFINITION_FIELDS as readonly string[]).includes(field) && definitionFields[field] === undefined) definitionFields[field] = p.message;
      else definition.push(p.message);
      continue;
    }
    const kind = kinds.find((k) => k.kind === stages[p.stage!].kind);
    const key = p.path[0];
    const shown = key !== undefined && (key === 'id' || (kind !== undefined && isObject(kind.settings.properties) && key in kind.settings.properties));
    if (shown && at.fields[key] === undefined) at.fields[key] = p.message;
    else at.stage.push(p.message);
  }
  return { stages: out, definitionFields, definition };
}

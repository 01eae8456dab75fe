// The experiment composer's draft: a pipeline definition (main/experiments/contract.ts) whose stage
// settings are kept as JSON text (edited as text or in the stage's form, lib/stage-form.ts),
// with the defaults taken from the API's recipes.
import type { JsonObject, Recipe } from '../../../main/api/contract.ts';

export interface StageDraft {
  id: string;
  kind: string;
  /** The stage's settings and inputs other than id and kind, as JSON text (the form edits it too). */
  settings: string;
  /** Edited as JSON text rather than in the form built from the stage's schema. */
  raw?: boolean;
}

export interface Draft {
  name: string;
  seed: number;
  model: string;
  source: string;
  evalFraction: number;
  maxTrain: number | null;
  maxEval: number | null;
  provider: 'auto' | 'cpu' | 'webgpu' | 'cuda';
  stages: StageDraft[];
}

export const EMPTY_DRAFT: Draft = { name: 'my experiment', seed: 1, model: 'default', source: 'hh-harmless', evalFraction: 0.2, maxTrain: null, maxEval: null, provider: 'auto', stages: [] };

export const isObject = (v: unknown): v is JsonObject => typeof v === 'object' && v !== null && !Array.isArray(v);
const num = (v: unknown, d: number): number => (typeof v === 'number' && Number.isFinite(v) ? v : d);
const optNum = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const str = (v: unknown, d: string): string => (typeof v === 'string' ? v : d);

/** A draft from a recipe's definition; anything missing gets the empty draft's value. */
export function draftFromDefinition(def: JsonObject): Draft {
  const data = isObject(def.data) ? def.data : {};
  const provider = def.provider === 'cpu' || def.provider === 'webgpu' || def.provider === 'cuda' ? def.provider : 'auto';
  const stages = Array.isArray(def.stages) ? def.stages.filter(isObject) : [];
  return {
    name: str(def.name, EMPTY_DRAFT.name),
    seed: num(def.seed, EMPTY_DRAFT.seed),
    model: str(def.model, EMPTY_DRAFT.model),
    source: str(data.source, EMPTY_DRAFT.source),
    evalFraction: num(data.evalFraction, EMPTY_DRAFT.evalFraction),
    maxTrain: optNum(data.maxTrain),
    maxEval: optNum(data.maxEval),
    provider,
    stages: stages.map(stageDraft),
  };
}

function stageDraft(s: JsonObject): StageDraft {
  const { id, kind, ...settings } = s;
  return { id: str(id, ''), kind: str(kind, ''), settings: JSON.stringify(settings, null, 1) };
}

/** One template per stage kind found in the recipes (the first one's settings), for "add stage". */
export function stageTemplates(recipes: readonly Recipe[]): StageDraft[] {
  const byKind = new Map<string, StageDraft>();
  for (const r of recipes) for (const s of draftFromDefinition(r.definition).stages) if (s.kind !== '' && !byKind.has(s.kind)) byKind.set(s.kind, s);
  return [...byKind.values()];
}

/** An id not used yet in the draft: the kind, then kind-2, kind-3... */
export function freshStageId(draft: Draft, kind: string): string {
  const used = new Set(draft.stages.map((s) => s.id));
  if (!used.has(kind)) return kind;
  for (let i = 2; ; i++) if (!used.has(`${kind}-${i}`)) return `${kind}-${i}`;
}

export function addStage(draft: Draft, template: StageDraft): Draft {
  return { ...draft, stages: [...draft.stages, { ...template, id: freshStageId(draft, template.kind) }] };
}

export function removeStage(draft: Draft, index: number): Draft {
  return { ...draft, stages: draft.stages.filter((_, i) => i !== index) };
}

/** Moves stage `index` by `delta` places (clamped). */
export function moveStage(draft: Draft, index: number, delta: number): Draft {
  const to = Math.max(0, Math.min(draft.stages.length - 1, index + delta));
  if (to === index || index < 0 || index >= draft.stages.length) return draft;
  const stages = [...draft.stages];
  const [s] = stages.splice(index, 1);
  stages.splice(to, 0, s);
  return { ...draft, stages };
}

/** The definition to send, or the sentences saying what to fix first: only what the server
 *  cannot see, a stage's settings text that is not a JSON object. Everything else (a name,
 *  stages, ids, bounds) the server's check judges, in its own sentences, beside the field. */
export function toDefinition(draft: Draft): { definition: JsonObject } | { errors: string[] } {
  const errors: string[] = [];
  const stages: JsonObject[] = [];
  draft.stages.forEach((s, i) => {
    const label = `Stage ${i + 1}${s.id === '' ? '' : ` ("${s.id}")`}`;
    let settings: unknown;
    try {
      settings = s.settings.trim() === '' ? {} : JSON.parse(s.settings);
    } catch (err) {
      errors.push(`${label}'s settings are not valid JSON (${(err as Error).message}); fix the text.`);
      return;
    }
    if (!isObject(settings)) errors.push(`${label}'s settings must be a JSON object like {"epochs": 1}.`);
    else stages.push({ ...settings, id: s.id, kind: s.kind });
  });
  if (errors.length > 0) return { errors };
  const data: JsonObject = { source: draft.source, evalFraction: draft.evalFraction };
  if (draft.maxTrain !== null) data.maxTrain = draft.maxTrain;
  if (draft.maxEval !== null) data.maxEval = draft.maxEval;
  return { definition: { name: draft.name.trim(), seed: draft.seed, model: draft.model, data, provider: draft.provider, threads: null, stages } };
}

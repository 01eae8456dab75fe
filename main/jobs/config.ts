// Checking job configs: each helper names the field and what it must be, in a sentence.
import type { Json, JsonObject } from '../../db/json.ts';

export function integer(raw: JsonObject, field: string, fallback: number | undefined, min = 0, max = Number.MAX_SAFE_INTEGER): number {
  const v = raw[field] ?? fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new Error(`${field} must be a whole number from ${min}${max === Number.MAX_SAFE_INTEGER ? ' up' : ` to ${max}`}, not ${show(v)}.`);
  }
  return v;
}

export function number(raw: JsonObject, field: string, fallback: number | undefined, min: number, max: number): number {
  const v = raw[field] ?? fallback;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) throw new Error(`${field} must be a number from ${min} to ${max}, not ${show(v)}.`);
  return v;
}

export function text(raw: JsonObject, field: string, fallback?: string): string {
  const v = raw[field] ?? fallback;
  if (typeof v !== 'string' || v.trim() === '') throw new Error(`${field} must be a non-empty text, not ${show(v)}.`);
  return v;
}

export function oneOf<T extends string>(raw: JsonObject, field: string, choices: readonly T[], fallback: T): T {
  const v = raw[field] ?? fallback;
  if (typeof v !== 'string' || !(choices as readonly string[]).includes(v)) throw new Error(`${field} must be one of ${choices.join(', ')}, not ${show(v)}.`);
  return v as T;
}

export function flag(raw: JsonObject, field: string, fallback: boolean): boolean {
  const v = raw[field] ?? fallback;
  if (typeof v !== 'boolean') throw new Error(`${field} must be true or false, not ${show(v)}.`);
  return v;
}

export function object(raw: JsonObject, field: string): JsonObject {
  const v = raw[field] ?? {};
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${field} must be an object, not ${show(v)}.`);
  return v;
}

function show(v: Json | undefined): string {
  return v === undefined ? 'missing' : JSON.stringify(v);
}

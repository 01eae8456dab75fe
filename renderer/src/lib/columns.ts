// Compare's columns: a model's answers, or a model's Best-of-N by a reward model (the same
// model may be both). The columns of a comparison are also the sides a blind vote can
// set against each other.
import type { BestOf, CompareColumn, ModelInfo, Params } from '../../../main/api/contract.ts';

export interface Column {
  modelId: number;
  bestOf: BestOf | null;
}

/** Tells columns apart (a select's value, a keyed list). */
export function columnKey(c: Column): string {
  return c.bestOf === null ? `${c.modelId}` : `${c.modelId}:best-of-${c.bestOf.n}:${c.bestOf.rewardModelId}`;
}

const nameOf = (models: readonly ModelInfo[], id: number): string => models.find((m) => m.id === id)?.name ?? `model #${id}`;

/** "sft", or "sft, best of 8 by rm" (as the studio names a revealed side). */
export function columnName(c: Column, models: readonly ModelInfo[]): string {
  return c.bestOf === null ? nameOf(models, c.modelId) : `${nameOf(models, c.modelId)}, best of ${c.bestOf.n} by ${nameOf(models, c.bestOf.rewardModelId)}`;
}

/** The column as compare.start takes it. */
export function startColumn(c: Column): CompareColumn {
  return c.bestOf === null ? { modelId: c.modelId } : { modelId: c.modelId, bestOf: { rewardModelId: c.bestOf.rewardModelId, n: c.bestOf.n } };
}

/** Two columns as the sides of compare.nextPair and compare.tally. */
export function pairParams(a: Column, b: Column): Params<'compare.nextPair'> {
  return {
    modelA: a.modelId, modelB: b.modelId,
    ...(a.bestOf === null ? {} : { bestOfA: { rewardModelId: a.bestOf.rewardModelId, n: a.bestOf.n } }),
    ...(b.bestOf === null ? {} : { bestOfB: { rewardModelId: b.bestOf.rewardModelId, n: b.bestOf.n } }),
  };
}

/** Each column once, in first-seen order. */
export function uniqueColumns(columns: readonly Column[]): Column[] {
  const seen = new Set<string>();
  return columns.filter((c) => {
    const key = columnKey(c);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

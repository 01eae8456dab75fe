// The embedded default model (pi_0 of the reproduction), shipped in models/default/. It
// is registered in the store once, so that it has an id like any imported model: its
// generations, judgments and the models trained from it (lineage) refer to it.
import { fileURLToPath } from 'node:url';
import type { StudioDatabase } from '../../db/database.ts';
import { ModelStore, type Model } from '../../db/models.ts';

export const DEFAULT_MODEL_DIR = fileURLToPath(new URL('../../models/default', import.meta.url));
const BUILTIN = 'default';

export const isBuiltinModel = (m: Model): boolean => m.config.builtin === BUILTIN;

/** The embedded model's id, registering it the first time. */
export function ensureBuiltinModel(db: StudioDatabase): number {
  const store = new ModelStore(db);
  const found = store.list().find(isBuiltinModel);
  if (found !== undefined) return found.id;
  return store.insert({ name: 'Default model (embedded)', kind: 'imported', family: 'gpt2', stage: 'base', config: { builtin: BUILTIN } }).id;
}

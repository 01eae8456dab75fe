// The studio's settings (data folder, forced execution provider, the memory budget of the
// models kept loaded for generation), kept in a small JSON file written atomically; without
// a file (tests, a throwaway database) they live in memory.
import { readFileSync } from 'node:fs';
import { totalmem } from 'node:os';
import { writeFileAtomic } from '../../native-models/runtime/atomic-file.ts';
import type { ProviderSetting, Settings } from './contract.ts';

const PROVIDERS: readonly ProviderSetting[] = ['auto', 'cpu', 'webgpu', 'cuda'];

/**
 * The default budget of the models kept loaded: a quarter of the machine's memory (on 16 GB,
 * two SmolLM2-135M at about 1.8 GB each), leaving the rest to training jobs and the system.
 */
export function defaultModelCacheBytes(): number {
  return Math.floor(totalmem() / 4);
}

export class SettingsFile {
  readonly file: string | null;
  private current: Settings;

  /** Reads `file` if it exists; what it lacks (or a damaged file) falls back to `defaults`
   *  (the models' budget to defaultModelCacheBytes when they leave it out). */
  constructor(file: string | null, defaults: Omit<Settings, 'modelCacheBytes'> & { modelCacheBytes?: number }) {
    this.file = file;
    this.current = { modelCacheBytes: defaultModelCacheBytes(), ...defaults };
    if (file === null) return;
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(file, 'utf8'));
    } catch {
      return; // no file yet, or unreadable: the defaults hold until the next save
    }
    if (typeof raw !== 'object' || raw === null) return;
    const r = raw as Record<string, unknown>;
    if (typeof r.dataFolder === 'string' && r.dataFolder !== '') this.current.dataFolder = r.dataFolder;
    if (PROVIDERS.includes(r.forcedProvider as ProviderSetting)) this.current.forcedProvider = r.forcedProvider as ProviderSetting;
    if (typeof r.modelCacheBytes === 'number' && Number.isSafeInteger(r.modelCacheBytes) && r.modelCacheBytes >= 0) this.current.modelCacheBytes = r.modelCacheBytes;
  }

  get(): Settings {
    return { ...this.current };
  }

  async set(patch: Partial<Settings>): Promise<Settings> {
    const next = { ...this.current, ...patch };
    if (this.file !== null) await writeFileAtomic(this.file, new TextEncoder().encode(`${JSON.stringify(next, null, 2)}\n`));
    this.current = next;
    return this.get();
  }
}

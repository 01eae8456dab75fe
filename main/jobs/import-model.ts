// Job kind `import-model`: checks a Hugging Face model folder completely (architecture,
// every tensor's name, dtype and shape: native-models/checkpoint) and copies it into the
// run's folder in the store, where it is registered as an imported model. A GGUF file is
// checked the same way and converted into such a folder (float32 weights, its tokenizer
// and chat template as Hugging Face files, gguf-source.json saying what it was). The copy is
// assembled under a temporary name and renamed when complete; the model's row points
// at it only once the run is done, so a crash or a cancel leaves no model and no files.
import type { Stats } from 'node:fs';
import { statSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import type { JsonObject } from '../../db/json.ts';
import { ModelStore } from '../../db/models.ts';
import Type from 'typebox';
import { text } from '../schema/fields.ts';
import { configSchema, parseConfig } from './config.ts';
import type { JobKind } from './kind.ts';

/** Where the copy goes inside the run's folder. */
export const MODEL_FOLDER = 'model';

export type ImportModelConfig = {
  /** Absolute path of the Hugging Face folder, or of a .gguf file. */
  dir: string;
  name: string;
};

const CONFIG = configSchema({ dir: text(), name: Type.Optional(text({ description: "default: the folder's or file's name" })) });

export const importModelKind: JobKind<ImportModelConfig> = {
  name: 'import-model',
  summary: 'check and copy a Hugging Face model folder (safetensors) or a GGUF file into the store',
  worker: new URL('./import-model.worker.ts', import.meta.url),
  resume: 'restart',
  pausable: false,

  parseConfig(raw: JsonObject): ImportModelConfig {
    const c = parseConfig('import-model', CONFIG, raw);
    const dir = resolve(c.dir);
    return { dir, name: c.name === undefined ? basename(dir).replace(/\.gguf$/i, '') : c.name.trim() };
  },

  device: () => 'io',

  check(_db, config) {
    let st: Stats | undefined;
    try {
      st = statSync(config.dir);
    } catch {
      st = undefined;
    }
    if (/\.gguf$/i.test(config.dir)) {
      if (st === undefined || !st.isFile()) throw new Error(`${config.dir} is not a file; give the path of a .gguf file, or the folder of a Hugging Face model.`);
    } else if (st === undefined || !st.isDirectory()) {
      throw new Error(`${config.dir} is not a folder; give the folder of a Hugging Face model (with config.json and safetensors weights) or a .gguf file.`);
    }
  },

  finish({ db, run }, config, result) {
    const model = new ModelStore(db).insert({
      name: config.name,
      kind: 'imported',
      family: String(result.family),
      stage: 'base',
      config: result.config as JsonObject,
      path: `runs/${run.id}/${MODEL_FOLDER}`,
    });
    return { ...result, modelId: model.id, name: model.name };
  },
};

/** The files of a Hugging Face folder worth keeping: config, weights, tokenizer. */
export function modelFiles(names: readonly string[], tokenizerFiles: readonly string[]): string[] {
  return names.filter((n) => n === 'config.json' || n === 'generation_config.json' || n === 'model.safetensors.index.json' || n.endsWith('.safetensors') || tokenizerFiles.includes(n)).sort();
}

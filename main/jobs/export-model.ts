// Job kind `export-model`: writes a model folder out as a Hugging Face folder (another
// dtype) or as a GGUF file (F32, F16 or Q8_0) for llama.cpp, LM Studio and Ollama. The
// weights are read and checked first; the output is assembled under a temporary name and
// renamed at the end, so a failed or cancelled export leaves nothing at `out`. Models the
// studio trains with LoRA are saved with their adapters merged, so every export is a
// plain model.
import { statSync, readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import type { JsonObject } from '../../db/json.ts';
import Type from 'typebox';
import { oneOf, text } from '../schema/fields.ts';
import { configSchema, parseConfig } from './config.ts';
import type { JobKind } from './kind.ts';

export const EXPORT_FORMATS = ['hf', 'gguf'] as const;
/** hf: the stored dtype of the safetensors; gguf: the matrices' type (vectors stay F32). */
export const EXPORT_TYPES = ['f32', 'f16', 'bf16', 'q8_0'] as const;

export type ExportModelConfig = {
  /** The model's folder (absolute). */
  dir: string;
  /** The file (gguf) or folder (hf) to write (absolute). */
  out: string;
  format: (typeof EXPORT_FORMATS)[number];
  type: (typeof EXPORT_TYPES)[number];
  /** The model's name (general.name of a GGUF). */
  name: string;
};

const CONFIG = configSchema({
  dir: text(),
  out: text(),
  format: oneOf([...EXPORT_FORMATS], { default: 'hf' }),
  type: Type.Optional(oneOf([...EXPORT_TYPES], { description: 'default: f32 for hf, f16 for gguf' })),
  name: text({ default: 'model' }),
});

export const exportModelKind: JobKind<ExportModelConfig> = {
  name: 'export-model',
  summary: 'write a model as a Hugging Face folder or a GGUF file',
  worker: new URL('./export-model.worker.ts', import.meta.url),
  resume: 'restart',
  pausable: false,

  parseConfig(raw: JsonObject): ExportModelConfig {
    const c = parseConfig('export-model', CONFIG, raw);
    const format = c.format, type = c.type ?? (format === 'gguf' ? 'f16' : 'f32');
    if (format === 'gguf' && type === 'bf16') throw new Error('type must be f32, f16 or q8_0 for a GGUF file, not "bf16".');
    if (format === 'hf' && type === 'q8_0') throw new Error('type must be f32, f16 or bf16 for a Hugging Face folder, not "q8_0" (GGUF files take q8_0).');
    return { dir: resolve(c.dir), out: resolve(c.out), format, type, name: c.name };
  },

  device: () => 'io',

  check(_db, config) {
    const st = statOrUndefined(config.out);
    if (config.format === 'gguf') {
      if (!/\.gguf$/i.test(config.out)) throw new Error(`${config.out} does not end in .gguf; name the GGUF file to write (for example model.gguf).`);
      if (st !== undefined) throw new Error(`Cannot export to ${config.out}: it exists; choose a new file name.`);
    } else if (st !== undefined && !(st.isDirectory() && readdirSync(config.out).length === 0)) {
      throw new Error(`Cannot export to ${config.out}: it exists and is not an empty folder; choose a new folder.`);
    }
  },
};

function statOrUndefined(path: string) {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

// Exports a model as a Hugging Face folder (model.safetensors, config.json, the source's
// tokenizer files, generation_config.json) that transformers loads, and as an
// inference-only ONNX file (tokens [B, T] -> logits [B, T, V]) with the weights inside.

import { copyFile, mkdir, readdir, rename, rm, rmdir, stat, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import * as T from '../ir/index.ts';
import type { ModelSpec } from '../models/index.ts';
import { writeFileAtomic } from '../runtime/atomic-file.ts';
import { fromFloat32, writeSafetensors, type NamedTensor } from '../runtime/safetensors.ts';

export interface HfExportOptions<C> extends ModelSpec<C> {
  /** float32 weights by Hugging Face name (LoRA adapters merged first: models/lora.ts mergeLora). */
  weights: ReadonlyMap<string, Float32Array>;
  /** The source config.json: its other keys (token ids, names) are kept. */
  baseConfig?: Record<string, unknown>;
  generationConfig?: Record<string, unknown>;
  /** A folder whose tokenizer files are copied along. */
  tokenizerFrom?: string;
  /** Stored dtype (default F32). */
  dtype?: 'F32' | 'F16' | 'BF16';
}

/** Tokenizer and chat-template files a Hugging Face folder may carry. */
export const TOKENIZER_FILES = [
  'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'added_tokens.json',
  'vocab.json', 'merges.txt', 'tokenizer.model', 'chat_template.jinja', 'chat_template.json',
];

/** config.json keys that the family writes itself (a stale copy from the source would contradict them). */
const OWNED_KEYS = ['architectures', 'model_type', 'rope_parameters', 'rope_scaling', 'rope_theta', 'dtype', 'torch_dtype', 'transformers_version', 'head_dim'];

const TORCH_DTYPE = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' } as const;

/** Checks that `weights` are exactly the family's parameters, with their shapes. */
export function checkWeights<C>(spec: ModelSpec<C>, weights: ReadonlyMap<string, Float32Array>, what: string): Map<string, number[]> {
  const shapes = spec.family.paramShapes(spec.config);
  for (const [name, data] of weights) {
    const shape = shapes.get(name);
    if (!shape) {
      const hint = /\.lora_[AB]$/.test(name) ? '; merge the LoRA adapters into the base weights first (mergeLora)' : '';
      throw new Error(`Cannot ${what}: tensor "${name}" is not a parameter of this ${spec.family.name} model${hint}.`);
    }
    const n = shape.reduce((a, b) => a * b, 1);
    if (data.length !== n) throw new Error(`Cannot ${what}: tensor "${name}" has ${data.length} values, its shape [${shape.join(', ')}] holds ${n}.`);
  }
  const missing = [...shapes.keys()].find((n) => !weights.has(n));
  if (missing) throw new Error(`Cannot ${what}: tensor "${missing}" is missing from the weights.`);
  return shapes;
}

async function isEmptyOrAbsent(dir: string): Promise<boolean> {
  const st = await stat(dir).catch(() => undefined);
  if (!st) return true;
  return st.isDirectory() && (await readdir(dir)).length === 0;
}

/**
 * Writes a Hugging Face model folder at `dir` (which must not exist or be empty). The
 * folder is assembled under a temporary name beside it and renamed at the end, so a
 * failure leaves nothing behind.
 */
export async function exportHfModel<C>(dir: string, o: HfExportOptions<C>): Promise<void> {
  const shapes = checkWeights(o, o.weights, `export to ${dir}`);
  if (!(await isEmptyOrAbsent(dir))) throw new Error(`Cannot export to ${dir}: it exists and is not an empty folder; choose a new folder.`);
  const dtype = o.dtype ?? 'F32';
  const config = { ...Object.fromEntries(Object.entries(o.baseConfig ?? {}).filter(([k]) => !OWNED_KEYS.includes(k))), ...o.family.toHfConfig(o.config), torch_dtype: TORCH_DTYPE[dtype] };

  const temp = join(dirname(dir), `.${basename(dir)}.${randomBytes(6).toString('hex')}.tmp`);
  await mkdir(temp, { recursive: true });
  try {
    const tensors = new Map<string, NamedTensor>();
    for (const [name, shape] of shapes) tensors.set(name, fromFloat32(o.weights.get(name)!, shape, dtype));
    await writeSafetensors(join(temp, 'model.safetensors'), tensors, { format: 'pt' });
    await writeFile(join(temp, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
    if (o.generationConfig) await writeFile(join(temp, 'generation_config.json'), `${JSON.stringify(o.generationConfig, null, 2)}\n`);
    if (o.tokenizerFrom) {
      for (const f of TOKENIZER_FILES) {
        const src = join(o.tokenizerFrom, f);
        if (await stat(src).then((s) => s.isFile(), () => false)) await copyFile(src, join(temp, f));
      }
    }
    await rmdir(dir).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
    await rename(temp, dir);
  } catch (err) {
    await rm(temp, { recursive: true, force: true });
    throw err;
  }
}

export interface OnnxExportOptions<C> extends ModelSpec<C> {
  weights: ReadonlyMap<string, Float32Array>;
  /** Weights above this many bytes in total go to an external data file (default 1.8 GB, under protobuf's 2 GB). */
  externalDataAbove?: number;
}

/**
 * Writes an inference-only ONNX model: input `tokens` int64 [B, T], output `logits`
 * [B, T, V], the weights as initializers. Over `externalDataAbove` bytes of weights they
 * go to `<file>.data` beside it (ONNX external data; load the model by its path).
 * Returns the external data file's path when one was written.
 */
export async function exportInferenceOnnx<C>(path: string, o: OnnxExportOptions<C>): Promise<{ externalData?: string }> {
  const shapes = checkWeights(o, o.weights, `export ${path}`);
  const params = new Map([...shapes].map(([name, shape]) => [name, T.param(name, shape)]));
  const tokens = T.input('tokens', 'int64', ['B', 'T']);
  const { logits } = o.family.forward(o.config, params, { tokens });
  const initializers = new Map([...params].map(([name, v]) => [v, o.weights.get(name)!] as const));
  const total = [...o.weights.values()].reduce((n, w) => n + w.byteLength, 0);
  const location = `${basename(path)}.data`;
  const external = total > (o.externalDataAbove ?? 1.8e9);
  const model = T.emitOnnx({ outputs: { logits }, initializers, inputs: [tokens], name: `${o.family.name}_inference`, ...(external ? { externalData: { location, minBytes: 1024 } } : {}) });
  if (external) await writeFileAtomic(join(dirname(path), location), model.externalData ?? []);
  await writeFileAtomic(path, model.bytes);
  return external ? { externalData: join(dirname(path), location) } : {};
}

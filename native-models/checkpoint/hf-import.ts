// Imports a Hugging Face model folder: config.json, the weights (model.safetensors, or
// shards listed in model.safetensors.index.json; F32, F16, BF16 or F64, converted to
// float32) and generation_config.json when present.
//
// Everything is validated before anything is returned: an unsupported architecture, a
// missing, extra or misshapen tensor, or a corrupt or truncated file is refused with one
// sentence naming the file and the tensor. There is no half-imported model.
//
// For inference, mapHfModel validates the same way from the files' headers alone and
// leaves float32 weights where they are: ONNX Runtime maps them (external data).

import { readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { familyOf, type ModelSpec } from '../models/index.ts';
import { readSafetensors, toFloat32, type SafeDType } from '../runtime/safetensors.ts';
import { indexSafetensors, type MappedWeights } from '../runtime/safetensors-index.ts';

export interface ImportedModel<C = unknown> extends ModelSpec<C> {
  /** The folder it came from. */
  dir: string;
  /** config.json as read (its other keys, such as token ids, are kept on export). */
  configJson: Record<string, unknown>;
  /** float32 weights by Hugging Face name, in checkpoint layout; tied weights once. */
  weights: Map<string, Float32Array>;
  /** generation_config.json, parsed, when the folder has one. */
  generationConfig?: Record<string, unknown>;
  /** The dtype the weights were stored in (several when mixed). */
  storedDtypes: string[];
}

/** The prefix of the base model's parameters, which some checkpoints (saved from GPT2Model, LlamaModel) lack. */
const BASE_PREFIX: Readonly<Record<string, string>> = { gpt2: 'transformer.', llama: 'model.' };

/**
 * Tensors that checkpoints carry but that are not parameters: GPT-2's causal-mask
 * buffers and old Llama checkpoints' rotary frequencies (both recomputed in the graph).
 */
const KNOWN_BUFFERS: Readonly<Record<string, RegExp>> = {
  gpt2: /^transformer\.h\.\d+\.attn\.(bias|masked_bias)$/,
  llama: /^model\.layers\.\d+\.self_attn\.rotary_emb\.inv_freq$/,
};

const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16', 'F64']);

async function readJson(path: string, what: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new Error(`Could not read ${path} (${what}): ${(err as Error).message}`, { cause: err });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`${path} is not valid JSON (${(err as Error).message}); the ${what} is corrupt.`, { cause: err });
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new Error(`${path} is not a JSON object; the ${what} is corrupt.`);
  return json as Record<string, unknown>;
}

const exists = (path: string): Promise<boolean> => stat(path).then(() => true, () => false);

/** The weight files and, for sharded checkpoints, which file holds each tensor. */
async function weightFiles(dir: string): Promise<{ files: string[]; index?: Map<string, string>; indexPath?: string }> {
  const indexPath = join(dir, 'model.safetensors.index.json');
  if (await exists(indexPath)) {
    const index = await readJson(indexPath, 'shard index');
    const map = index.weight_map;
    if (typeof map !== 'object' || map === null || Array.isArray(map)) throw new Error(`${indexPath} has no "weight_map" object; the shard index is corrupt.`);
    const entries = Object.entries(map as Record<string, unknown>);
    for (const [name, file] of entries) {
      if (typeof file !== 'string' || file.includes('/') || file.includes('\\')) throw new Error(`${indexPath} maps tensor "${name}" to ${JSON.stringify(file)}, which is not a file name in the folder.`);
    }
    const byName = new Map(entries as [string, string][]);
    return { files: [...new Set(byName.values())].sort(), index: byName, indexPath };
  }
  if (await exists(join(dir, 'model.safetensors'))) return { files: ['model.safetensors'] };
  const bin = (await exists(join(dir, 'pytorch_model.bin'))) || (await exists(join(dir, 'pytorch_model.bin.index.json')));
  throw new Error(bin
    ? `${dir} holds PyTorch pickle weights (pytorch_model.bin), which AfD Studio does not load (they can run code); convert the model to safetensors first (save_pretrained(..., safe_serialization=True)).`
    : `${dir} has no model.safetensors and no model.safetensors.index.json; it is not a Hugging Face model folder with safetensors weights.`);
}

type Described<T> = ModelSpec & { configJson: Record<string, unknown>; generationConfig?: Record<string, unknown>; tensors: Map<string, { tensor: T; file: string }>; storedDtypes: string[] };

/**
 * Validates a folder: config.json, and the weight files' tensors (as `readTensors` gives
 * them, with or without their data) against the parameters its config implies. Returns
 * each parameter's tensor by its model name.
 */
async function describeFolder<T extends { dtype: SafeDType; shape: number[] }>(dir: string, readTensors: (path: string) => Promise<Map<string, T>>): Promise<Described<T>> {
  const configPath = join(dir, 'config.json');
  if (!(await exists(configPath))) throw new Error(`${dir} has no config.json; a Hugging Face model folder needs one.`);
  const configJson = await readJson(configPath, 'model configuration');
  let spec: ModelSpec;
  try {
    spec = familyOf(configJson);
  } catch (err) {
    throw new Error(`${configPath}: ${(err as Error).message}`, { cause: err });
  }
  const { family, config } = spec;
  const expected = family.paramShapes(config);
  const tied = !expected.has('lm_head.weight');

  // Every tensor of every file, with the file it came from.
  const { files, index, indexPath } = await weightFiles(dir);
  const found = new Map<string, { tensor: T; file: string }>();
  for (const file of files) {
    const path = join(dir, file);
    if (!(await exists(path))) throw new Error(`${indexPath} lists ${file}, which is missing from ${dir}.`);
    for (const [name, tensor] of await readTensors(path)) {
      const other = found.get(name);
      if (other) throw new Error(`tensor "${name}" appears in both ${join(dir, other.file)} and ${path}.`);
      found.set(name, { tensor, file: path });
    }
  }
  if (index) {
    for (const [name, file] of index) {
      const got = found.get(name);
      if (!got || got.file !== join(dir, file)) throw new Error(`${indexPath} says tensor "${name}" is in ${file}, but that file has no such tensor.`);
    }
  }

  // Checkpoints saved from the base model (GPT2Model, LlamaModel) lack its prefix.
  const prefix = BASE_PREFIX[family.name];
  const named = new Map<string, { tensor: T; file: string }>();
  const addPrefix = ![...found.keys()].some((n) => n.startsWith(prefix));
  for (const [name, t] of found) named.set(addPrefix && name !== 'lm_head.weight' ? prefix + name : name, t);

  const buffers = KNOWN_BUFFERS[family.name];
  const tensors = new Map<string, { tensor: T; file: string }>();
  const dtypes = new Set<string>();
  for (const [name, { tensor, file }] of named) {
    const want = expected.get(name);
    if (!want) {
      if (buffers.test(name)) continue;
      // A tied checkpoint may still store the head; it is the embedding again.
      if (tied && name === 'lm_head.weight') continue;
      throw new Error(`${file} has tensor "${name}", which a ${family.name} model with this config.json does not have (is config.json from another model?).`);
    }
    if (!FLOAT_DTYPES.has(tensor.dtype)) throw new Error(`tensor "${name}" in ${file} is ${tensor.dtype}; model weights must be F32, F16, BF16 or F64.`);
    if (tensor.shape.length !== want.length || tensor.shape.some((d, i) => d !== want[i])) {
      throw new Error(`tensor "${name}" in ${file} has shape [${tensor.shape.join(', ')}], but config.json implies [${want.join(', ')}].`);
    }
    dtypes.add(tensor.dtype);
    tensors.set(name, { tensor, file });
  }
  const missing = [...expected.keys()].filter((n) => !tensors.has(n));
  if (missing.length > 0) {
    const more = missing.length > 1 ? ` (and ${missing.length - 1} more)` : '';
    throw new Error(`${dir} lacks tensor "${missing[0]}"${more}, which a ${family.name} model with this config.json needs; the checkpoint is incomplete or its config.json describes another model.`);
  }

  const genPath = join(dir, 'generation_config.json');
  const generationConfig = (await exists(genPath)) ? await readJson(genPath, 'generation configuration') : undefined;
  return { family, config, configJson, tensors, storedDtypes: [...dtypes].sort(), ...(generationConfig ? { generationConfig } : {}) };
}

/** Reads and validates a Hugging Face model folder; throws a sentence on the first problem. */
export async function importHfModel(dir: string): Promise<ImportedModel> {
  const { tensors, ...rest } = await describeFolder(dir, async (path) => (await readSafetensors(path)).tensors);
  // Each tensor was read into its own buffer, so an F32 view copies nothing.
  const weights = new Map([...tensors].map(([name, { tensor }]) => [name, toFloat32(tensor)] as const));
  return { ...rest, dir, weights };
}

/** A model folder for inference: like ImportedModel, but float32 weights may stay in their files. */
export interface MappedModel<C = unknown> extends Omit<ImportedModel<C>, 'weights'> {
  /**
   * Where each parameter's float32 bytes lie in the folder's files, when every weight is
   * stored as F32; otherwise the weights read and converted, as importHfModel gives them.
   */
  weights: MappedWeights | Map<string, Float32Array>;
}

/**
 * Validates a Hugging Face model folder as importHfModel does, reading only the
 * safetensors headers when every weight is F32: those files then serve as the weights
 * (ONNX external data), and no tensor byte is read here.
 */
export async function mapHfModel(dir: string): Promise<MappedModel> {
  const { tensors, ...rest } = await describeFolder(dir, async (path) => (await indexSafetensors(path)).tensors);
  if (rest.storedDtypes.some((d) => d !== 'F32')) return importHfModel(dir);
  const files = [...new Set([...tensors.values()].map((t) => t.file))].sort();
  const identity = (await Promise.all(files.map(async (f) => {
    const st = await stat(f);
    return `${basename(f)}:${st.size}:${st.mtimeMs}`;
  }))).join(',');
  const mapped = new Map([...tensors].map(([name, { tensor, file }]) => [name, { location: basename(file), offset: tensor.offset, length: tensor.length }] as const));
  return { ...rest, dir, weights: { dir, identity, tensors: mapped } };
}

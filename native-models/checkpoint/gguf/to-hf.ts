// A GGUF file as a Hugging Face model folder (config.json, model.safetensors in float32,
// tokenizer.json, tokenizer_config.json, generation_config.json), which every part of the
// engine already reads. Converting once, into a cache folder or the store, keeps one
// loading path for both formats; the folder also records where it came from
// (gguf-source.json: architecture, name, the quantization of its weights).
//
// Everything is validated before the folder appears: the tensors the metadata implies,
// their shapes, and the tokenizer. The folder is assembled under a temporary name and
// renamed at the end, so a bad file leaves nothing behind.

import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { familyOf } from '../../models/index.ts';
import { writeSafetensorsLazy, type LazyTensor } from '../../runtime/safetensors.ts';
import { ggufArchitecture, GgufMeta, ggufTensorName, hfConfigFromGguf, layoutChange, toHfLayout, type GgufArchName } from './architecture.ts';
import { ggmlTypeName, openGguf, readGgufTensor, type GgufFile, type GgufTensorInfo } from './reader.ts';
import { hfTokenizerFromGguf } from './tokenizer.ts';

/** What gguf-source.json records of the file a folder was converted from. */
export interface GgufSource {
  file: string;
  bytes: number;
  architecture: GgufArchName;
  name?: string;
  /** The type most of the weights (by count of values) were stored in: 'Q4_K', 'F16'... */
  quantization: string;
  /** Tensor count by stored type. */
  tensorTypes: Record<string, number>;
}

export const GGUF_SOURCE_FILE = 'gguf-source.json';

/** Changing the conversion (names, layouts, tokenizer) makes old cache folders stale. */
const CONVERTER_VERSION = 1;

/** Whether `path` names a GGUF file (by its extension; the reader checks the magic). */
export const isGgufPath = (path: string): boolean => /\.gguf$/i.test(path);

/** The type that holds most of the model's values. */
function dominantType(tensors: readonly GgufTensorInfo[]): string {
  const values = new Map<string, number>();
  for (const t of tensors) values.set(ggmlTypeName(t.type), (values.get(ggmlTypeName(t.type)) ?? 0) + t.shape.reduce((a, b) => a * b, 1));
  return [...values].sort((a, b) => b[1] - a[1])[0]?.[0] ?? 'none';
}

const equal = (a: Float32Array, b: Float32Array): boolean => a.length === b.length && a.every((v, i) => v === b[i]);

/**
 * Reads and checks the whole model description of a GGUF (everything but the weights'
 * values): config.json, each Hugging Face parameter's source tensor and layout change,
 * and the tokenizer files.
 */
async function plan(file: GgufFile) {
  const what = file.path;
  const meta = new GgufMeta(file.metadata, what);
  const arch = ggufArchitecture(meta);
  const byName = new Map(file.tensors.map((t) => [t.name, t]));
  const shapes = new Map(file.tensors.map((t) => [t.name, t.shape]));
  const ropeFreqs = byName.get('rope_freqs.weight');
  if (ropeFreqs) shapes.delete('rope_freqs.weight');
  // llama.cpp's GPT-2 converter stores the (tied) head as a copy of the embedding.
  const output = byName.get('output.weight'), embd = byName.get('token_embd.weight');
  if (arch === 'gpt2' && output && embd && equal(await readGgufTensor(file, output), await readGgufTensor(file, embd))) shapes.delete('output.weight');

  const configJson = hfConfigFromGguf(file.metadata, shapes, what, ropeFreqs ? await readGgufTensor(file, ropeFreqs) : undefined);
  let spec;
  try {
    spec = familyOf(configJson);
  } catch (err) {
    throw new Error(`${what}: ${(err as Error).message}`, { cause: err });
  }
  const heads = Number(configJson.num_attention_heads ?? configJson.n_head), kvHeads = Number(configJson.num_key_value_heads ?? heads);
  const params: { hf: string; hfShape: number[]; source: GgufTensorInfo }[] = [];
  const used = new Set<string>();
  for (const [hf, hfShape] of spec.family.paramShapes(spec.config)) {
    const gguf = ggufTensorName(arch, hf);
    const source = gguf === undefined ? undefined : byName.get(gguf);
    if (!gguf || !source) throw new Error(`${what} lacks tensor ${gguf ?? hf}, which a ${arch} model with its metadata needs; the file is incomplete.`);
    const change = layoutChange(arch, hf, heads, kvHeads);
    const stored = change.kind === 'transpose' ? [hfShape[1], hfShape[0]] : hfShape;
    if (source.shape.length !== stored.length || source.shape.some((d, i) => d !== stored[i])) {
      throw new Error(`${what}: tensor ${gguf} has shape [${source.shape.join(', ')}], but the metadata implies [${stored.join(', ')}].`);
    }
    params.push({ hf, hfShape, source });
    used.add(gguf);
  }
  const extra = [...shapes.keys()].find((n) => !used.has(n));
  if (extra) throw new Error(`${what} has tensor ${extra}, which a ${arch} model with its metadata does not have; AfD Studio cannot place it.`);

  const { tokenizerJson, tokenizerConfig } = hfTokenizerFromGguf(file.metadata, what);
  const generationConfig: Record<string, unknown> = {};
  for (const k of ['bos_token_id', 'eos_token_id', 'pad_token_id']) if (configJson[k] !== undefined) generationConfig[k] = configJson[k];

  const source: GgufSource = {
    file: basename(file.path), bytes: file.fileSize, architecture: arch,
    ...(meta.has('general.name') ? { name: meta.str('general.name') } : {}),
    quantization: dominantType(file.tensors),
    tensorTypes: Object.fromEntries([...new Set(file.tensors.map((t) => ggmlTypeName(t.type)))].sort().map((ty) => [ty, file.tensors.filter((t) => ggmlTypeName(t.type) === ty).length])),
  };
  return { arch, configJson, params, heads, kvHeads, tokenizerJson, tokenizerConfig, generationConfig, source };
}

/**
 * Converts the GGUF at `path` into a Hugging Face folder at `outDir` (absent or empty).
 * Tensors are dequantized one at a time as the safetensors file is written.
 * `onProgress(done, total)` counts tensors; an aborted `signal` stops between tensors
 * (rejecting with its reason) and leaves nothing behind.
 */
export async function convertGgufToHf(path: string, outDir: string, onProgress?: (done: number, total: number) => void, signal?: AbortSignal): Promise<GgufSource> {
  const file = await openGguf(path);
  const p = await plan(file);
  const temp = join(dirname(outDir), `.${basename(outDir)}.${randomBytes(6).toString('hex')}.tmp`);
  await mkdir(temp, { recursive: true });
  try {
    let done = 0;
    const tensors = new Map<string, LazyTensor>();
    for (const { hf, hfShape, source } of p.params) {
      tensors.set(hf, {
        dtype: 'F32', shape: hfShape,
        data: async () => {
          signal?.throwIfAborted();
          const values = toHfLayout(layoutChange(p.arch, hf, p.heads, p.kvHeads), await readGgufTensor(file, source), hfShape);
          onProgress?.(++done, p.params.length);
          return new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
        },
      });
    }
    await writeSafetensorsLazy(join(temp, 'model.safetensors'), tensors, { format: 'pt' });
    const json = (o: unknown): string => `${JSON.stringify(o, null, 2)}\n`;
    await writeFile(join(temp, 'config.json'), json(p.configJson));
    await writeFile(join(temp, 'generation_config.json'), json(p.generationConfig));
    await writeFile(join(temp, 'tokenizer.json'), JSON.stringify(p.tokenizerJson));
    await writeFile(join(temp, 'tokenizer_config.json'), json(p.tokenizerConfig));
    await writeFile(join(temp, GGUF_SOURCE_FILE), json(p.source));
    await rename(temp, outDir).catch(async (err: NodeJS.ErrnoException) => {
      // Another process converted the same file first (the cache): keep its folder.
      const complete = await stat(join(outDir, GGUF_SOURCE_FILE)).then(() => true, () => false);
      if (!complete || (err.code !== 'ENOTEMPTY' && err.code !== 'EEXIST')) throw err;
      await rm(temp, { recursive: true, force: true });
    });
  } catch (err) {
    await rm(temp, { recursive: true, force: true });
    throw err;
  }
  return p.source;
}

/** The folder converted GGUFs are cached in: $AFD_MODEL_CACHE, else ~/.cache/afd-studio/models. */
export function modelCacheRoot(): string {
  return process.env.AFD_MODEL_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'afd-studio', 'models');
}

/** Where the model cache keeps a GGUF file's conversion, keyed by its path, size and modification time. */
async function cacheFolder(path: string): Promise<{ real: string; dir: string }> {
  const real = await realpath(path).catch(() => {
    throw new Error(`${path} does not exist; give the path of a .gguf file.`);
  });
  const st = await stat(real);
  const key = createHash('sha256').update(`${CONVERTER_VERSION}\0${real}\0${st.size}\0${st.mtimeMs}`).digest('hex').slice(0, 16);
  return { real, dir: join(modelCacheRoot(), 'converted', `${basename(real).replace(/\.gguf$/i, '')}-${key}`) };
}

const converted = (dir: string): Promise<boolean> => readFile(join(dir, GGUF_SOURCE_FILE), 'utf8').then(() => true, () => false);

/** The cached conversion of a GGUF file when there is one, without converting it. */
export async function cachedGgufFolder(path: string): Promise<string | null> {
  const { dir } = await cacheFolder(path);
  return (await converted(dir)) ? dir : null;
}

/**
 * The Hugging Face folder of a GGUF file, converted on first use into the model cache and
 * reused while the file is unchanged (same path, size and modification time).
 */
export async function ggufModelFolder(path: string, onProgress?: (done: number, total: number) => void): Promise<string> {
  const { real, dir } = await cacheFolder(path);
  if (await converted(dir)) return dir;
  await mkdir(dirname(dir), { recursive: true });
  await convertGgufToHf(real, dir, onProgress);
  return dir;
}

/** A model folder for `source`: the folder itself, or a GGUF file's cached conversion. */
export async function modelFolder(source: string, onProgress?: (done: number, total: number) => void): Promise<string> {
  return isGgufPath(source) ? ggufModelFolder(source, onProgress) : source;
}

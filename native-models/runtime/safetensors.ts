// The safetensors format: an 8-byte little-endian header length, a JSON header
// ({ name: { dtype, shape, data_offsets } } plus an optional "__metadata__" string map,
// space-padded to a multiple of 8 bytes), then the packed little-endian tensor data.
// The host is assumed little-endian (every platform Node and ORT ship for is).
import { open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { writeFileAtomic } from './atomic-file.ts';
import { bf16ArrayToF32, f16ArrayToF32, f32ArrayToBf16, f32ArrayToF16 } from './float16.ts';

export type SafeDType = 'F32' | 'F64' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I8' | 'U8' | 'BOOL';
/** One tensor: raw little-endian bytes, row-major. */
export type NamedTensor = { dtype: SafeDType; shape: number[]; data: Uint8Array };
export type Safetensors = { tensors: Map<string, NamedTensor>; metadata: Record<string, string> };
/** What the writers take: a Map or a plain record of tensors. */
export type TensorSet = ReadonlyMap<string, NamedTensor> | Readonly<Record<string, NamedTensor>>;

export const DTYPE_BYTES: Readonly<Record<SafeDType, number>> = {
  F64: 8, I64: 8, F32: 4, I32: 4, F16: 2, BF16: 2, I8: 1, U8: 1, BOOL: 1,
};
// The reference (Rust) writer puts higher ranks first, then sorts by name; we follow it
// so that our files are byte-identical to Python's.
const WRITE_RANK: Readonly<Record<SafeDType, number>> = {
  BOOL: 0, U8: 1, I8: 2, F16: 3, BF16: 4, I32: 5, F32: 6, F64: 7, I64: 8,
};
const MAX_HEADER_BYTES = 100_000_000; // the reference reader's limit

type Entry = { name: string; dtype: SafeDType; shape: number[]; begin: number; end: number };

// ---------------------------------------------------------------- reading

/**
 * Reads a safetensors file (tensor by tensor, never the whole file into one buffer) or
 * parses an in-memory one (tensors are then views into `source`). `name` labels errors.
 */
export async function readSafetensors(source: string | Uint8Array, name?: string): Promise<Safetensors> {
  if (typeof source !== 'string') return parseSafetensors(source, name);
  const file = name ?? source;
  let handle: FileHandle;
  try {
    handle = await open(source, 'r');
  } catch (err) {
    throw new Error(`Could not open ${file}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const size = (await handle.stat()).size;
    const headerLength = checkPrefix(await readAt(handle, 0, Math.min(8, size), file), size, file);
    const dataStart = 8 + headerLength;
    const { metadata, entries } = parseHeader(await readAt(handle, 8, headerLength, file), size - dataStart, file);
    const tensors = new Map<string, NamedTensor>();
    for (const e of entries) {
      tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data: await readAt(handle, dataStart + e.begin, e.end - e.begin, file) });
    }
    return { tensors, metadata };
  } finally {
    await handle.close();
  }
}

/** Parses safetensors bytes; the tensors' data are views into `bytes`, not copies. */
export function parseSafetensors(bytes: Uint8Array, name = 'the safetensors data'): Safetensors {
  const headerLength = checkPrefix(bytes.subarray(0, 8), bytes.byteLength, name);
  const dataStart = 8 + headerLength;
  const { metadata, entries } = parseHeader(bytes.subarray(8, dataStart), bytes.byteLength - dataStart, name);
  const tensors = new Map<string, NamedTensor>();
  for (const e of entries) {
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data: bytes.subarray(dataStart + e.begin, dataStart + e.end) });
  }
  return { tensors, metadata };
}

async function readAt(handle: FileHandle, position: number, length: number, file: string): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  for (let done = 0; done < length;) {
    const { bytesRead } = await handle.read(out, done, length - done, position + done);
    if (bytesRead === 0) throw new Error(`${file} ended early while being read (was it changed meanwhile?).`);
    done += bytesRead;
  }
  return out;
}

/** Checks the length prefix against the file size; returns the header length. */
function checkPrefix(prefix: Uint8Array, size: number, file: string): number {
  if (size < 8) {
    throw new Error(`${file} is not a safetensors file: it is ${size} bytes long, shorter than the 8-byte header length that starts the format.`);
  }
  const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(size - 8)) {
    throw new Error(`${file} is truncated or not a safetensors file: its header length says ${n} bytes, but only ${size - 8} bytes follow.`);
  }
  if (n > MAX_HEADER_BYTES) {
    throw new Error(`${file} is not a usable safetensors file: its header is ${n} bytes, over the format's limit of ${MAX_HEADER_BYTES}.`);
  }
  return Number(n);
}

function parseHeader(json: Uint8Array, dataLength: number, file: string): { metadata: Record<string, string>; entries: Entry[] } {
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(json));
  } catch (err) {
    throw new Error(`${file} is corrupt or not a safetensors file: its header is not valid JSON (${(err as Error).message}).`);
  }
  if (!isObject(header)) throw new Error(`${file} is corrupt or not a safetensors file: its header is not a JSON object.`);
  const metadata: Record<string, string> = {};
  const entries: Entry[] = [];
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (!isObject(info) || !Object.values(info).every((v) => typeof v === 'string')) {
        throw new Error(`${file} is corrupt: its __metadata__ is not a map of strings.`);
      }
      Object.assign(metadata, info);
      continue;
    }
    const where = `tensor "${name}" in ${file}`;
    if (!isObject(info)) throw new Error(`${where} is not described by an object in the header.`);
    const { dtype, shape, data_offsets: offsets } = info;
    if (typeof dtype !== 'string' || !Object.hasOwn(DTYPE_BYTES, dtype)) {
      throw new Error(`${where} has dtype ${JSON.stringify(dtype)}, which AfD Studio cannot read (supported: ${Object.keys(DTYPE_BYTES).join(', ')}).`);
    }
    if (!isShape(shape)) throw new Error(`${where} has an invalid shape ${JSON.stringify(shape)}.`);
    if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount) || offsets[0] > offsets[1]) {
      throw new Error(`${where} has invalid data_offsets ${JSON.stringify(offsets)}.`);
    }
    const [begin, end] = offsets as [number, number];
    if (end > dataLength) {
      throw new Error(`${where} has data_offsets [${begin}, ${end}] beyond the ${dataLength} bytes of data in the file (the file is truncated or corrupt).`);
    }
    const needed = byteSize(dtype as SafeDType, shape);
    if (needed !== end - begin) {
      throw new Error(`${where} has shape [${shape.join(', ')}] of ${dtype}, which needs ${needed} bytes, but its data_offsets [${begin}, ${end}] span ${end - begin}.`);
    }
    entries.push({ name, dtype: dtype as SafeDType, shape, begin, end });
  }
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let last: Entry | undefined; // the non-empty tensor reaching furthest so far
  for (const e of entries) {
    if (e.begin === e.end) continue;
    if (last && e.begin < last.end) {
      throw new Error(`tensors "${last.name}" and "${e.name}" in ${file} overlap (data_offsets [${last.begin}, ${last.end}] and [${e.begin}, ${e.end}]); the file is corrupt.`);
    }
    if (!last || e.end > last.end) last = e;
  }
  return { metadata, entries };
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
function isCount(v: unknown): v is number {
  return Number.isSafeInteger(v) && (v as number) >= 0;
}
function isShape(v: unknown): v is number[] {
  return Array.isArray(v) && v.every(isCount);
}
function byteSize(dtype: SafeDType, shape: readonly number[]): number {
  return shape.reduce((n, d) => n * d, DTYPE_BYTES[dtype]);
}

// ---------------------------------------------------------------- writing

/**
 * Writes tensors (and optional metadata) to `path` atomically. Each tensor's `data` is
 * read only when its turn comes, so lazily produced data is never all in memory at once.
 */
export async function writeSafetensors(
  path: string,
  tensors: TensorSet,
  metadata?: Readonly<Record<string, string>>,
): Promise<void> {
  await writeFileAtomic(path, safetensorsChunks(tensors, metadata, path));
}

/** The whole file in memory (for small files and tests). */
export function encodeSafetensors(
  tensors: TensorSet,
  metadata?: Readonly<Record<string, string>>,
): Uint8Array {
  const chunks = [...safetensorsChunks(tensors, metadata, 'safetensors data')];
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.byteLength, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/** Header then each tensor's bytes. The header is built from dtypes and shapes alone. */
export function* safetensorsChunks(
  tensors: TensorSet,
  metadata: Readonly<Record<string, string>> | undefined,
  target: string,
): Generator<Uint8Array> {
  const items: [string, NamedTensor][] = tensors instanceof Map
    ? [...(tensors as ReadonlyMap<string, NamedTensor>)]
    : Object.entries(tensors as Readonly<Record<string, NamedTensor>>);
  const { header, order } = layout(items, metadata, target);
  yield header;
  for (const { name, tensor, bytes } of order) yield checkedData(tensor.data, name, tensor, bytes, target);
}

/** A tensor whose bytes are produced only when the writer reaches it (a dequantized GGUF tensor, say). */
export type LazyTensor = { dtype: SafeDType; shape: number[]; data: () => Uint8Array | Promise<Uint8Array> };

/**
 * Writes tensors atomically, asking each for its bytes in file order, so at most one
 * tensor's data is in memory at a time.
 */
export async function writeSafetensorsLazy(
  path: string,
  tensors: ReadonlyMap<string, LazyTensor>,
  metadata?: Readonly<Record<string, string>>,
): Promise<void> {
  const { header, order } = layout([...tensors], metadata, path);
  async function* chunks(): AsyncGenerator<Uint8Array> {
    yield header;
    for (const { name, tensor, bytes } of order) yield checkedData(await tensor.data(), name, tensor, bytes, path);
  }
  await writeFileAtomic(path, chunks());
}

/** The header and the tensors in file order (the reference writer's order) with their byte sizes. */
function layout<T extends { dtype: SafeDType; shape: number[] }>(
  items: [string, T][],
  metadata: Readonly<Record<string, string>> | undefined,
  target: string,
): { header: Uint8Array; order: { name: string; tensor: T; bytes: number }[] } {
  const order = items.map(([name, t]) => {
    if (name === '__metadata__' || name === '') throw new Error(`Cannot write ${target}: "${name}" is not a valid tensor name.`);
    if (!Object.hasOwn(DTYPE_BYTES, t.dtype)) throw new Error(`Cannot write ${target}: tensor "${name}" has unknown dtype ${JSON.stringify(t.dtype)}.`);
    if (!isShape(t.shape)) throw new Error(`Cannot write ${target}: tensor "${name}" has an invalid shape ${JSON.stringify(t.shape)}.`);
    return { name, tensor: t, key: Buffer.from(name, 'utf8'), bytes: byteSize(t.dtype, t.shape) };
  });
  order.sort((a, b) => WRITE_RANK[b.tensor.dtype] - WRITE_RANK[a.tensor.dtype] || Buffer.compare(a.key, b.key));

  // Built by hand: JSON.stringify of an object would move integer-like names first.
  const parts: string[] = [];
  if (metadata) {
    const pairs = Object.entries(metadata).map(([k, v]) => {
      if (typeof v !== 'string') throw new Error(`Cannot write ${target}: metadata "${k}" is not a string.`);
      return `${JSON.stringify(k)}:${JSON.stringify(v)}`;
    });
    parts.push(`"__metadata__":{${pairs.join(',')}}`);
  }
  let offset = 0;
  for (const { name, tensor, bytes } of order) {
    parts.push(`${JSON.stringify(name)}:{"dtype":"${tensor.dtype}","shape":${JSON.stringify(tensor.shape)},"data_offsets":[${offset},${offset + bytes}]}`);
    offset += bytes;
  }
  const json = Buffer.from(`{${parts.join(',')}}`, 'utf8');
  const padded = Math.ceil(json.byteLength / 8) * 8;
  const header = Buffer.alloc(8 + padded, 0x20);
  header.writeBigUInt64LE(BigInt(padded), 0);
  json.copy(header, 8);
  return { header, order };
}

function checkedData(data: Uint8Array, name: string, t: { dtype: SafeDType; shape: number[] }, bytes: number, target: string): Uint8Array {
  if (data.byteLength !== bytes) {
    throw new Error(`Cannot write ${target}: tensor "${name}" has shape [${t.shape.join(', ')}] of ${t.dtype}, which needs ${bytes} bytes, but its data has ${data.byteLength}.`);
  }
  return data;
}

// ---------------------------------------------------------------- typed views

type ViewConstructor<T> = { new (buffer: ArrayBufferLike, byteOffset: number, length: number): T; readonly BYTES_PER_ELEMENT: number };

// A view shares memory with t.data (writes go through); misaligned data is copied first.
function view<T>(t: NamedTensor, dtype: SafeDType, Ctor: ViewConstructor<T>): T {
  if (t.dtype !== dtype) throw new Error(`Expected a tensor of dtype ${dtype}, got ${t.dtype}${dtype === 'F32' ? ' (toFloat32 converts)' : ''}.`);
  const d = t.data.byteOffset % Ctor.BYTES_PER_ELEMENT === 0 ? t.data : t.data.slice();
  return new Ctor(d.buffer, d.byteOffset, d.byteLength / Ctor.BYTES_PER_ELEMENT);
}

export const asFloat32 = (t: NamedTensor): Float32Array => view(t, 'F32', Float32Array);
export const asFloat64 = (t: NamedTensor): Float64Array => view(t, 'F64', Float64Array);
export const asBigInt64 = (t: NamedTensor): BigInt64Array => view(t, 'I64', BigInt64Array);
export const asInt32 = (t: NamedTensor): Int32Array => view(t, 'I32', Int32Array);

/** Float values as float32: a view for F32, a converted copy for F16, BF16 and F64. */
export function toFloat32(t: NamedTensor): Float32Array {
  switch (t.dtype) {
    case 'F32': return asFloat32(t);
    case 'F64': return Float32Array.from(asFloat64(t));
    case 'F16': return f16ArrayToF32(bits16(t));
    case 'BF16': return bf16ArrayToF32(bits16(t));
    default: throw new Error(`toFloat32 converts float tensors only, not ${t.dtype}.`);
  }
}

function bits16(t: NamedTensor): Uint16Array {
  const d = t.data.byteOffset % 2 === 0 ? t.data : t.data.slice();
  return new Uint16Array(d.buffer, d.byteOffset, d.byteLength / 2);
}

/** Wraps the bytes of a typed array (no copy) as a tensor, checking the size. */
export function tensorOf(dtype: SafeDType, shape: number[], values: ArrayBufferView): NamedTensor {
  const data = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
  if (!isShape(shape)) throw new Error(`Invalid tensor shape ${JSON.stringify(shape)}.`);
  const bytes = byteSize(dtype, shape);
  if (bytes !== data.byteLength) {
    throw new Error(`Shape [${shape.join(', ')}] of ${dtype} needs ${bytes} bytes, but the values have ${data.byteLength}.`);
  }
  return { dtype, shape, data };
}

/** float32 values stored as F32 (no copy), or rounded to F16 / BF16. */
export function fromFloat32(values: Float32Array, shape: number[], dtype: 'F32' | 'F16' | 'BF16' = 'F32'): NamedTensor {
  if (dtype === 'F32') return tensorOf(dtype, shape, values);
  return tensorOf(dtype, shape, dtype === 'F16' ? f32ArrayToF16(values) : f32ArrayToBf16(values));
}

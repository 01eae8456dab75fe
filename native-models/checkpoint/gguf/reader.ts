// Reads GGUF files (llama.cpp's format), versions 2 and 3, little-endian:
//
//   "GGUF" u32 version, u64 tensor count, u64 metadata count
//   metadata: (string key, u32 value type, value)*     strings are u64 length + UTF-8 bytes
//   tensor table: (string name, u32 n_dims, u64 ne[n_dims], u32 ggml type, u64 offset)*
//   padding to `general.alignment` (32 when absent), then the tensors' data, each at
//   data start + its offset
//
// `openGguf` streams the header with chunked fd reads (a model's metadata is megabytes of
// tokenizer arrays; its data may be gigabytes) and validates the whole tensor table before it
// returns, so a corrupt or truncated file fails there, in one sentence naming the file.
// `readGgufTensor` then reads and dequantizes one tensor at a time.

import { open, type FileHandle } from 'node:fs/promises';
import { canDequantize, DEQUANTIZABLE, dequantize, GgmlType, ggmlTypeName, ggmlTypeSize } from './quants.ts';
import { GgufValueType, scalarSize, valueTypeName, type GgufTypedValue, type GgufValue } from './values.ts';

export { GgmlType, ggmlTypeName } from './quants.ts';
export { gguf, GgufValueType, type GgufTypedValue, type GgufValue } from './values.ts';

export interface GgufTensorInfo {
  name: string;
  /** ggml order: ne[0] is the fastest-varying (row length). */
  ne: number[];
  /** Row-major shape as numpy/PyTorch see it: ne reversed. */
  shape: number[];
  type: number; // GgmlType
  /** Absolute byte offset of the data in the file, and its byte length. */
  offset: number;
  nbytes: number;
}

/** A value's GGUF type; `itemType` for arrays. */
export interface GgufMetaType {
  type: GgufValueType;
  itemType?: GgufValueType;
}

export interface GgufFile {
  path: string;
  version: 2 | 3;
  alignment: number;
  fileSize: number;
  /** Where the data section starts (tensor offsets in the file are relative to it). */
  dataOffset: number;
  /** Key order preserved. 64-bit integers are bigints. */
  metadata: Map<string, GgufValue>;
  /** The stored type of each metadata value, to write it back the same (see `typedMetadata`). */
  metadataTypes: Map<string, GgufMetaType>;
  /** File order. */
  tensors: GgufTensorInfo[];
}

const MAGIC = 'GGUF';
const DEFAULT_ALIGNMENT = 32;
/** GGML_MAX_DIMS. */
const MAX_DIMS = 4;
const CHUNK = 1 << 20;
// The smallest a table entry can be, to refuse a corrupt count before allocating for it:
// a tensor is an 8-byte name length, n_dims, one ne, type and offset; a metadata entry an
// 8-byte key length, the type and one byte of value.
const MIN_TENSOR_ENTRY = 8 + 4 + 8 + 4 + 8;
const MIN_KV_ENTRY = 8 + 4 + 1;

/** Buffered forward reads of a file handle: `need(n)` before reading n bytes at `pos`. */
class HeaderSource {
  private buf = Buffer.alloc(CHUNK);
  private bufStart = 0; // file offset of buf[0]
  private bufLen = 0; // valid bytes in buf
  pos = 0;

  constructor(private readonly handle: FileHandle, readonly path: string, readonly size: number) {}

  get remaining(): number {
    return this.size - this.pos;
  }

  /** Makes [pos, pos + n) readable; returns undefined (no await) when it already is. */
  need(n: number, what: string): Promise<void> | undefined {
    if (this.pos + n <= this.bufStart + this.bufLen) return undefined;
    if (n > this.size - this.pos) {
      throw new Error(`${this.path} is truncated: ${what} needs ${n} bytes at byte ${this.pos}, but the file ends at byte ${this.size}.`);
    }
    return this.fill(n);
  }

  private async fill(n: number): Promise<void> {
    const kept = this.bufStart + this.bufLen - this.pos;
    const from = this.pos - this.bufStart;
    if (this.buf.length < n) {
      const bigger = Buffer.alloc(Math.max(n, 2 * this.buf.length));
      this.buf.copy(bigger, 0, from, from + kept);
      this.buf = bigger;
    } else {
      this.buf.copyWithin(0, from, from + kept);
    }
    this.bufStart = this.pos;
    this.bufLen = kept;
    while (this.bufLen < n) {
      const at = this.bufStart + this.bufLen;
      const length = Math.min(this.buf.length - this.bufLen, this.size - at);
      const { bytesRead } = await this.handle.read(this.buf, this.bufLen, length, at);
      if (bytesRead === 0) throw new Error(`${this.path} is truncated: it ended at byte ${at} while being read (was it changed meanwhile?).`);
      this.bufLen += bytesRead;
    }
  }

  private at(n: number): number {
    const i = this.pos - this.bufStart;
    this.pos += n;
    return i;
  }

  u8(): number { return this.buf[this.at(1)]; }
  i8(): number { return this.buf.readInt8(this.at(1)); }
  u16(): number { return this.buf.readUInt16LE(this.at(2)); }
  i16(): number { return this.buf.readInt16LE(this.at(2)); }
  u32(): number { return this.buf.readUInt32LE(this.at(4)); }
  i32(): number { return this.buf.readInt32LE(this.at(4)); }
  f32(): number { return this.buf.readFloatLE(this.at(4)); }
  f64(): number { return this.buf.readDoubleLE(this.at(8)); }
  u64(): bigint { return this.buf.readBigUInt64LE(this.at(8)); }
  i64(): bigint { return this.buf.readBigInt64LE(this.at(8)); }
  utf8(n: number): string {
    const i = this.at(n);
    return this.buf.toString('utf8', i, i + n);
  }

  /** A u64 count or size that must fit a JS number and `limit` (guards allocations from corrupt counts). */
  count(limit: number, what: string): number {
    const v = this.u64();
    if (v <= BigInt(limit)) return Number(v);
    throw new Error(limit === Number.MAX_SAFE_INTEGER
      ? `${this.path} is corrupt: ${what} is ${v}, beyond any real tensor.`
      : `${this.path} is corrupt: ${what} is ${v}, more than its remaining ${this.remaining} bytes can hold.`);
  }

  async string(what: string): Promise<string> {
    await this.need(8, what);
    const n = this.count(this.remaining - 8, `the length of ${what}`);
    await this.need(n, what);
    return this.utf8(n);
  }
}

/** Reads and validates the header, metadata and tensor table only (streamed with fd reads, never the whole file). */
export async function openGguf(path: string): Promise<GgufFile> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    throw new Error(`Could not open ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const size = (await handle.stat()).size;
    return await readHeader(new HeaderSource(handle, path, size));
  } finally {
    await handle.close();
  }
}

async function readHeader(src: HeaderSource): Promise<GgufFile> {
  const { path } = src;
  if (src.size < 4) throw new Error(`${path} is not a GGUF file (it has only ${src.size} bytes).`);
  await src.need(4, 'the magic');
  const magic = src.utf8(4);
  if (magic !== MAGIC) throw new Error(`${path} is not a GGUF file (it does not start with "GGUF").`);
  await src.need(4 + 8 + 8, 'the header');
  const version = src.u32();
  if (version === 1) throw new Error(`${path} is GGUF version 1, which AfD Studio does not read; convert the model again with a current llama.cpp.`);
  if (version !== 2 && version !== 3) {
    const swapped = (((version & 0xff) << 24) | ((version & 0xff00) << 8) | ((version >>> 8) & 0xff00) | (version >>> 24)) >>> 0;
    if (swapped === 2 || swapped === 3) throw new Error(`${path} is a big-endian GGUF file, which AfD Studio does not read; use the little-endian file.`);
    throw new Error(`${path} is GGUF version ${version}, which AfD Studio does not read (it reads versions 2 and 3).`);
  }
  const tensorCount = src.count(Math.floor(src.remaining / MIN_TENSOR_ENTRY), 'the tensor count');
  const kvCount = src.count(Math.floor(src.remaining / MIN_KV_ENTRY), 'the metadata count');

  const metadata = new Map<string, GgufValue>();
  const metadataTypes = new Map<string, GgufMetaType>();
  for (let i = 0; i < kvCount; i++) {
    const key = await src.string(`metadata key ${i}`);
    if (metadata.has(key)) throw new Error(`${path} is corrupt: metadata key "${key}" appears twice.`);
    const what = `metadata "${key}"`;
    await src.need(4, what);
    const type = src.u32();
    if (type === GgufValueType.ARRAY) {
      await src.need(12, what);
      const itemType = src.u32();
      const n = src.count(src.remaining, `the length of ${what}`);
      metadata.set(key, await readArray(src, itemType, n, what));
      metadataTypes.set(key, { type, itemType });
    } else {
      metadata.set(key, await readValue(src, type, what));
      metadataTypes.set(key, { type });
    }
  }

  const alignment = readAlignment(path, metadata.get('general.alignment'), metadataTypes.get('general.alignment'));

  const entries: { name: string; ne: number[]; type: number; relOffset: number }[] = [];
  for (let i = 0; i < tensorCount; i++) {
    const name = await src.string(`the name of tensor ${i}`);
    const what = `the table entry of tensor ${name}`;
    await src.need(4, what);
    const nDims = src.u32();
    if (nDims > MAX_DIMS) throw new Error(`${path} is corrupt: tensor ${name} has ${nDims} dimensions (ggml allows at most ${MAX_DIMS}).`);
    await src.need(8 * nDims + 4 + 8, what);
    const ne: number[] = [];
    // A dimension may exceed the file's size (low-bit types pack several values a byte); the
    // product of all of them is checked against the file below.
    for (let d = 0; d < nDims; d++) ne.push(src.count(Number.MAX_SAFE_INTEGER, `dimension ${d} of tensor ${name}`));
    const type = src.u32();
    const relOffset = src.count(src.size, `the data offset of tensor ${name}`);
    entries.push({ name, ne, type, relOffset });
  }
  const dataOffset = alignUp(src.pos, alignment);
  const tensors = entries.map((e) => tensorInfo(path, e, dataOffset, alignment, src.size));
  checkTable(path, tensors);
  return { path, version, alignment, fileSize: src.size, dataOffset, metadata, metadataTypes, tensors };
}

async function readValue(src: HeaderSource, type: number, what: string): Promise<GgufValue> {
  if (type === GgufValueType.STRING) return src.string(what);
  const size = scalarSize(type);
  if (size === undefined) throw new Error(`${src.path} is corrupt: ${what} has value type ${type}, which GGUF does not define.`);
  await src.need(size, what);
  return readScalar(src, type);
}

function readScalar(src: HeaderSource, type: GgufValueType): GgufValue {
  switch (type) {
    case GgufValueType.UINT8: return src.u8();
    case GgufValueType.INT8: return src.i8();
    case GgufValueType.UINT16: return src.u16();
    case GgufValueType.INT16: return src.i16();
    case GgufValueType.UINT32: return src.u32();
    case GgufValueType.INT32: return src.i32();
    case GgufValueType.FLOAT32: return src.f32();
    case GgufValueType.BOOL: return src.u8() !== 0;
    case GgufValueType.UINT64: return src.u64();
    case GgufValueType.INT64: return src.i64();
    case GgufValueType.FLOAT64: return src.f64();
    default: throw new Error(`unreachable: scalar type ${type}`);
  }
}

async function readArray(src: HeaderSource, itemType: number, n: number, what: string): Promise<GgufValue[]> {
  if (itemType === GgufValueType.ARRAY) throw new Error(`${src.path} has nested arrays in ${what}, which llama.cpp does not support either.`);
  const out: GgufValue[] = new Array(n);
  if (itemType === GgufValueType.STRING) {
    // Strings are at least their 8-byte length: checked before allocating for n of them.
    if (n * 8 > src.remaining) throw new Error(`${src.path} is corrupt: ${what} claims ${n} strings, more than its remaining ${src.remaining} bytes can hold.`);
    for (let i = 0; i < n; i++) {
      // The hot loop of a tokenizer's vocabulary: await only when the buffer runs dry.
      const p = src.need(8, what);
      if (p) await p;
      const len = src.count(src.remaining, `the length of item ${i} of ${what}`);
      const q = src.need(len, what);
      if (q) await q;
      out[i] = src.utf8(len);
    }
    return out;
  }
  const size = scalarSize(itemType);
  if (size === undefined) throw new Error(`${src.path} is corrupt: ${what} is an array of value type ${itemType}, which GGUF does not define.`);
  if (n * size > src.remaining) throw new Error(`${src.path} is truncated: ${what} needs ${n * size} bytes at byte ${src.pos}, but the file ends at byte ${src.size}.`);
  // Read in slices of at most one chunk so the buffer stays small.
  const perSlice = Math.floor(CHUNK / size);
  for (let i = 0; i < n;) {
    const m = Math.min(perSlice, n - i);
    await src.need(m * size, what);
    for (const end = i + m; i < end; i++) out[i] = readScalar(src, itemType);
  }
  return out;
}

function readAlignment(path: string, value: GgufValue | undefined, type: GgufMetaType | undefined): number {
  if (value === undefined) return DEFAULT_ALIGNMENT;
  const n = typeof value === 'bigint' ? Number(value) : value;
  if (type?.type !== GgufValueType.UINT32 || typeof n !== 'number' || n <= 0 || !Number.isInteger(n) || (n & (n - 1)) !== 0) {
    throw new Error(`${path} is corrupt: general.alignment is ${String(value)} (${valueTypeName(type?.type ?? GgufValueType.UINT32)}), not a power of two stored as u32.`);
  }
  return n;
}

const alignUp = (n: number, a: number): number => Math.ceil(n / a) * a;

function tensorInfo(path: string, e: { name: string; ne: number[]; type: number; relOffset: number }, dataOffset: number, alignment: number, fileSize: number): GgufTensorInfo {
  const { name, ne, type } = e;
  const size = ggmlTypeSize(type);
  if (!size) throw new Error(`${path}: tensor ${name} has type id ${type}, which is not a ggml type AfD Studio knows; the file is corrupt or newer than AfD Studio.`);
  const n = ne.reduce((a, b) => a * b, 1);
  if (!Number.isSafeInteger(n)) throw new Error(`${path} is corrupt: tensor ${name} has shape [${ne.join(', ')}] (ggml order), too many elements.`);
  const row = ne[0] ?? 1;
  if (row % size.blockSize !== 0) {
    throw new Error(`${path} is corrupt: tensor ${name} has rows of ${row} values, not a multiple of ${ggmlTypeName(type)}'s block of ${size.blockSize}.`);
  }
  if (e.relOffset % alignment !== 0) throw new Error(`${path} is corrupt: tensor ${name}'s data offset ${e.relOffset} is not a multiple of the alignment ${alignment}.`);
  const nbytes = (n / size.blockSize) * size.typeSize;
  const offset = dataOffset + e.relOffset;
  if (offset + nbytes > fileSize) {
    throw new Error(`${path} is truncated: tensor ${name}'s data (${nbytes} bytes at byte ${offset}) ends past the end of the file (${fileSize} bytes).`);
  }
  return { name, ne, shape: [...ne].reverse(), type, offset, nbytes };
}

/** Unique names; no tensor's data runs into the next one's (its size follows from shape and type). */
function checkTable(path: string, tensors: GgufTensorInfo[]): void {
  const names = new Set<string>();
  for (const t of tensors) {
    if (names.has(t.name)) throw new Error(`${path} is corrupt: tensor ${t.name} appears twice in its tensor table.`);
    names.add(t.name);
  }
  const byOffset = [...tensors].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < byOffset.length; i++) {
    const a = byOffset[i - 1], b = byOffset[i];
    if (a.offset + a.nbytes > b.offset) {
      throw new Error(`${path} is corrupt: tensor ${a.name} (${ggmlTypeName(a.type)}, shape [${a.shape.join(', ')}]) needs ${a.nbytes} bytes, but tensor ${b.name} starts ${b.offset - a.offset} bytes after it.`);
    }
  }
}

/** The sentence for a tensor of a type `readGgufTensor` cannot dequantize, or undefined. */
function undequantizable(file: GgufFile, info: GgufTensorInfo): string | undefined {
  if (canDequantize(info.type)) return undefined;
  return `${file.path}: tensor ${info.name} is ${ggmlTypeName(info.type)}, which AfD Studio cannot dequantize; supported: ${DEQUANTIZABLE.map(ggmlTypeName).join(', ')}.`;
}

/** Throws the sentence for the first tensor `readGgufTensor` could not read: check a file before starting work on it. */
export function assertDequantizable(file: GgufFile): void {
  for (const t of file.tensors) {
    const why = undequantizable(file, t);
    if (why) throw new Error(why);
  }
}

/** The tensor's bytes as stored. */
export async function readGgufTensorRaw(file: GgufFile, info: GgufTensorInfo): Promise<Uint8Array> {
  const out = new Uint8Array(info.nbytes);
  let handle: FileHandle;
  try {
    handle = await open(file.path, 'r');
  } catch (err) {
    throw new Error(`Could not open ${file.path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    for (let done = 0; done < out.length;) {
      const { bytesRead } = await handle.read(out, done, out.length - done, info.offset + done);
      if (bytesRead === 0) throw new Error(`${file.path} is truncated: tensor ${info.name}'s data ends past the end of the file (was it changed after it was opened?).`);
      done += bytesRead;
    }
  } finally {
    await handle.close();
  }
  return out;
}

/** The tensor's values as float32, dequantized (row-major, shape `info.shape`). Reads only that tensor's bytes. */
export async function readGgufTensor(file: GgufFile, info: GgufTensorInfo): Promise<Float32Array> {
  const why = undequantizable(file, info);
  if (why) throw new Error(why);
  const raw = await readGgufTensorRaw(file, info);
  return dequantize(info.type as GgmlType, raw, info.ne.reduce((a, b) => a * b, 1));
}

/** The metadata with its stored types, to pass to `writeGguf` unchanged. */
export function typedMetadata(file: GgufFile): Map<string, GgufTypedValue> {
  const out = new Map<string, GgufTypedValue>();
  for (const [key, value] of file.metadata) out.set(key, { ...file.metadataTypes.get(key)!, value });
  return out;
}

// Typed metadata getters: each throws one sentence naming the key and the file when the key
// is absent (unless a fallback is given) or holds another type.

function getter<R>(convert: (file: GgufFile, key: string, v: GgufValue) => R) {
  function get(file: GgufFile, key: string): R;
  function get<T>(file: GgufFile, key: string, fallback: T): R | T;
  function get<T>(file: GgufFile, key: string, ...fallback: [T?]): R | T {
    const v = file.metadata.get(key);
    if (v !== undefined) return convert(file, key, v);
    if (fallback.length) return fallback[0] as T;
    throw new Error(`${file.path} has no metadata "${key}".`);
  }
  return get;
}

function mistyped(file: GgufFile, key: string, want: string): Error {
  const t = file.metadataTypes.get(key)!;
  return new Error(`${file.path}: metadata "${key}" is ${valueTypeName(t.type, t.itemType)}, not ${want}.`);
}

function toNumber(file: GgufFile, key: string, v: GgufValue): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint' && Number.isSafeInteger(Number(v))) return Number(v);
  if (typeof v === 'bigint') throw new Error(`${file.path}: metadata "${key}" is ${v}, too large for a number.`);
  throw mistyped(file, key, 'a number');
}

function toArray(file: GgufFile, key: string, v: GgufValue): GgufValue[] {
  if (!Array.isArray(v)) throw mistyped(file, key, 'an array');
  return v;
}

export const metaString = getter((file, key, v): string => {
  if (typeof v !== 'string') throw mistyped(file, key, 'a string');
  return v;
});

/** Any integer or float type; 64-bit integers when they fit a number exactly. */
export const metaNumber = getter(toNumber);

export const metaBool = getter((file, key, v): boolean => {
  if (typeof v !== 'boolean') throw mistyped(file, key, 'a bool');
  return v;
});

export const metaArray = getter(toArray);

export const metaStringArray = getter((file, key, v): string[] => {
  if (file.metadataTypes.get(key)?.itemType !== GgufValueType.STRING) throw mistyped(file, key, 'an array of string');
  return toArray(file, key, v) as string[];
});

/** An array of any integer or float type, as numbers. */
export const metaNumberArray = getter((file, key, v): number[] => {
  const itemType = file.metadataTypes.get(key)?.itemType;
  if (itemType === GgufValueType.STRING || itemType === GgufValueType.BOOL || !Array.isArray(v)) throw mistyped(file, key, 'an array of numbers');
  return v.map((x) => toNumber(file, key, x));
});

// Writes GGUF v3 files (the layout is in reader.ts).
//
// The tensor table, with every tensor's offset, precedes the data; offsets depend only on
// shapes and types, so the table is computed first and the data then streamed one tensor at
// a time: a caller that gives each tensor's values as a function keeps one tensor in memory,
// not the model. The file is written atomically (temp file, then rename).

import { writeFileAtomic } from '../../runtime/atomic-file.ts';
import { encode, encodedSize, ENCODABLE, GgmlType, ggmlTypeName, ggmlTypeSize, type EncodableType } from './quants.ts';
import { GgufValueType, isTypedValue, scalarSize, valueTypeName, type GgufTypedValue, type GgufValue } from './values.ts';

export { gguf, GgufValueType, type GgufTypedValue, type GgufValue } from './values.ts';

type Lazy<T> = T | (() => T | Promise<T>);

/** A tensor given as float32 values, encoded on the way out. */
export interface GgufTensorToWrite {
  name: string;
  /** Row-major, as numpy/PyTorch see it (the file stores it reversed, as ggml's ne). */
  shape: number[];
  type: EncodableType;
  /** The values (row-major), or a function producing them when the tensor is written. */
  data: Lazy<Float32Array>;
}

/** A tensor given as bytes already in its ggml type (a quantized tensor passed through unchanged). */
export interface GgufRawTensorToWrite {
  name: string;
  shape: number[];
  type: GgmlType;
  raw: Lazy<Uint8Array>;
}

/**
 * Metadata in the order to write. A typed value (`gguf.u32(8192)`) is written with its type;
 * a plain JS value gets gguf-py's choice: string, bool, an integer number -> i32 (i64 beyond
 * i32), any other number -> f32, bigint -> i64, an array -> array of its items' common type.
 * llama.cpp checks types strictly, so give its keys typed values.
 */
export type GgufMetadataInput = Map<string, GgufValue | GgufTypedValue> | Record<string, GgufValue | GgufTypedValue>;

const MAGIC = [0x47, 0x47, 0x55, 0x46]; // "GGUF"
const VERSION = 3;
const DEFAULT_ALIGNMENT = 32;
const MAX_DIMS = 4;
/** GGML_MAX_NAME is 64 bytes with the terminating NUL. */
const MAX_NAME_BYTES = 63;

/**
 * Writes a GGUF v3 file: metadata, tensor table, aligned data; tensors written one at a time
 * (streamed), atomically. Everything that can be checked before writing is (types, shapes,
 * names); a tensor whose values turn out to have the wrong length fails the write and leaves
 * no file.
 */
export async function writeGguf(
  path: string,
  metadata: GgufMetadataInput,
  tensors: Iterable<GgufTensorToWrite | GgufRawTensorToWrite> | AsyncIterable<GgufTensorToWrite | GgufRawTensorToWrite>,
): Promise<void> {
  const entries = [...(metadata instanceof Map ? metadata : Object.entries(metadata))].map(([key, v]) => [key, typedValue(path, key, v)] as const);
  const alignment = alignmentOf(path, entries);
  const list: (GgufTensorToWrite | GgufRawTensorToWrite)[] = [];
  for await (const t of tensors) list.push(t);
  const table = tensorTable(path, list, alignment);

  const header = new ByteWriter();
  header.bytes(MAGIC);
  header.u32(VERSION);
  header.u64(BigInt(list.length));
  header.u64(BigInt(entries.length));
  for (const [key, v] of entries) {
    header.string(key);
    header.u32(v.type);
    writeValue(header, v);
  }
  for (const t of table) {
    header.string(t.name);
    header.u32(t.ne.length);
    for (const n of t.ne) header.u64(BigInt(n));
    header.u32(t.type);
    header.u64(BigInt(t.offset));
  }
  header.pad(alignment);

  async function* chunks(): AsyncGenerator<Uint8Array> {
    yield header.result();
    for (let i = 0; i < list.length; i++) {
      const bytes = await tensorBytes(path, list[i], table[i].nbytes);
      yield bytes;
      const padding = table[i].padded - bytes.length;
      if (padding) yield new Uint8Array(padding);
    }
  }
  await writeFileAtomic(path, chunks());
}

interface TableEntry {
  name: string;
  ne: number[];
  type: GgmlType;
  offset: number; // relative to the data section
  nbytes: number;
  padded: number; // nbytes rounded up to the alignment
}

function tensorTable(path: string, tensors: (GgufTensorToWrite | GgufRawTensorToWrite)[], alignment: number): TableEntry[] {
  const names = new Set<string>();
  let offset = 0;
  return tensors.map((t) => {
    const what = `Cannot write ${path}: tensor ${t.name}`;
    if (typeof t.name !== 'string' || t.name === '') throw new Error(`Cannot write ${path}: a tensor has no name.`);
    if (Buffer.byteLength(t.name) > MAX_NAME_BYTES) throw new Error(`${what} has a name longer than ggml's ${MAX_NAME_BYTES} bytes.`);
    if (names.has(t.name)) throw new Error(`${what} is given twice.`);
    names.add(t.name);
    const { shape } = t;
    if (shape.length < 1 || shape.length > MAX_DIMS || !shape.every((n) => Number.isSafeInteger(n) && n >= 1)) {
      throw new Error(`${what} has shape [${shape.join(', ')}]; GGUF tensors have 1 to ${MAX_DIMS} dimensions, each at least 1.`);
    }
    const size = ggmlTypeSize(t.type);
    if (!size) throw new Error(`${what} has type id ${t.type}, which is not a ggml type.`);
    if (!('raw' in t) && !ENCODABLE.includes(t.type as EncodableType)) {
      throw new Error(`${what} is ${ggmlTypeName(t.type)}, which the writer cannot encode from float32 values (it encodes ${ENCODABLE.map(ggmlTypeName).join(', ')}); pass its bytes as raw.`);
    }
    const row = shape[shape.length - 1];
    if (row % size.blockSize !== 0) throw new Error(`${what} has rows of ${row} values, not a multiple of ${ggmlTypeName(t.type)}'s block of ${size.blockSize}.`);
    const nbytes = encodedSize(t.type, shape.reduce((a, b) => a * b, 1));
    const padded = alignUp(nbytes, alignment);
    const entry = { name: t.name, ne: [...shape].reverse(), type: t.type, offset, nbytes, padded };
    offset += padded;
    return entry;
  });
}

async function tensorBytes(path: string, t: GgufTensorToWrite | GgufRawTensorToWrite, nbytes: number): Promise<Uint8Array> {
  if ('raw' in t) {
    const raw = typeof t.raw === 'function' ? await t.raw() : t.raw;
    if (raw.byteLength !== nbytes) throw new Error(`Cannot write ${path}: tensor ${t.name} (${ggmlTypeName(t.type)}, shape [${t.shape.join(', ')}]) needs ${nbytes} bytes, but ${raw.byteLength} were given.`);
    return raw;
  }
  const data = typeof t.data === 'function' ? await t.data() : t.data;
  const n = t.shape.reduce((a, b) => a * b, 1);
  if (!(data instanceof Float32Array) || data.length !== n) {
    throw new Error(`Cannot write ${path}: tensor ${t.name} has shape [${t.shape.join(', ')}] (${n} values), but ${data instanceof Float32Array ? `${data.length} float32 values were` : 'no Float32Array was'} given.`);
  }
  return encode(t.type, data);
}

const alignUp = (n: number, a: number): number => Math.ceil(n / a) * a;

/** general.alignment: u32, a power of two (an untyped number is taken as u32, the only type llama.cpp accepts). */
function alignmentOf(path: string, entries: (readonly [string, GgufTypedValue])[]): number {
  const entry = entries.find(([key]) => key === 'general.alignment');
  if (!entry) return DEFAULT_ALIGNMENT;
  const v = entry[1];
  if (v.type === GgufValueType.INT32 && typeof v.value === 'number' && v.value > 0) v.type = GgufValueType.UINT32;
  const n = v.value;
  if (v.type !== GgufValueType.UINT32 || typeof n !== 'number' || (n & (n - 1)) !== 0) {
    throw new Error(`Cannot write ${path}: general.alignment must be a power of two stored as u32, not ${String(n)} (${valueTypeName(v.type, v.itemType)}).`);
  }
  return n;
}

// Metadata values: the type of an untyped value, and range checks before anything is written.

function typedValue(path: string, key: string, v: GgufValue | GgufTypedValue): GgufTypedValue {
  const what = `Cannot write ${path}: metadata "${key}"`;
  if (typeof key !== 'string' || key === '') throw new Error(`Cannot write ${path}: a metadata key is empty.`);
  const typed = isTypedValue(v) ? { ...v } : inferType(what, v);
  if (typed.type === GgufValueType.ARRAY) {
    if (!Array.isArray(typed.value)) throw new Error(`${what} has type array but its value is not an array.`);
    if (typed.itemType === undefined || typed.itemType === GgufValueType.ARRAY) throw new Error(`${what} is an array without an item type (nested arrays are not supported).`);
    typed.value.forEach((x, i) => checkScalar(`${what}, item ${i},`, typed.itemType!, x));
  } else {
    checkScalar(what, typed.type, typed.value);
  }
  return typed;
}

function inferType(what: string, v: GgufValue): GgufTypedValue {
  if (!Array.isArray(v)) return { type: scalarType(what, v), value: v };
  if (v.length === 0) throw new Error(`${what} is an empty array, whose item type cannot be told; give it one with gguf.array(type, []).`);
  const kinds = new Set(v.map((x) => (Array.isArray(x) ? 'array' : typeof x)));
  if (kinds.size !== 1 || kinds.has('array')) throw new Error(`${what} mixes ${[...kinds].join(' and ')} items; GGUF arrays hold one type.`);
  const itemType = typeof v[0] === 'number'
    ? (v.every((x) => Number.isInteger(x) && isI32(x as number)) ? GgufValueType.INT32 : GgufValueType.FLOAT32)
    : scalarType(what, v[0]);
  return { type: GgufValueType.ARRAY, itemType, value: v };
}

function scalarType(what: string, v: GgufValue): GgufValueType {
  switch (typeof v) {
    case 'string': return GgufValueType.STRING;
    case 'boolean': return GgufValueType.BOOL;
    case 'bigint': return GgufValueType.INT64;
    case 'number': return Number.isInteger(v) ? (isI32(v) ? GgufValueType.INT32 : GgufValueType.INT64) : GgufValueType.FLOAT32;
    default: throw new Error(`${what} is a ${typeof v}, which GGUF cannot store.`);
  }
}

const isI32 = (x: number): boolean => x >= -0x80000000 && x <= 0x7fffffff;

const INT_RANGES: Partial<Record<GgufValueType, readonly [bigint, bigint]>> = {
  [GgufValueType.UINT8]: [0n, 0xffn],
  [GgufValueType.INT8]: [-0x80n, 0x7fn],
  [GgufValueType.UINT16]: [0n, 0xffffn],
  [GgufValueType.INT16]: [-0x8000n, 0x7fffn],
  [GgufValueType.UINT32]: [0n, 0xffffffffn],
  [GgufValueType.INT32]: [-0x80000000n, 0x7fffffffn],
  [GgufValueType.UINT64]: [0n, 0xffffffffffffffffn],
  [GgufValueType.INT64]: [-0x8000000000000000n, 0x7fffffffffffffffn],
};

function checkScalar(what: string, type: GgufValueType, v: GgufValue): void {
  const name = valueTypeName(type);
  const range = INT_RANGES[type];
  if (range) {
    const ok = (typeof v === 'bigint' || (typeof v === 'number' && Number.isSafeInteger(v))) && BigInt(v) >= range[0] && BigInt(v) <= range[1];
    if (!ok) throw new Error(`${what} is ${String(v)}, not a ${name} (an integer from ${range[0]} to ${range[1]}).`);
    return;
  }
  const ok = type === GgufValueType.STRING ? typeof v === 'string'
    : type === GgufValueType.BOOL ? typeof v === 'boolean'
    : type === GgufValueType.FLOAT32 || type === GgufValueType.FLOAT64 ? typeof v === 'number'
    : false;
  if (!ok) throw new Error(`${what} is ${JSON.stringify(typeof v === 'bigint' ? String(v) : v)?.slice(0, 80)}, not a ${name}.`);
}

function writeValue(w: ByteWriter, v: GgufTypedValue): void {
  if (v.type !== GgufValueType.ARRAY) return writeScalar(w, v.type, v.value);
  const items = v.value as GgufValue[];
  w.u32(v.itemType!);
  w.u64(BigInt(items.length));
  for (const x of items) writeScalar(w, v.itemType!, x);
}

function writeScalar(w: ByteWriter, type: GgufValueType, v: GgufValue): void {
  if (type === GgufValueType.STRING) return w.string(v as string);
  const at = w.reserve(scalarSize(type)!);
  const view = w.view;
  switch (type) {
    case GgufValueType.UINT8: return view.setUint8(at, v as number);
    case GgufValueType.INT8: return view.setInt8(at, v as number);
    case GgufValueType.UINT16: return view.setUint16(at, v as number, true);
    case GgufValueType.INT16: return view.setInt16(at, v as number, true);
    case GgufValueType.UINT32: return view.setUint32(at, Number(v), true);
    case GgufValueType.INT32: return view.setInt32(at, Number(v), true);
    case GgufValueType.FLOAT32: return view.setFloat32(at, v as number, true);
    case GgufValueType.BOOL: return view.setUint8(at, v ? 1 : 0);
    case GgufValueType.UINT64: return view.setBigUint64(at, BigInt(v as number | bigint), true);
    case GgufValueType.INT64: return view.setBigInt64(at, BigInt(v as number | bigint), true);
    case GgufValueType.FLOAT64: return view.setFloat64(at, v as number, true);
  }
}

/** A growable little-endian byte buffer for the header (a few MB with a tokenizer's arrays). */
class ByteWriter {
  private buf = Buffer.alloc(1 << 16);
  view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
  private len = 0;

  /** Makes room for n bytes and returns where they go. */
  reserve(n: number): number {
    if (this.len + n > this.buf.length) {
      const bigger = Buffer.alloc(Math.max(this.len + n, 2 * this.buf.length));
      this.buf.copy(bigger, 0, 0, this.len);
      this.buf = bigger;
      this.view = new DataView(bigger.buffer, bigger.byteOffset, bigger.byteLength);
    }
    const at = this.len;
    this.len += n;
    return at;
  }

  bytes(b: readonly number[]): void {
    const at = this.reserve(b.length);
    for (let i = 0; i < b.length; i++) this.buf[at + i] = b[i];
  }

  // reserve() may replace buf and view: call it before reading them.
  u32(v: number): void {
    const at = this.reserve(4);
    this.view.setUint32(at, v, true);
  }

  u64(v: bigint): void {
    const at = this.reserve(8);
    this.view.setBigUint64(at, v, true);
  }

  string(s: string): void {
    const n = Buffer.byteLength(s);
    this.u64(BigInt(n));
    const at = this.reserve(n);
    this.buf.write(s, at, n, 'utf8');
  }

  pad(alignment: number): void {
    this.reserve(alignUp(this.len, alignment) - this.len); // Buffer.alloc zero-filled it
  }

  result(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }
}

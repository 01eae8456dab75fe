// Where each tensor of a safetensors file lies, read from its header alone: the file
// itself then serves as ONNX external data (ONNX Runtime maps its pages; no tensor byte
// passes through JavaScript). The format: an 8-byte little-endian header length, a JSON
// header { name: { dtype, shape, data_offsets } } (plus "__metadata__"), then the data,
// with offsets relative to its start.

import { open, stat } from 'node:fs/promises';
import type { ExternalTensor } from '../ir/emit.ts';
import { DTYPE_BYTES, type SafeDType } from './safetensors.ts';

export interface IndexedTensor {
  dtype: SafeDType;
  shape: number[];
  /** Byte offset of the tensor's data from the start of the file. */
  offset: number;
  /** Bytes of data. */
  length: number;
}

export interface SafetensorsIndex {
  path: string;
  /** File size and modification time: what identifies this version of the file. */
  size: number;
  mtimeMs: number;
  tensors: Map<string, IndexedTensor>;
}

/** A model's float32 weights left in their safetensors files, to be mapped as ONNX external data. */
export interface MappedWeights {
  /** The folder of the files; external data locations are relative to it. */
  dir: string;
  /** Identifies this version of the files (names, sizes, modification times): part of a session's cache key. */
  identity: string;
  /** Per parameter: its file (a name in `dir`) and the offset and length of its bytes there. */
  tensors: ReadonlyMap<string, ExternalTensor>;
}

/** Reads the header of the safetensors file at `path`; throws a sentence naming the file on anything malformed. */
export async function indexSafetensors(path: string): Promise<SafetensorsIndex> {
  const handle = await open(path, 'r').catch((err: Error) => {
    throw new Error(`Could not open ${path}: ${err.message}`, { cause: err });
  });
  try {
    const { size, mtimeMs } = await stat(path);
    const prefix = Buffer.alloc(8);
    const n = size >= 8 ? (await handle.read(prefix, 0, 8, 0)).bytesRead : 0;
    if (n < 8) throw new Error(`${path} is not a safetensors file: it is ${size} bytes long, shorter than the 8-byte header length that starts the format.`);
    const headerLength = prefix.readBigUInt64LE(0);
    if (headerLength > BigInt(Math.min(size - 8, 100_000_000))) throw new Error(`${path} is truncated or not a safetensors file: its header length says ${headerLength} bytes, with ${size - 8} bytes after it.`);
    const json = Buffer.alloc(Number(headerLength));
    if ((await handle.read(json, 0, json.length, 8)).bytesRead !== json.length) throw new Error(`${path} ended early while its header was read.`);
    const dataStart = 8 + json.length;
    let header: unknown;
    try {
      header = JSON.parse(json.toString('utf8'));
    } catch (err) {
      throw new Error(`${path} is corrupt or not a safetensors file: its header is not valid JSON (${(err as Error).message}).`, { cause: err });
    }
    if (typeof header !== 'object' || header === null || Array.isArray(header)) throw new Error(`${path} is corrupt or not a safetensors file: its header is not a JSON object.`);
    const tensors = new Map<string, IndexedTensor>();
    for (const [name, info] of Object.entries(header as Record<string, unknown>)) {
      if (name === '__metadata__') continue;
      const { dtype, shape, data_offsets: offsets } = (info ?? {}) as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      const where = `tensor "${name}" in ${path}`;
      if (typeof dtype !== 'string' || !Object.hasOwn(DTYPE_BYTES, dtype)) throw new Error(`${where} has dtype ${JSON.stringify(dtype)}, which AfD Studio cannot read.`);
      if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new Error(`${where} has an invalid shape ${JSON.stringify(shape)}.`);
      if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((x) => Number.isSafeInteger(x) && x >= 0)) throw new Error(`${where} has invalid data_offsets ${JSON.stringify(offsets)}.`);
      const [begin, end] = offsets as [number, number];
      const length = (shape as number[]).reduce((a, d) => a * d, DTYPE_BYTES[dtype as SafeDType]);
      if (end - begin !== length) throw new Error(`${where} has shape [${shape.join(', ')}] of ${dtype}, which needs ${length} bytes, but its data_offsets [${begin}, ${end}] span ${end - begin}.`);
      if (dataStart + end > size) throw new Error(`${where} lies beyond the end of the file (data_offsets [${begin}, ${end}], ${size - dataStart} bytes of data); the file is truncated or corrupt.`);
      tensors.set(name, { dtype: dtype as SafeDType, shape: shape as number[], offset: dataStart + begin, length });
    }
    return { path, size, mtimeMs, tensors };
  } finally {
    await handle.close();
  }
}

// The GGUF format layer: dequantization (hand-built blocks here; every type against gguf-py
// below), our writer read back by our reader and by gguf-py, Q8_0 quantization bit for bit
// against gguf-py, one sentence for each kind of corrupt file, and the real SmolLM2 GGUF.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { f16ToF32, f32ToF16 } from '../../runtime/float16.ts';
import { withTempDir } from '../../../test/support/temp-dir.ts';
import { smollm2GgufPath, smollm2Skip } from '../../../test/support/real-model.ts';
import { pythonSkip, runPython } from '../../../test/python/oracle.ts';
import { dequantize, DEQUANTIZABLE, GgmlType, ggmlTypeName } from './quants.ts';
import {
  assertDequantizable, metaArray, metaBool, metaNumber, metaNumberArray, metaString, metaStringArray,
  openGguf, readGgufTensor, readGgufTensorRaw, typedMetadata, type GgufFile,
} from './reader.ts';
import { gguf, GgufValueType, writeGguf, type GgufMetadataInput, type GgufRawTensorToWrite, type GgufTensorToWrite } from './writer.ts';

const withDir = (fn: (dir: string) => Promise<void>): Promise<void> => withTempDir('gguf', fn);

const f16Bytes = (x: number): number[] => {
  const h = f32ToF16(x);
  return [h & 0xff, h >> 8];
};

/** A seeded generator of float32 values (mulberry32), so failures reproduce. */
function randomFloats(n: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0;
  const next = (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return Float32Array.from({ length: n }, () => (next() * 2 - 1) * scale);
}

function bitsEqual(actual: Float32Array, expected: Float32Array, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  const a = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const e = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== e[i]) assert.fail(`${what}: element ${i} is ${actual[i]}, expected ${expected[i]} (bits ${a[i].toString(16)} vs ${e[i].toString(16)})`);
  }
}

// ---- Dequantization of hand-built blocks ----

test('Q8_0: one block, d times the signed bytes', () => {
  const q = Array.from({ length: 32 }, (_, i) => (i === 0 ? -128 : i === 31 ? 127 : i - 16));
  const block = Uint8Array.from([...f16Bytes(0.5), ...q.map((x) => x & 0xff)]);
  assert.deepEqual([...dequantize(GgmlType.Q8_0, block, 32)], q.map((x) => 0.5 * x));
});

test('Q4_1: low nibbles are elements 0..15, high nibbles 16..31, d * q + m', () => {
  const qs = Array.from({ length: 16 }, (_, j) => (j & 15) | ((15 - j) << 4));
  const block = Uint8Array.from([...f16Bytes(0.5), ...f16Bytes(-1), ...qs]);
  const expected = [...Array.from({ length: 16 }, (_, j) => 0.5 * j - 1), ...Array.from({ length: 16 }, (_, j) => 0.5 * (15 - j) - 1)];
  assert.deepEqual([...dequantize(GgmlType.Q4_1, block, 32)], expected);
});

test('Q4_K: one block with known 6-bit scales and mins, including the split high bits of sub-blocks 4..7', () => {
  const d = 0.0625, dmin = 0.25;
  const sc = [1, 5, 63, 10, 33, 47, 2, 60];
  const mn = [0, 7, 63, 1, 48, 17, 32, 5];
  // ggml's packing (get_scale_min_k4): sub-blocks 0..3 in the low 6 bits of bytes 0..3 (scales)
  // and 4..7 (mins); sub-blocks 4..7 as nibbles of bytes 8..11 plus their top 2 bits in the top
  // 2 bits of bytes 0..3 (scales) and 4..7 (mins).
  const scales = new Array<number>(12).fill(0);
  for (let j = 0; j < 4; j++) {
    scales[j] = sc[j] | ((sc[j + 4] >> 4) << 6);
    scales[j + 4] = mn[j] | ((mn[j + 4] >> 4) << 6);
    scales[j + 8] = (sc[j + 4] & 15) | ((mn[j + 4] & 15) << 4);
  }
  const q = (j: number, l: number): number => (l + 3 * j) & 15;
  const qs = new Array<number>(128).fill(0);
  for (let j = 0; j < 8; j++) for (let l = 0; l < 32; l++) qs[(j >> 1) * 32 + l] |= q(j, l) << (4 * (j & 1));
  const block = Uint8Array.from([...f16Bytes(d), ...f16Bytes(dmin), ...scales, ...qs]);
  const expected = Array.from({ length: 256 }, (_, e) => d * sc[e >> 5] * q(e >> 5, e & 31) - dmin * mn[e >> 5]);
  assert.deepEqual([...dequantize(GgmlType.Q4_K, block, 256)], expected);
});

test('Q8_K (not in gguf-py): d (f32) times the signed bytes', () => {
  const q8k = new Uint8Array(292);
  new DataView(q8k.buffer).setFloat32(0, 0.25, true);
  for (let i = 0; i < 256; i++) q8k[4 + i] = (i * 11) & 0xff;
  assert.deepEqual([...dequantize(GgmlType.Q8_K, q8k, 256)], Array.from({ length: 256 }, (_, i) => 0.25 * ((((i * 11) & 0xff) << 24) >> 24)));
});

test('dequantize refuses a byte length that disagrees with the count', () => {
  assert.throws(() => dequantize(GgmlType.Q8_0, new Uint8Array(33), 32), /32 Q8_0 values need 34 bytes/);
  assert.throws(() => dequantize(GgmlType.Q4_K, new Uint8Array(144), 200), /whole blocks of 256/);
});

// ---- Writer and reader together ----

/** Metadata of every value type, typed and untyped, with edge values. */
function everyValueType(): GgufMetadataInput {
  return {
    'general.architecture': 'llama',
    'general.alignment': gguf.u32(64),
    'k.u8': gguf.u8(255),
    'k.i8': gguf.i8(-128),
    'k.u16': gguf.u16(65535),
    'k.i16': gguf.i16(-32768),
    'k.u32': gguf.u32(0xffffffff),
    'k.i32': gguf.i32(-0x80000000),
    'k.f32': gguf.f32(0.1),
    'k.bool': false,
    'k.string': 'héllo ✓ 你好',
    'k.u64': gguf.u64(2n ** 64n - 1n),
    'k.i64': gguf.i64(-(2n ** 63n)),
    'k.f64': gguf.f64(0.1),
    'k.strings': gguf.strings(['<|endoftext|>', 'Ġthe', '', 'é']),
    'k.f32s': gguf.f32s([0, -1.5, 1e-7]),
    'k.i32s': [1, -2, 3],
    'k.u8s': gguf.array(GgufValueType.UINT8, [0, 255]),
    'k.bools': [true, false],
    'k.u64s': gguf.array(GgufValueType.UINT64, [0n, 2n ** 40n]),
    'k.empty': gguf.array(GgufValueType.STRING, []),
    'k.inferred.int': 7,
    'k.inferred.float': 1.5,
    'k.inferred.big': 5n,
    'k.inferred.floats': [1, 2.5],
  };
}

/** What a reader gives back for everyValueType(): [type, itemType, value]. */
const EXPECTED_METADATA: [string, GgufValueType, GgufValueType | undefined, unknown][] = [
  ['general.architecture', GgufValueType.STRING, undefined, 'llama'],
  ['general.alignment', GgufValueType.UINT32, undefined, 64],
  ['k.u8', GgufValueType.UINT8, undefined, 255],
  ['k.i8', GgufValueType.INT8, undefined, -128],
  ['k.u16', GgufValueType.UINT16, undefined, 65535],
  ['k.i16', GgufValueType.INT16, undefined, -32768],
  ['k.u32', GgufValueType.UINT32, undefined, 0xffffffff],
  ['k.i32', GgufValueType.INT32, undefined, -0x80000000],
  ['k.f32', GgufValueType.FLOAT32, undefined, Math.fround(0.1)],
  ['k.bool', GgufValueType.BOOL, undefined, false],
  ['k.string', GgufValueType.STRING, undefined, 'héllo ✓ 你好'],
  ['k.u64', GgufValueType.UINT64, undefined, 2n ** 64n - 1n],
  ['k.i64', GgufValueType.INT64, undefined, -(2n ** 63n)],
  ['k.f64', GgufValueType.FLOAT64, undefined, 0.1],
  ['k.strings', GgufValueType.ARRAY, GgufValueType.STRING, ['<|endoftext|>', 'Ġthe', '', 'é']],
  ['k.f32s', GgufValueType.ARRAY, GgufValueType.FLOAT32, [0, -1.5, Math.fround(1e-7)]],
  ['k.i32s', GgufValueType.ARRAY, GgufValueType.INT32, [1, -2, 3]],
  ['k.u8s', GgufValueType.ARRAY, GgufValueType.UINT8, [0, 255]],
  ['k.bools', GgufValueType.ARRAY, GgufValueType.BOOL, [true, false]],
  ['k.u64s', GgufValueType.ARRAY, GgufValueType.UINT64, [0n, 2n ** 40n]],
  ['k.empty', GgufValueType.ARRAY, GgufValueType.STRING, []],
  ['k.inferred.int', GgufValueType.INT32, undefined, 7],
  ['k.inferred.float', GgufValueType.FLOAT32, undefined, 1.5],
  ['k.inferred.big', GgufValueType.INT64, undefined, 5n],
  ['k.inferred.floats', GgufValueType.ARRAY, GgufValueType.FLOAT32, [1, 2.5]],
];

/** Q8_0 test data: random blocks, an all-zero block, and a block of exact halves (ties round away from zero). */
function q8Data(): Float32Array {
  const data = randomFloats(4 * 64, 7, 3);
  data.fill(0, 64, 96);
  const ties = [127, 0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 126.5, -126.5, 3];
  data.set(ties, 96);
  for (let i = 96 + ties.length; i < 128; i++) data[i] = i - 100;
  data.set(randomFloats(32, 8, 1e-6), 128); // a scale below f16's range: d is stored as 0 or a subnormal
  return data;
}

function testTensors(): (GgufTensorToWrite | GgufRawTensorToWrite)[] {
  return [
    { name: 'f32', shape: [3, 5], type: GgmlType.F32, data: randomFloats(15, 1) },
    { name: 'f16', shape: [2, 2, 8], type: GgmlType.F16, data: () => randomFloats(32, 2, 100) },
    { name: 'bf16', shape: [2, 16], type: GgmlType.BF16, data: async () => randomFloats(32, 3) },
    { name: 'q8', shape: [4, 64], type: GgmlType.Q8_0, data: q8Data() },
    { name: 'q8src', shape: [4, 64], type: GgmlType.F32, data: q8Data() },
    { name: 'raw.q4_1', shape: [1, 32], type: GgmlType.Q4_1, raw: Uint8Array.from({ length: 20 }, (_, i) => (i < 4 ? [0, 0x38, 0, 0xbc][i] : i * 13)) },
  ];
}

function checkMetadata(file: GgufFile): void {
  assert.deepEqual([...file.metadata.keys()], EXPECTED_METADATA.map(([k]) => k), 'key order');
  for (const [key, type, itemType, value] of EXPECTED_METADATA) {
    assert.deepEqual(file.metadataTypes.get(key), itemType === undefined ? { type } : { type, itemType }, key);
    assert.deepEqual(file.metadata.get(key), value, key);
  }
}

test('our reader reads our writer: metadata of every type, F32/F16/BF16/Q8_0 and raw tensors, non-default alignment', () => withDir(async (dir) => {
  const path = join(dir, 'all.gguf');
  await writeGguf(path, everyValueType(), testTensors());
  const file = await openGguf(path);
  assert.equal(file.version, 3);
  assert.equal(file.alignment, 64);
  checkMetadata(file);
  assert.deepEqual(file.tensors.map((t) => [t.name, ggmlTypeName(t.type), t.shape, t.ne]), [
    ['f32', 'F32', [3, 5], [5, 3]], ['f16', 'F16', [2, 2, 8], [8, 2, 2]], ['bf16', 'BF16', [2, 16], [16, 2]],
    ['q8', 'Q8_0', [4, 64], [64, 4]], ['q8src', 'F32', [4, 64], [64, 4]], ['raw.q4_1', 'Q4_1', [1, 32], [32, 1]],
  ]);
  assert.ok(file.tensors.every((t) => (t.offset - file.dataOffset) % 64 === 0 && file.dataOffset % 64 === 0), 'aligned to 64');

  const read = async (name: string): Promise<Float32Array> => readGgufTensor(file, file.tensors.find((t) => t.name === name)!);
  bitsEqual(await read('f32'), randomFloats(15, 1), 'f32');
  assert.deepEqual([...await read('f16')], [...randomFloats(32, 2, 100)].map((x) => f16ToF32(f32ToF16(x))));
  const bf16 = await read('bf16');
  randomFloats(32, 3).forEach((x, i) => assert.ok(Math.abs(bf16[i] - x) <= Math.abs(x) * 2 ** -8, `bf16 ${i}`));
  // Q8_0: within half a quantization step of each block, plus what rounding d to f16 adds.
  const src = q8Data(), q8 = await read('q8');
  for (let b = 0; b < src.length / 32; b++) {
    const d = Math.max(...src.subarray(b * 32, b * 32 + 32).map(Math.abs)) / 127;
    const bound = 0.5 * d + 127 * Math.abs(d - f16ToF32(f32ToF16(d))) + 1e-12;
    for (let i = b * 32; i < b * 32 + 32; i++) assert.ok(Math.abs(q8[i] - src[i]) <= bound, `q8 ${i}: ${q8[i]} vs ${src[i]}`);
  }
  // The exact halves rounded away from zero (d = 1 in that block).
  assert.deepEqual([...q8.subarray(96, 105)], [127, 1, 2, 3, -1, -2, -3, 127, -127]);
  assert.deepEqual([...q8.subarray(64, 96)], new Array(32).fill(0));
  const raw = testTensors()[5] as GgufRawTensorToWrite;
  assert.deepEqual(await readGgufTensorRaw(file, file.tensors[5]), raw.raw);

  // Rewriting with typedMetadata keeps every type.
  const again = join(dir, 'again.gguf');
  await writeGguf(again, typedMetadata(file), []);
  checkMetadata(await openGguf(again));
}));

test('metadata getters: values, fallbacks, and one sentence for an absent or mistyped key', () => withDir(async (dir) => {
  const path = join(dir, 'm.gguf');
  await writeGguf(path, everyValueType(), []);
  const f = await openGguf(path);
  assert.equal(metaString(f, 'general.architecture'), 'llama');
  assert.equal(metaNumber(f, 'k.u32'), 0xffffffff);
  assert.equal(metaNumber(f, 'k.inferred.big'), 5);
  assert.equal(metaBool(f, 'k.bool'), false);
  assert.deepEqual(metaStringArray(f, 'k.strings'), ['<|endoftext|>', 'Ġthe', '', 'é']);
  assert.deepEqual(metaNumberArray(f, 'k.u64s'), [0, 2 ** 40]);
  assert.deepEqual(metaArray(f, 'k.bools'), [true, false]);
  assert.equal(metaNumber(f, 'absent', undefined), undefined);
  assert.deepEqual(metaStringArray(f, 'absent', []), []);
  assert.throws(() => metaString(f, 'absent'), new RegExp(`^Error: ${path} has no metadata "absent"\\.$`));
  assert.throws(() => metaString(f, 'k.u32'), /metadata "k\.u32" is u32, not a string\./);
  assert.throws(() => metaNumber(f, 'k.string', 0), /metadata "k\.string" is string, not a number\./);
  assert.throws(() => metaNumber(f, 'k.u64'), /is 18446744073709551615, too large for a number/);
  assert.throws(() => metaStringArray(f, 'k.i32s'), /metadata "k\.i32s" is array of i32, not an array of string\./);
  assert.throws(() => metaNumberArray(f, 'k.strings'), /is array of string, not an array of numbers/);
  assert.throws(() => metaBool(f, 'k.u8'), /is u8, not a bool/);
}));

test('the writer streams: lazy tensors are produced one at a time, in order', () => withDir(async (dir) => {
  const log: string[] = [];
  const lazy = (name: string): GgufTensorToWrite => ({ name, shape: [32], type: GgmlType.Q8_0, data: () => (log.push(name), randomFloats(32, 9)) });
  async function* tensors(): AsyncGenerator<GgufTensorToWrite> {
    for (const n of ['a', 'b', 'c']) yield lazy(n);
  }
  await writeGguf(join(dir, 'lazy.gguf'), {}, tensors());
  assert.deepEqual(log, ['a', 'b', 'c']);
  const f = await openGguf(join(dir, 'lazy.gguf'));
  assert.equal(f.metadata.size, 0);
  assert.deepEqual(f.tensors.map((t) => t.name), ['a', 'b', 'c']);
}));

test('the writer refuses what llama.cpp could not read, and a failed write leaves no file', () => withDir(async (dir) => {
  const path = join(dir, 'bad.gguf');
  const t = (over: Partial<GgufTensorToWrite>): GgufTensorToWrite => ({ name: 'w', shape: [2, 32], type: GgmlType.Q8_0, data: new Float32Array(64), ...over });
  const refuses = async (metadata: GgufMetadataInput, tensors: (GgufTensorToWrite | GgufRawTensorToWrite)[], re: RegExp): Promise<void> => {
    await assert.rejects(writeGguf(path, metadata, tensors), re);
    assert.deepEqual(await readdir(dir), [], 'no file and no temp file left');
  };
  await refuses({}, [t({}), t({})], /tensor w is given twice/);
  await refuses({}, [t({ name: 'x'.repeat(64) })], /longer than ggml's 63 bytes/);
  await refuses({}, [t({ shape: [0, 32] })], /has shape \[0, 32\]; GGUF tensors have 1 to 4 dimensions, each at least 1/);
  await refuses({}, [t({ shape: [1, 1, 1, 2, 32] })], /1 to 4 dimensions/);
  await refuses({}, [t({ shape: [3, 48], data: new Float32Array(144) })], /tensor w has rows of 48 values, not a multiple of Q8_0's block of 32/);
  await refuses({}, [t({ data: () => new Float32Array(63) })], /tensor w has shape \[2, 32\] \(64 values\), but 63 float32 values were given/);
  await refuses({}, [{ name: 'k', shape: [256], type: GgmlType.Q4_K as GgmlType.Q8_0, data: new Float32Array(256) }], /tensor k is Q4_K, which the writer cannot encode from float32 values .*; pass its bytes as raw/);
  await refuses({}, [{ name: 'r', shape: [32], type: GgmlType.Q4_0, raw: new Uint8Array(17) }], /tensor r \(Q4_0, shape \[32\]\) needs 18 bytes, but 17 were given/);
  await refuses({ 'k.u8': gguf.u8(256) }, [], /metadata "k\.u8" is 256, not a u8 \(an integer from 0 to 255\)/);
  await refuses({ 'k.u32': gguf.u32(-1) }, [], /not a u32/);
  await refuses({ 'k.i32': gguf.i32(1.5) }, [], /not a i32/);
  await refuses({ 'k.s': gguf.string(5 as unknown as string) }, [], /metadata "k\.s" is 5, not a string/);
  await refuses({ 'k.e': [] }, [], /metadata "k\.e" is an empty array, whose item type cannot be told/);
  await refuses({ 'k.m': [1, 'a'] }, [], /metadata "k\.m" mixes number and string items/);
  await refuses({ 'k.f': gguf.f32s([1, 'x']) }, [], /metadata "k\.f", item 1, is "x", not a f32/);
  await refuses({ 'general.alignment': gguf.u32(48) }, [], /general\.alignment must be a power of two stored as u32/);
  assert.deepEqual(await readdir(dir), []);
}));

// ---- Corrupt files: one sentence each, naming the file ----

const ALPHA = 'tensor.alpha', BETA = 'tensor.beta_';

/** A small valid file, and where its fields are, to corrupt them one at a time. */
async function baseFile(dir: string): Promise<{ bytes: Buffer; at: Record<string, number> }> {
  const path = join(dir, 'base.gguf');
  await writeGguf(path, { 'general.architecture': 'test', 'k.strs': gguf.strings(['ab', 'cd']) }, [
    { name: ALPHA, shape: [2, 64], type: GgmlType.Q8_0, data: randomFloats(128, 4) },
    { name: BETA, shape: [4], type: GgmlType.F32, data: randomFloats(4, 5) },
  ]);
  const bytes = await readFile(path);
  const key = (s: string): number => bytes.indexOf(s) + s.length; // just past a key or name
  const alpha = key(ALPHA), beta = key(BETA);
  return {
    bytes,
    at: {
      archType: key('general.architecture'),
      archLen: key('general.architecture') + 4,
      strsItemType: key('k.strs') + 4,
      strsCount: key('k.strs') + 8,
      cd: bytes.indexOf('cd'),
      alphaName: alpha - ALPHA.length,
      alphaDims: alpha,
      alphaNe0: alpha + 4,
      alphaNe1: alpha + 12,
      alphaType: alpha + 20,
      betaName: beta - BETA.length,
      betaOffset: beta + 4 + 8 + 4,
      betaData: 0, // filled below
    },
  };
}

test('corrupt and unsupported files are refused with one sentence naming the file', () => withDir(async (dir) => {
  const { bytes, at } = await baseFile(dir);
  const good = await openGguf(join(dir, 'base.gguf'));
  at.betaData = good.tensors[1].offset;
  let n = 0;
  const refuses = async (mutate: (b: Buffer) => Buffer | void, re: RegExp): Promise<void> => {
    const copy = Buffer.from(bytes);
    const path = join(dir, `bad-${++n}.gguf`);
    await writeFile(path, mutate(copy) ?? copy);
    await assert.rejects(openGguf(path), (err: Error) => {
      assert.match(err.message, re);
      assert.ok(err.message.includes(path), `names the file: ${err.message}`);
      assert.equal(err.message.split('. ').length, 1, `one sentence: ${err.message}`);
      return true;
    });
  };
  await refuses((b) => void b.write('GGML', 0), /is not a GGUF file \(it does not start with "GGUF"\)/);
  await refuses((b) => b.subarray(0, 2), /is not a GGUF file \(it has only 2 bytes\)/);
  await refuses((b) => void b.writeUInt32LE(1, 4), /is GGUF version 1, which AfD Studio does not read; convert the model again/);
  await refuses((b) => void b.writeUInt32LE(4, 4), /is GGUF version 4, which AfD Studio does not read \(it reads versions 2 and 3\)/);
  await refuses((b) => void b.writeUInt32BE(3, 4), /is a big-endian GGUF file/);
  await refuses((b) => b.subarray(0, 20), /is truncated: the header needs 20 bytes at byte 4/);
  await refuses((b) => b.subarray(0, at.cd + 1), /is truncated: metadata "k\.strs" needs 2 bytes/);
  await refuses((b) => b.subarray(0, at.alphaNe1), /is truncated: the table entry of tensor tensor\.alpha/);
  await refuses((b) => b.subarray(0, at.betaData + 8), /is truncated: tensor tensor\.beta_'s data \(16 bytes at byte \d+\) ends past the end of the file/);
  await refuses((b) => void b.writeBigUInt64LE(2n ** 40n, 8), /is corrupt: the tensor count is 1099511627776, more than its remaining \d+ bytes can hold/);
  await refuses((b) => void b.writeBigUInt64LE(2n ** 60n, 16), /is corrupt: the metadata count is/);
  await refuses((b) => void b.writeBigUInt64LE(2n ** 50n, at.strsCount), /is corrupt: the length of metadata "k\.strs" is 1125899906842624, more than its remaining \d+ bytes can hold/);
  await refuses((b) => void b.writeBigUInt64LE(2n ** 33n, at.archLen), /is corrupt: the length of metadata "general\.architecture" is 8589934592/);
  await refuses((b) => void b.writeUInt32LE(13, at.archType), /is corrupt: metadata "general\.architecture" has value type 13, which GGUF does not define/);
  await refuses((b) => void b.writeUInt32LE(GgufValueType.ARRAY, at.strsItemType), /has nested arrays in metadata "k\.strs"/);
  await refuses((b) => void b.writeUInt32LE(5, at.alphaDims), /tensor tensor\.alpha has 5 dimensions \(ggml allows at most 4\)/);
  await refuses((b) => void b.writeUInt32LE(99, at.alphaType), /tensor tensor\.alpha has type id 99, which is not a ggml type AfD Studio knows/);
  await refuses((b) => void b.writeBigUInt64LE(2n ** 60n, at.alphaNe1), /is corrupt: dimension 1 of tensor tensor\.alpha is 1152921504606846976, beyond any real tensor/);
  await refuses((b) => void b.writeBigUInt64LE(2n ** 40n, at.alphaNe1), /is truncated: tensor tensor\.alpha's data \(74766790688768 bytes at byte \d+\) ends past the end of the file/);
  await refuses((b) => void b.writeBigUInt64LE(48n, at.alphaNe0), /tensor tensor\.alpha has rows of 48 values, not a multiple of Q8_0's block of 32/);
  // Sizes follow from shape and type: beta moved into alpha's 136 bytes.
  await refuses((b) => void b.writeBigUInt64LE(128n, at.betaOffset), /tensor tensor\.alpha \(Q8_0, shape \[2, 64\]\) needs 136 bytes, but tensor tensor\.beta_ starts 128 bytes after it/);
  await refuses((b) => void b.write(ALPHA, at.betaName), /tensor tensor\.alpha appears twice in its tensor table/);
  await refuses((b) => void b.writeBigUInt64LE(BigInt(b.readBigUInt64LE(at.betaOffset)) + 4n, at.betaOffset), /tensor tensor\.beta_'s data offset \d+ is not a multiple of the alignment 32/);

  // Version 2 has the same layout (64-bit counts) and is read.
  const v2 = Buffer.from(bytes);
  v2.writeUInt32LE(2, 4);
  await writeFile(join(dir, 'v2.gguf'), v2);
  assert.equal((await openGguf(join(dir, 'v2.gguf'))).version, 2);
}));

test('a tensor of a type ggml knows but AfD Studio cannot dequantize opens, and reading it names the tensor and the type', () => withDir(async (dir) => {
  const path = join(dir, 'iq.gguf');
  await writeGguf(path, {}, [
    { name: 'ok', shape: [32], type: GgmlType.F32, data: new Float32Array(32) },
    { name: 'blk.0.attn_q.weight', shape: [2, 256], type: GgmlType.IQ2_XXS, raw: new Uint8Array(2 * 66) },
  ]);
  const f = await openGguf(path);
  const re = new RegExp(`${path}: tensor blk\\.0\\.attn_q\\.weight is IQ2_XXS, which AfD Studio cannot dequantize; supported: F32, F16, Q4_0, .*BF16\\.$`);
  await assert.rejects(readGgufTensor(f, f.tensors[1]), re);
  assert.throws(() => assertDequantizable(f), re);
  assert.equal((await readGgufTensorRaw(f, f.tensors[1])).length, 132);
}));

// ---- Against gguf-py ----

const pySkip = pythonSkip(['gguf', 'numpy'], 'gguf-py oracle tests');

test('every type dequantizes bit for bit as gguf-py does, from random valid blocks', { skip: pySkip }, () => withDir(async (dir) => {
  const quants = join(dir, 'quants.gguf'), ref = join(dir, 'ref.gguf');
  runPython('gguf_oracle.py', ['make-quants', quants, ref, '20261204']);
  const q = await openGguf(quants), r = await openGguf(ref);
  assert.deepEqual(q.tensors.map((t) => t.name), r.tensors.map((t) => t.name));
  // Every type we dequantize is covered, except those gguf-py has no dequantizer for.
  const covered = new Set(q.tensors.map((t) => t.type));
  assert.deepEqual(DEQUANTIZABLE.filter((t) => !covered.has(t)).map(ggmlTypeName), ['Q8_K', 'F64']);
  for (let i = 0; i < q.tensors.length; i++) {
    assert.deepEqual(q.tensors[i].shape, r.tensors[i].shape, q.tensors[i].name);
    bitsEqual(await readGgufTensor(q, q.tensors[i]), await readGgufTensor(r, r.tensors[i]), q.tensors[i].name);
  }
}));

interface PyTensor { name: string; type: string; shape: number[]; offset: number; values?: string; raw?: string; q8?: string; sha256?: string }
interface PyFile { version: number; alignment: number; metadata: Record<string, { types: string[]; value: unknown }>; tensors: PyTensor[] }

const fromB64 = (s: string): Buffer => Buffer.from(s, 'base64');
const floatsFromB64 = (s: string): Float32Array => {
  const b = fromB64(s);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
};

/** Our metadata as gguf-py's JSON shows it: type names, 64-bit integers as strings. */
function asPy(file: GgufFile): PyFile['metadata'] {
  const out: PyFile['metadata'] = {};
  const str = (v: unknown): unknown => (typeof v === 'bigint' ? String(v) : Array.isArray(v) ? v.map(str) : v);
  for (const [key, value] of file.metadata) {
    const t = file.metadataTypes.get(key)!;
    // gguf-py lists an array's item type only when it has items.
    const itemTypes = t.itemType === undefined || (value as unknown[]).length === 0 ? [] : [GgufValueType[t.itemType]];
    out[key] = { types: [GgufValueType[t.type], ...itemTypes], value: str(value) };
  }
  return out;
}

test('gguf-py reads our files: metadata and types, tensors, and our Q8_0 equals gguf-py quantize byte for byte', { skip: pySkip }, () => withDir(async (dir) => {
  const path = join(dir, 'ours.gguf');
  await writeGguf(path, everyValueType(), testTensors());
  const ours = await openGguf(path);
  const names = ours.tensors.map((t) => t.name);
  const py = JSON.parse(runPython('gguf_oracle.py', ['read', path, '--tensors', names.join(','), '--raw', '--quantize-q8', 'q8src'])) as PyFile;
  assert.equal(py.version, 3);
  assert.equal(py.alignment, 64);
  assert.deepEqual(py.metadata, asPy(ours));
  assert.deepEqual(py.tensors.map((t) => [t.name, t.type, t.shape, t.offset]), ours.tensors.map((t) => [t.name, ggmlTypeName(t.type), t.shape, t.offset]));
  for (const [i, t] of py.tensors.entries()) {
    assert.deepEqual(fromB64(t.raw!), Buffer.from(await readGgufTensorRaw(ours, ours.tensors[i])), `${t.name} bytes`);
    bitsEqual(await readGgufTensor(ours, ours.tensors[i]), floatsFromB64(t.values!), `${t.name} values`);
  }
  const q8 = py.tensors.find((t) => t.name === 'q8src')!.q8!;
  assert.deepEqual(fromB64(py.tensors.find((t) => t.name === 'q8')!.raw!), fromB64(q8), 'Q8_0 quantization');
}));

test('SmolLM2-135M-Instruct Q4_1: the table, metadata and dequantized tensors of each type equal gguf-py\'s', { skip: pySkip || smollm2Skip() }, async (t) => {
  const path = smollm2GgufPath();
  let start = performance.now();
  const file = await openGguf(path);
  const openMs = performance.now() - start;
  const picks = ['token_embd.weight', 'blk.0.attn_q.weight', 'blk.17.ffn_down.weight', 'blk.29.attn_v.weight', 'blk.0.attn_norm.weight', 'output_norm.weight'];
  const py = JSON.parse(runPython('gguf_oracle.py', ['read', path, '--tensors', picks.join(','), '--hash'], 120_000)) as PyFile;
  assert.equal(file.tensors.length, py.tensors.length);
  assert.equal(file.tensors.length, 272);
  assert.deepEqual(file.tensors.map((x) => [x.name, ggmlTypeName(x.type), x.shape, x.offset]), py.tensors.map((x) => [x.name, x.type, x.shape, x.offset]));
  assert.deepEqual(asPy(file), py.metadata);
  const types = new Map(file.tensors.map((x) => [x.name, ggmlTypeName(x.type)]));
  assert.equal(types.get('token_embd.weight'), 'Q8_0');
  assert.deepEqual(new Set(types.values()), new Set(['Q8_0', 'Q4_1', 'F32']));
  for (const name of picks) {
    const values = await readGgufTensor(file, file.tensors.find((x) => x.name === name)!);
    const hash = createHash('sha256').update(new Uint8Array(values.buffer, values.byteOffset, values.byteLength)).digest('hex');
    assert.equal(hash, py.tensors.find((x) => x.name === name)!.sha256, `${name} (${types.get(name)})`);
  }
  // Speed: every tensor read and dequantized, one at a time.
  start = performance.now();
  for (const x of file.tensors) await readGgufTensor(file, x);
  t.diagnostic(`open ${openMs.toFixed(0)} ms (metadata: ${file.metadata.size} keys, 49152 tokens); read + dequantize all ${file.tensors.length} tensors ${(performance.now() - start).toFixed(0)} ms`);
});

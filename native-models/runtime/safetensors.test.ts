import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  asBigInt64, asFloat32, asFloat64, asInt32, encodeSafetensors, fromFloat32, parseSafetensors, readSafetensors,
  tensorOf, toFloat32, writeSafetensors,
} from './safetensors.ts';
import type { NamedTensor, SafeDType } from './safetensors.ts';
import { f32ToBf16, f32ToF16 } from './float16.ts';
import { pythonSkip } from '../../test/python/oracle.ts';
import { withTempDir } from '../../test/support/temp-dir.ts';

const here = dirname(fileURLToPath(import.meta.url));

const withDir = (fn: (dir: string) => Promise<void>): Promise<void> => withTempDir('safetensors', fn);

// One tensor of every dtype, plus a scalar, an empty tensor and awkward names.
function sample(): Map<string, NamedTensor> {
  const m = new Map<string, NamedTensor>();
  m.set('layer.0.weight', tensorOf('F32', [2, 3], new Float32Array([1, -2.5, 3e-8, NaN, Infinity, -0])));
  m.set('f64', tensorOf('F64', [3], new Float64Array([Math.PI, -1e300, 5e-324])));
  m.set('f16', tensorOf('F16', [2, 2], new Uint16Array([0x3c00, 0x8001, 0x7bff, 0x7e00])));
  m.set('bf16', tensorOf('BF16', [3], new Uint16Array([0x3f80, 0xff80, 0x0001])));
  m.set('i64', tensorOf('I64', [2], new BigInt64Array([-(2n ** 63n), 2n ** 62n + 7n])));
  m.set('i32', tensorOf('I32', [1, 2], new Int32Array([-7, 2 ** 31 - 1])));
  m.set('i8', tensorOf('I8', [3], new Int8Array([-128, 0, 127])));
  m.set('u8', tensorOf('U8', [2], new Uint8Array([0, 255])));
  m.set('mask', tensorOf('BOOL', [4], new Uint8Array([1, 0, 0, 1])));
  m.set('scalar', tensorOf('F32', [], new Float32Array([42])));
  m.set('empty', tensorOf('I32', [0, 3], new Int32Array(0)));
  m.set('0', tensorOf('U8', [1], new Uint8Array([9])));
  m.set('ünïcode.名前', tensorOf('F16', [1], new Uint16Array([0x4000])));
  return m;
}

function assertSameTensors(actual: Map<string, NamedTensor>, expected: Map<string, NamedTensor>): void {
  assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort());
  for (const [name, e] of expected) {
    const a = actual.get(name)!;
    assert.equal(a.dtype, e.dtype, name);
    assert.deepEqual(a.shape, e.shape, name);
    assert.deepEqual(Buffer.from(a.data), Buffer.from(e.data), name);
  }
}

test('round trip of every dtype with metadata, through a file and in memory', () => withDir(async (dir) => {
  const path = join(dir, 'model.safetensors');
  const metadata = { format: 'pt', note: 'héllo "quoted"\n', '1': 'integer-like key' };
  await writeSafetensors(path, sample(), metadata);
  const fromFile = await readSafetensors(path);
  assertSameTensors(fromFile.tensors, sample());
  assert.deepEqual(fromFile.metadata, metadata);
  const bytes = new Uint8Array(await readFile(path));
  assert.deepEqual(Buffer.from(encodeSafetensors(sample(), metadata)), Buffer.from(bytes));
  const inMemory = parseSafetensors(bytes);
  assertSameTensors(inMemory.tensors, sample());
  // Header length is a multiple of 8, so the data are aligned for typed views.
  assert.equal(Number(new DataView(bytes.buffer).getBigUint64(0, true)) % 8, 0);
  assert.deepEqual(await readdir(dir), ['model.safetensors']);
  // A record works like a map; no metadata reads back as {}.
  await writeSafetensors(path, { only: tensorOf('U8', [1], new Uint8Array([3])) });
  assert.deepEqual((await readSafetensors(path)).metadata, {});
}));

test('typed views and float conversions', () => {
  const t = sample();
  assert.deepEqual([...asFloat32(t.get('scalar')!)], [42]);
  assert.deepEqual([...asFloat64(t.get('f64')!)], [Math.PI, -1e300, 5e-324]);
  assert.deepEqual([...asBigInt64(t.get('i64')!)], [-(2n ** 63n), 2n ** 62n + 7n]);
  assert.deepEqual([...asInt32(t.get('i32')!)], [-7, 2 ** 31 - 1]);
  assert.throws(() => asFloat32(t.get('f16')!), /Expected a tensor of dtype F32, got F16 \(toFloat32 converts\)/);
  assert.deepEqual([...toFloat32(t.get('f16')!)], [1, -(2 ** -24), 65504, NaN]);
  assert.deepEqual([...toFloat32(t.get('bf16')!)], [1, -Infinity, 2 ** -133]);
  assert.deepEqual([...toFloat32(t.get('f64')!)], [Math.fround(Math.PI), -Infinity, 0]);
  assert.throws(() => toFloat32(t.get('i8')!), /float tensors only, not I8/);
  // A view writes through; misaligned data are copied instead.
  const f = t.get('layer.0.weight')!;
  asFloat32(f)[0] = 7;
  assert.equal(asFloat32(f)[0], 7);
  const odd = new Uint8Array(9).subarray(1);
  odd.set(new Uint8Array(new Float32Array([1.5, 2.5]).buffer));
  assert.deepEqual([...asFloat32({ dtype: 'F32', shape: [2], data: odd })], [1.5, 2.5]);
  const values = new Float32Array([1, 1 / 3, -70000]);
  assert.deepEqual([...new Uint16Array(fromFloat32(values, [3], 'F16').data.buffer)], [...values].map(f32ToF16));
  assert.deepEqual([...new Uint16Array(fromFloat32(values, [3], 'BF16').data.buffer)], [...values].map(f32ToBf16));
  assert.equal(fromFloat32(values, [3]).data.buffer, values.buffer);
  assert.throws(() => tensorOf('F32', [2], new Float32Array(3)), /Shape \[2\] of F32 needs 8 bytes, but the values have 12/);
});

// ------------------------------------------------------------ Python's safetensors

const skip = pythonSkip(['safetensors'], 'Python safetensors comparison');

type Described = { tensors: { name: string; dtype: SafeDType; shape: number[]; data: string }[]; metadata: Record<string, string> | null };

function interop(args: string[]): string {
  const r = spawnSync('python3', [join(here, 'safetensors_interop.py'), ...args], { encoding: 'utf8' });
  assert.equal(r.status, 0, `python3 safetensors_interop.py ${args[0]} failed: ${r.stderr}`);
  return r.stdout;
}

test('byte-identical to Python safetensors, and each reads the other', { skip }, () => withDir(async (dir) => {
  // One metadata key only: Python orders several keys by hash.
  const metadata = { format: 'pt' };
  const spec: Described = {
    tensors: [...sample()].map(([name, t]) => ({ name, dtype: t.dtype, shape: t.shape, data: Buffer.from(t.data).toString('base64') })),
    metadata,
  };
  await writeFile(join(dir, 'spec.json'), JSON.stringify(spec));
  const pyFile = join(dir, 'py.safetensors');
  interop(['write', join(dir, 'spec.json'), pyFile]);
  const tsFile = join(dir, 'ts.safetensors');
  await writeSafetensors(tsFile, sample(), metadata);
  assert.deepEqual(await readFile(tsFile), await readFile(pyFile), 'our bytes differ from Python safetensors');

  const fromPy = await readSafetensors(pyFile);
  assertSameTensors(fromPy.tensors, sample());
  assert.deepEqual(fromPy.metadata, metadata);

  const multi = { a: '1', b: 'two', c: 'ünï' };
  await writeSafetensors(tsFile, sample(), multi);
  const seen = JSON.parse(interop(['read', tsFile])) as Described;
  assert.deepEqual(seen.metadata, multi);
  const back = new Map(seen.tensors.map((t) => [t.name, { dtype: t.dtype, shape: t.shape, data: new Uint8Array(Buffer.from(t.data, 'base64')) }]));
  assertSameTensors(back, sample());
}));

// ------------------------------------------------------------ corrupt files

function fileWithHeader(header: string, dataBytes: number, lengthField?: bigint): Uint8Array {
  const json = Buffer.from(header);
  const out = Buffer.alloc(8 + json.byteLength + dataBytes);
  out.writeBigUInt64LE(lengthField ?? BigInt(json.byteLength), 0);
  json.copy(out, 8);
  return out;
}

test('corrupt or truncated files are refused with sentences naming the file and tensor', () => withDir(async (dir) => {
  const good = encodeSafetensors(sample(), { format: 'pt' });
  const cases: [string, Uint8Array, RegExp][] = [
    ['tiny', good.subarray(0, 5), /tiny\.st is not a safetensors file: it is 5 bytes long, shorter than the 8-byte header length/],
    ['empty', new Uint8Array(0), /empty\.st is not a safetensors file: it is 0 bytes long/],
    ['cut-header', good.subarray(0, 40), /cut-header\.st is truncated or not a safetensors file: its header length says \d+ bytes, but only 32 bytes follow/],
    ['huge-length', fileWithHeader('{}', 0, 2n ** 64n - 1n), /huge-length\.st is truncated .*18446744073709551615 bytes/],
    ['cut-data', good.subarray(0, good.byteLength - 3), /tensor "[^"]+" in \S*cut-data\.st has data_offsets \[\d+, \d+\] beyond the \d+ bytes of data in the file \(the file is truncated or corrupt\)/],
    ['bad-json', fileWithHeader('{"a": {"dtype": "F32",', 0), /bad-json\.st is corrupt or not a safetensors file: its header is not valid JSON/],
    ['not-object', fileWithHeader('[1, 2]  ', 0), /not-object\.st .*header is not a JSON object/],
    ['bad-utf8', Buffer.concat([fileWithHeader('{"a"', 0, 5n), Buffer.from([0xff])]), /bad-utf8\.st .*not valid JSON/],
    ['dtype', fileWithHeader('{"w":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}}', 2), /tensor "w" in \S*dtype\.st has dtype "F8_E4M3", which AfD Studio cannot read \(supported: F64, I64, F32/],
    ['proto', fileWithHeader('{"w":{"dtype":"constructor","shape":[2],"data_offsets":[0,2]}}', 2), /tensor "w" in \S*proto\.st has dtype "constructor"/],
    ['size', fileWithHeader('{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,20]}}', 24), /tensor "w" in \S*size\.st has shape \[2, 3\] of F32, which needs 24 bytes, but its data_offsets \[0, 20\] span 20/],
    ['overlap', fileWithHeader('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', 8), /tensors "a" and "b" in \S*overlap\.st overlap \(data_offsets \[0, 8\] and \[4, 8\]\)/],
    ['offsets', fileWithHeader('{"a":{"dtype":"U8","shape":[1],"data_offsets":[3,2]}}', 4), /tensor "a" in \S*offsets\.st has invalid data_offsets \[3,2\]/],
    ['shape', fileWithHeader('{"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}}', 1), /tensor "a" in \S*shape\.st has an invalid shape \[-1\]/],
    ['meta', fileWithHeader('{"__metadata__":{"n":1}}', 0), /meta\.st is corrupt: its __metadata__ is not a map of strings/],
  ];
  for (const [name, bytes, message] of cases) {
    const path = join(dir, `${name}.st`);
    await writeFile(path, bytes);
    await assert.rejects(readSafetensors(path), message, `file ${name}`);
    assert.throws(() => parseSafetensors(bytes, `${name}.st`), message, `bytes ${name}`);
  }
  await assert.rejects(readSafetensors(join(dir, 'absent.st')), /Could not open .*absent\.st: ENOENT/);
  // Empty tensors may share an offset with anything; that is not an overlap.
  const empties = fileWithHeader('{"a":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', 1);
  assert.deepEqual([...parseSafetensors(empties).tensors.keys()], ['a', 'b']);
}));

// ------------------------------------------------------------ failed writes

test('a write that fails midway keeps the previous file and leaves no temp file', () => withDir(async (dir) => {
  const path = join(dir, 'model.safetensors');
  await writeSafetensors(path, sample(), { version: '1' });
  const before = await readFile(path);

  const throwing = new Map(sample());
  const exploding: NamedTensor = {
    dtype: 'F32', shape: [1],
    get data(): Uint8Array { throw new Error('device lost while copying "z"'); },
  };
  throwing.set('z', exploding);
  await assert.rejects(writeSafetensors(path, throwing), /device lost/);

  const wrongSize = new Map(sample());
  wrongSize.set('w', { dtype: 'F32', shape: [4], data: new Uint8Array(12) });
  await assert.rejects(writeSafetensors(path, wrongSize), /Cannot write .*model\.safetensors: tensor "w" has shape \[4\] of F32, which needs 16 bytes, but its data has 12/);

  await assert.rejects(writeSafetensors(path, { __metadata__: tensorOf('U8', [0], new Uint8Array(0)) }), /"__metadata__" is not a valid tensor name/);

  assert.deepEqual(await readFile(path), before);
  assert.deepEqual(await readdir(dir), ['model.safetensors']);
}));

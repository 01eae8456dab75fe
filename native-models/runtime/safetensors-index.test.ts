// The header-only index of a safetensors file: each tensor's bytes where the reader finds
// them, and malformed files refused naming the file.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { withTempDir } from '../../test/support/temp-dir.ts';
import { indexSafetensors } from './safetensors-index.ts';
import { fromFloat32, readSafetensors, writeSafetensors, type NamedTensor } from './safetensors.ts';

test('the index locates every tensor\'s bytes as the reader reads them', () => withTempDir('st-index', async (dir) => {
  const path = join(dir, 'm.safetensors');
  const tensors = new Map<string, NamedTensor>([
    ['a', fromFloat32(Float32Array.from({ length: 6 }, (_, i) => i + 0.5), [2, 3])],
    ['b', fromFloat32(Float32Array.of(7), [1], 'F16')],
    ['empty', fromFloat32(new Float32Array(0), [0, 4])],
    ['c', fromFloat32(Float32Array.from({ length: 5 }, (_, i) => -i), [5])],
  ]);
  await writeSafetensors(path, tensors, { format: 'pt' });
  const index = await indexSafetensors(path);
  const bytes = await readFile(path);
  const read = (await readSafetensors(path)).tensors;
  assert.deepEqual([...index.tensors.keys()].sort(), ['a', 'b', 'c', 'empty']);
  assert.equal(index.size, bytes.length);
  for (const [name, t] of index.tensors) {
    const want = read.get(name)!;
    assert.equal(t.dtype, want.dtype, name);
    assert.deepEqual(t.shape, want.shape, name);
    assert.deepEqual(new Uint8Array(bytes.subarray(t.offset, t.offset + t.length)), new Uint8Array(want.data), name);
  }
}));

test('a truncated, corrupt or too short file is refused naming the file', () => withTempDir('st-index-bad', async (dir) => {
  const good = join(dir, 'good.safetensors');
  await writeSafetensors(good, new Map([['w', fromFloat32(new Float32Array(64), [8, 8])]]));
  const bytes = await readFile(good);
  const bad = join(dir, 'bad.safetensors');
  await writeFile(bad, bytes.subarray(0, bytes.length - 4));
  await assert.rejects(indexSafetensors(bad), /tensor "w" in .*bad.safetensors lies beyond the end of the file/);
  await writeFile(bad, bytes.subarray(0, 5));
  await assert.rejects(indexSafetensors(bad), /bad.safetensors is not a safetensors file: it is 5 bytes long/);
  const header = Buffer.from('{"w": {"dtype": "F32", "shape": [8, 8], "data_offsets": [0, 100]}}');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(header.length));
  await writeFile(bad, Buffer.concat([prefix, header, Buffer.alloc(256)]));
  await assert.rejects(indexSafetensors(bad), /shape \[8, 8\] of F32, which needs 256 bytes, but its data_offsets \[0, 100\] span 100/);
  await writeFile(bad, Buffer.concat([prefix, Buffer.from('{"w": ['.padEnd(header.length))]));
  await assert.rejects(indexSafetensors(bad), /bad.safetensors is corrupt or not a safetensors file: its header is not valid JSON/);
  await assert.rejects(indexSafetensors(join(dir, 'none.safetensors')), /Could not open .*none.safetensors/);
}));

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from './atomic-file.ts';
import { withTempDir } from '../../test/support/temp-dir.ts';

const withDir = (fn: (dir: string) => Promise<void>): Promise<void> => withTempDir('atomic', fn);

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

test('writes a new file and replaces an existing one, leaving no temp file', () => withDir(async (dir) => {
  const target = join(dir, 'weights.bin');
  await writeFileAtomic(target, bytes('first'));
  assert.equal(await readFile(target, 'utf8'), 'first');
  await writeFileAtomic(target, [bytes('sec'), bytes(''), bytes('ond')]);
  assert.equal(await readFile(target, 'utf8'), 'second');
  assert.deepEqual(await readdir(dir), ['weights.bin']);
}));

test('a failure midway leaves the old file intact and no temp file behind', () => withDir(async (dir) => {
  const target = join(dir, 'weights.bin');
  await writeFile(target, 'old');
  function* chunks(): Generator<Uint8Array> {
    yield bytes('new data that never lands');
    throw new Error('producer failed');
  }
  await assert.rejects(writeFileAtomic(target, chunks()), /producer failed/);
  assert.equal(await readFile(target, 'utf8'), 'old');
  assert.deepEqual(await readdir(dir), ['weights.bin']);
}));

test('a failing rename is reported with the target path and cleans up', () => withDir(async (dir) => {
  const target = join(dir, 'occupied');
  await mkdir(target);
  await writeFile(join(target, 'keep'), 'x');
  await assert.rejects(writeFileAtomic(target, bytes('data')), (e: Error) => e.message.startsWith(`Could not write ${target}: `));
  assert.deepEqual(await readdir(dir), ['occupied']);
  assert.deepEqual(await readdir(target), ['keep']);
}));

test('a missing folder gives a sentence naming the target', () => withDir(async (dir) => {
  const target = join(dir, 'missing', 'f.bin');
  await assert.rejects(writeFileAtomic(target, bytes('x')), (e: Error) => e.message.startsWith(`Could not write ${target}: ENOENT`));
}));

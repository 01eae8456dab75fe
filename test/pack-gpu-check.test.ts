// What the GPU check's bundle takes along (scripts/pack-gpu-check.ts): the packages the
// check imports, found from its import graph, with their dependencies, and nothing of other
// platforms. The whole pack (xz of about 170 MiB: minutes) is run by hand, and its dry run
// in a copy of the working tree is described in docs/benchmarks.md.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { packageClosure, rootPackages, skipped } from '../scripts/pack-gpu-check.ts';

test('the bundle carries the packages the check imports and their dependencies, and no more', async () => {
  const roots = await rootPackages();
  for (const name of ['tsx', 'onnxruntime-node', 'onnx-proto', '@huggingface/tokenizers']) assert.ok(roots.includes(name), `${name} in ${roots.join(', ')}`);
  // The store, the app and the build tools are not part of the check.
  for (const name of ['better-sqlite3', 'electron', 'vite', 'svelte', 'yaml']) assert.ok(!roots.includes(name), `${name} is not imported by the check`);
  assert.ok(roots.every((r) => !r.startsWith('node:')));
  const closure = packageClosure(roots);
  const names = new Set(closure.values());
  for (const name of ['onnxruntime-common', 'esbuild', 'protobufjs']) assert.ok(names.has(name), `${name}, a dependency, comes along`);
  for (const dir of closure.keys()) assert.ok(existsSync(join(dir, 'package.json')), dir);
});

test('the bundle leaves out other platforms\' ONNX Runtime binaries and protobufjs\'s command-line tools', () => {
  assert.equal(skipped('onnxruntime-node', 'bin/napi-v6/linux/x64/libonnxruntime.so.1'), false);
  assert.equal(skipped('onnxruntime-node', 'bin/napi-v6/linux'), false);
  assert.equal(skipped('onnxruntime-node', 'dist/index.js'), false);
  for (const other of ['bin/napi-v6/linux/arm64/libonnxruntime.so.1', 'bin/napi-v6/darwin', 'bin/napi-v6/win32/x64/onnxruntime.dll']) assert.equal(skipped('onnxruntime-node', other), true, other);
  assert.equal(skipped('protobufjs', 'cli/pbjs.js'), true);
  assert.equal(skipped('protobufjs', 'light.js'), false);
});

// `npm run install:cuda` from its second source (scripts/install-gpu-providers.mjs): the two
// provider libraries taken from an onnxruntime-gpu wheel of exactly onnxruntime-node's
// version, and any other version refused. The wheels here are small stand-ins with the real
// layout (the real one, about 300 MB, was tried by hand: docs/benchmarks.md).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('../scripts/install-gpu-providers.mjs', import.meta.url));
const ortPackage = createRequire(import.meta.url).resolve('onnxruntime-node/package.json');
const ORT_VERSION = (JSON.parse(readFileSync(ortPackage, 'utf8')) as { version: string }).version;
// adm-zip: the zip library onnxruntime-node's own installer (and the script) reads packages with.
const AdmZip = createRequire(ortPackage)('adm-zip') as new () => { addFile(name: string, data: Buffer): void; writeZip(path: string): void };

const dir = mkdtempSync(join(tmpdir(), 'afd-install-cuda-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const LIBS = ['libonnxruntime_providers_cuda.so', 'libonnxruntime_providers_shared.so'];

/** A wheel with onnxruntime-gpu's layout: METADATA and the libraries under onnxruntime/capi/. */
function wheel(version: string, o: { name?: string; libs?: string[] } = {}): string {
  const zip = new AdmZip();
  zip.addFile(`onnxruntime_gpu-${version}.dist-info/METADATA`, Buffer.from(`Metadata-Version: 2.1\nName: ${o.name ?? 'onnxruntime-gpu'}\nVersion: ${version}\n`));
  for (const lib of o.libs ?? LIBS) zip.addFile(`onnxruntime/capi/${lib}`, Buffer.from(`${lib} ${version}`));
  zip.addFile('onnxruntime/capi/onnxruntime_pybind11_state.so', Buffer.from('not taken'));
  const path = join(dir, `onnxruntime_gpu-${version}-${Math.random().toString(36).slice(2)}-cp312-cp312-manylinux_2_28_x86_64.whl`);
  zip.writeZip(path);
  return path;
}

function install(args: string[], env: NodeJS.ProcessEnv = {}): { status: number | null; out: string; target: string } {
  const target = mkdtempSync(join(dir, 'target-'));
  const r = spawnSync(process.execPath, [SCRIPT, ...args, '--target', target], { encoding: 'utf8', env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip', ...env } });
  return { status: r.status, out: r.stdout + r.stderr, target };
}

test(`a wheel of onnxruntime-node's version (${ORT_VERSION}) gives exactly the two provider libraries`, () => {
  const r = install(['--wheel', wheel(ORT_VERSION)]);
  assert.equal(r.status, 0, r.out);
  assert.deepEqual(readdirSync(r.target).sort(), LIBS);
  for (const lib of LIBS) assert.equal(readFileSync(join(r.target, lib), 'utf8'), `${lib} ${ORT_VERSION}`);
});

test('a wheel of another version is refused, and nothing is written', () => {
  const r = install(['--wheel', wheel('1.29.0')]);
  assert.equal(r.status, 1);
  assert.match(r.out, new RegExp(`is onnxruntime-gpu 1\\.29\\.0, but onnxruntime-node is ${ORT_VERSION.replace(/\./g, '\\.')}: .*the versions must match exactly \\(take onnxruntime-gpu==${ORT_VERSION.replace(/\./g, '\\.')}\\)`));
  assert.deepEqual(readdirSync(r.target), []);
});

test('a wheel of another package, or one without a provider library, is refused with what it lacks', () => {
  const other = install(['--wheel', wheel(ORT_VERSION, { name: 'onnxruntime' })]);
  assert.equal(other.status, 1);
  assert.match(other.out, /is not an onnxruntime-gpu wheel \(its METADATA names onnxruntime\)/);
  const partial = install(['--wheel', wheel(ORT_VERSION, { libs: [LIBS[0]] })]);
  assert.equal(partial.status, 1);
  assert.match(partial.out, /has no onnxruntime\/capi\/libonnxruntime_providers_shared\.so/);
  assert.deepEqual(readdirSync(partial.target), []);
  const notZip = join(dir, 'not-a-wheel.whl');
  writeFileSync(notZip, 'text');
  assert.match(install(['--wheel', notZip]).out, /is not a wheel \(a zip file\)/);
});

test('--from pypi asks pip for onnxruntime-gpu of exactly onnxruntime-node\'s version, with no dependencies', () => {
  // A python3 that records its arguments and, as pip download does, leaves the wheel in --dest.
  const bin = join(dir, 'fake-python');
  mkdirSync(bin, { recursive: true });
  const args = join(dir, 'pip-args.json');
  const made = wheel(ORT_VERSION);
  writeFileSync(join(bin, 'python3'), `#!/usr/bin/env node
const { copyFileSync, writeFileSync } = require('node:fs');
const a = process.argv.slice(2);
writeFileSync(${JSON.stringify(args)}, JSON.stringify(a));
copyFileSync(${JSON.stringify(made)}, require('node:path').join(a[a.indexOf('--dest') + 1], 'onnxruntime_gpu-${ORT_VERSION}-cp312-cp312-manylinux_2_28_x86_64.whl'));
`);
  chmodSync(join(bin, 'python3'), 0o755);
  const r = install(['--force', '--from', 'pypi'], { PYTHON: join(bin, 'python3'), PATH: `${dirname(process.execPath)}:${process.env.PATH}` });
  assert.equal(r.status, 0, r.out);
  const pip = JSON.parse(readFileSync(args, 'utf8')) as string[];
  assert.deepEqual(pip.slice(0, 3), ['-m', 'pip', 'download']);
  assert.ok(pip.includes('--no-deps') && pip.includes('--only-binary=:all:'), pip.join(' '));
  assert.equal(pip[pip.length - 1], `onnxruntime-gpu==${ORT_VERSION}`);
  assert.deepEqual(readdirSync(r.target).sort(), LIBS);
  assert.match(r.out, /CUDA provider installed \(from PyPI\)/);
});

test('a pip that cannot run fails npm run install:cuda (--force) with why', () => {
  const r = install(['--force', '--from', 'pypi'], { PYTHON: join(dir, 'no-such-python') });
  assert.equal(r.status, 1);
  assert.match(r.out, /pip: could not run .*no-such-python/);
  assert.ok(!existsSync(join(r.target, LIBS[0])));
});

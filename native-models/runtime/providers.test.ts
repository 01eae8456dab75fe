import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import * as ort from 'onnxruntime-node';
import { chooseProvider, cudaLibraryPath, findGpuAdapter, ortInfo } from './providers.ts';
import { addModel } from './test-models.ts';
import { webgpuSkip } from '../../test/support/webgpu.ts';

// Dawn's Vulkan backend wants a private runtime dir (mkdtemp makes it 0700).
process.env.XDG_RUNTIME_DIR ??= mkdtempSync(join(tmpdir(), 'afd-xdg-'));

const cudaInstalled = cudaLibraryPath() !== null && existsSync(cudaLibraryPath()!);
const adapter = findGpuAdapter();

test('ortInfo reports the onnxruntime version and its backends', () => {
  const info = ortInfo();
  const pkg = createRequire(import.meta.url)('onnxruntime-node/package.json') as { version: string };
  assert.equal(info.version, pkg.version);
  assert.ok(info.backends.some((b) => b.name === 'cpu' && b.bundled));
  if (process.platform === 'linux' && process.arch === 'x64') assert.ok(info.backends.some((b) => b.name === 'webgpu'));
});

test('the automatic choice explains itself and is cached', async (t) => {
  const choice = await chooseProvider({});
  t.diagnostic(choice.reason);
  assert.equal(await chooseProvider({}), choice);
  assert.equal(await chooseProvider(), choice);
  if (!cudaInstalled && !adapter.found) {
    // This machine class: no CUDA provider, no GPU.
    assert.equal(choice.provider, 'cpu');
    assert.match(choice.reason, /^cpu: the CUDA provider is not installed \(run `npm run install:cuda` on a machine with an NVIDIA GPU\); no hardware GPU adapter found \(no \/dev\/dri render node/);
    assert.deepEqual(choice.tried.map((t) => [t.provider, t.ok]), [['cuda', false], ['webgpu', false], ['cpu', true]]);
  } else {
    assert.ok(choice.tried.at(-1)!.ok);
    assert.equal(choice.tried.at(-1)!.provider, choice.provider);
    assert.ok(choice.reason.startsWith(`${choice.provider}: `));
  }
});

test('GPU adapter detection', () => {
  const fake = (entries: Record<string, string[]>) => (dir: string): string[] => entries[dir] ?? [];
  assert.deepEqual(findGpuAdapter('linux', fake({ '/dev/dri': ['card0', 'renderD128'] })), { found: true, detail: '/dev/dri/renderD128' });
  assert.deepEqual(findGpuAdapter('linux', fake({ '/dev': ['null', 'nvidiactl', 'nvidia0'] })), { found: true, detail: '/dev/nvidia0' });
  assert.equal(findGpuAdapter('linux', fake({ '/dev/dri': ['card0'], '/dev': ['nvidiactl'] })).found, false);
  assert.equal(findGpuAdapter('darwin', fake({})).found, true);
  assert.equal(findGpuAdapter('win32', fake({})).found, true);
});

test('forcing webgpu runs on WebGPU and computes the right result', { skip: webgpuSkip('forced-WebGPU test') }, async (t) => {
  const t0 = performance.now();
  const choice = await chooseProvider({ force: 'webgpu' });
  const ms = performance.now() - t0;
  assert.equal(choice.provider, 'webgpu');
  assert.match(choice.reason, /^webgpu \(forced\): WebGPU ran a test session/);
  assert.equal(await chooseProvider({ force: 'webgpu' }), choice);
  t.diagnostic(`${choice.reason} (probe took ${ms.toFixed(0)} ms, including WebGPU start-up)`);

  const session = await ort.InferenceSession.create(addModel([2, 3]), {
    executionProviders: ['webgpu'],
    extra: { session: { disable_cpu_ep_fallback: '1' } },
  });
  const a = new ort.Tensor('float32', Float32Array.from([1, 2, 3, 4, 5, 6]), [2, 3]);
  const b = new ort.Tensor('float32', Float32Array.from([0.5, -1, 10, 0, 2, -6]), [2, 3]);
  const { Y } = await session.run({ A: a, B: b });
  assert.deepEqual(Array.from(Y.data as Float32Array), [1.5, 1, 13, 4, 7, 0]);
  await session.release();
});

test('forcing cuda without its provider fails with a sentence', { skip: cudaInstalled && 'the CUDA provider is installed here' }, async () => {
  await assert.rejects(chooseProvider({ force: 'cuda' }), (e: Error) => {
    assert.match(e.message, /^Cannot use the execution provider "cuda" that was asked for: /);
    assert.match(e.message, cudaLibraryPath() ? /the CUDA provider is not installed \(run `npm run install:cuda`/ : /has no CUDA provider for/);
    assert.match(e.message, /Choose another provider, or leave the choice to AfD Studio\.$/);
    return true;
  });
});

test('forcing cpu works', async () => {
  const choice = await chooseProvider({ force: 'cpu' });
  assert.deepEqual([choice.provider, choice.reason], ['cpu', 'cpu (forced): the CPU provider ran a test session']);
});

// Which CUDA libraries the CUDA provider lacks: its links as ldd resolves them, and cuDNN,
// which it opens at run time, where dlopen would look. The provider is a stand-in built here
// (cuda-stand-in.ts) whose links the system's own ldd resolves, or cannot.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { describeMissing, findsLibrary, missingLibraries, systemSearch, type LibrarySearch } from './cuda-libraries.ts';
import { providerStandIn, standInAbsence } from './cuda-stand-in.ts';
import { cudaFailure } from './providers.ts';

const dir = mkdtempSync(join(tmpdir(), 'afd-cuda-libs-'));
after(() => rmSync(dir, { recursive: true, force: true }));
// Names no machine has, in the provider's families (a real libcublas.so.13 may be installed here).
const MISSING = ['libcublas.so.99', 'libcudart.so.99'];
const PRESENT = 'libcurand.so.99';

test('the libraries ldd cannot resolve and the cuDNN dlopen would not find are named, in order', { skip: standInAbsence() }, () => {
  const { lib, stubs } = providerStandIn(dir, [...MISSING, PRESENT], MISSING);
  const search: LibrarySearch = { ...systemSearch, env: { ...process.env, LD_LIBRARY_PATH: stubs } };
  // With the stubs' folder on the path, the one left there is found; cuDNN (libcudnn.so.98 here) is not.
  assert.deepEqual(missingLibraries(lib, ['libcudnn.so.98'], search), [...MISSING, 'libcudnn.so.98']);
  // cuDNN where dlopen looks: not named.
  writeFileSync(join(stubs, 'libcudnn.so.98'), '');
  assert.deepEqual(missingLibraries(lib, ['libcudnn.so.98'], search), MISSING);
});

test('the sentence groups the libraries by what provides them', () => {
  const s = describeMissing(['libcublasLt.so.13', 'libcuda.so.1', 'libcurand.so.10', 'libcudnn.so.9']);
  assert.match(s, /libcublasLt\.so\.13, libcurand\.so\.10 \(the CUDA 13 runtime\); libcuda\.so\.1 \(the NVIDIA driver\); libcudnn\.so\.9 \(cuDNN 9\)/);
  assert.match(s, /LD_LIBRARY_PATH/);
});

test('dlopen\'s places: LD_LIBRARY_PATH, the ldconfig cache, the default folders', () => {
  const search = (env: NodeJS.ProcessEnv, cache: string, files: string[]): LibrarySearch => ({ ldd: () => '', ldconfigCache: () => cache, env, exists: (p) => files.includes(p) });
  assert.equal(findsLibrary('libcudnn.so.9', search({ LD_LIBRARY_PATH: '/opt/a:/opt/cudnn/lib' }, '', ['/opt/cudnn/lib/libcudnn.so.9'])), true);
  assert.equal(findsLibrary('libcudnn.so.9', search({}, '\tlibcudnn.so.9 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libcudnn.so.9\n', [])), true);
  assert.equal(findsLibrary('libcudnn.so.9', search({}, '\tlibcudnn.so.9.1 (libc6,x86-64) => /x\n', ['/usr/lib/libcudnn.so.9'])), true);
  assert.equal(findsLibrary('libcudnn.so.9', search({}, '\tlibcudnn.so.9.1 (libc6,x86-64) => /x\n', [])), false);
  assert.throws(() => missingLibraries('/x.so', [], { ...search({}, '', []), ldd: () => null }), /ldd could not read \/x\.so/);
});

test('the provider choice says which libraries an installed CUDA provider lacks, beside ONNX Runtime\'s own error', { skip: standInAbsence() }, () => {
  const { lib, stubs } = providerStandIn(dir, [...MISSING, PRESENT], MISSING);
  const search: LibrarySearch = { ...systemSearch, env: { ...process.env, LD_LIBRARY_PATH: stubs } };
  const reason = cudaFailure('libcublas.so.99: cannot open shared object file', lib, search);
  assert.match(reason, /^the CUDA provider is installed but could not run a test session \(libcublas\.so\.99: cannot open shared object file\); the CUDA provider needs libraries the loader cannot find: libcublas\.so\.99, libcudart\.so\.99 \(the CUDA 13 runtime\)/);
  // Where ldd cannot read the library, ONNX Runtime's error is all it says.
  assert.equal(cudaFailure('boom', lib, { ...search, ldd: () => null }), 'the CUDA provider is installed but could not run a test session (boom)');
});

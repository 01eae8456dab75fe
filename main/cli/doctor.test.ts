// afd doctor names the CUDA and cuDNN libraries that keep an installed CUDA provider from
// loading. The provider here is a stand-in built with links to libraries no machine has.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { systemSearch } from '../../native-models/runtime/cuda-libraries.ts';
import { providerStandIn, standInAbsence } from '../../native-models/runtime/cuda-stand-in.ts';
import { cudaProblem } from './doctor.ts';

const dir = mkdtempSync(join(tmpdir(), 'afd-doctor-'));
after(() => rmSync(dir, { recursive: true, force: true }));

test('a CUDA provider that failed its test session: each library it lacks, named with what provides it', { skip: standInAbsence() }, () => {
  const { lib } = providerStandIn(dir, ['libcublas.so.99', 'libcudart.so.99'], ['libcublas.so.99', 'libcudart.so.99']);
  const failed = [{ provider: 'cuda' as const, ok: false, reason: 'the CUDA provider is installed but could not run a test session (...)' }];
  const search = { ...systemSearch, env: { PATH: process.env.PATH } };
  const problem = cudaProblem(failed, lib, { ...search, exists: () => false, ldconfigCache: () => '' });
  assert.deepEqual(problem?.missing, ['libcublas.so.99', 'libcudart.so.99', 'libcudnn.so.9']);
  assert.match(problem!.sentence, /libcublas\.so\.99, libcudart\.so\.99 \(the CUDA 13 runtime\); libcudnn\.so\.9 \(cuDNN 9\)/);
  // Nothing to say when CUDA ran, was not tried, or is not installed (its reason says so).
  assert.equal(cudaProblem([{ provider: 'cuda', ok: true, reason: 'ran' }], lib, search), null);
  assert.equal(cudaProblem([{ provider: 'cpu', ok: true, reason: 'ran' }], lib, search), null);
  assert.equal(cudaProblem(failed, join(dir, 'not-installed.so'), search), null);
});

// For tests: a stand-in for ONNX Runtime's CUDA provider library, a shared object linked
// against libraries of the names given (stubs at link time, some removed after), so that the
// system's own ldd reports those missing as it would for the real provider on a machine
// without CUDA. Needs a C compiler (cc).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Why the stand-in cannot be built here (no C compiler), or false. */
export const standInAbsence = (): string | false => (spawnSync('cc', ['--version']).status === 0 ? false : 'no C compiler (cc) to build the CUDA provider stand-in');

/**
 * Builds `libonnxruntime_providers_cuda.so` in a new folder under `parent`, needing each of
 * `needs`; the stubs of `removed` are deleted after linking. `stubs`: the folder of the others.
 */
export function providerStandIn(parent: string, needs: readonly string[], removed: readonly string[]): { lib: string; stubs: string } {
  const dir = mkdtempSync(join(parent, 'stand-in-'));
  const stubs = join(dir, 'stubs');
  mkdirSync(stubs);
  writeFileSync(join(dir, 'stub.c'), 'int stub(void) { return 0; }\n');
  writeFileSync(join(dir, 'provider.c'), 'int provider(void) { return 1; }\n');
  const cc = (args: string[]): void => {
    const r = spawnSync('cc', ['-shared', '-fPIC', ...args], { encoding: 'utf8' });
    assert.equal(r.status, 0, `cc ${args.join(' ')}: ${r.stderr}`);
  };
  for (const soname of needs) cc([`-Wl,-soname,${soname}`, '-o', join(stubs, soname), join(dir, 'stub.c')]);
  const lib = join(dir, 'libonnxruntime_providers_cuda.so');
  // --no-as-needed keeps a DT_NEEDED entry for each stub although nothing calls into them.
  cc(['-o', lib, join(dir, 'provider.c'), '-Wl,--no-as-needed', ...needs.map((n) => join(stubs, n))]);
  for (const soname of removed) rmSync(join(stubs, soname));
  return { lib, stubs };
}

// Runs the Python oracles of the tests (torch, transformers, gguf-py...: test/requirements.txt).
// Where a module is missing the tests that need it skip with a notice, except on CI
// (CI=true), where they must run. Python is a test oracle only, never part of the product.

import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { skipWithout } from '../support/components.ts';

const here = fileURLToPath(new URL('.', import.meta.url));

/**
 * A skip reason for node:test when python3 cannot import `modules` (none: when there is no
 * python3), or false (see test/support/components.ts). `what` names the tests in the
 * notice. On CI, missing means failing.
 */
export function pythonSkip(modules: readonly string[], what: string): string | false {
  return skipWithout({
    key: 'python',
    name: modules.length === 0 ? 'python3' : `python3 with ${modules.join(', ')}`,
    absence() {
      const r = spawnSync('python3', ['-c', modules.length === 0 ? 'pass' : `import ${modules.join(',')}`], { encoding: 'utf8' });
      if (r.status === 0) return false;
      return r.error ? 'python3 was not found' : r.stderr.trim().split('\n').pop() || `exit ${r.status}`;
    },
    howToGet: 'install Python 3, then pip install -r test/requirements.txt',
  }, what);
}

/** The skip reason of the transformers parity tests (torch, transformers, safetensors). */
export const transformersSkip = (): string | false => pythonSkip(['torch', 'transformers', 'safetensors'], 'transformers parity tests');

/**
 * Runs test/python/SCRIPT with `args`; returns its stdout, or throws with the end of its
 * stderr. One thread each: the tests run two files at a time on two cores.
 */
export function runPython(script: string, args: readonly string[], timeoutMs = 300_000): string {
  const r = spawnSync('python3', [`${here}${script}`, ...args], {
    encoding: 'utf8',
    timeout: timeoutMs,
    maxBuffer: 256 * 1024 * 1024,
    env: { ...process.env, OMP_NUM_THREADS: '1', TOKENIZERS_PARALLELISM: 'false', TRANSFORMERS_VERBOSITY: 'error', HF_HUB_OFFLINE: '1' },
  });
  if (r.status !== 0) throw new Error(`python3 ${script} ${args[0] ?? ''} failed (${r.error?.message ?? `exit ${r.status}`}): ${r.stderr.slice(-3000)}`);
  return r.stdout;
}

/** Runs test/python/make_tiny_models.py with the given arguments; returns its stdout. */
export const runTinyModels = (args: string[], timeoutMs = 240_000): string => runPython('make_tiny_models.py', args, timeoutMs);

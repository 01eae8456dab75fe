// Runs the Python oracles of the tests (torch, transformers, gguf-py...: test/requirements.txt).
// Where a module is missing the tests that need it skip with a notice, except on CI
// (CI=true), where they must run. Python is a test oracle only, never part of the product.

import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));
const skips = new Map<string, string | false>();

/**
 * A skip reason for node:test when python3 cannot import `modules`, or false. `what` names
 * the tests in the notice. On CI, missing means failing.
 */
export function pythonSkip(modules: readonly string[], what: string): string | false {
  const key = modules.join(',');
  const known = skips.get(key);
  if (known !== undefined) return known;
  const r = spawnSync('python3', ['-c', `import ${key}`], { encoding: 'utf8' });
  const why = r.status === 0 ? false
    : `${r.error ? 'python3 was not found' : `python3 cannot import ${modules.join(', ')} (${r.stderr.trim().split('\n').pop()})`}; pip install -r test/requirements.txt`;
  if (why && process.env.CI === 'true') throw new Error(`CI=true, so the ${what} must run, but ${why}`);
  if (why) console.log(`# notice: skipping the ${what}: ${why}`);
  skips.set(key, why);
  return why;
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

// Runs test/python/gguf_oracle.py (gguf-py, the reference GGUF reader, writer and numpy port
// of ggml's quantization). Where it is missing the tests that need it skip with a notice,
// except on CI (CI=true), where they must run.

import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));

let cached: string | false | undefined;

/** A skip reason for node:test when gguf-py is missing, or false. On CI, missing means failing. */
export function ggufPySkip(): string | false {
  if (cached !== undefined) return cached;
  const r = spawnSync('python3', ['-c', 'import gguf, numpy'], { encoding: 'utf8' });
  const why = r.status === 0 ? false
    : `${r.error ? 'python3 was not found' : `python3 cannot import gguf and numpy (${r.stderr.trim().split('\n').pop()})`}; pip install -r test/requirements.txt`;
  if (why && process.env.CI === 'true') throw new Error(`CI=true, so the gguf-py oracle tests must run, but ${why}`);
  if (why) console.log(`# notice: skipping the gguf-py oracle tests: ${why}`);
  cached = why;
  return why;
}

/** Runs test/python/gguf_oracle.py with the given arguments; returns its stdout. */
export function runGgufOracle(args: string[], timeoutMs = 60_000): string {
  const r = spawnSync('python3', [`${here}gguf_oracle.py`, ...args], {
    encoding: 'utf8',
    timeout: timeoutMs,
    maxBuffer: 256 * 1024 * 1024,
    env: { ...process.env, OMP_NUM_THREADS: '1' },
  });
  if (r.status !== 0) throw new Error(`python3 gguf_oracle.py ${args[0]} failed (${r.error?.message ?? `exit ${r.status}`}): ${r.stderr.slice(-2000)}`);
  return r.stdout;
}

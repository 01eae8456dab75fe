// Runs the Python oracles of the tests (torch + transformers). Where they are missing the
// tests that need them skip with a notice, except on CI (CI=true), where they must run.

import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));

function probe(): string | false {
  const r = spawnSync('python3', ['-c', 'import torch, transformers, safetensors'], { encoding: 'utf8' });
  if (r.status === 0) return false;
  const why = r.error ? 'python3 was not found' : `python3 cannot import torch, transformers and safetensors (${r.stderr.trim().split('\n').pop()})`;
  return `${why}; pip install -r test/requirements.txt`;
}

let cached: string | false | undefined;

/** A skip reason for node:test when the oracle is missing, or false. On CI, missing means failing. */
export function transformersSkip(): string | false {
  if (cached !== undefined) return cached;
  const why = probe();
  if (why && process.env.CI === 'true') throw new Error(`CI=true, so the transformers parity tests must run, but ${why}`);
  if (why) console.log(`# notice: skipping the transformers parity tests: ${why}`);
  cached = why;
  return why;
}

/** Runs test/python/make_tiny_models.py with the given arguments; returns its stdout. */
export function runTinyModels(args: string[], timeoutMs = 240_000): string {
  const r = spawnSync('python3', [`${here}make_tiny_models.py`, ...args], {
    encoding: 'utf8',
    timeout: timeoutMs,
    maxBuffer: 256 * 1024 * 1024,
    // One thread each: tests run two files at a time on two cores.
    env: { ...process.env, OMP_NUM_THREADS: '1', TOKENIZERS_PARALLELISM: 'false', TRANSFORMERS_VERBOSITY: 'error', HF_HUB_OFFLINE: '1' },
  });
  if (r.status !== 0) throw new Error(`python3 make_tiny_models.py ${args[0]} failed (${r.error?.message ?? `exit ${r.status}`}): ${r.stderr.slice(-2000)}`);
  return r.stdout;
}

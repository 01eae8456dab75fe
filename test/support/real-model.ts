// The real model of the tests and benchmarks: SmolLM2-135M-Instruct as the Q4_1 GGUF that
// scripts/fetch-smollm2.sh puts in the model cache. Tests that need it skip with a notice
// where it is absent, except under CI=true, where .ci/run fetches it and they must run.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { modelCacheRoot } from '../../native-models/checkpoint/gguf/to-hf.ts';
import { KNOWN_MODELS } from '../../main/models/known.ts';

/** Where scripts/fetch-smollm2.sh puts the GGUF (AFD_SMOLLM2_GGUF overrides it). */
export function smollm2GgufPath(): string {
  if (process.env.AFD_SMOLLM2_GGUF) return process.env.AFD_SMOLLM2_GGUF;
  return join(modelCacheRoot(), KNOWN_MODELS.smollm2.file);
}

let noticed = false;

/** A skip reason for node:test when the real model is missing, or false. On CI, missing means failing. */
export function smollm2Skip(): string | false {
  const path = smollm2GgufPath();
  if (existsSync(path)) return false;
  const why = `the real model is not at ${path}; run bash scripts/fetch-smollm2.sh`;
  if (process.env.CI === 'true') throw new Error(`CI=true, so the tests on SmolLM2-135M-Instruct must run, but ${why}`);
  if (!noticed) console.log(`# notice: skipping the tests on SmolLM2-135M-Instruct: ${why}`);
  noticed = true;
  return why;
}

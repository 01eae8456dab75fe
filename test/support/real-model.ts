// The real model of the tests and benchmarks: SmolLM2-135M-Instruct as the Q4_1 GGUF that
// scripts/fetch-smollm2.sh puts in the model cache. Tests that need it skip with a notice
// where it is absent, except under CI=true, where .ci/run fetches it and they must run.

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { modelCacheRoot } from '../../native-models/checkpoint/gguf/to-hf.ts';
import { KNOWN_MODELS } from '../../main/models/known.ts';
import { skipWithout } from './components.ts';

/** Where scripts/fetch-smollm2.sh puts the GGUF (AFD_SMOLLM2_GGUF overrides it). */
export function smollm2GgufPath(): string {
  if (process.env.AFD_SMOLLM2_GGUF) return process.env.AFD_SMOLLM2_GGUF;
  return join(modelCacheRoot(), KNOWN_MODELS.smollm2.file);
}

/**
 * A skip reason for node:test when the real model is missing, or false (see
 * test/support/components.ts); `tests` names them in the notice. On CI, missing means failing.
 */
export function smollm2Skip(tests = 'tests on SmolLM2-135M-Instruct'): string | false {
  return skipWithout({
    key: 'smollm2',
    name: KNOWN_MODELS.smollm2.what,
    absence: () => (existsSync(smollm2GgufPath()) ? false : `there is no ${smollm2GgufPath()}`),
    howToGet: `run ${KNOWN_MODELS.smollm2.fetch}`,
  }, tests);
}

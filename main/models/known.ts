// Models known by a short name on the command line (`--model smollm2`): files that a
// script of this repository fetches into the model cache, so that benchmarks, tests and
// the reproduction name the same file everywhere.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { modelCacheRoot } from '../../native-models/checkpoint/gguf/to-hf.ts';

interface KnownModel {
  /** Path inside the model cache. */
  file: string;
  /** The command that fetches it. */
  fetch: string;
  what: string;
}

export const KNOWN_MODELS: Readonly<Record<string, KnownModel>> = {
  smollm2: { file: join('smollm2-135m-instruct', 'SmolLM2-135M-Instruct.Q4_1.gguf'), fetch: 'bash scripts/fetch-smollm2.sh', what: 'SmolLM2-135M-Instruct (Q4_1 GGUF)' },
};

/** A --model value as a path: a known name's file in the model cache, anything else as given. */
export function resolveModelArg(arg: string): string {
  const known = Object.hasOwn(KNOWN_MODELS, arg) ? KNOWN_MODELS[arg] : undefined;
  if (!known) return arg;
  const path = join(modelCacheRoot(), known.file);
  if (!existsSync(path)) throw new Error(`--model ${arg} names ${known.what}, which is not in the model cache yet (${path}); fetch it with \`${known.fetch}\`.`);
  return path;
}

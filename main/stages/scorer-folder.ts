// What a saved scorer's folder holds besides its backbone (a Hugging Face folder), and
// whether a folder is one: without the engine, so the API can tell a reward model from a
// language model where it checks a request, before any worker loads it (scorer.ts saves
// and loads them).
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export const HEAD_FILE = 'score_head.safetensors';
export const SCORER_JSON = 'scorer.json';
/** The scorer's folder inside a reward stage's folder. */
export const SCORER_DIR = 'scorer';

/** True when `dir` holds a scorer saveScorer wrote (a reward model: backbone + score head). */
export function isSavedScorer(dir: string): boolean {
  return existsSync(join(dir, SCORER_JSON)) && existsSync(join(dir, HEAD_FILE));
}

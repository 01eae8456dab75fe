// The HH-Harmless microcosm's data (DESIGN.md §3): the real HH-RLHF harmless-base test
// split, prompts split 80/20 by a stable hash, demonstrations = the chosen final
// Assistant turn of train prompts. AfD methods never see `rejected`; it is kept for the
// gold judge and the preference baselines only.

import { fileURLToPath } from 'node:url';
import { readDataset } from './readers.ts';
import { stableSplit } from './split.ts';

/** The copy of the data shipped with the studio (see data/hh-rlhf/README.md). */
export const HH_HARMLESS_FILE = fileURLToPath(new URL('../../data/hh-rlhf/harmless-base-test.jsonl.gz', import.meta.url));

export interface HhPair { prompt: string; chosen: string; rejected: string }

export interface HhMicrocosm {
  /** Train prompts with chosen and rejected responses (demonstrations are the chosen ones). */
  train: HhPair[];
  /** Evaluation prompts, never trained on by AfD methods. */
  eval: HhPair[];
}

export async function loadHhMicrocosm(file = HH_HARMLESS_FILE, evalFraction = 0.2): Promise<HhMicrocosm> {
  const out: HhMicrocosm = { train: [], eval: [] };
  for await (const r of readDataset(file, { format: 'hh' })) {
    if (r.chosen === undefined || r.rejected === undefined) throw new Error(`${file}:${r.line}: an HH line needs chosen and rejected transcripts`);
    out[stableSplit(r.prompt, evalFraction)].push({ prompt: r.prompt, chosen: r.chosen, rejected: r.rejected });
  }
  return out;
}

/** Full transcripts (prompt + response) of both responses: the pretraining corpus of pi_0. */
export const transcripts = (pairs: readonly HhPair[]): string[] => pairs.flatMap((p) => [p.prompt + p.chosen, p.prompt + p.rejected]);

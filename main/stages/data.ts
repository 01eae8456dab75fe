// The demonstrations of an experiment (DESIGN.md §3): prompts split into train and eval
// by a stable hash of the prompt; a demonstration is (prompt, good response). `rejected`
// is kept when the source has it, for the gold judge and the preference baselines only:
// AfD stages never read it.
import { Tokenizer } from '../../native-models/tokenizer/tokenizer.ts';
import { chatRenderer } from '../datasets/chat.ts';
import { HH_HARMLESS_FILE } from '../datasets/hh.ts';
import { readDataset } from '../datasets/readers.ts';
import { stableSplit } from '../datasets/split.ts';
import type { DataSpec } from './contract.ts';

export interface Demonstration {
  prompt: string;
  response: string;
  rejected?: string;
}

export interface Demonstrations {
  train: Demonstration[];
  eval: Demonstration[];
  /** Every prompt of the source, train then eval, before `maxTrain`/`maxEval` cut them
   *  (a gold judge may learn from all dialogues while the methods use fewer). */
  all: Demonstration[];
}

/** Demonstrations from a train and an eval split, uncut (`all` is both). */
export const demonstrations = (train: Demonstration[], evaluation: Demonstration[]): Demonstrations => ({ train, eval: evaluation, all: [...train, ...evaluation] });

export const HH_HARMLESS_SOURCE = 'hh-harmless';

/** Reads a DataSpec's file (not store datasets: the driver exports those to a file first). */
export async function loadDemonstrations(spec: DataSpec): Promise<Demonstrations> {
  const file = spec.source === HH_HARMLESS_SOURCE ? HH_HARMLESS_FILE : spec.source;
  const format = spec.source === HH_HARMLESS_SOURCE ? 'hh' : spec.format;
  const out: Demonstrations = { train: [], eval: [], all: [] };
  const renderMessages = spec.chatTemplateModel === undefined ? undefined : chatRenderer(await Tokenizer.fromFolder(spec.chatTemplateModel));
  for await (const r of readDataset(file, { ...(format === undefined ? {} : { format }), ...(renderMessages ? { renderMessages } : {}) })) {
    const response = r.response ?? r.chosen;
    if (response === undefined) throw new Error(`${file}:${r.line}: a demonstration needs a response (or a chosen response).`);
    const d: Demonstration = { prompt: r.prompt, response };
    if (r.rejected !== undefined) d.rejected = r.rejected;
    out[stableSplit(r.prompt, spec.evalFraction)].push(d);
  }
  out.all = [...out.train, ...out.eval];
  if (spec.maxTrain !== undefined) out.train = out.train.slice(0, spec.maxTrain);
  if (spec.maxEval !== undefined) out.eval = out.eval.slice(0, spec.maxEval);
  if (out.train.length === 0) throw new Error(`${file} has no train prompts (with eval fraction ${spec.evalFraction}); an experiment needs demonstrations to learn from.`);
  if (out.eval.length === 0) throw new Error(`${file} has no evaluation prompts (with eval fraction ${spec.evalFraction}); raise data.evalFraction or add examples.`);
  return out;
}

// Stages `bon` and `bon:length`: Best-of-N extrapolation (DESIGN.md §2.4). For each N in
// a list, every prompt keeps the highest-reward response among its first N stored
// samples (the samples are i.i.d., so the first N are a sample of N); one scoring pass
// serves every N. `bon` uses a reward stage's function; `bon:length` a length heuristic
// (the longest or the shortest response, or the one closest to the demonstrations' median
// length), the baselines that expose a reward model that only learned length.
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { JsonObject } from '../../../db/json.ts';
import { argmax, bonKlBound, median } from '../../eval/stats.ts';
import Type from 'typebox';
import { described, integer, oneOf } from '../../schema/fields.ts';
import { loadRewardFunction } from '../reward-artifact.ts';
import { lengthReward, type LengthMode, type RewardFunction } from '../reward-function.ts';
import { one, writeArtifactDetails, type Artifact, type Stage, type StageContext } from '../stage.ts';
import { readSamples, type Sample, type SampleSet } from './sample.ts';
import { parseSettings, ref, settingsSchema } from './common.ts';

export const SELECTION_FILE = 'selection.json';

export interface Selection {
  /** The samples artifact's folder the picks index into. */
  samples: string;
  ns: number[];
  /** picks[N][i] = the sample index k kept for prompt i. */
  picks: Record<string, number[]>;
  /** The reward of every sample, rewards[i][k]. */
  rewards: number[][];
  /** Upper bound of KL(BoN || sampling policy) for each N: log N - (N - 1) / N. */
  klBound: Record<string, number>;
}

export type BonConfig = JsonObject & { samples: string; ns: number[] };

const NS = described(Type.Array(integer(1), { minItems: 1, default: [1, 2, 4, 8, 16, 32] }), 'a list of whole numbers from 1 up');
/** The Ns once each, in increasing order. */
const sortedNs = (ns: readonly number[]): number[] => [...new Set(ns)].sort((a, b) => a - b);

const SETTINGS = settingsSchema({ samples: ref(), reward: ref(), ns: NS });
const LENGTH_SETTINGS = settingsSchema({ samples: ref(), ns: NS, mode: oneOf(['median', 'longest', 'shortest'], { default: 'median' }) });

/** For each N, the argmax of the rewards over each prompt's first N samples. */
export function selectBestOfN(rewards: readonly (readonly number[])[], ns: readonly number[]): Record<string, number[]> {
  return Object.fromEntries(ns.map((n) => [String(n), rewards.map((r) => argmax(r.slice(0, n)))]));
}

export function readSelection(a: Artifact): Selection {
  return JSON.parse(readFileSync(join(a.dir, SELECTION_FILE), 'utf8')) as Selection;
}

/** Scores every stored sample in chunks of prompts, with progress. */
async function scoreSamples(ctx: StageContext, set: SampleSet, reward: RewardFunction): Promise<number[][] | null> {
  const out: number[][] = [];
  const chunk = 16;
  for (let i = 0; i < set.byPrompt.length; i += chunk) {
    if (ctx.stopRequested()) return null;
    const group = set.byPrompt.slice(i, i + chunk);
    const flat: Sample[] = group.flat();
    const scores = await reward.score(flat.map((s) => ({ prompt: s.prompt, response: s.text })));
    let j = 0;
    for (const row of group) out.push(row.map(() => scores[j++]));
    ctx.progress(Math.min(set.byPrompt.length, i + chunk), set.byPrompt.length, 'prompts');
  }
  return out;
}

async function runBestOfN(ctx: StageContext, config: BonConfig, samplesArtifact: Artifact, reward: RewardFunction) {
  const set = readSamples(samplesArtifact);
  const ns = config.ns.filter((n) => n <= set.n);
  if (ns.length < config.ns.length) ctx.log(`skipping N > ${set.n}: the samples stage drew ${set.n} per prompt`);
  if (ns.length === 0) throw new Error(`every N in ${JSON.stringify(config.ns)} is above the ${set.n} samples per prompt of stage ${samplesArtifact.stage}; sample more or choose smaller N.`);
  ctx.log(`Best-of-N over ${set.byPrompt.length} prompts with ${reward.describe}`);
  const rewards = await scoreSamples(ctx, set, reward);
  // Scoring is one pass with no state worth keeping: a stopped run starts it again.
  if (rewards === null) return { status: 'stopped' as const, step: 0 };
  const picks = selectBestOfN(rewards, ns);
  const selection: Selection = { samples: samplesArtifact.dir, ns, picks, rewards, klBound: Object.fromEntries(ns.map((n) => [String(n), bonKlBound(n)])) };
  for (const n of ns) {
    const kept = picks[String(n)].map((k, i) => rewards[i][k]);
    ctx.metric(n, { selected_reward: kept.reduce((a, b) => a + b, 0) / kept.length });
  }
  await writeFile(join(ctx.dir, SELECTION_FILE), JSON.stringify(selection));
  await writeArtifactDetails(ctx.dir, { type: 'selection', samples: samplesArtifact.dir, ns, reward: reward.describe });
  return { status: 'done' as const, summary: { prompts: set.byPrompt.length, ns, reward: reward.describe } };
}

export const bonStage: Stage<BonConfig & { reward: string }> = {
  kind: 'bon',
  summary: 'Best-of-N: keep the highest-reward response among N stored samples, for each N',
  produces: 'selection',
  inputs: { samples: { types: ['samples'] }, reward: { types: ['reward'] } },
  settings: SETTINGS,
  parse(raw, where) {
    const c = parseSettings('bon', SETTINGS, raw, where);
    return { ...c, ns: sortedNs(c.ns) };
  },
  async run(ctx, config, inputs) {
    const reward = await loadRewardFunction(one(inputs, 'reward'), { provider: ctx.provider, threads: ctx.threads });
    try {
      return await runBestOfN(ctx, config, one(inputs, 'samples'), reward);
    } finally {
      await reward.release();
    }
  },
};

export const bonLengthStage: Stage<BonConfig & { mode: LengthMode }> = {
  kind: 'bon:length',
  summary: 'Best-of-N by length alone (longest, shortest, or closest to the demonstrations\' median): the baselines that expose length hacking',
  produces: 'selection',
  inputs: { samples: { types: ['samples'] } },
  settings: LENGTH_SETTINGS,
  parse(raw, where) {
    const c = parseSettings('bon:length', LENGTH_SETTINGS, raw, where);
    return { ...c, ns: sortedNs(c.ns) };
  },
  async run(ctx, config, inputs) {
    const lengths = (await ctx.data()).train.map((d) => d.response.length);
    const target = lengths.length === 0 ? 0 : median(lengths);
    return runBestOfN(ctx, config, one(inputs, 'samples'), lengthReward(config.mode, target));
  },
};

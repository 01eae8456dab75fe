// Stage `ditto` (Shaikh et al. 2024, "Show, Don't Tell": Demonstration ITerated Task
// Optimization; docs/methods.md): iterated DPO in which the demonstrations are preferred
// to the policy's own samples, from this iteration and every earlier one. Iteration t
// draws n samples of every train prompt from the current policy pi_t, then trains on the
// ranking the paper induces, D_E > D_t > D_t-1 > ... > D_0:
//   - expert pairs: each demonstration over each of its prompt's samples of iteration t;
//   - replay pairs: the demonstration over samples of earlier iterations;
//   - intermodel pairs: a sample of iteration t over one of the same prompt from earlier;
// the last two drawn (seeded) to make up `replay` and `intermodel` of the iteration's
// pairs (the paper's code: 0.2 and 0.1), as many as exist. The reference stays the policy
// the stage starts from (the paper's code keeps its SFT adapter as DPO's reference), and
// the optimizer, its state and the learning-rate schedule run on across iterations.
//
// The loss and batches are dpo.ts's (pairObjective, pairFeeds). Each iteration's samples
// are written to the stage folder before it trains on them, so a resumed run reads the
// samples an earlier attempt drew from weights it no longer has, and repeats the
// uninterrupted run.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from '../../../native-models/runtime/atomic-file.ts';
import { Rng } from '../../../native-models/train/rng.ts';
import type { Feeds } from '../../../native-models/train/trainer.ts';
import { integer, number } from '../../schema/fields.ts';
import type { Demonstration } from '../data.ts';
import { encodePair, saveModel, shuffled, trainableModel, type Encoded, type LoadedModel } from '../lm.ts';
import { modelDir, one, writeArtifactDetails, type Stage } from '../stage.ts';
import { createTrainer, epochBatches, trainSteps } from '../training.ts';
import { adaptation, mixSeed, parseSettings, settingsSchema, trainingSettings, withReference } from './common.ts';
import { loadPolicyAndReference, pairFeeds, pairObjective, pairSettings, referenceLogProbs, type Pair, type PairConfig } from './dpo.ts';
import { drawSamples } from './spin.ts';

export type DittoConfig = PairConfig & {
  iterations: number;
  /** Samples per train prompt drawn each iteration. */
  n: number;
  /** Shares of an iteration's pairs that are replay and intermodel pairs (the rest: expert pairs). */
  replay: number;
  intermodel: number;
  maxNewTokens: number;
  temperature: number;
};

/** How many pairs of each kind iteration t trains on, with `prompts` train prompts. */
export function iterationCounts(prompts: number, c: Pick<DittoConfig, 'n' | 'replay' | 'intermodel'>, t: number): { expert: number; replay: number; intermodel: number } {
  const expert = prompts * c.n;
  // Expert pairs are (1 - replay - intermodel) of the whole; the others as many as their share asks and exist.
  const whole = expert / (1 - c.replay - c.intermodel);
  return {
    expert,
    replay: Math.min(prompts * c.n * t, Math.round(whole * c.replay)),
    intermodel: Math.min(prompts * c.n * c.n * t, Math.round(whole * c.intermodel)),
  };
}

/**
 * The pairs of iteration t: `samples[s][i]` are the samples of prompt i drawn at iteration
 * s <= t. Expert pairs first (prompt by prompt), then the drawn replay and intermodel pairs.
 */
export function dittoPairs(train: readonly Demonstration[], samples: readonly (readonly (readonly string[])[])[], t: number, c: Pick<DittoConfig, 'n' | 'replay' | 'intermodel'>, seed: number): Pair[] {
  const counts = iterationCounts(train.length, c, t);
  const expert: Pair[] = [], replay: Pair[] = [], intermodel: Pair[] = [];
  train.forEach((d, i) => {
    for (const y of samples[t][i]) expert.push({ prompt: d.prompt, chosen: d.response, rejected: y });
    for (let s = 0; s < t; s++) {
      for (const old of samples[s][i]) {
        replay.push({ prompt: d.prompt, chosen: d.response, rejected: old });
        for (const y of samples[t][i]) intermodel.push({ prompt: d.prompt, chosen: y, rejected: old });
      }
    }
  });
  const draw = (from: Pair[], k: number, kind: number): Pair[] => shuffled(from.length, new Rng(mixSeed(seed, t, kind))).slice(0, k).map((j) => from[j]);
  return [...expert, ...draw(replay, counts.replay, 1), ...draw(intermodel, counts.intermodel, 2)];
}

/** The first step of each iteration, and the total: iteration t takes epochs passes over its pairs in batches. */
export function iterationSteps(prompts: number, c: DittoConfig): { starts: number[]; total: number } {
  const starts: number[] = [];
  let total = 0;
  for (let t = 0; t < c.iterations; t++) {
    starts.push(total);
    const k = iterationCounts(prompts, c, t);
    total += c.epochs * Math.ceil((k.expert + k.replay + k.intermodel) / c.batch);
  }
  return { starts, total };
}

const samplesFile = (dir: string, t: number): string => join(dir, `ditto-samples-${t}.json`);

/** Iteration t's samples as an earlier attempt wrote them, checked against the prompts; null when absent. */
function readIterationSamples(dir: string, t: number, prompts: number, n: number): string[][] | null {
  const file = samplesFile(dir, t);
  if (!existsSync(file)) return null;
  const texts = (JSON.parse(readFileSync(file, 'utf8')) as { texts?: unknown }).texts;
  if (!Array.isArray(texts) || texts.length !== prompts || texts.some((x) => !Array.isArray(x) || x.length !== n || x.some((y) => typeof y !== 'string'))) {
    throw new Error(`${file} does not hold ${n} samples for each of the ${prompts} train prompts; remove the stage's folder to run it again from the start.`);
  }
  return texts as string[][];
}

const SETTINGS = settingsSchema({
  // beta 0.05: the paper's.
  ...pairSettings({ lr: 5e-6, epochs: 1, beta: 0.05 }),
  iterations: integer(1, 100, { default: 4 }),
  n: integer(1, 64, { default: 4 }),
  replay: number(0, 0.9, { default: 0.2 }),
  intermodel: number(0, 0.9, { default: 0.1 }),
  maxNewTokens: integer(1, 1 << 16, { default: 64 }),
  temperature: number(0, 100, { default: 1 }),
});

export const dittoStage: Stage<DittoConfig> = {
  kind: 'ditto',
  summary: "DITTO: iterated DPO, demonstrations preferred to the policy's samples from this and earlier iterations",
  produces: 'model',
  inputs: { policy: { types: ['model'] }, reference: { types: ['model'] } },

  settings: SETTINGS,
  parse(raw, where) {
    const c = withReference(parseSettings('ditto', SETTINGS, raw, where));
    if (c.replay + c.intermodel >= 0.95) throw new Error(`replay + intermodel must leave room for expert pairs (below 0.95), not ${c.replay + c.intermodel}.`);
    return c;
  },

  async run(ctx, config, inputs) {
    const train = (await ctx.data()).train;
    if (train.length === 0) throw new Error('DITTO needs train demonstrations; the experiment has none.');
    const { policy, reference } = await loadPolicyAndReference(modelDir(one(inputs, 'policy')), modelDir(one(inputs, 'reference')));
    const { starts, total } = iterationSteps(train.length, config);
    const settings = trainingSettings(config, total);
    const tm = trainableModel(policy, adaptation(config), new Rng(ctx.seed));
    const { loss, metrics } = pairObjective(policy, tm, config.beta);
    const trainer = await createTrainer(ctx, tm, loss, settings, metrics);
    const maxLength = Math.min(config.maxLength, policy.maxLength);
    const samples: string[][][] = [];
    let current: { t: number; batches: number[][]; rows: [Encoded, Encoded, number, number][] } | null = null;

    /** Iteration t's samples: read back, or drawn now from the current weights (the start of iteration t) and written. */
    const iterationSamples = async (t: number): Promise<string[][]> => {
      const known = readIterationSamples(ctx.dir, t, train.length, config.n);
      if (known) return known;
      if (trainer.stepCount !== starts[t]) throw new Error(`The samples of DITTO iteration ${t} (${samplesFile(ctx.dir, t)}) are missing, and the policy has moved past that iteration's start; remove the stage's folder to run it again from the start.`);
      ctx.log(`iteration ${t}: drawing ${config.n} sample(s) of each of ${train.length} train prompts from the policy`);
      const current_: LoadedModel = { ...policy, weights: tm.weights(trainer.parameters()) };
      const texts = await drawSamples(ctx, current_, train.map((d) => d.prompt), config, (i, k) => mixSeed(ctx.seed, t, i, k));
      await writeFileAtomic(samplesFile(ctx.dir, t), new TextEncoder().encode(`${JSON.stringify({ iteration: t, texts })}\n`));
      return texts;
    };

    const prepare = async (t: number): Promise<NonNullable<typeof current>> => {
      for (let s = samples.length; s <= t; s++) samples.push(await iterationSamples(s));
      const ps = dittoPairs(train, samples, t, config, ctx.seed);
      const k = iterationCounts(train.length, config, t);
      ctx.log(`iteration ${t}: ${ps.length} pairs (${k.expert} expert, ${k.replay} replay, ${k.intermodel} intermodel)`);
      const chosen = ps.map((p) => encodePair(policy, p.prompt, p.chosen, maxLength));
      const rejected = ps.map((p) => encodePair(policy, p.prompt, p.rejected, maxLength));
      const refLogp = await referenceLogProbs(ctx, reference, [...chosen, ...rejected]);
      const rows = ps.map((_, i) => [chosen[i], rejected[i], refLogp[i], refLogp[ps.length + i]] as [Encoded, Encoded, number, number]);
      const batches = epochBatches(ps.length, config.batch, config.epochs, mixSeed(ctx.seed, t));
      if (starts[t] + batches.length !== (starts[t + 1] ?? total)) throw new Error(`DITTO iteration ${t} has ${batches.length} batches, not the ${(starts[t + 1] ?? total) - starts[t]} its schedule planned`);
      return { t, batches, rows };
    };

    const batch = async (step: number): Promise<Feeds> => {
      let t = starts.length - 1;
      while (starts[t] > step) t--;
      if (current?.t !== t) current = await prepare(t);
      return pairFeeds(current.batches[step - starts[t]].map((i) => current!.rows[i]), policy.eosId);
    };

    try {
      const status = await trainSteps(ctx, trainer, settings, batch, (r) => {
        if (current) ctx.metric(r.step, { iteration: current.t });
      });
      if (status === 'stopped') return { status, step: trainer.stepCount };
      await saveModel(join(ctx.dir, 'model'), policy, tm.weights(trainer.parameters()));
    } finally {
      await trainer.release();
    }
    await writeArtifactDetails(ctx.dir, { type: 'model', from: 'ditto' });
    const pairs = starts.reduce((sum, _, t) => sum + Object.values(iterationCounts(train.length, config, t)).reduce((a, b) => a + b, 0), 0);
    return { status: 'done', summary: { steps: total, iterations: config.iterations, pairs } };
  },
};

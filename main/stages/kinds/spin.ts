// Stage `spin` (baseline, DESIGN.md §2.7): Self-Play fIne-tuNing = the DPO loss with the
// demonstrations as chosen and the policy's own samples as rejected, against the policy
// it starts from. The samples come from a `sample` stage over the policy on the train
// prompts, or are drawn here (seeded per prompt and sample, so a resumed run redraws the
// same ones). The training loop is dpo.ts's.
import { Generator } from '../../../native-models/generate/generator.ts';
import Type from 'typebox';
import { described, integer, number, text } from '../../schema/fields.ts';
import type { Demonstration } from '../data.ts';
import { encodePrompt, type LoadedModel, TURN_STOPS } from '../lm.ts';
import { modelDir, one, type Stage, type StageContext, type StageInputs } from '../stage.ts';
import { generatorRuntime, parseSettings, settingsSchema, withReference } from './common.ts';
import { loadPolicyAndReference, pairSettings, runPairs, type Pair, type PairConfig } from './dpo.ts';
import { readSamples, sampleSeed } from './sample.ts';

export type SpinConfig = PairConfig & {
  /** A samples stage of the policy on the train prompts; absent: drawn in this stage. */
  samples?: string;
  /** Samples per prompt drawn here (without `samples`). */
  n: number;
  maxNewTokens: number;
  temperature: number;
};

/** What drawSamples draws: n responses per prompt of at most maxNewTokens, at a temperature. */
export interface DrawSettings {
  n: number;
  maxNewTokens: number;
  temperature: number;
}

/** `o.n` samples of each prompt from `policy` (its `weights`), sample k of prompt i seeded seed(i, k). */
/** Rows drawSamples generates together (the memory estimate sizes a draw by it). */
export const DRAW_ROWS = 32;

export async function drawSamples(ctx: StageContext, policy: LoadedModel, prompts: readonly string[], o: DrawSettings, seed: (i: number, k: number) => number): Promise<string[][]> {
  const gen = await Generator.create(policy.family, policy.config, policy.weights, generatorRuntime(ctx));
  try {
    const rows = prompts.flatMap((p, i) => Array.from({ length: o.n }, (_, k) => ({ i, k, ids: encodePrompt(policy, p, o.maxNewTokens) })));
    const decode = (ids: readonly number[]): string => policy.tokenizer.decode(ids, { skipSpecialTokens: true });
    const out: string[][] = prompts.map(() => []);
    // DRAW_ROWS rows at a time: all of them at once would hold every row's prefill and
    // cache together (512 prompts x 2 samples of SmolLM2: hundreds of GiB). Each row has
    // its own seed, so the chunks draw what one batch would.
    for (let start = 0; start < rows.length; start += DRAW_ROWS) {
      const chunk = rows.slice(start, start + DRAW_ROWS);
      const results = await gen.generate(chunk.map((r) => r.ids), {
        maxNewTokens: o.maxNewTokens, temperature: o.temperature, eosTokenIds: [policy.eosId], stopStrings: TURN_STOPS, decode,
        seed: chunk.map((r) => seed(r.i, r.k)),
      });
      results.forEach((res, j) => out[chunk[j].i].push(res.text ?? ''));
    }
    return out;
  } finally {
    await gen.release();
  }
}

/** The policy's samples of each train prompt, from the samples input (checked to match the prompts) or drawn here. */
async function ownSamples(ctx: StageContext, config: SpinConfig, inputs: StageInputs, policy: LoadedModel, train: readonly Demonstration[]): Promise<string[][]> {
  const source = inputs.samples;
  if (source === undefined) {
    ctx.log(`drawing ${config.n} sample(s) per train prompt from the policy`);
    return drawSamples(ctx, policy, train.map((d) => d.prompt), config, (i, k) => sampleSeed(ctx.seed, i, k, config.n));
  }
  const set = readSamples(one(inputs, 'samples'));
  if (set.split !== 'train') throw new Error(`SPIN needs samples of the train prompts, but ${config.samples ?? 'the samples stage'} sampled the ${set.split} prompts.`);
  return train.map((d, i) => {
    const s = set.byPrompt[i];
    if (s === undefined || s.length === 0 || s[0].prompt !== d.prompt) throw new Error(`The samples of ${config.samples ?? 'the samples stage'} do not match the experiment's train prompts (prompt ${i}); sample the policy on this experiment's train split.`);
    return s.map((x) => x.text);
  });
}

const SETTINGS = settingsSchema({
  ...pairSettings({ lr: 5e-6, epochs: 1 }),
  samples: Type.Optional(described(text(), 'the id of a samples stage')),
  n: integer(1, 64, { default: 1 }),
  maxNewTokens: integer(1, 1 << 16, { default: 64 }),
  temperature: number(0, 100, { default: 1 }),
});

export const spinStage: Stage<SpinConfig> = {
  kind: 'spin',
  summary: "SPIN: DPO with the demonstrations as chosen and the policy's own samples as rejected",
  produces: 'model',
  inputs: { policy: { types: ['model'] }, reference: { types: ['model'] }, samples: { types: ['samples'], optional: true } },

  settings: SETTINGS,
  parse: (raw, where) => withReference(parseSettings('spin', SETTINGS, raw, where)),

  async run(ctx, config, inputs) {
    const train = (await ctx.data()).train;
    const { policy, reference } = await loadPolicyAndReference(modelDir(one(inputs, 'policy')), modelDir(one(inputs, 'reference')));
    const samples = await ownSamples(ctx, config, inputs, policy, train);
    const pairs: Pair[] = train.flatMap((d, i) => samples[i].map((rejected) => ({ prompt: d.prompt, chosen: d.response, rejected })));
    return runPairs(ctx, config, policy, reference, pairs, 'spin');
  },
};

// Stage `sample`: N responses per prompt from a model, stored for reuse by reward
// training, Best-of-N and evaluation. Prompts go in fixed chunks, each chunk written to
// its own file when complete; every response has its own seed (stage seed, prompt, k),
// so a run resumed after any chunk produces exactly what an uninterrupted run does.
import { readFileSync } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { JsonObject } from '../../../db/json.ts';
import { writeFileAtomic } from '../../../native-models/runtime/atomic-file.ts';
import { Generator } from '../../../native-models/generate/generator.ts';
import Type from 'typebox';
import { described, integer, number, oneOf } from '../../schema/fields.ts';
import { encodePrompt, loadModel, TURN_STOPS } from '../lm.ts';
import { artifactDetails, modelDir, one, writeArtifactDetails, type Artifact, type Stage } from '../stage.ts';
import { generatorRuntime, parseSettings, ref, settingsSchema } from './common.ts';

export type SampleConfig = JsonObject & {
  model: string;
  split: 'train' | 'eval';
  n: number;
  maxNewTokens: number;
  temperature: number;
  topP: number;
  /** Prompts per generation batch (each with its n samples): the unit of checkpointing. */
  promptsPerChunk: number;
  /** The prompt's most recent tokens kept as context (older turns are dropped). */
  maxPromptTokens: number;
  /** Texts that end a response (cut before them), besides EOS. */
  stop: string[];
};

/** One sampled response. `i` indexes the split's prompts, `k` the sample of that prompt. */
export interface Sample {
  i: number;
  k: number;
  prompt: string;
  text: string;
  tokens: number;
  finish: string;
}

export interface SampleSet {
  /** The model folder that sampled them. */
  model: string;
  split: 'train' | 'eval';
  n: number;
  /** byPrompt[i][k]. */
  byPrompt: Sample[][];
}

export const SAMPLES_FILE = 'samples.jsonl';

/** Seed of sample k of prompt i: distinct for every (seed, i, k), whatever the chunking. */
export const sampleSeed = (seed: number, i: number, k: number, n: number): number => ((seed * 1_000_003 + i * n + k) >>> 0);

export function readSamples(a: Artifact): SampleSet {
  const d = artifactDetails(a);
  const n = d.n as number;
  const byPrompt: Sample[][] = [];
  for (const line of readFileSync(join(a.dir, SAMPLES_FILE), 'utf8').split('\n')) {
    if (line === '') continue;
    const s = JSON.parse(line) as Sample;
    (byPrompt[s.i] ??= [])[s.k] = s;
  }
  return { model: d.model as string, split: d.split as 'train' | 'eval', n, byPrompt };
}

const SETTINGS = settingsSchema({
  model: ref('pi0'),
  split: oneOf(['train', 'eval'], { default: 'train' }),
  n: integer(1, 1024, { default: 1 }),
  maxNewTokens: integer(1, 1 << 16, { default: 64 }),
  temperature: number(0, 100, { default: 1 }),
  topP: number(0, 1, { default: 1 }),
  promptsPerChunk: integer(1, 4096, { default: 8 }),
  maxPromptTokens: integer(1, 1 << 20, { default: 256 }),
  // Texts of white space are stops too ("\n").
  stop: described(Type.Array(Type.String({ minLength: 1 }), { default: [...TURN_STOPS] }), 'a list of non-empty texts'),
});

export const sampleStage: Stage<SampleConfig> = {
  kind: 'sample',
  summary: 'N responses per prompt from a model, stored for reward models, Best-of-N and evaluation',
  produces: 'samples',
  inputs: { model: { types: ['model'] } },

  settings: SETTINGS,
  parse(raw, where) {
    const c = parseSettings('sample', SETTINGS, raw, where);
    return { ...c, stop: [...c.stop] };
  },

  async run(ctx, config, inputs) {
    const source = one(inputs, 'model');
    const model = await loadModel(modelDir(source));
    const prompts = (await ctx.data())[config.split].map((d) => d.prompt);
    const chunks = Math.ceil(prompts.length / config.promptsPerChunk);
    const chunkDir = join(ctx.dir, 'chunks');
    await mkdir(chunkDir, { recursive: true });
    const name = (c: number): string => join(chunkDir, `${String(c).padStart(6, '0')}.jsonl`);
    // Chunks are written atomically, so a present file is a complete chunk.
    const done = new Set((await readdir(chunkDir)).filter((f) => /^\d{6}\.jsonl$/.test(f)).map((f) => Number(f.slice(0, 6))));
    const generator = await Generator.create(model.family, model.config, model.weights, generatorRuntime(ctx));
    const decode = (ids: readonly number[]): string => model.tokenizer.decode(ids, { skipSpecialTokens: true });
    let tokens = 0;
    const t0 = performance.now();
    try {
      ctx.progress(done.size, chunks, 'chunks');
      for (let c = 0; c < chunks; c++) {
        if (done.has(c)) continue;
        if (ctx.stopRequested()) return { status: 'stopped', step: done.size };
        const first = c * config.promptsPerChunk, last = Math.min(prompts.length, first + config.promptsPerChunk);
        const rows: { i: number; k: number; ids: number[] }[] = [];
        for (let i = first; i < last; i++) {
          const ids = encodePrompt(model, prompts[i], Math.max(config.maxNewTokens, model.maxLength - config.maxPromptTokens));
          for (let k = 0; k < config.n; k++) rows.push({ i, k, ids });
        }
        const results = await generator.generate(rows.map((r) => r.ids), {
          maxNewTokens: config.maxNewTokens, temperature: config.temperature, topP: config.topP, eosTokenIds: [model.eosId], stopStrings: config.stop, decode,
          seed: rows.map((r) => sampleSeed(ctx.seed, r.i, r.k, config.n)),
        });
        const lines = results.map((res, j) => {
          tokens += res.tokens.length;
          const s: Sample = { i: rows[j].i, k: rows[j].k, prompt: prompts[rows[j].i], text: res.text ?? '', tokens: res.tokens.length, finish: res.finishReason };
          return JSON.stringify(s);
        });
        await writeFileAtomic(name(c), Buffer.from(`${lines.join('\n')}\n`));
        done.add(c);
        await ctx.checkpointed(chunkDir, done.size); // the chunk files are the checkpoint
        ctx.metric(done.size, { tokens_per_second: tokens / ((performance.now() - t0) / 1000) });
        ctx.progress(done.size, chunks, 'chunks');
      }
    } finally {
      await generator.release();
    }
    const all: string[] = [];
    for (let c = 0; c < chunks; c++) all.push(readFileSync(name(c), 'utf8'));
    await writeFile(join(ctx.dir, SAMPLES_FILE), all.join(''));
    await writeArtifactDetails(ctx.dir, { type: 'samples', model: modelDir(source), split: config.split, n: config.n, prompts: prompts.length });
    return { status: 'done', summary: { prompts: prompts.length, samples: prompts.length * config.n } };
  },
};

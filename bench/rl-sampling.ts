// The sampling half of an RL step under LoRA (main/stages/kinds/rl.ts PolicyUpdate.rollout)
// on SmolLM2-135M-Instruct, done both ways, and printed as JSON:
//
// - `rebuilt` (what every step did before): merge the adapters into the weights
//   (mergeLora), compile a Generator of the merged weights (its generation and scoring
//   sessions: `create_ms`), sample, score the samples, release it;
// - `fed` (what a step does now): give the current adapters to a generator compiled once
//   (Generator's `lora` option, setAdapters), sample, score.
//
// And, for full fine-tuning, where the weights themselves would have to be inputs: the
// same sampling with ORT's prepacking off (`unpacked`), what products whose weight is an
// input cost (MLAS packs such a weight again in every product).
//
// Shape of the step: `prompts` prompts x `k` samples, `promptTokens` tokens each (the
// reproduction cuts rollout prompts to 256), `newTokens` new tokens at temperature 1,
// EOS ignored so that every row decodes all of them (the same work each repeat). The two
// ways alternate within each repeat, in turn first, so both see the machine's load;
// medians over the repeats, and the load average before and after.
//
//   node --import tsx bench/rl-sampling.ts [--repeats 3] [--k 4] [--prompts 2] [--new-tokens 96]
//     [--prompt-tokens 200] [--rank 16] [--threads N] [--no-unpacked] [--dir <HF folder>]

import { loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { cachedGgufFolder, modelCacheRoot } from '../native-models/checkpoint/gguf/to-hf.ts';
import { Generator } from '../native-models/generate/generator.ts';
import { loraInit, loraParamShapes, mergeLora, type LoraSpec } from '../native-models/models/lora.ts';
import { Rng } from '../native-models/train/rng.ts';
import { loadModel, type LoadedModel } from '../main/stages/lm.ts';
import { median } from '../main/eval/stats.ts';
import { KNOWN_MODELS } from '../main/models/known.ts';

const { values: args } = parseArgs({
  options: {
    repeats: { type: 'string', default: '3' },
    k: { type: 'string', default: '4' },
    prompts: { type: 'string', default: '2' },
    'new-tokens': { type: 'string', default: '96' },
    'prompt-tokens': { type: 'string', default: '200' },
    rank: { type: 'string', default: '16' },
    threads: { type: 'string' },
    'no-unpacked': { type: 'boolean', default: false },
    dir: { type: 'string' },
  },
});
const int = (name: keyof typeof args): number => {
  const n = Number(args[name]);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a whole number >= 1, got ${args[name]}.`);
  return n;
};
const repeats = int('repeats'), k = int('k'), promptCount = int('prompts'), newTokens = int('new-tokens'), promptTokens = int('prompt-tokens'), rank = int('rank');
const threads = args.threads === undefined ? undefined : int('threads');

const gguf = join(modelCacheRoot(), KNOWN_MODELS.smollm2.file);
const dir = args.dir ?? (await cachedGgufFolder(gguf).catch(() => null));
if (!dir) throw new Error(`There is no converted ${KNOWN_MODELS.smollm2.what} in the model cache; run ${KNOWN_MODELS.smollm2.fetch} and any test of tests on it (or give --dir).`);

const policy: LoadedModel = await loadModel(dir);
const spec: LoraSpec = { rank, alpha: 2 * rank };
const shapes = loraParamShapes(policy.family, policy.config, spec);

/** Adapters as after some training: A as initialized, B small and random (B = 0 would be the base model). */
function adapters(seed: number): Map<string, Float32Array> {
  const rng = new Rng(seed);
  const out = loraInit(shapes, rng);
  for (const [n, a] of out) if (n.endsWith('.lora_B')) for (let i = 0; i < a.length; i++) a[i] = 0.002 * rng.normal();
  return out;
}

// Long prompts of the RL stage's kind: a chat turn, its last `promptTokens` tokens.
const QUESTIONS = [
  'I am planning a two-week trip through the mountains in late autumn, travelling alone with a tent and a small stove.',
  'My neighbour keeps parking in front of my garage, and last week I could not get my car out for an appointment.',
];
const prompts = Array.from({ length: promptCount }, (_, i) => {
  const text = Array.from({ length: 12 }, (_, j) => `${QUESTIONS[(i + j) % QUESTIONS.length]} (${j + 1})`).join(' ') + ' What should I do?';
  const ids = policy.tokenizer.encode(policy.tokenizer.applyChatTemplate([{ role: 'user', content: text }], { addGenerationPrompt: true }));
  if (ids.length < promptTokens) throw new Error(`The bench's prompt has ${ids.length} tokens, fewer than --prompt-tokens ${promptTokens}.`);
  return ids.slice(ids.length - promptTokens);
});
const rows = prompts.flatMap((p) => Array.from({ length: k }, () => p));
const runtime = { provider: 'cpu' as const, ...(threads ? { threads } : {}) };

/** Sampling and scoring as the rollout does them; the tokens, for the check that both ways agree. */
async function sample(gen: Generator, seed: number): Promise<{ generateMs: number; scoreMs: number; tokens: number[][] }> {
  let t = performance.now();
  const out = await gen.generate(rows, { maxNewTokens: newTokens, temperature: 1, seed });
  const generateMs = performance.now() - t;
  t = performance.now();
  await gen.score(rows, out.map((r) => r.tokens));
  return { generateMs, scoreMs: performance.now() - t, tokens: out.map((r) => r.tokens) };
}

type Times = Record<string, number>;

interface Step { times: Times; tokens: number[][] }

async function rebuilt(values: ReadonlyMap<string, Float32Array>, seed: number, prepacking = true): Promise<Step> {
  const t0 = performance.now();
  const merged = mergeLora(policy.weights, values, policy.family, policy.config, spec);
  const t1 = performance.now();
  const gen = await Generator.create(policy.family, policy.config, merged, { ...runtime, prepacking });
  await gen.session('score'); // compiled on first use: a session per step too
  const t2 = performance.now();
  const s = await sample(gen, seed);
  const t3 = performance.now();
  await gen.release();
  const t4 = performance.now();
  return { times: { merge_ms: t1 - t0, create_ms: t2 - t1, generate_ms: s.generateMs, score_ms: s.scoreMs, release_ms: t4 - t3, step_ms: t4 - t0 }, tokens: s.tokens };
}

const loadBefore = loadavg();
const t = performance.now();
const fedGen = await Generator.create(policy.family, policy.config, policy.mapped ?? policy.weights, { ...runtime, lora: { spec, adapters: adapters(1) } });
const fedCreateMs = performance.now() - t;

async function fed(values: ReadonlyMap<string, Float32Array>, seed: number): Promise<Step> {
  const t0 = performance.now();
  await fedGen.setAdapters(values);
  const t1 = performance.now();
  const s = await sample(fedGen, seed);
  return { times: { set_adapters_ms: t1 - t0, generate_ms: s.generateMs, score_ms: s.scoreMs, step_ms: performance.now() - t0 }, tokens: s.tokens };
}

const runs: Record<'rebuilt' | 'fed' | 'unpacked', Times[]> = { rebuilt: [], fed: [], unpacked: [] };
let sameRows = 0;
// One warm-up of each (page cache, ORT's first-use costs), untimed.
await rebuilt(adapters(2), 0);
await fed(adapters(2), 0);
for (let r = 0; r < repeats; r++) {
  const values = adapters(10 + r), seed = 100 * r;
  // a: rebuilt, b: fed; which goes first alternates.
  const b0 = r % 2 === 1 ? await fed(values, seed) : undefined;
  const a = await rebuilt(values, seed);
  const b = b0 ?? await fed(values, seed);
  sameRows += a.tokens.filter((x, i) => x.length === b.tokens[i].length && x.every((y, j) => y === b.tokens[i][j])).length;
  runs.rebuilt.push(a.times);
  runs.fed.push(b.times);
  if (!args['no-unpacked']) runs.unpacked.push((await rebuilt(values, seed, false)).times);
}
await fedGen.release();

const medians = (xs: Times[]): Times => {
  const keys = Object.keys(xs[0] ?? {});
  return Object.fromEntries(keys.map((key) => [key, Math.round(median(xs.map((x) => x[key])))]));
};
console.log(JSON.stringify({
  model: dir,
  lora: spec,
  shape: { prompts: promptCount, k, promptTokens, newTokens },
  threads: threads ?? 'all cores',
  repeats,
  fed_create_ms: Math.round(fedCreateMs),
  rebuilt: medians(runs.rebuilt),
  fed: medians(runs.fed),
  ...(runs.unpacked.length > 0 ? { unpacked: medians(runs.unpacked) } : {}),
  // Sampled at temperature 1 from the same seeds: merged weights and fed adapters differ by rounding only.
  same_tokens_rows: `${sameRows} / ${repeats * rows.length}`,
  loadavg_before: loadBefore.map((x) => +x.toFixed(2)),
  loadavg_after: loadavg().map((x) => +x.toFixed(2)),
  max_rss_mib: Math.round(process.resourceUsage().maxRSS / 1024),
}, null, 2));

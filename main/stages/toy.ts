// The marker toy task: a world with a known optimum, small enough for tests and for
// the UI's quick recipe. pi_0 is a tiny GPT-2 pretrained on replies that rarely end with
// a marker phrase; every demonstration ends with it. A working AfD pipeline must move
// the marker rate up: SFT some, and Best-of-N or RL over the SFT-vs-Init reward more.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportHfModel } from '../../native-models/checkpoint/index.ts';
import { gpt2Defaults, gpt2Family, gpt2Init, gpt2NextTokenLoss } from '../../native-models/models/gpt2.ts';
import { adamw } from '../../native-models/optim/adamw.ts';
import { trainBpe, writeTokenizerFolder } from '../../native-models/tokenizer/bpe-trainer.ts';
import { Tokenizer } from '../../native-models/tokenizer/tokenizer.ts';
import { TokenStream } from '../../native-models/train/lm-data.ts';
import { Rng } from '../../native-models/train/rng.ts';
import { buildTrainStep } from '../../native-models/train/step.ts';
import { Trainer } from '../../native-models/train/trainer.ts';
import { Generator } from '../../native-models/generate/generator.ts';
import { demonstrations, type Demonstration, type Demonstrations } from './data.ts';
import { encodePrompt, loadModel } from './lm.ts';

export const MARKER = ' Have a nice day.';
const TOPICS = ['cats', 'rain', 'bread', 'music', 'trees', 'boats', 'stars', 'tea', 'bikes', 'snow', 'clocks', 'birds'];
const WORDS = ['the', 'a', 'is', 'very', 'good', 'small', 'big', 'red', 'old', 'new', 'and', 'it', 'we', 'like', 'see', 'often', 'here', 'now'];
const TEMPLATE = "{% for m in messages %}{% if m['role'] == 'user' %}{{ '\n\nHuman: ' + m['content'] }}{% else %}{{ '\n\nAssistant: ' + m['content'] }}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '\n\nAssistant:' }}{% endif %}";

export const hasMarker = (text: string): boolean => text.trimEnd().endsWith(MARKER.trim());
export const markerRate = (texts: readonly string[]): number => texts.filter(hasMarker).length / Math.max(1, texts.length);

function reply(rng: Rng, topic: string, marker: boolean): string {
  const n = 3 + rng.int(5);
  const words = Array.from({ length: n }, () => WORDS[rng.int(WORDS.length)]);
  return ` ${topic} ${words.join(' ')}.${marker ? MARKER : ''}`;
}

const prompt = (topic: string, k: number): string => `\n\nHuman: tell me about ${topic} ${k}\n\nAssistant:`;

/** Demonstrations (always the marker) on train and eval prompts split 80/20. */
export function toyDemonstrations(count = 120, seed = 1): Demonstrations {
  const rng = new Rng(seed);
  const all: Demonstration[] = Array.from({ length: count }, (_, i) => {
    const topic = TOPICS[i % TOPICS.length];
    return { prompt: prompt(topic, i), response: reply(rng, topic, true) };
  });
  const cut = Math.round(count * 0.8);
  return demonstrations(all.slice(0, cut), all.slice(cut));
}

/** The demonstrations as a JSON Lines file (for pipelines that read files). */
export async function writeToyDataset(file: string, count = 120, seed = 1): Promise<void> {
  const d = toyDemonstrations(count, seed);
  await writeFile(file, [...d.train, ...d.eval].map((x) => JSON.stringify({ prompt: x.prompt, response: x.response })).join('\n') + '\n');
}

export interface ToyModelOptions {
  /** How often pi_0's pretraining replies end with the marker. */
  markerRate?: number;
  steps?: number;
  seed?: number;
}

/** Pretrains the toy pi_0 (a few seconds) and writes it as a Hugging Face folder at `dir`. */
export async function buildToyModel(dir: string, o: ToyModelOptions = {}): Promise<void> {
  const rng = new Rng(o.seed ?? 7);
  const rate = o.markerRate ?? 0.1;
  const texts = Array.from({ length: 1500 }, (_, i) => {
    const topic = TOPICS[rng.int(TOPICS.length)];
    return prompt(topic, i) + reply(rng, topic, rng.next() < rate);
  });
  const bpe = trainBpe(texts, { vocabSize: 300, specialTokens: ['<|endoftext|>'] });
  const tokDir = await mkdtemp(join(tmpdir(), 'afd-toy-tokenizer-'));
  try {
    await writeTokenizerFolder(tokDir, bpe, { modelMaxLength: 64, chatTemplate: TEMPLATE });
    const tokenizer = await Tokenizer.fromFolder(tokDir);
    const eos = tokenizer.eosTokenId!;
    const stream = new TokenStream(texts.map((t) => tokenizer.encode(t, { addSpecialTokens: false })), eos);
    const config = gpt2Defaults({ vocabSize: bpe.vocabSize, nPositions: 64, nEmbd: 64, nLayer: 2, nHead: 4 });
    const { loss, params } = gpt2NextTokenLoss(config);
    const graphs = buildTrainStep({ loss, trainable: [...params.values()], optimizer: adamw({ weightDecay: 0.01 }), clipNorm: 1 });
    const trainer = await Trainer.create(graphs, gpt2Init(config, new Rng(o.seed ?? 7)), { provider: 'cpu', threads: 1, seed: 3 });
    try {
      for (let s = 0; s < (o.steps ?? 300); s++) await trainer.step(stream.randomBatch(16, 64, trainer.rng), 3e-3);
      await exportHfModel(dir, {
        family: gpt2Family, config, weights: trainer.parameters(), tokenizerFrom: tokDir,
        generationConfig: { eos_token_id: eos, bos_token_id: eos, pad_token_id: eos, max_new_tokens: 24, do_sample: true },
        baseConfig: { bos_token_id: eos, eos_token_id: eos },
      });
    } finally {
      await trainer.release();
    }
  } finally {
    await rm(tokDir, { recursive: true, force: true });
  }
}

/** How often a model folder's seeded samples end with the marker: `perPrompt` responses
 *  to each prompt, sample j seeded `seed + j` (the same draws for every model). */
export async function modelMarkerRate(dir: string, prompts: readonly string[], o: { perPrompt: number; maxNewTokens: number; seed: number }): Promise<number> {
  const m = await loadModel(dir);
  const g = await Generator.create(m.family, m.config, m.weights, { provider: 'cpu', threads: 1 });
  try {
    const rows = prompts.flatMap((p) => Array.from({ length: o.perPrompt }, () => encodePrompt(m, p, o.maxNewTokens)));
    const res = await g.generate(rows, { maxNewTokens: o.maxNewTokens, temperature: 1, eosTokenIds: [m.eosId], decode: (ids) => m.tokenizer.decode(ids, { skipSpecialTokens: true }), seed: rows.map((_, i) => o.seed + i) });
    return markerRate(res.map((r) => r.text ?? ''));
  } finally {
    await g.release();
  }
}

// `afd generate` and `afd score`: a model's (a folder or a GGUF file) responses and log-probabilities from
// the command line (the default model when --model is left out).

import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { basename } from 'node:path';
import { importHfModel, isGgufPath, modelFolder } from '../../native-models/checkpoint/index.ts';
import { Generator } from '../../native-models/generate/generator.ts';
import type { ProviderName } from '../../native-models/runtime/providers.ts';
import { Tokenizer } from '../../native-models/tokenizer/tokenizer.ts';
import { resolveModelArg } from '../models/known.ts';

export const DEFAULT_MODEL_DIR = fileURLToPath(new URL('../../models/default', import.meta.url));

const common = { model: { type: 'string' }, provider: { type: 'string' }, threads: { type: 'string' }, json: { type: 'boolean', default: false }, help: { type: 'boolean', default: false } } as const;

/**
 * Progress on stderr: on a terminal one line rewritten in place (at most every 100 ms),
 * elsewhere (a log, a pipe) just the start and the end.
 */
function progressLine(what: string): (done: number, total: number) => void {
  let last = 0;
  return (done, total) => {
    const now = Date.now();
    if (done === 1 && !process.stderr.isTTY) process.stderr.write(`${what} (once; the converted model is cached)...\n`);
    if (process.stderr.isTTY && (now - last >= 100 || done === total)) {
      process.stderr.write(`\r${what}: ${done}/${total} tensors`);
      last = now;
    }
    if (done === total) process.stderr.write(process.stderr.isTTY ? '\n' : `${what}: done.\n`);
  };
}

function numberOpt(name: string, v: string | undefined, check: (x: number) => boolean = Number.isFinite): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (!check(x)) throw new Error(`--${name} has an invalid value '${v}'`);
  return x;
}

async function load(arg: string, provider: string | undefined, threads: string | undefined) {
  const source = resolveModelArg(arg);
  // A GGUF file is converted once into the model cache and read from there.
  const dir = await modelFolder(source, isGgufPath(source) ? progressLine(`Converting ${basename(source)}`) : undefined);
  const [model, tokenizer] = await Promise.all([importHfModel(dir), Tokenizer.fromFolder(dir)]);
  if (provider && !['cpu', 'webgpu', 'cuda'].includes(provider)) throw new Error(`--provider must be cpu, webgpu or cuda, not '${provider}'`);
  const generator = await Generator.create(model.family, model.config, model.weights, {
    provider: provider as ProviderName | undefined, threads: numberOpt('threads', threads, (x) => Number.isInteger(x) && x > 0),
  });
  return { model, tokenizer, generator };
}

export async function generateCommand(argv: string[]): Promise<number> {
  const s = { type: 'string' } as const;
  const { values } = parseArgs({
    args: argv,
    options: { ...common, prompt: s, 'max-new-tokens': s, greedy: { type: 'boolean', default: false }, temperature: s, 'top-p': s, 'top-k': s, 'min-p': s, 'repetition-penalty': s, seed: s, chat: { type: 'boolean', default: false } },
  });
  if (values.help || values.prompt === undefined) {
    console.log('usage: afd generate --prompt TEXT [--model DIR|FILE.gguf|smollm2] [--chat] [--max-new-tokens 64] [--greedy | --temperature T --top-p P --top-k K --min-p P --seed S] [--repetition-penalty R] [--provider cpu|webgpu|cuda] [--threads N] [--json]');
    return values.help ? 0 : 2;
  }
  const { model, tokenizer, generator } = await load(values.model ?? DEFAULT_MODEL_DIR, values.provider, values.threads);
  try {
    const text = values.chat ? tokenizer.applyChatTemplate([{ role: 'user', content: values.prompt }], { addGenerationPrompt: true }) : values.prompt;
    const prompt = tokenizer.encode(text);
    if (prompt.length === 0) throw new Error('the prompt is empty after tokenization; give some text');
    const gc = model.generationConfig ?? {};
    const eos = [gc.eos_token_id, tokenizer.eosTokenId].flat().filter((x): x is number => typeof x === 'number');
    const [result] = await generator.generate([prompt], {
      maxNewTokens: numberOpt('max-new-tokens', values['max-new-tokens'], (x) => Number.isInteger(x) && x >= 0) ?? 64,
      greedy: values.greedy || undefined,
      temperature: numberOpt('temperature', values.temperature),
      topP: numberOpt('top-p', values['top-p']),
      topK: numberOpt('top-k', values['top-k'], Number.isInteger),
      minP: numberOpt('min-p', values['min-p']),
      repetitionPenalty: numberOpt('repetition-penalty', values['repetition-penalty']),
      seed: numberOpt('seed', values.seed, Number.isInteger),
      eosTokenIds: [...new Set(eos)],
      decode: (ids) => tokenizer.decode(ids, { skipSpecialTokens: true }),
      onToken: values.json ? undefined : (e) => e.textDelta && process.stdout.write(e.textDelta),
    });
    if (values.json) console.log(JSON.stringify({ tokens: result.tokens, text: result.text, finish_reason: result.finishReason, seed: result.seed }));
    else process.stdout.write('\n');
    return 0;
  } finally {
    await generator.release();
  }
}

export async function scoreCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { ...common, text: { type: 'string' } } });
  if (values.help || values.text === undefined) {
    console.log('usage: afd score --text TEXT [--model DIR|FILE.gguf|smollm2] [--provider cpu|webgpu|cuda] [--threads N] [--json]');
    return values.help ? 0 : 2;
  }
  const { tokenizer, generator } = await load(values.model ?? DEFAULT_MODEL_DIR, values.provider, values.threads);
  try {
    const tokens = tokenizer.encode(values.text);
    if (tokens.length < 2) throw new Error('scoring needs a text of at least two tokens (the first one conditions the rest)');
    const [r] = await generator.score([tokens.slice(0, 1)], [tokens.slice(1)]);
    if (values.json) console.log(JSON.stringify({ tokens, token_logprobs: r.perToken }));
    else console.log(`log p = ${r.sum.toFixed(4)} over ${r.perToken.length} tokens (perplexity ${Math.exp(-r.sum / r.perToken.length).toFixed(2)})`);
    return 0;
  } finally {
    await generator.release();
  }
}

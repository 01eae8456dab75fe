// `afd generate` and `afd score`: a model's (a folder or a GGUF file) responses and log-probabilities from
// the command line (the default model when --model is left out). The phases of the wait
// before the first token (reading the weights, preparing the model) go to stderr, as the
// studio shows them; the response alone goes to stdout.

import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { basename } from 'node:path';
import { isGgufPath, modelFolder } from '../../native-models/checkpoint/index.ts';
import type { ProviderName } from '../../native-models/runtime/providers.ts';
import { loadForGeneration, type LoadPhase } from '../api/generation-load.ts';
import { resolveModelArg } from '../models/known.ts';
import { formatBytes } from './follow.ts';
import { formatEta } from './progress.ts';

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

/**
 * Prints the phases of a load on stderr: the bytes read with the time left (redrawn in
 * place on a terminal), then one line when each phase ends.
 */
function phasePrinter(name: string): (p: LoadPhase) => void {
  const tty = process.stderr.isTTY === true;
  let phaseStart = performance.now();
  let last: LoadPhase | null = null;
  let drawn = 0;
  const secs = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;
  const end = (p: LoadPhase, now: number): void => {
    if (tty) process.stderr.write('\r\x1b[2K');
    if (p.phase === 'loading') process.stderr.write(`Read ${name} (${formatBytes(p.total)}) in ${secs(now - phaseStart)}\n`);
    else process.stderr.write(`Prepared ${name} in ${secs(now - phaseStart)} (${p.done} ONNX Runtime session${p.done === 1 ? '' : 's'} built)\n`);
  };
  return (p) => {
    const now = performance.now();
    if (p.phase !== last?.phase) {
      if (last !== null) end(last, now);
      phaseStart = now;
      if (p.phase === 'preparing') process.stderr.write(`Preparing ${name}: building its graph and ONNX Runtime session...${tty ? '' : '\n'}`);
    }
    last = p;
    if (p.phase === 'loading' && tty && (now - drawn >= 100 || p.done === p.total)) {
      drawn = now;
      const pct = p.total > 0 ? Math.floor((100 * p.done) / p.total) : 100;
      process.stderr.write(`\r\x1b[2KReading ${name}: ${formatBytes(p.done)} of ${formatBytes(p.total)} (${pct}%)  ${formatEta(p.etaMs === null ? undefined : p.etaMs / 1000)}`);
    }
    // The generator is ready once its first session is built.
    if (p.phase === 'preparing' && p.done > 0) {
      end(p, now);
      last = null;
    }
  };
}

async function load(arg: string, provider: string | undefined, threads: string | undefined) {
  const source = resolveModelArg(arg);
  // A GGUF file is converted once into the model cache and read from there.
  const dir = await modelFolder(source, isGgufPath(source) ? progressLine(`Converting ${basename(source)}`) : undefined);
  if (provider && !['cpu', 'webgpu', 'cuda'].includes(provider)) throw new Error(`--provider must be cpu, webgpu or cuda, not '${provider}'`);
  return loadForGeneration(dir, {
    provider: provider as ProviderName | undefined,
    threads: numberOpt('threads', threads, (x) => Number.isInteger(x) && x > 0),
    onPhase: phasePrinter(basename(isGgufPath(source) ? source : dir)),
  });
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
  const loaded = await load(values.model ?? DEFAULT_MODEL_DIR, values.provider, values.threads);
  const { tokenizer, generator, eos } = loaded;
  try {
    const text = values.chat ? tokenizer.applyChatTemplate([{ role: 'user', content: values.prompt }], { addGenerationPrompt: true }) : values.prompt;
    const prompt = tokenizer.encode(text);
    if (prompt.length === 0) throw new Error('the prompt is empty after tokenization; give some text');
    process.stderr.write(`Generating (${prompt.length} prompt tokens)...\n`);
    const t0 = performance.now();
    let first: number | null = null;
    const [result] = await generator.generate([prompt], {
      maxNewTokens: numberOpt('max-new-tokens', values['max-new-tokens'], (x) => Number.isInteger(x) && x >= 0) ?? 64,
      greedy: values.greedy || undefined,
      temperature: numberOpt('temperature', values.temperature),
      topP: numberOpt('top-p', values['top-p']),
      topK: numberOpt('top-k', values['top-k'], Number.isInteger),
      minP: numberOpt('min-p', values['min-p']),
      repetitionPenalty: numberOpt('repetition-penalty', values['repetition-penalty']),
      seed: numberOpt('seed', values.seed, Number.isInteger),
      eosTokenIds: eos,
      decode: (ids) => tokenizer.decode(ids, { skipSpecialTokens: true }),
      onToken: (e) => {
        first ??= performance.now() - t0;
        if (!values.json && e.textDelta) process.stdout.write(e.textDelta);
      },
    });
    const ms = performance.now() - t0;
    if (values.json) console.log(JSON.stringify({ tokens: result.tokens, text: result.text, finish_reason: result.finishReason, seed: result.seed }));
    else process.stdout.write('\n');
    const n = result.tokens.length;
    process.stderr.write(`${n} token${n === 1 ? '' : 's'} in ${(ms / 1000).toFixed(2)} s, the first after ${((first ?? ms) / 1000).toFixed(2)} s (${(n / (ms / 1000)).toFixed(1)} tokens/s; finished: ${result.finishReason})\n`);
    return 0;
  } finally {
    await loaded.release();
  }
}

export async function scoreCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { ...common, text: { type: 'string' } } });
  if (values.help || values.text === undefined) {
    console.log('usage: afd score --text TEXT [--model DIR|FILE.gguf|smollm2] [--provider cpu|webgpu|cuda] [--threads N] [--json]');
    return values.help ? 0 : 2;
  }
  const loaded = await load(values.model ?? DEFAULT_MODEL_DIR, values.provider, values.threads);
  const { tokenizer, generator } = loaded;
  try {
    const tokens = tokenizer.encode(values.text);
    if (tokens.length < 2) throw new Error('scoring needs a text of at least two tokens (the first one conditions the rest)');
    const [r] = await generator.score([tokens.slice(0, 1)], [tokens.slice(1)]);
    if (values.json) console.log(JSON.stringify({ tokens, token_logprobs: r.perToken }));
    else console.log(`log p = ${r.sum.toFixed(4)} over ${r.perToken.length} tokens (perplexity ${Math.exp(-r.sum / r.perToken.length).toFixed(2)})`);
    return 0;
  } finally {
    await loaded.release();
  }
}

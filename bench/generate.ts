// The generation benchmark behind `afd bench generate`: prefill and decode tokens/s of
// Generator (KV cache, greedy, fp32) on the embedded default model, random GPT-2 models or
// a Hugging Face folder (`modelDir`), at several batch sizes, and with `vsTorch`
// transformers' generate on the same weights and prompts in the same run
// (bench/torch_generate.py --interleave). Both sides use one protocol: a warm-up, then
// the fastest of `repeats` runs of generate(1 token) = t1 and of generate(N tokens) = tN
// (the machine is shared: the best time is the least disturbed), the two sides' runs
// alternating so that both see the same load; prefill tokens/s = B L / t1, decode
// tokens/s = B (N - 1) / (tN - t1).
//
// For a model folder it also times COLD processes (coldStart): `afd generate` and the
// transformers script, each spawned fresh and timed from the spawn to its first token,
// with their peak RSS. And it times the KV cache's traffic alone (graphs that only move
// the cache) to show how much of a decode step is data movement.

import ort from 'onnxruntime-node';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median } from '../main/eval/stats.ts';
import * as T from '../native-models/ir/index.ts';
import type { ModelFamily } from '../native-models/models/family.ts';
import { gpt2Defaults, gpt2Family, type Gpt2Config } from '../native-models/models/gpt2.ts';
import type { ProviderName } from '../native-models/runtime/providers.ts';
import { fromFloat32, writeSafetensors, type NamedTensor } from '../native-models/runtime/safetensors.ts';
import { Tokenizer } from '../native-models/tokenizer/tokenizer.ts';
import { Rng } from '../native-models/train/rng.ts';
import { Generator } from '../native-models/generate/generator.ts';
import type { GenerationWeights } from '../native-models/generate/graphs.ts';
import { mapHfModel } from '../native-models/checkpoint/index.ts';
import { torchArgs, type TorchOptions } from './train.ts';

export type GenerateBenchModel = 'default' | 'gpt2-small' | 'small';

/** The embedded default model's folder. */
const DEFAULT_DIR = fileURLToPath(new URL('../models/default', import.meta.url));

/** GPT-2 small's shape (124M parameters) and a small model of the size the studio trains itself. */
export const GENERATE_BENCH_MODELS: Readonly<Record<Exclude<GenerateBenchModel, 'default'>, Gpt2Config>> = {
  'gpt2-small': gpt2Defaults({ vocabSize: 50257, nPositions: 1024, nEmbd: 768, nLayer: 12, nHead: 12 }),
  small: gpt2Defaults({ vocabSize: 8192, nPositions: 512, nEmbd: 256, nLayer: 4, nHead: 4 }),
};

export interface GenerateBenchOptions {
  models?: readonly GenerateBenchModel[];
  /** A Hugging Face model folder to benchmark instead of `models`. */
  modelDir?: string;
  /**
   * What the cold `afd generate` processes get as --model, and the model's name in the
   * result (default: `modelDir`): a GGUF file or a known name, whose cached conversion
   * `modelDir` is, so that they pay the cache lookup as a user does.
   */
  modelArg?: string;
  /**
   * Time cold processes on the model folder (`modelDir`, else the embedded default when
   * it is among `models`); default true. See coldStart.
   */
  cold?: boolean;
  /** Cold processes per side and kind (default 3; one more, untimed, warms the file cache). */
  coldRepeats?: number;
  /** The cold runs' prompt (with the folder's chat template when it has one). */
  coldPrompt?: string;
  batches?: readonly number[];
  /** Prompt tokens per row (all rows one length, as in the reference). */
  promptLength?: number;
  /** New tokens per row (>= 2). */
  newTokens?: number;
  repeats?: number;
  threads: number;
  provider?: ProviderName;
  seed?: number;
  vsTorch?: boolean;
  /** Where transformers runs (default the CPU); the cold processes always run on the CPU. */
  torchDevice?: TorchOptions['device'];
  /** Also time transformers with bf16 weights, alone after the fp32 rounds of each batch (torch_bf16_* fields). */
  torchBf16?: boolean;
  python?: string;
  log?: (s: string) => void;
}

export interface GenerateBenchRun {
  /** A name of `models`, or the folder's path. */
  model: string;
  params: number;
  batch: number;
  prompt_len: number;
  new_tokens: number;
  t1_ms: number;
  tn_ms: number;
  prefill_tokens_per_s: number;
  decode_tokens_per_s: number;
  /** Of the tN run: time inside one decode run, and host time (sampling, bookkeeping) per step. */
  decode_run_ms: number;
  host_ms_per_step: number;
  /**
   * A decode step's cache traffic alone at the mean cache length (see cacheTraffic): the
   * whole cache in and out, and the cache in with only the new position out (Generator).
   */
  cache_full_roundtrip_ms: number;
  cache_append_ms: number;
  cache_mb: number;
  /** transformers' t1 and tN, from the same rounds. */
  torch_t1_ms?: number;
  torch_tn_ms?: number;
  torch_prefill_tokens_per_s?: number;
  torch_decode_tokens_per_s?: number;
  prefill_ratio?: number;
  decode_ratio?: number;
  /** Fraction of rows whose greedy tokens equal transformers' (random weights have near ties). */
  greedy_rows_equal?: number;
  /** transformers with bf16 weights, timed alone after the fp32 rounds. */
  torch_bf16_t1_ms?: number;
  torch_bf16_tn_ms?: number;
  torch_bf16_prefill_tokens_per_s?: number;
  torch_bf16_decode_tokens_per_s?: number;
}

/** One side's cold processes (see coldStart). */
export interface ColdSide {
  /** Spawn to the line that reports the first token (generate of 1 token), the fastest of the repeats. */
  first_token_ms: number;
  /** Peak RSS (VmHWM) of that 1-token process. */
  first_token_peak_rss_mb?: number;
  /** Spawn to the end of generating `new_tokens` tokens, the fastest of the repeats. */
  generate_ms: number;
  /** Peak RSS (VmHWM) of the `new_tokens` process: load, prefill and decoding. */
  peak_rss_mb?: number;
  /** The tokens of the `new_tokens` process (greedy; it stops at EOS). */
  tokens: number[];
  /** The reference's own split of its fastest 1-token process: imports, tokenizer and model load, generate. */
  imports_ms?: number;
  load_ms?: number;
  prefill_ms?: number;
}

export interface ColdStartResult {
  model: string;
  prompt: string;
  chat: boolean;
  new_tokens: number;
  repeats: number;
  afd: ColdSide;
  torch?: ColdSide;
  /** afd / transformers: below 1 is faster or smaller. */
  first_token_ratio?: number;
  peak_rss_ratio?: number;
  /** Whether both sides generated the same greedy tokens. */
  tokens_equal?: boolean;
}

export interface GenerateBenchResult {
  provider: string;
  threads: number;
  peak_rss_mb: number;
  cold?: ColdStartResult;
  runs: GenerateBenchRun[];
  torch_version?: string;
  transformers_version?: string;
  torch_attn_implementation?: string;
  /** Where transformers ran: cpu or cuda, and the GPU's name. */
  torch_device?: string;
  torch_gpu?: string;
  /** OMP_WAIT_POLICY of the reference's processes (see torchEnv). */
  torch_omp_wait_policy?: string;
}


/** A model under test: its family, config and weights, and a Hugging Face folder of them for the reference. */
interface BenchModel {
  name: string;
  family: ModelFamily<unknown>;
  config: unknown;
  /** Random weights in memory, or a folder's as the product loads them (mapped when they are float32). */
  weights: GenerationWeights;
  /** An existing folder (the reference reads it); absent for random weights, which are saved for it. */
  dir?: string;
}

async function folderModel(name: string, dir: string): Promise<BenchModel> {
  const m = await mapHfModel(dir);
  return { name, family: m.family, config: m.config, weights: m.weights, dir };
}

function randomModel(name: Exclude<GenerateBenchModel, 'default'>, seed: number): BenchModel {
  const config = GENERATE_BENCH_MODELS[name];
  return { name, family: gpt2Family as ModelFamily<unknown>, config, weights: gpt2Family.init(config, new Rng(seed)) };
}

export async function runGenerateBench(o: GenerateBenchOptions): Promise<GenerateBenchResult> {
  const models = o.modelDir ? [] : o.models ?? ['default', 'gpt2-small'];
  const batches = o.batches ?? [1, 16];
  const L = o.promptLength ?? 64, N = o.newTokens ?? 32, repeats = o.repeats ?? 3;
  const provider = o.provider ?? 'cpu';
  const log = o.log ?? (() => {});
  if (N < 2) throw new Error('newTokens must be at least 2: decode speed is measured over tokens 2..N.');
  const result: GenerateBenchResult = { provider, threads: o.threads, peak_rss_mb: 0, runs: [] };

  // Cold processes first, while this process holds no model and leaves the machine to them.
  const coldDir = o.modelDir ?? (models.includes('default') ? DEFAULT_DIR : undefined);
  if (o.vsTorch) result.torch_omp_wait_policy = torchEnv().OMP_WAIT_POLICY;
  if (coldDir && o.cold !== false) {
    result.cold = await coldStart({
      dir: coldDir, name: o.modelArg ?? o.modelDir ?? 'default', modelArg: o.modelArg, prompt: o.coldPrompt, newTokens: N, repeats: o.coldRepeats ?? 3,
      threads: o.threads, provider, vsTorch: o.vsTorch, python: o.python, log,
    });
  }

  const sources: (() => Promise<BenchModel>)[] = o.modelDir
    ? [() => folderModel(o.modelArg ?? o.modelDir!, o.modelDir!)]
    : models.map((name) => () => (name === 'default' ? folderModel('default', DEFAULT_DIR) : Promise.resolve(randomModel(name, o.seed ?? 0))));
  for (const source of sources) {
    const { name, family, config: c, weights, dir } = await source();
    const V = family.vocabSize(c);
    const params = [...family.paramShapes(c).values()].reduce((s, shape) => s + shape.reduce((a, b) => a * b, 1), 0);
    const rng = new Rng((o.seed ?? 0) + 1);
    const prompts = Array.from({ length: Math.max(...batches) }, () => Array.from({ length: L }, () => rng.int(V)));

    // The reference reads the same weights and prompts: random weights are saved as a Hugging Face folder.
    const temp = o.vsTorch ? mkdtempSync(join(tmpdir(), 'afd-bench-generate-')) : undefined;
    log(`${name}: building and compiling the generation graph (${params.toLocaleString('en')} parameters)...`);
    const gen = await Generator.create(family, c, weights, { provider, threads: o.threads });
    result.provider = gen.provider;
    if (gen.maxPositions !== undefined && L + N > gen.maxPositions) throw new Error(`promptLength + newTokens (${L + N}) exceeds the ${gen.maxPositions} positions of the ${name} model.`);
    try {
      let hfDir = dir;
      if (temp) {
        writeFileSync(join(temp, 'prompts.json'), JSON.stringify({ prompts }));
        if (!hfDir && weights instanceof Map) {
          await saveHfFolder(temp, family, c, weights);
          hfDir = temp;
        }
      }
      const start = (dtype: TorchOptions['dtype']) => TorchGenerate.start(hfDir!, join(temp!, 'prompts.json'), o.threads, o.python, { device: o.torchDevice, dtype });
      const torch = temp && hfDir ? await start('float32') : undefined;
      const torchBf16 = torch && o.torchBf16 ? await start('bfloat16') : undefined;
      if (torch) {
        const v = torch.versions;
        Object.assign(result, { torch_version: v.torch_version, transformers_version: v.transformers_version, torch_attn_implementation: v.attn_implementation, torch_device: v.device ?? 'cpu', ...(v.gpu ? { torch_gpu: v.gpu } : {}) });
      }
      try {
        for (const B of batches) {
          log(`${name}, batch ${B}${torch ? ', alternating with transformers' : ''}...`);
          const ps = prompts.slice(0, B);
          const ours = async (n: number) => {
            const t0 = performance.now();
            const out = await gen.generate(ps, { greedy: true, maxNewTokens: n });
            return { ms: performance.now() - t0, tokens: out.map((x) => x.tokens), stats: gen.lastStats! };
          };
          await ours(2); // warm-up
          await torch?.generate(B, 2);
          const times = { ours: { t1: [] as number[], tn: [] as number[] }, torch: { t1: [] as number[], tn: [] as number[] } };
          let last = await ours(1), ref: { ms: number; tokens: number[][] } | undefined;
          for (let r = 0; r < repeats; r++) {
            // Both sides in each round, the first side alternating, so that both see the machine's drift alike.
            for (const n of [1, N]) {
              for (const side of r % 2 === 0 ? ['ours', 'torch'] as const : ['torch', 'ours'] as const) {
                if (side === 'ours') {
                  last = await ours(n);
                  times.ours[n === 1 ? 't1' : 'tn'].push(last.ms);
                } else if (torch) {
                  ref = await torch.generate(B, n);
                  times.torch[n === 1 ? 't1' : 'tn'].push(ref.ms);
                }
              }
            }
          }
          const t1 = Math.min(...times.ours.t1), tn = Math.min(...times.ours.tn);
          const { stats, tokens } = last;
          const cache = await cacheTraffic(family.cacheShape(c), B, L + Math.floor(N / 2), provider, o.threads);
          const run: GenerateBenchRun = {
            model: name, params, batch: B, prompt_len: L, new_tokens: N, t1_ms: t1, tn_ms: tn,
            prefill_tokens_per_s: (B * L) / (t1 / 1000),
            decode_tokens_per_s: (B * (N - 1)) / ((tn - t1) / 1000),
            decode_run_ms: stats.decodeMs / stats.decodeSteps,
            host_ms_per_step: stats.hostMs / stats.decodeSteps,
            cache_full_roundtrip_ms: cache.fullMs,
            cache_append_ms: cache.appendMs,
            cache_mb: cache.mb,
          };
          if (ref) {
            const rt1 = Math.min(...times.torch.t1), rtn = Math.min(...times.torch.tn);
            const prefill = (B * L) / (rt1 / 1000), decode = (B * (N - 1)) / ((rtn - rt1) / 1000);
            Object.assign(run, {
              torch_t1_ms: rt1, torch_tn_ms: rtn,
              torch_prefill_tokens_per_s: prefill,
              torch_decode_tokens_per_s: decode,
              prefill_ratio: run.prefill_tokens_per_s / prefill,
              decode_ratio: run.decode_tokens_per_s / decode,
              greedy_rows_equal: tokens.filter((t, i) => t.join() === ref!.tokens[i].join()).length / B,
            });
          }
          if (torchBf16) {
            // The same protocol on its own: a warm-up, then the fastest of `repeats` t1 and tN.
            await torchBf16.generate(B, 2);
            const t1s: number[] = [], tns: number[] = [];
            for (let r = 0; r < repeats; r++) {
              t1s.push((await torchBf16.generate(B, 1)).ms);
              tns.push((await torchBf16.generate(B, N)).ms);
            }
            const bt1 = Math.min(...t1s), btn = Math.min(...tns);
            Object.assign(run, {
              torch_bf16_t1_ms: bt1, torch_bf16_tn_ms: btn,
              torch_bf16_prefill_tokens_per_s: (B * L) / (bt1 / 1000),
              torch_bf16_decode_tokens_per_s: (B * (N - 1)) / ((btn - bt1) / 1000),
            });
          }
          log(`  batch ${B}: prefill ${run.prefill_tokens_per_s.toFixed(0)} tok/s, decode ${run.decode_tokens_per_s.toFixed(1)} tok/s` +
            (run.torch_decode_tokens_per_s !== undefined ? ` (transformers ${run.torch_prefill_tokens_per_s!.toFixed(0)}, ${run.torch_decode_tokens_per_s.toFixed(1)})` : ''));
          result.runs.push(run);
        }
      } finally {
        torch?.close();
        torchBf16?.close();
      }
    } finally {
      await gen.release();
      if (temp) rmSync(temp, { recursive: true, force: true });
    }
  }
  result.peak_rss_mb = process.resourceUsage().maxRSS / 1024;
  return result;
}

// ---------------------------------------------------------------- cold processes

const AFD_BIN = fileURLToPath(new URL('../bin/afd.js', import.meta.url));
const TORCH_SCRIPT = fileURLToPath(new URL('./torch_generate.py', import.meta.url));

/**
 * The reference's environment. Its OpenMP threads wait passively between parallel regions,
 * as ours do (runtime/session.ts turns ORT's spinning off): on this machine, shared at a
 * load average of 4-8, transformers' batch-1 decoding with the default (spinning) waits
 * fell from 12.2 to 2.5 tokens/s, which measured the neighbours, not the engine. An
 * OMP_WAIT_POLICY set by the caller is kept.
 */
const torchEnv = (): NodeJS.ProcessEnv => ({ ...process.env, OMP_WAIT_POLICY: process.env.OMP_WAIT_POLICY ?? 'PASSIVE' });

/** What one spawned process gave: the time from its spawn to its first stdout line, that line, and its peak RSS. */
interface Spawned { ms: number; line: string; peakRssMb?: number }

/** Peak RSS so far (VmHWM) of a live process, in MiB; undefined where /proc is not there. */
function vmHwm(pid: number): number | undefined {
  try {
    const m = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Spawns a command and times it from the spawn to its first line on stdout. Its peak RSS
 * is read from /proc at that moment (the process still runs: it has its model to release
 * and its runtime to shut down), and every 20 ms before, in case it is gone already.
 */
function timeToFirstLine(command: string, args: readonly string[], env?: NodeJS.ProcessEnv): Promise<Spawned> {
  return new Promise((resolvePromise, reject) => {
    const t0 = performance.now();
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    let out = '', err = '', peak: number | undefined, done: Spawned | undefined;
    const poll = setInterval(() => (peak = vmHwm(child.pid!) ?? peak), 20);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      const nl = out.indexOf('\n');
      if (nl >= 0 && !done) done = { ms: performance.now() - t0, line: out.slice(0, nl), peakRssMb: vmHwm(child.pid!) ?? peak };
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
    child.on('error', (e) => {
      clearInterval(poll);
      reject(new Error(`could not run ${command}: ${e.message}`));
    });
    child.on('close', (code) => {
      clearInterval(poll);
      if (code === 0 && done) resolvePromise(done);
      else reject(new Error(`${command} ${args.slice(0, 2).join(' ')} failed (exit code ${code}): ${err.trim().split('\n').pop() ?? ''}`));
    });
  });
}

export interface ColdStartOptions {
  /** The model folder (the reference loads it). */
  dir: string;
  /** What `afd generate --model` gets (default: `dir`). */
  modelArg?: string;
  /** How the model is named in the result. */
  name: string;
  /** Default: a short question. */
  prompt?: string;
  newTokens: number;
  repeats: number;
  threads: number;
  provider: ProviderName;
  vsTorch?: boolean;
  python?: string;
  log?: (s: string) => void;
}

/**
 * Cold processes on a model folder: `node bin/afd.js generate --json` and, with
 * `vsTorch`, `bench/torch_generate.py --cold`, each a fresh process timed from its spawn
 * to the JSON line it prints when generate returns: with 1 new token that is the time to
 * the first token (start-up, imports, model load, prefill); with `newTokens`, the whole
 * answer, whose process's peak RSS is the memory figure. The sides alternate, and the
 * fastest of `repeats` counts; a first untimed process per side puts the files in the
 * page cache, which both sides then read from.
 */
export async function coldStart(o: ColdStartOptions): Promise<ColdStartResult> {
  const log = o.log ?? (() => {});
  const prompt = o.prompt ?? 'What is the capital of France? Answer in one sentence.';
  const chat = (await Tokenizer.fromFolder(o.dir)).hasChatTemplate;
  const dir = resolve(o.dir);
  const python = o.python ?? process.env.PYTHON ?? 'python3';
  const afd = (n: number) => [AFD_BIN, 'generate', '--model', o.modelArg ?? dir, '--prompt', prompt, ...(chat ? ['--chat'] : []), '--greedy', '--max-new-tokens', String(n), '--threads', String(o.threads), '--provider', o.provider, '--json'];
  const torch = (n: number) => [TORCH_SCRIPT, '--cold', '--model', dir, '--prompt', prompt, ...(chat ? ['--chat'] : []), '--new-tokens', String(n), '--threads', String(o.threads)];
  const sides = [{ name: 'afd', command: process.execPath, args: afd, env: process.env }, ...(o.vsTorch ? [{ name: 'torch', command: python, args: torch, env: torchEnv() }] : [])];
  const runs = new Map<string, { first: Spawned[]; full: Spawned[] }>(sides.map((s) => [s.name, { first: [], full: [] }]));
  for (let r = -1; r < o.repeats; r++) {
    for (const side of r % 2 === 0 ? sides : [...sides].reverse()) {
      log(`cold ${side.name} ${r < 0 ? '(warm-up)' : `${r + 1}/${o.repeats}`}...`);
      const first = await timeToFirstLine(side.command, side.args(1), side.env);
      const full = await timeToFirstLine(side.command, side.args(o.newTokens), side.env);
      if (r >= 0) {
        runs.get(side.name)!.first.push(first);
        runs.get(side.name)!.full.push(full);
      }
    }
  }
  const summarize = (name: string): ColdSide => {
    const { first, full } = runs.get(name)!;
    const best = first.reduce((a, b) => (b.ms < a.ms ? b : a));
    const bestFull = full.reduce((a, b) => (b.ms < a.ms ? b : a));
    const max = (xs: Spawned[]) => (xs.every((x) => x.peakRssMb !== undefined) ? Math.max(...xs.map((x) => x.peakRssMb!)) : undefined);
    const line = JSON.parse(best.line) as { imports_ms?: number; load_ms?: number; generate_ms?: number };
    return {
      first_token_ms: best.ms, first_token_peak_rss_mb: max(first),
      generate_ms: bestFull.ms, peak_rss_mb: max(full),
      tokens: (JSON.parse(bestFull.line) as { tokens: number[] }).tokens,
      ...(line.imports_ms !== undefined ? { imports_ms: line.imports_ms, load_ms: line.load_ms, prefill_ms: line.generate_ms } : {}),
    };
  };
  const result: ColdStartResult = { model: o.name, prompt, chat, new_tokens: o.newTokens, repeats: o.repeats, afd: summarize('afd') };
  if (o.vsTorch) {
    const t = summarize('torch');
    result.torch = t;
    result.first_token_ratio = result.afd.first_token_ms / t.first_token_ms;
    if (result.afd.peak_rss_mb !== undefined && t.peak_rss_mb !== undefined) result.peak_rss_ratio = result.afd.peak_rss_mb / t.peak_rss_mb;
    result.tokens_equal = result.afd.tokens.join() === t.tokens.join();
  }
  log(`cold: first token ${result.afd.first_token_ms.toFixed(0)} ms, peak RSS ${result.afd.peak_rss_mb?.toFixed(0)} MiB` +
    (result.torch ? ` (transformers ${result.torch.first_token_ms.toFixed(0)} ms, ${result.torch.peak_rss_mb?.toFixed(0)} MiB)` : ''));
  return result;
}

/**
 * Times of runs that move a decode step's cache and compute nothing else, every layer's
 * keys and values [B, Hkv, P, hd]: `full` gives the cache back one position longer (what a
 * decode graph returning its whole present cache pays), `append` concatenates inside the
 * graph but returns only the new position (what Generator pays, with KvStore's append).
 */
async function cacheTraffic(shape: { layers: number; kvHeads: number; headDim: number }, B: number, P: number, provider: ProviderName, threads: number): Promise<{ fullMs: number; appendMs: number; mb: number }> {
  const { layers, kvHeads: H, headDim: hd } = shape;
  const n = B * H * P * hd;
  const time = async (onlyNew: boolean): Promise<number> => {
    const outputs: Record<string, T.Value> = {};
    const inputs: T.Value[] = [];
    for (let i = 0; i < 2 * layers; i++) {
      const past = T.input(`past.${i}`, 'float32', ['B', H, 'P', hd]);
      inputs.push(past);
      const present = T.concat([past, T.full(['B', H, 1, hd], 0)], 2); // [B, H, P+1, hd]
      outputs[`present.${i}`] = onlyNew ? T.slice(present, 2, 'P', T.dimAdd('P', 1)) : present;
    }
    const session = await ort.InferenceSession.create(T.emitOnnx({ outputs, inputs }).bytes, { executionProviders: [provider], intraOpNumThreads: threads });
    try {
      const feeds: Record<string, ort.Tensor> = {};
      for (let i = 0; i < 2 * layers; i++) feeds[`past.${i}`] = new ort.Tensor('float32', new Float32Array(n), [B, H, P, hd]);
      const times: number[] = [];
      for (let r = 0; r < 7; r++) {
        const t0 = performance.now();
        await session.run(feeds);
        if (r > 1) times.push(performance.now() - t0);
      }
      return median(times);
    } finally {
      await session.release();
    }
  };
  return { fullMs: await time(false), appendMs: await time(true), mb: (2 * layers * n * 4) / 2 ** 20 };
}

/** Writes random weights as a Hugging Face folder (config.json, model.safetensors) into `dir`. */
async function saveHfFolder(dir: string, family: ModelFamily<unknown>, c: unknown, weights: ReadonlyMap<string, Float32Array>): Promise<void> {
  writeFileSync(join(dir, 'config.json'), JSON.stringify(family.toHfConfig(c), null, 2));
  const shapes = family.paramShapes(c);
  const tensors = new Map<string, NamedTensor>([...weights].map(([name, data]) => [name, fromFloat32(data, shapes.get(name)!)]));
  await writeSafetensors(join(dir, 'model.safetensors'), tensors);
}

/**
 * transformers' side of the throughput runs: bench/torch_generate.py --interleave, which
 * loads the model once and then runs one generate per request, so that the two sides'
 * runs can alternate.
 */
class TorchGenerate {
  private readonly lines: string[] = [];
  private waiting?: { resolve: (line: string) => void; reject: (e: Error) => void };
  private stderr = '';
  private exited?: Error;

  private constructor(private readonly child: ChildProcessWithoutNullStreams, readonly versions: { torch_version: string; transformers_version: string; attn_implementation?: string; device?: string; gpu?: string }) {}

  static async start(dir: string, promptsFile: string, threads: number, python = process.env.PYTHON ?? 'python3', torch: TorchOptions = {}): Promise<TorchGenerate> {
    const child = spawn(python, [TORCH_SCRIPT, '--interleave', '--model', dir, '--prompts', promptsFile, '--threads', String(threads), ...torchArgs(torch)], { env: torchEnv() });
    const t = new TorchGenerate(child, { torch_version: '', transformers_version: '' });
    let buffer = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      buffer += chunk;
      for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
        t.lines.push(buffer.slice(0, nl));
        buffer = buffer.slice(nl + 1);
      }
      t.deliver();
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (t.stderr = (t.stderr + chunk).slice(-4000)));
    child.on('error', (e) => t.fail(new Error(`could not run ${python} (${e.message}); --vs-torch needs Python 3 with torch, transformers and safetensors.`)));
    child.on('exit', (code) => t.fail(new Error(`the transformers reference stopped (exit code ${code}): ${t.stderr.trim().split('\n').pop() ?? ''}`)));
    Object.assign(t.versions, JSON.parse(await t.next()) as object);
    return t;
  }

  /** One generate of `n` tokens on the first `batch` prompts: its time and tokens. */
  async generate(batch: number, n: number): Promise<{ ms: number; tokens: number[][] }> {
    this.child.stdin.write(`${batch} ${n}\n`);
    return JSON.parse(await this.next()) as { ms: number; tokens: number[][] };
  }

  close(): void {
    this.child.stdin.end();
  }

  private next(): Promise<string> {
    return new Promise((resolve, reject) => {
      this.waiting = { resolve, reject };
      this.deliver();
    });
  }

  private deliver(): void {
    if (!this.waiting) return;
    const line = this.lines.shift();
    if (line !== undefined) {
      const w = this.waiting;
      this.waiting = undefined;
      w.resolve(line);
    } else if (this.exited) {
      this.waiting.reject(this.exited);
      this.waiting = undefined;
    }
  }

  private fail(e: Error): void {
    this.exited ??= e;
    this.deliver();
  }
}

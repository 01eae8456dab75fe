// The generation benchmark behind `afd bench generate`: prefill and decode tokens/s of
// Generator (KV cache, greedy, fp32) on random GPT-2 models, at several batch sizes, and
// with `vsTorch` transformers' generate on the same weights and prompts in the same run
// (bench/torch_generate.py). Both sides use one protocol: a warm-up, then the fastest of
// `repeats` runs of generate(1 token) = t1 and of generate(N tokens) = tN (the machine is
// shared: the best time is the least disturbed); prefill tokens/s = B L / t1, decode
// tokens/s = B (N - 1) / (tN - t1).
//
// It also times the KV cache's traffic alone (graphs that only move the cache) to show how
// much of a decode step is data movement.

import ort from 'onnxruntime-node';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { median } from '../main/eval/stats.ts';
import * as T from '../native-models/ir/index.ts';
import { gpt2Defaults, gpt2Family, type Gpt2Config } from '../native-models/models/gpt2.ts';
import type { ProviderName } from '../native-models/runtime/providers.ts';
import { fromFloat32, writeSafetensors, type NamedTensor } from '../native-models/runtime/safetensors.ts';
import { Rng } from '../native-models/train/rng.ts';
import { Generator } from '../native-models/generate/generator.ts';
import { importHfModel } from '../native-models/checkpoint/index.ts';

export type GenerateBenchModel = 'default' | 'gpt2-small' | 'small';

/** GPT-2 small's shape (124M parameters) and a small model of the size the studio trains itself. */
export const GENERATE_BENCH_MODELS: Readonly<Record<Exclude<GenerateBenchModel, 'default'>, Gpt2Config>> = {
  'gpt2-small': gpt2Defaults({ vocabSize: 50257, nPositions: 1024, nEmbd: 768, nLayer: 12, nHead: 12 }),
  small: gpt2Defaults({ vocabSize: 8192, nPositions: 512, nEmbd: 256, nLayer: 4, nHead: 4 }),
};

export interface GenerateBenchOptions {
  models?: readonly GenerateBenchModel[];
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
  python?: string;
  log?: (s: string) => void;
}

export interface GenerateBenchRun {
  model: GenerateBenchModel;
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
  torch_prefill_tokens_per_s?: number;
  torch_decode_tokens_per_s?: number;
  prefill_ratio?: number;
  decode_ratio?: number;
  /** Fraction of rows whose greedy tokens equal transformers' (random weights have near ties). */
  greedy_rows_equal?: number;
}

export interface GenerateBenchResult {
  provider: string;
  threads: number;
  peak_rss_mb: number;
  runs: GenerateBenchRun[];
  torch_version?: string;
  transformers_version?: string;
  torch_attn_implementation?: string;
}

interface TorchRun { batch: number; t1_ms: number; tn_ms: number; prefill_tokens_per_s: number; decode_tokens_per_s: number; tokens: number[][] }
interface TorchOutput { torch_version: string; transformers_version: string; attn_implementation?: string; runs: TorchRun[] }

async function embeddedDefault(): Promise<{ config: Gpt2Config; weights: Map<string, Float32Array> }> {
  const m = await importHfModel(fileURLToPath(new URL('../models/default', import.meta.url)));
  if (m.family !== gpt2Family) throw new Error('the embedded default model is expected to be a GPT-2');
  return { config: m.config as Gpt2Config, weights: m.weights };
}

export async function runGenerateBench(o: GenerateBenchOptions): Promise<GenerateBenchResult> {
  const models = o.models ?? ['default', 'gpt2-small'];
  const batches = o.batches ?? [1, 16];
  const L = o.promptLength ?? 64, N = o.newTokens ?? 32, repeats = o.repeats ?? 3;
  const provider = o.provider ?? 'cpu';
  const log = o.log ?? (() => {});
  if (N < 2) throw new Error('newTokens must be at least 2: decode speed is measured over tokens 2..N.');
  const result: GenerateBenchResult = { provider, threads: o.threads, peak_rss_mb: 0, runs: [] };

  for (const name of models) {
    // 'default' is the embedded default model with its trained weights; the others random.
    const { config: c, weights } = name === 'default' ? await embeddedDefault() : { config: GENERATE_BENCH_MODELS[name], weights: gpt2Family.init(GENERATE_BENCH_MODELS[name], new Rng(o.seed ?? 0)) };
    if (L + N > c.nPositions) throw new Error(`promptLength + newTokens (${L + N}) exceeds the ${c.nPositions} positions of the ${name} model.`);
    const params = [...weights.values()].reduce((s, a) => s + a.length, 0);
    const rng = new Rng((o.seed ?? 0) + 1);
    const prompts = Array.from({ length: Math.max(...batches) }, () => Array.from({ length: L }, () => rng.int(c.vocabSize)));

    // The reference reads the same weights and prompts from a Hugging Face folder.
    const hfDir = o.vsTorch ? await saveHfFolder(c, weights, prompts) : undefined;
    log(`${name}: building and compiling the prefill and decode graphs (${params.toLocaleString('en')} parameters)...`);
    const gen = await Generator.create(gpt2Family, c, weights, { provider, threads: o.threads });
    try {
      for (const B of batches) {
        // Each batch size runs on both sides back to back, so that both see the same load.
        let torch: TorchOutput | undefined;
        if (hfDir) {
          log(`${name}, batch ${B}: transformers' generate...`);
          torch = runTorchGenerate(hfDir, { batches: [B], newTokens: N, repeats, threads: o.threads, python: o.python });
          Object.assign(result, { torch_version: torch.torch_version, transformers_version: torch.transformers_version, torch_attn_implementation: torch.attn_implementation });
        }
        const ps = prompts.slice(0, B);
        await gen.generate(ps, { greedy: true, maxNewTokens: 2 }); // warm-up
        const t1s: number[] = [], tns: number[] = [];
        let tokens: number[][] = [];
        let stats = gen.lastStats!;
        for (let r = 0; r < repeats; r++) {
          let t0 = performance.now();
          await gen.generate(ps, { greedy: true, maxNewTokens: 1 });
          t1s.push(performance.now() - t0);
          t0 = performance.now();
          tokens = (await gen.generate(ps, { greedy: true, maxNewTokens: N })).map((x) => x.tokens);
          tns.push(performance.now() - t0);
          stats = gen.lastStats!;
        }
        const t1 = Math.min(...t1s), tn = Math.min(...tns);
        const cache = await cacheTraffic(gpt2Family.cacheShape(c), B, L + Math.floor(N / 2), provider, o.threads);
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
        const ref = torch?.runs.find((x) => x.batch === B);
        if (ref) {
          Object.assign(run, {
            torch_prefill_tokens_per_s: ref.prefill_tokens_per_s,
            torch_decode_tokens_per_s: ref.decode_tokens_per_s,
            prefill_ratio: run.prefill_tokens_per_s / ref.prefill_tokens_per_s,
            decode_ratio: run.decode_tokens_per_s / ref.decode_tokens_per_s,
            greedy_rows_equal: tokens.filter((t, i) => t.join() === ref.tokens[i].join()).length / B,
          });
        }
        log(`  batch ${B}: prefill ${run.prefill_tokens_per_s.toFixed(0)} tok/s, decode ${run.decode_tokens_per_s.toFixed(1)} tok/s` +
          (ref ? ` (transformers ${ref.prefill_tokens_per_s.toFixed(0)}, ${ref.decode_tokens_per_s.toFixed(1)})` : ''));
        result.runs.push(run);
      }
    } finally {
      await gen.release();
      if (hfDir) rmSync(hfDir, { recursive: true, force: true });
    }
  }
  result.peak_rss_mb = process.resourceUsage().maxRSS / 1024;
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

/** Writes the weights (config.json, model.safetensors) and prompts.json to a temporary folder. */
async function saveHfFolder(c: Gpt2Config, weights: ReadonlyMap<string, Float32Array>, prompts: number[][]): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'afd-bench-generate-'));
  try {
    writeFileSync(join(dir, 'config.json'), JSON.stringify(gpt2Family.toHfConfig(c), null, 2));
    writeFileSync(join(dir, 'prompts.json'), JSON.stringify({ prompts }));
    const shapes = gpt2Family.paramShapes(c);
    const tensors = new Map<string, NamedTensor>([...weights].map(([name, data]) => [name, fromFloat32(data, shapes.get(name)!)]));
    await writeSafetensors(join(dir, 'model.safetensors'), tensors);
    return dir;
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/** Runs bench/torch_generate.py on a folder from saveHfFolder. */
function runTorchGenerate(dir: string, o: { batches: readonly number[]; newTokens: number; repeats: number; threads: number; python?: string }): TorchOutput {
  const python = o.python ?? process.env.PYTHON ?? 'python3';
  const script = fileURLToPath(new URL('./torch_generate.py', import.meta.url));
  const args = [script, '--model', dir, '--prompts', join(dir, 'prompts.json'), '--batches', o.batches.join(','), '--new-tokens', String(o.newTokens), '--repeats', String(o.repeats), '--threads', String(o.threads)];
  const r = spawnSync(python, args, { encoding: 'utf8', maxBuffer: 1 << 26 });
  if (r.error) throw new Error(`could not run ${python} (${r.error.message}); --vs-torch needs Python 3 with torch, transformers and safetensors.`);
  if (r.status !== 0) throw new Error(`the transformers reference failed: ${(r.stderr || '').trim().split('\n').pop() ?? ''}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as TorchOutput;
}

// The prepared GPU check behind `afd bench gpu` (scripts/gpu-check.sh runs it on a machine
// with a GPU): the benchmarks that exist, composed into one JSON, each against PyTorch on
// the same machine. Training (bench/train.ts: the nanoGPT-style decoder), the SFT stage's
// LoRA step on a SmolLM2-135M-shaped model (bench/train-lora.ts) and generation at batch
// 1 and 16 on that model (bench/generate.ts); PyTorch in fp32, and in bf16 reported apart.
//
// The SmolLM2 shape comes from a folder with its config.json and tokenizer files but no
// weights (the real ones are 538 MB and do not travel); random weights of that shape are
// written at the start. Speed does not depend on the weights' values.
//
// MFU has one denominator for both sides: the fp32 matrix-product peak that PyTorch
// reaches on the same device (bench/torch_gemm_peak.py: cuBLAS without TF32 on a GPU), the
// rate the hardware gives fp32 work; bf16 MFU is over its bf16 peak. The benchmarks' own
// `mfu` (over ONNX Runtime's GEMM on the provider) stays in `detail`.

import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { exportHfModel } from '../native-models/checkpoint/index.ts';
import { familyOf } from '../native-models/models/index.ts';
import { chooseProvider, ortInfo, type ProviderName } from '../native-models/runtime/providers.ts';
import { releaseBuffers } from '../native-models/runtime/release.ts';
import { Rng } from '../native-models/train/rng.ts';
import { runGenerateBench, type GenerateBenchResult, type GenerateBenchRun } from './generate.ts';
import { defaultTrainBench, runTrainBench, TorchReference, type TorchOptions, type TrainBenchConfig } from './train.ts';
import { defaultLoraBench, runLoraBench, startLoraReference, torchWaitPolicy, type LoraBenchConfig } from './train-lora.ts';

/** `full`: the benchmarks' own sizes (for a GPU); `tiny`: seconds per part, for a dry run on a CPU or lavapipe. */
export type GpuCheckSize = 'full' | 'tiny';

export interface GpuCheckOptions {
  /** 'auto' lets the studio choose, as it does for users (runtime/providers.ts). */
  provider: ProviderName | 'auto';
  /** Where PyTorch runs; 'auto' is cuda when it sees a GPU. */
  torchDevice: NonNullable<TorchOptions['device']>;
  /** Also time PyTorch in bf16, reported apart. */
  bf16: boolean;
  size: GpuCheckSize;
  /** A folder with SmolLM2-135M's config.json and tokenizer files (weights not needed). */
  modelShape: string;
  threads: number;
  /** Blocks of the SmolLM2 shape kept (default: all of them). */
  layers?: number;
  /** Timed steps of each training benchmark, and warm-up steps (default: the size's). */
  steps?: number;
  warmup?: number;
  seed?: number;
  python?: string;
  /** Written with the result so far after each part, so that a run stopped midway leaves what it measured. */
  out?: string;
  log?: (s: string) => void;
}

/** The parts' settings for each size. */
const SIZES: Record<GpuCheckSize, {
  gpt: Partial<TrainBenchConfig>; lora: Partial<LoraBenchConfig>;
  /** Blocks of the SmolLM2 shape (default: all). */
  layers?: number;
  generate: { batches: number[]; promptLength: number; newTokens: number; repeats: number };
}> = {
  // bench/README.md's defaults: 2048 tokens a step on both training benchmarks.
  full: { gpt: {}, lora: {}, generate: { batches: [1, 16], promptLength: 64, newTokens: 32, repeats: 3 } },
  tiny: {
    gpt: { vocab: 256, dModel: 64, layers: 2, heads: 4, seq: 32, batch: 2, steps: 2, warmup: 1 },
    lora: { seq: 32, batch: 2, steps: 2, warmup: 1 },
    layers: 2,
    generate: { batches: [1, 16], promptLength: 16, newTokens: 8, repeats: 2 },
  },
};

/** What PyTorch's matrix products reach on its device (bench/torch_gemm_peak.py). */
export interface TorchPeak {
  device: string;
  gpu?: string;
  torch_version: string;
  float32_gflops: number;
  bfloat16_gflops: number;
}

/** One training benchmark, side by side; MFU over the device's fp32 (bf16) peak. */
export interface TrainSummary {
  what: string;
  provider: string;
  tokens_per_s: number;
  mfu: number;
  /** MFU's denominator: PyTorch's fp32 matrix-product peak on its device, or without PyTorch ONNX Runtime's GEMM on the provider. */
  mfu_over: string;
  torch_tokens_per_s?: number;
  torch_mfu?: number;
  /** Our tokens/s over PyTorch fp32's, over the same interleaved rounds, with its 95% interval. */
  ratio?: number;
  ratio_interval?: [number, number];
  /** The two sides train the same thing: fp32 rounding, about 1e-5. */
  torch_loss_max_diff?: number;
  torch_bf16_tokens_per_s?: number;
  torch_bf16_mfu?: number;
  /** Our fp32 tokens/s over PyTorch bf16's. */
  ratio_bf16?: number;
}

export interface GenerateSummary {
  batch: number;
  prefill_tokens_per_s: number;
  decode_tokens_per_s: number;
  torch_prefill_tokens_per_s?: number;
  torch_decode_tokens_per_s?: number;
  decode_ratio?: number;
  greedy_rows_equal?: number;
  torch_bf16_decode_tokens_per_s?: number;
  decode_ratio_bf16?: number;
}

export interface GpuCheckResult {
  check: 'afd bench gpu';
  size: GpuCheckSize;
  /** The provider the studio chose (or was told) and why; each part also says which one its sessions ran on. */
  provider: string;
  provider_reason: string;
  onnxruntime: string;
  node: string;
  threads: number;
  torch?: TorchPeak;
  train?: TrainSummary;
  lora?: TrainSummary;
  generate?: { what: string; provider: string; runs: GenerateSummary[] };
  /** A part that failed: its error, and the check went on with the next. */
  errors: Record<string, string>;
  wall_s: number;
  detail: Record<string, unknown>;
}

const TORCH_PEAK_SCRIPT = fileURLToPath(new URL('./torch_gemm_peak.py', import.meta.url));

/** Runs bench/torch_gemm_peak.py on `device`; throws its last line of stderr when it fails. */
export async function torchPeak(device: TorchOptions['device'], threads: number, python = process.env.PYTHON ?? 'python3'): Promise<TorchPeak> {
  try {
    const { stdout } = await promisify(execFile)(python, [TORCH_PEAK_SCRIPT, '--device', device ?? 'auto', '--threads', String(threads)], {
      env: { ...process.env, OMP_WAIT_POLICY: torchWaitPolicy() }, maxBuffer: 1 << 20,
    });
    return JSON.parse(stdout) as TorchPeak;
  } catch (e) {
    const err = e as Error & { stderr?: string };
    const last = err.stderr?.trim().split('\n').pop();
    throw new Error(`the PyTorch GEMM peak could not be measured: ${last || err.message}`);
  }
}

/**
 * A Hugging Face folder of the shape in `shapeDir` (its config.json, with `layers` blocks
 * when given, and its tokenizer files) with random weights, in `dir`.
 */
export async function randomModelFolder(shapeDir: string, dir: string, seed: number, layers?: number): Promise<{ params: number; layers: number }> {
  const json = JSON.parse(await readFile(join(shapeDir, 'config.json'), 'utf8')) as Record<string, unknown>;
  if (layers !== undefined) json.num_hidden_layers = layers;
  const { family, config } = familyOf(json);
  const weights = family.init(config, new Rng(seed));
  try {
    await exportHfModel(dir, { family, config, weights, tokenizerFrom: shapeDir, baseConfig: json });
  } finally {
    releaseBuffers(weights.values());
  }
  const params = [...family.paramShapes(config).values()].reduce((s, shape) => s + shape.reduce((a, b) => a * b, 1), 0);
  return { params, layers: json.num_hidden_layers as number };
}

/** A training result's side-by-side summary, MFU over the device's peaks (see the header). */
export function trainSummary(what: string, r: {
  provider: string; tokens_per_s: number; step_ms: number; achieved_gflops: number; mfu: number; gemm_peak_gflops: number; torch_step_ms?: number; torch_tokens_per_s?: number;
  ratio?: number; ratio_interval?: [number, number]; torch_loss_max_diff?: number; torch_bf16_step_ms?: number; torch_bf16_tokens_per_s?: number;
}, peak: TorchPeak | undefined): TrainSummary {
  // FLOPs per step are the same on both sides, so a side's rate is ours scaled by the step times.
  const rate = (stepMs: number): number => (r.achieved_gflops * r.step_ms) / stepMs;
  const s: TrainSummary = peak
    ? { what, provider: r.provider, tokens_per_s: r.tokens_per_s, mfu: r.achieved_gflops / peak.float32_gflops, mfu_over: `PyTorch's fp32 matrix products on ${peak.gpu ?? peak.device}: ${peak.float32_gflops.toFixed(0)} GFLOP/s` }
    : { what, provider: r.provider, tokens_per_s: r.tokens_per_s, mfu: r.mfu, mfu_over: `ONNX Runtime's fp32 GEMM on ${r.provider}: ${r.gemm_peak_gflops.toFixed(0)} GFLOP/s (no PyTorch peak)` };
  if (r.torch_step_ms !== undefined && peak) {
    Object.assign(s, {
      torch_tokens_per_s: r.torch_tokens_per_s, torch_mfu: rate(r.torch_step_ms) / peak.float32_gflops,
      ratio: r.ratio, ratio_interval: r.ratio_interval, torch_loss_max_diff: r.torch_loss_max_diff,
    });
  }
  if (r.torch_bf16_step_ms !== undefined && peak) {
    Object.assign(s, {
      torch_bf16_tokens_per_s: r.torch_bf16_tokens_per_s, torch_bf16_mfu: rate(r.torch_bf16_step_ms) / peak.bfloat16_gflops,
      ratio_bf16: r.torch_bf16_step_ms / r.step_ms,
    });
  }
  return s;
}

function generateSummary(run: GenerateBenchRun): GenerateSummary {
  const s: GenerateSummary = { batch: run.batch, prefill_tokens_per_s: run.prefill_tokens_per_s, decode_tokens_per_s: run.decode_tokens_per_s };
  if (run.torch_decode_tokens_per_s !== undefined) {
    Object.assign(s, {
      torch_prefill_tokens_per_s: run.torch_prefill_tokens_per_s, torch_decode_tokens_per_s: run.torch_decode_tokens_per_s,
      decode_ratio: run.decode_ratio, greedy_rows_equal: run.greedy_rows_equal,
    });
  }
  if (run.torch_bf16_decode_tokens_per_s !== undefined) {
    Object.assign(s, { torch_bf16_decode_tokens_per_s: run.torch_bf16_decode_tokens_per_s, decode_ratio_bf16: run.decode_tokens_per_s / run.torch_bf16_decode_tokens_per_s });
  }
  return s;
}

export async function runGpuCheck(o: GpuCheckOptions): Promise<GpuCheckResult> {
  const t0 = performance.now();
  const log = o.log ?? (() => {});
  const size = SIZES[o.size];
  const choice = await chooseProvider(o.provider === 'auto' ? {} : { force: o.provider });
  log(`execution provider: ${choice.reason}`);
  // What the caller sets over each size's settings.
  const given = { ...(o.steps !== undefined ? { steps: o.steps } : {}), ...(o.warmup !== undefined ? { warmup: o.warmup } : {}), provider: choice.provider, seed: o.seed ?? 0 };
  const result: GpuCheckResult = {
    check: 'afd bench gpu', size: o.size, provider: choice.provider, provider_reason: choice.reason, onnxruntime: ortInfo().version, node: process.versions.node,
    threads: o.threads, errors: {}, wall_s: 0, detail: {},
  };
  const save = (): void => {
    result.wall_s = (performance.now() - t0) / 1000;
    if (o.out) writeFileSync(o.out, `${JSON.stringify(result)}\n`);
  };
  /** Runs one part; a failure is recorded and the check goes on with the next. */
  const part = async (name: string, run: () => Promise<void>): Promise<void> => {
    log(`--- ${name}`);
    try {
      await run();
    } catch (e) {
      result.errors[name] = e instanceof Error ? e.message : String(e);
      log(`${name} failed: ${result.errors[name]}`);
    }
    save();
  };

  await part('torch', async () => {
    result.torch = await torchPeak(o.torchDevice, o.threads, o.python);
    log(`PyTorch on ${result.torch.gpu ?? result.torch.device}: fp32 ${result.torch.float32_gflops.toFixed(0)} GFLOP/s, bf16 ${result.torch.bfloat16_gflops.toFixed(0)} GFLOP/s`);
  });
  // The references run where the peak was measured ('auto' resolved once), or not at all without PyTorch.
  const torch: TorchOptions | undefined = result.torch && { device: result.torch.device as 'cpu' | 'cuda' };
  const bf16 = (t: TorchOptions): TorchOptions => ({ ...t, dtype: 'bfloat16' });

  await part('train', async () => {
    const c: TrainBenchConfig = { ...defaultTrainBench(o.threads), ...size.gpt, ...given };
    const ref = torch && (await TorchReference.start(c, o.python, torch));
    try {
      const r = await runTrainBench(c, log, ref, torch && o.bf16 ? () => TorchReference.start(c, o.python, bf16(torch)) : undefined);
      result.detail.train = r;
      result.train = trainSummary(`nanoGPT-style decoder: vocabulary ${c.vocab}, width ${c.dModel}, ${c.layers} blocks, ${c.heads} heads (${r.params.toLocaleString('en')} parameters), batch ${c.batch} x ${c.seq} tokens, AdamW`, r, result.torch);
    } catch (e) {
      ref?.kill();
      throw e;
    }
  });

  const dir = await mkdtemp(join(tmpdir(), 'afd-gpu-check-'));
  try {
    const model = join(dir, 'model');
    let shape = '';
    await part('model', async () => {
      log(`writing random weights of the shape in ${o.modelShape}...`);
      const m = await randomModelFolder(o.modelShape, model, given.seed, o.layers ?? size.layers);
      shape = `the shape in ${o.modelShape} with ${m.layers} blocks and random weights (${m.params.toLocaleString('en')} parameters)`;
    });
    if (!result.errors.model) {
      await part('lora', async () => {
        const c: LoraBenchConfig = { ...defaultLoraBench(model, o.threads), ...size.lora, ...given };
        const r = await runLoraBench(c, log, torch && startLoraReference(c, o.python, torch), torch && o.bf16 ? startLoraReference(c, o.python, bf16(torch)) : undefined);
        result.detail.lora = r;
        result.lora = trainSummary(`the SFT stage's LoRA step (rank ${c.rank}, ${r.adapted_modules} adapted projections) on ${shape}, batch ${c.batch} x ${c.seq} tokens`, r, result.torch);
      });
      await part('generate', async () => {
        const r: GenerateBenchResult = await runGenerateBench({
          modelDir: model, modelArg: 'smollm2-shaped', cold: false, ...size.generate, threads: o.threads, provider: choice.provider, seed: given.seed,
          vsTorch: torch !== undefined, torchDevice: torch?.device, torchBf16: o.bf16, python: o.python, log,
        });
        result.detail.generate = r;
        result.generate = {
          what: `greedy generation on ${shape}, prompts of ${size.generate.promptLength} tokens, ${size.generate.newTokens} new tokens a row`,
          provider: r.provider, runs: r.runs.map(generateSummary),
        };
      });
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  save();
  return result;
}

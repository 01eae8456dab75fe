// The training benchmark behind `afd bench train`: a GPT-style decoder built from the IR,
// trained for a fixed number of steps after warm-up, measured against the fp32 GEMM peak
// of ONNX Runtime on this machine (same run) and, with --vs-torch, against PyTorch eager
// training the same model (bench/torch_gpt_train.py). See bench/README.md.
//
// With the reference, the timed steps alternate between the two sides (ours, torch, torch,
// ours, ...): this machine's speed drifts by 10-20% over minutes with its neighbours, and
// two runs one after the other measured the drift as much as the engines.

import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { median } from '../main/eval/stats.ts';
import { measureGemmPeak } from '../native-models/runtime/gemm-peak.ts';
import { gpt2Defaults, gpt2Init, gpt2NextTokenLoss, gpt2ParamShapes, type Gpt2Config } from '../native-models/models/gpt2.ts';
import { releaseBuffers } from '../native-models/runtime/release.ts';
import { fromFloat32, tensorOf, writeSafetensors, type NamedTensor } from '../native-models/runtime/safetensors.ts';
import { Rng } from '../native-models/train/rng.ts';
import * as T from '../native-models/ir/index.ts';
import { gptTrainer, parameterCount, randomLmBatch } from '../native-models/train/tiny-lm.ts';

/** What every training benchmark sets: the batch's shape, the steps, where they run. */
export interface StepBenchConfig {
  seq: number;
  batch: number;
  steps: number;
  warmup: number;
  threads: number;
  provider: 'cpu' | 'webgpu' | 'cuda';
  lr: number;
  seed: number;
}

export interface TrainBenchConfig extends StepBenchConfig {
  vocab: number;
  dModel: number;
  layers: number;
  heads: number;
}

export const defaultTrainBench = (threads: number): TrainBenchConfig => ({
  vocab: 8192, dModel: 512, layers: 8, heads: 8, seq: 256, batch: 8, steps: 10, warmup: 3, threads, provider: 'cpu', lr: 3e-4, seed: 0,
});

/** The benchmark's model. */
const modelConfig = (c: TrainBenchConfig): Gpt2Config => gpt2Defaults({ vocabSize: c.vocab, nPositions: c.seq, nEmbd: c.dModel, nLayer: c.layers, nHead: c.heads });

/** The fixed batch every step trains on (both sides, with --vs-torch). */
const benchBatch = (c: TrainBenchConfig, cfg: Gpt2Config) => randomLmBatch(cfg, c.batch, new Rng(c.seed + 1));

/** nanoGPT's estimate: 6 N per token (N without position embeddings) plus 12 L D T per token for attention. */
export function trainFlopsPerStep(c: TrainBenchConfig): number {
  const n = parameterCount(modelConfig(c)) - c.seq * c.dModel;
  const tokens = c.batch * c.seq;
  return 6 * n * tokens + 12 * c.layers * c.dModel * c.seq * tokens;
}

export interface TrainBenchResult {
  tokens_per_s: number;
  step_ms: number;
  mfu: number;
  gemm_peak_gflops: number;
  achieved_gflops: number;
  peak_rss_mb: number;
  state_mb: number;
  /** Forward tensors the backward pass keeps, counted on the graph (ir/memory.ts). */
  activations_mb: number;
  /** The RSS target: 2 x state + activations. */
  rss_target_mb: number;
  provider: string;
  threads: number;
  params: number;
  loss_first: number;
  loss_last: number;
  config: TrainBenchConfig;
  torch_tokens_per_s?: number;
  torch_step_ms?: number;
  torch_peak_rss_mb?: number;
  torch_version?: string;
  /** Our tokens/s over PyTorch's, both timed over the same interleaved rounds. */
  ratio?: number;
  /** Median over rounds of (PyTorch's step time / ours) within the round. */
  ratio_paired_median?: number;
  /** 95% moving-block bootstrap interval of the geometric mean of the per-round ratios. */
  ratio_interval?: [number, number];
  /** PyTorch's losses, step by step (it starts from our initial weights and trains on our batch). */
  torch_losses?: number[];
  /** The largest |our loss - PyTorch's| over all steps, warm-up included. */
  torch_loss_max_diff?: number;
}

/**
 * `torch`: the fp32 reference, started (and warmed up) by the caller, whose steps alternate
 * with ours; `bf16`: starts the reference in bf16, timed alone after the comparison.
 */
export async function runTrainBench(c: TrainBenchConfig, log: (s: string) => void = () => {}, torch?: TorchReference, bf16?: () => Promise<TorchReference>): Promise<TrainBenchResult & Partial<Bf16Comparison>> {
  const cfg = modelConfig(c);
  log(`building and compiling the training step (${parameterCount(cfg).toLocaleString('en')} parameters)...`);
  const trainer = await gptTrainer(cfg, { provider: c.provider, threads: c.threads, seed: c.seed });
  const batch = benchBatch(c, cfg);
  const losses: number[] = [];
  const times: number[] = [];
  const torchTimes: number[] = [];
  const torchLosses = [...(torch?.warmupLosses ?? [])];
  const ours = async (i: number): Promise<void> => {
    const t0 = performance.now();
    const r = await trainer.step(batch, c.lr);
    const ms = performance.now() - t0;
    losses.push(r.loss);
    if (i >= c.warmup) times.push(ms);
    log(`  step ${i + 1}${i < c.warmup ? ' (warm-up)' : ''}: loss ${r.loss.toFixed(4)}, ${ms.toFixed(0)} ms`);
  };
  const theirs = async (ref: TorchReference): Promise<void> => {
    const r = await ref.step();
    torchTimes.push(r.ms);
    torchLosses.push(r.loss);
    log(`  PyTorch step: loss ${r.loss.toFixed(4)}, ${r.ms.toFixed(0)} ms`);
  };
  await interleaveSteps(c.warmup, c.steps, ours, torch && (() => theirs(torch)));
  const peakRssMb = process.resourceUsage().maxRSS / 1024;
  await trainer.release();
  // The GEMM peak is measured after the training, so that its sessions' memory is not in
  // the training's peak RSS. Two measurements, keeping the better: one alone can read low.
  log(`measuring the fp32 GEMM peak through ONNX Runtime (${c.threads} threads)...`);
  let peak = 0;
  for (let i = 0; i < 2; i++) peak = Math.max(peak, (await measureGemmPeak({ threads: c.threads, provider: c.provider === 'webgpu' ? 'webgpu' : 'cpu' })).gflops);
  const sum = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0);
  const stepMs = sum(times) / times.length;
  const flops = trainFlopsPerStep(c);
  const achieved = flops / (stepMs / 1000) / 1e9;
  const params = parameterCount(cfg);
  const stateMb = (4 * params * 4) / 2 ** 20;
  const { loss, params: leaves } = gpt2NextTokenLoss(cfg);
  const activationsMb = T.savedActivationBytes(loss, T.grad(loss, [...leaves.values()]), { B: c.batch, T: c.seq }) / 2 ** 20;
  const result: TrainBenchResult & Partial<Bf16Comparison> = {
    tokens_per_s: (c.batch * c.seq) / (stepMs / 1000),
    step_ms: stepMs,
    mfu: achieved / peak,
    gemm_peak_gflops: peak,
    achieved_gflops: achieved,
    peak_rss_mb: peakRssMb,
    // parameters + gradients + two AdamW moments, fp32
    state_mb: stateMb,
    activations_mb: activationsMb,
    rss_target_mb: 2 * stateMb + activationsMb,
    provider: trainer.provider,
    threads: c.threads,
    params,
    loss_first: losses[0],
    loss_last: losses[losses.length - 1],
    config: c,
  };
  if (torch) Object.assign(result, compareWithReference(await torch.finish(), { times, losses }, { times: torchTimes, losses: torchLosses }, new Rng(c.seed + 2)));
  if (bf16) {
    log('timing the PyTorch reference alone in bf16...');
    Object.assign(result, await timeBf16Reference(bf16, c.steps, losses));
  }
  return result;
}

/** Where the PyTorch reference runs and in what precision (bench/torch_device.py). */
export interface TorchOptions {
  /** Default 'cpu'; 'auto' is cuda when PyTorch sees a GPU. */
  device?: 'cpu' | 'cuda' | 'auto';
  /** Default 'float32'; bfloat16 trains under autocast and generates with bf16 weights. */
  dtype?: 'float32' | 'bfloat16';
}

/** The references' command-line options for `o`. */
export const torchArgs = (o: TorchOptions): string[] => ['--device', o.device ?? 'cpu', '--dtype', o.dtype ?? 'float32'];

/** The reference in bf16, timed alone (reported apart from the fp32 comparison, which it is not part of). */
export interface Bf16Comparison {
  torch_bf16_tokens_per_s: number;
  torch_bf16_step_ms: number;
  torch_bf16_losses: number[];
  /** The largest |our fp32 loss - its bf16 loss| over the steps both ran: bf16's rounding, about 1e-2. */
  torch_bf16_loss_max_diff: number;
  torch_bf16_peak_gpu_mb?: number;
}

/**
 * Starts the reference (`start`, in bf16), runs its warm-up and `steps` timed steps on
 * their own, and compares its losses with `ours` (all our steps, warm-up included).
 */
export async function timeBf16Reference(start: () => Promise<TorchReference>, steps: number, ours: readonly number[]): Promise<Bf16Comparison> {
  const ref = await start();
  const losses = [...ref.warmupLosses];
  try {
    for (let i = 0; i < steps; i++) losses.push((await ref.step()).loss);
  } catch (e) {
    ref.kill();
    throw e;
  }
  const s = await ref.finish();
  const common = Math.min(losses.length, ours.length);
  return {
    torch_bf16_tokens_per_s: s.tokens_per_s, torch_bf16_step_ms: s.step_ms, torch_bf16_losses: losses,
    torch_bf16_loss_max_diff: Math.max(...losses.slice(0, common).map((l, i) => Math.abs(l - ours[i]))),
    ...(s.peak_gpu_mb !== undefined ? { torch_bf16_peak_gpu_mb: s.peak_gpu_mb } : {}),
  };
}

/**
 * Runs `warmup` untimed steps of ours, then `steps` timed rounds; with a reference, each
 * round is one step of each side in ABBA order (ours then theirs, theirs then ours, ...),
 * so that neither side always runs first. `ours(i)` gets the step's index from 0.
 */
export async function interleaveSteps(warmup: number, steps: number, ours: (i: number) => Promise<void>, theirs?: () => Promise<void>): Promise<void> {
  for (let i = 0; i < warmup; i++) await ours(i);
  for (let i = warmup; i < warmup + steps; i++) {
    if (!theirs) await ours(i);
    else if ((i - warmup) % 2 === 0) { await ours(i); await theirs(); }
    else { await theirs(); await ours(i); }
  }
}

/** The reference's fields of a result, from both sides' timed step times (ms, round by round) and all their losses. */
export interface ReferenceComparison {
  torch_tokens_per_s: number;
  torch_step_ms: number;
  torch_peak_rss_mb: number;
  torch_version: string;
  /** Where the reference ran: cpu or cuda, with the GPU's name and its memory peak there. */
  torch_device: string;
  torch_gpu?: string;
  torch_peak_gpu_mb?: number;
  ratio: number;
  ratio_paired_median: number;
  ratio_interval: [number, number];
  torch_losses: number[];
  torch_loss_max_diff: number;
}

export function compareWithReference(
  t: TorchSummary,
  ours: { times: readonly number[]; losses: readonly number[] },
  theirs: { times: readonly number[]; losses: number[] },
  rng: Rng,
): ReferenceComparison {
  const sum = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0);
  const paired = ours.times.map((ms, i) => theirs.times[i] / ms);
  return {
    torch_tokens_per_s: t.tokens_per_s, torch_step_ms: t.step_ms, torch_peak_rss_mb: t.peak_rss_mb, torch_version: t.torch_version,
    torch_device: t.device ?? 'cpu', ...(t.gpu !== undefined ? { torch_gpu: t.gpu } : {}), ...(t.peak_gpu_mb !== undefined ? { torch_peak_gpu_mb: t.peak_gpu_mb } : {}),
    ratio: sum(theirs.times) / sum(ours.times),
    ratio_paired_median: median(paired),
    ratio_interval: geometricMeanInterval(paired, rng),
    torch_losses: theirs.losses,
    torch_loss_max_diff: Math.max(...ours.losses.map((l, i) => Math.abs(l - theirs.losses[i]))),
  };
}

/**
 * 95% moving-block bootstrap interval of the geometric mean of positive ratios taken in
 * time order. The machine's neighbours slow it down in bursts longer than a round, so
 * neighbouring rounds are not independent; resampling runs of `block` consecutive rounds
 * (default: the cube root of their number, the usual order for a mean) keeps that
 * dependence, where resampling rounds one by one gave too narrow an interval.
 */
export function geometricMeanInterval(ratios: readonly number[], rng: Rng, opts: { resamples?: number; block?: number } = {}): [number, number] {
  const logs = ratios.map(Math.log);
  const n = logs.length;
  const resamples = opts.resamples ?? 2000;
  const block = Math.min(n, Math.max(1, opts.block ?? Math.round(Math.cbrt(n))));
  const means: number[] = [];
  for (let r = 0; r < resamples; r++) {
    let s = 0;
    for (let taken = 0; taken < n;) {
      const start = rng.int(n - block + 1);
      for (let i = 0; i < block && taken < n; i++, taken++) s += logs[start + i];
    }
    means.push(s / n);
  }
  means.sort((a, b) => a - b);
  return [Math.exp(means[Math.floor(0.025 * (resamples - 1))]), Math.exp(means[Math.ceil(0.975 * (resamples - 1))])];
}

export interface TorchSummary {
  tokens_per_s: number;
  step_ms: number;
  peak_rss_mb: number;
  torch_version: string;
  device?: string;
  gpu?: string;
  peak_gpu_mb?: number;
}

/**
 * Writes our initial weights (Hugging Face GPT-2 names) and the fixed batch to `file`,
 * for the reference's --init; the weights' memory is freed at once, so that it never
 * counts in the training's peak RSS.
 */
async function writeBenchInit(file: string, c: TrainBenchConfig): Promise<void> {
  const cfg = modelConfig(c);
  const init = gpt2Init(cfg, new Rng(c.seed));
  const batch = benchBatch(c, cfg);
  const tensors = new Map<string, NamedTensor>();
  for (const [name, shape] of gpt2ParamShapes(cfg)) tensors.set(name, fromFloat32(init.get(name)!, shape));
  for (const name of ['tokens', 'targets'] as const) tensors.set(name, tensorOf('I64', [...batch[name].dims], batch[name].data as BigInt64Array));
  try {
    await writeSafetensors(file, tensors);
  } finally {
    releaseBuffers(init.values());
  }
}

/**
 * The PyTorch reference (bench/torch_gpt_train.py --interleave) as a child process that
 * builds the same model from our initial weights and batch (--init), warms up, then runs
 * one timed step whenever asked, so that its steps can alternate with ours.
 */
export class TorchReference {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #lines: AsyncIterator<string>;
  #stderr = '';
  /** The losses of its warm-up steps. */
  warmupLosses: number[] = [];

  private constructor(child: ChildProcessWithoutNullStreams) {
    this.#child = child;
    child.stderr.on('data', (d: Buffer) => (this.#stderr += d.toString()));
    this.#lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  }

  /** Starts the reference and waits until it has warmed up; throws a sentence when PyTorch is missing. */
  static start(c: TrainBenchConfig, python = process.env.PYTHON ?? 'python3', torch: TorchOptions = {}): Promise<TorchReference> {
    const args = [...['--vocab', c.vocab, '--d-model', c.dModel, '--layers', c.layers, '--heads', c.heads, '--seq', c.seq, '--batch', c.batch, '--warmup', c.warmup, '--threads', c.threads, '--seed', c.seed, '--lr', c.lr].map(String), ...torchArgs(torch)];
    return TorchReference.launch('torch_gpt_train.py', args, (file) => writeBenchInit(file, c), python);
  }

  /**
   * Starts `script` (in bench/) with `args`, `--interleave` and `--init FILE`, where FILE
   * is written by `writeInit` and removed once the reference has read it, and waits until
   * it has warmed up. `env`: the process's environment (default: ours).
   */
  static async launch(script: string, args: readonly string[], writeInit: (file: string) => Promise<void>, python = process.env.PYTHON ?? 'python3', env: NodeJS.ProcessEnv = process.env): Promise<TorchReference> {
    const dir = await mkdtemp(join(tmpdir(), 'afd-bench-init-'));
    try {
      const init = join(dir, 'init.safetensors');
      await writeInit(init);
      const child = spawn(python, [fileURLToPath(new URL(`./${script}`, import.meta.url)), ...args, '--interleave', '--init', init], { stdio: ['pipe', 'pipe', 'pipe'], env });
      await new Promise<void>((resolve, reject) => {
        child.once('spawn', resolve);
        child.once('error', (e) => reject(new Error(`could not run ${python} (${e.message}); --vs-torch needs Python 3 with PyTorch: pip install torch`)));
      });
      const ref = new TorchReference(child);
      // The reference has read the file once it is ready.
      const ready = await ref.#next<{ ready?: boolean; losses?: number[] }>();
      if (!ready.ready) throw new Error(`the PyTorch reference did not start: ${JSON.stringify(ready)}`);
      ref.warmupLosses = ready.losses ?? [];
      return ref;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** One timed training step on the PyTorch side. */
  step(): Promise<{ ms: number; loss: number }> {
    this.#child.stdin.write('step\n');
    return this.#next<{ ms: number; loss: number }>();
  }

  /** Ends the reference and returns its summary over the steps it timed. */
  finish(): Promise<TorchSummary> {
    this.#child.stdin.end('done\n');
    return this.#next<TorchSummary>();
  }

  /** Stops the reference (after an error on our side). */
  kill(): void {
    this.#child.kill();
  }

  async #next<R>(): Promise<R> {
    const r = await this.#lines.next();
    if (!r.done) return JSON.parse(r.value as string) as R;
    if (this.#child.exitCode === null) await new Promise((res) => this.#child.once('exit', res));
    const last = this.#stderr.trim().split('\n').pop() ?? '';
    if (/No module named 'torch'|PyTorch is not installed/.test(this.#stderr)) throw new Error('PyTorch is not installed: pip install torch');
    if (/No module named 'peft'/.test(this.#stderr)) throw new Error('peft is not installed: pip install -r bench/requirements.txt');
    throw new Error(`the PyTorch reference failed: ${last || `exit code ${this.#child.exitCode}`}`);
  }
}

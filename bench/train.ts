// The training benchmark behind `afd bench train`: a GPT-style decoder built from the IR,
// trained for a fixed number of steps after warm-up, measured against the fp32 GEMM peak
// of ONNX Runtime on this machine (same run) and, with --vs-torch, against PyTorch eager
// training the same model (bench/torch_gpt_train.py). See bench/README.md.

import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { measureGemmPeak } from '../native-models/runtime/gemm-peak.ts';
import { gpt2Defaults, gpt2NextTokenLoss } from '../native-models/models/gpt2.ts';
import { Rng } from '../native-models/train/rng.ts';
import * as T from '../native-models/ir/index.ts';
import { gptTrainer, parameterCount, randomLmBatch } from '../native-models/train/tiny-lm.ts';

export interface TrainBenchConfig {
  vocab: number;
  dModel: number;
  layers: number;
  heads: number;
  seq: number;
  batch: number;
  steps: number;
  warmup: number;
  threads: number;
  provider: 'cpu' | 'webgpu' | 'cuda';
  lr: number;
  seed: number;
}

export const defaultTrainBench = (threads: number): TrainBenchConfig => ({
  vocab: 8192, dModel: 512, layers: 8, heads: 8, seq: 256, batch: 8, steps: 10, warmup: 3, threads, provider: 'cpu', lr: 3e-4, seed: 0,
});

/** nanoGPT's estimate: 6 N per token (N without position embeddings) plus 12 L D T per token for attention. */
export function trainFlopsPerStep(c: TrainBenchConfig): number {
  const n = parameterCount(gpt2Defaults({ vocabSize: c.vocab, nPositions: c.seq, nEmbd: c.dModel, nLayer: c.layers, nHead: c.heads })) - c.seq * c.dModel;
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
  ratio?: number;
}

export async function runTrainBench(c: TrainBenchConfig, log: (s: string) => void = () => {}): Promise<TrainBenchResult> {
  log(`measuring the fp32 GEMM peak through ONNX Runtime (${c.threads} threads)...`);
  // Two measurements, one after the other, keeping the better: a single one can read low.
  let peak = 0;
  for (let i = 0; i < 2; i++) peak = Math.max(peak, (await measureGemmPeak({ threads: c.threads, provider: c.provider === 'webgpu' ? 'webgpu' : 'cpu' })).gflops);
  const cfg = gpt2Defaults({ vocabSize: c.vocab, nPositions: c.seq, nEmbd: c.dModel, nLayer: c.layers, nHead: c.heads });
  log(`building and compiling the training step (${parameterCount(cfg).toLocaleString('en')} parameters)...`);
  const trainer = await gptTrainer(cfg, { provider: c.provider, threads: c.threads, seed: c.seed });
  const batch = randomLmBatch(cfg, c.batch, new Rng(c.seed + 1));
  const losses: number[] = [];
  const times: number[] = [];
  for (let i = 0; i < c.warmup + c.steps; i++) {
    const t0 = performance.now();
    const r = await trainer.step(batch, c.lr);
    const ms = performance.now() - t0;
    losses.push(r.loss);
    if (i >= c.warmup) times.push(ms);
    log(`  step ${i + 1}${i < c.warmup ? ' (warm-up)' : ''}: loss ${r.loss.toFixed(4)}, ${ms.toFixed(0)} ms`);
  }
  await trainer.release();
  const stepMs = times.reduce((a, b) => a + b, 0) / times.length;
  const flops = trainFlopsPerStep(c);
  const achieved = flops / (stepMs / 1000) / 1e9;
  const params = parameterCount(cfg);
  const stateMb = (4 * params * 4) / 2 ** 20;
  const { loss, params: leaves } = gpt2NextTokenLoss(cfg);
  const activationsMb = T.savedActivationBytes(loss, T.grad(loss, [...leaves.values()]), { B: c.batch, T: c.seq }) / 2 ** 20;
  const result: TrainBenchResult = {
    tokens_per_s: (c.batch * c.seq) / (stepMs / 1000),
    step_ms: stepMs,
    mfu: achieved / peak,
    gemm_peak_gflops: peak,
    achieved_gflops: achieved,
    peak_rss_mb: process.resourceUsage().maxRSS / 1024,
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
  return result;
}

/** Runs the PyTorch reference on the same config; throws a sentence when PyTorch is missing. */
export function runTorchReference(c: TrainBenchConfig, python = process.env.PYTHON ?? 'python3'): { tokens_per_s: number; step_ms: number; peak_rss_mb: number; torch_version: string } {
  const script = fileURLToPath(new URL('./torch_gpt_train.py', import.meta.url));
  const args = [script, '--vocab', c.vocab, '--d-model', c.dModel, '--layers', c.layers, '--heads', c.heads, '--seq', c.seq, '--batch', c.batch, '--steps', c.steps, '--warmup', c.warmup, '--threads', c.threads, '--seed', c.seed, '--lr', c.lr].map(String);
  const r = spawnSync(python, args, { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.error) throw new Error(`could not run ${python} (${r.error.message}); --vs-torch needs Python 3 with PyTorch: pip install torch`);
  if (r.status !== 0) {
    const msg = (r.stderr || '').trim().split('\n').pop() ?? '';
    throw new Error(/No module named 'torch'|PyTorch is not installed/.test(r.stderr) ? 'PyTorch is not installed: pip install torch' : `the PyTorch reference failed: ${msg}`);
  }
  const line = r.stdout.trim().split('\n').pop()!;
  return JSON.parse(line) as { tokens_per_s: number; step_ms: number; peak_rss_mb: number; torch_version: string };
}

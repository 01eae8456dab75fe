// The LoRA half of `afd bench train`: `--model M --lora R` times the SFT stage's own
// training step (sftTraining: its LoRA targets, alpha, loss with the response mask,
// AdamW and clipping) on a real model, and with --vs-torch PyTorch + peft training the
// same adapters from the same initial values on the same batch
// (bench/torch_lora_train.py), the steps of both sides interleaved as in the GPT-2
// benchmark (bench/train.ts). See bench/README.md.

import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import type ort from 'onnxruntime-node';
import type { Demonstration } from '../main/stages/data.ts';
import { HH_HARMLESS_FILE } from '../main/datasets/hh.ts';
import { loadModel, type LoadedModel } from '../main/stages/lm.ts';
import type { StageContext } from '../main/stages/stage.ts';
import { sftStage, sftTraining } from '../main/stages/kinds/sft.ts';
import { readDataset } from '../main/datasets/readers.ts';
import * as T from '../native-models/ir/index.ts';
import type { LlamaConfig } from '../native-models/models/llama.ts';
import { loraTargets } from '../native-models/models/lora.ts';
import { measureGemmPeak } from '../native-models/runtime/gemm-peak.ts';
import { fromFloat32, tensorOf, writeSafetensors, type NamedTensor } from '../native-models/runtime/safetensors.ts';
import { Rng } from '../native-models/train/rng.ts';
import type { Feeds } from '../native-models/train/trainer.ts';
import { compareWithReference, interleaveSteps, timeBf16Reference, torchArgs, TorchReference, type Bf16Comparison, type ReferenceComparison, type StepBenchConfig, type TorchOptions } from './train.ts';

/** `seq`: every row is this long (no padding); `lr`: constant (the stage's schedule is a host function; the step graph is the same). */
export interface LoraBenchConfig extends StepBenchConfig {
  /** A Hugging Face folder of a Llama-family model. */
  model: string;
  rank: number;
  alpha: number;
}

/** The SFT stage's LoRA settings (rank, alpha, learning rate) and DESIGN.md §5's shape: batch 8 x 256 tokens. */
export function defaultLoraBench(model: string, threads: number): LoraBenchConfig {
  const stage = sftStage.parse({ adaptation: 'lora' });
  return { model, rank: stage.loraRank as number, alpha: stage.loraAlpha as number, seq: 256, batch: 8, steps: 8, warmup: 2, threads, provider: 'cpu', lr: stage.lr as number, seed: 0 };
}

export interface LoraBenchResult {
  tokens_per_s: number;
  step_ms: number;
  /** Model FLOPs per step (see loraFlopsPerStep) over the step time, and over the fp32 GEMM peak of ONNX Runtime measured in the same run. */
  achieved_gflops: number;
  mfu: number;
  gemm_peak_gflops: number;
  peak_rss_mb: number;
  /** The process's RSS once the model is loaded and the step compiled, before the first step. */
  ready_rss_mb: number;
  /** The frozen base weights, fp32. */
  base_mb: number;
  /** Forward tensors the backward pass keeps, counted on the graph (ir/memory.ts). */
  activations_mb: number;
  /** The [B, T, V] logits alone, fp32: one copy. */
  logits_mb: number;
  provider: string;
  threads: number;
  base_params: number;
  /** The adapters: what is trained. */
  trainable_params: number;
  adapted_modules: number;
  /** Response tokens (the loss's terms) over all tokens of the batch. */
  response_fraction: number;
  loss_first: number;
  loss_last: number;
  /** The machine's 1-minute load average when the timed steps began and when they ended (other work slows both sides). */
  load_average: [number, number];
  config: LoraBenchConfig;
}

export type LoraBenchComparison = LoraBenchResult & Partial<ReferenceComparison> & Partial<Bf16Comparison> & { peft_version?: string; torch_attention?: string; torch_omp_wait_policy?: string };

const llamaConfig = (model: LoadedModel): LlamaConfig => {
  if (model.family.name !== 'llama') throw new Error(`${model.dir}: the LoRA benchmark takes a Llama-family model (llama, qwen2), not ${model.family.name}.`);
  return model.config as LlamaConfig;
};

/**
 * Model FLOPs of one LoRA step over `tokens` tokens of length `seq`: every frozen product
 * (the projections and the output head) forward and backward to its input, 4 per weight
 * per token (no weight gradient); the adapters forward and backward, 6 per parameter;
 * attention as nanoGPT counts it, 12 L (H hd) T per token over the full T x T square.
 * Elementwise work, the norms, softmax and the optimizer are not counted.
 */
export function loraFlopsPerStep(c: LlamaConfig, adapters: number, tokens: number, seq: number): number {
  const kv = c.numKvHeads * c.headDim, q = c.numHeads * c.headDim;
  const perLayer = c.hiddenSize * (q + 2 * kv) + q * c.hiddenSize + 3 * c.hiddenSize * c.intermediateSize;
  const frozen = c.numLayers * perLayer + c.vocabSize * c.hiddenSize;
  return tokens * (4 * frozen + 6 * adapters + 12 * c.numLayers * q * seq);
}

/**
 * `batch` demonstrations from the shipped HH-RLHF split: a dialogue's chosen reply of at
 * most half a row (EOS included) as the response, the dialogue and the ones before it in
 * the file as the prompt, at least seq + 1 tokens in all. The stage's encoding (maxLength
 * seq + 1, the prompt's oldest tokens dropped first) makes every row exactly seq + 1
 * tokens, so the batch is [batch, seq] without padding, and half or more of each row is
 * prompt, whose targets the loss masks.
 */
export async function benchDemonstrations(model: LoadedModel, batch: number, seq: number): Promise<Demonstration[]> {
  const demos: Demonstration[] = [];
  let context = '';
  const count = (s: string): number => model.tokenizer.encode(s, { addSpecialTokens: false }).length;
  for await (const r of readDataset(HH_HARMLESS_FILE, { format: 'hh' })) {
    const prompt = context + r.prompt, response = r.chosen ?? '';
    const n = count(response) + 1;
    if (n <= seq / 2 && count(prompt) + n >= seq + 1) {
      demos.push({ prompt, response });
      context = '';
      if (demos.length === batch) return demos;
    } else context = prompt + response + '\n\n';
  }
  throw new Error(`${HH_HARMLESS_FILE} has too little text for ${batch} rows of ${seq} tokens`);
}

/** What the SFT stage's training needs of a stage context, with the benchmark's provider, threads and seed. */
function benchContext(c: LoraBenchConfig, dir: string): StageContext {
  return {
    seed: c.seed, dir, checkpoint: null, provider: c.provider, threads: c.threads, signal: new AbortController().signal,
    stopRequested: () => false,
    data: () => Promise.reject(new Error('the benchmark passes its demonstrations to sftTraining directly')),
    progress: () => {}, metric: () => {}, log: () => {}, checkpointed: async () => {},
  };
}

/** The stage's config for the benchmark: one epoch of one batch, LoRA as asked, rows of seq + 1 tokens. */
const stageConfig = (c: LoraBenchConfig) =>
  sftStage.parse({ adaptation: 'lora', loraRank: c.rank, loraAlpha: c.alpha, batch: c.batch, maxLength: c.seq + 1, epochs: 1, lr: c.lr });

/**
 * `startReference`: the fp32 reference, whose steps alternate with ours; `startBf16`: the
 * reference in bf16, timed alone after the comparison. Both start from our adapters and batch.
 */
export async function runLoraBench(
  c: LoraBenchConfig, log: (s: string) => void = () => {},
  startReference?: (init: LoraInit) => Promise<TorchReference>, startBf16?: (init: LoraInit) => Promise<TorchReference>,
): Promise<LoraBenchComparison> {
  log(`loading ${c.model}...`);
  const model = await loadModel(c.model);
  const lc = llamaConfig(model);
  const demos = await benchDemonstrations(model, c.batch, c.seq);
  const dir = await mkdtemp(join(tmpdir(), 'afd-bench-lora-'));
  let reference: TorchReference | undefined;
  try {
    log(`building and compiling the SFT stage's LoRA step (rank ${c.rank}, alpha ${c.alpha})...`);
    const config = stageConfig(c);
    const t = await sftTraining(benchContext(c, dir), config, model, demos);
    const batch = await t.batch(0);
    const dims = batch.tokens.dims;
    if (dims[0] !== c.batch || dims[1] !== c.seq) throw new Error(`the benchmark's batch is [${dims}], not [${c.batch}, ${c.seq}]`);
    // What a reference starts from: our batch and our adapters' initial values.
    const init: LoraInit = {
      batch,
      adapters: new Map(t.model.trainable.map((p) => {
        const name = (p.attrs as { name: string }).name;
        return [name, fromFloat32(t.model.init.get(name)!, p.shape as number[])];
      })),
    };
    if (startReference) {
      log('starting the PyTorch + peft reference (its steps alternate with ours)...');
      reference = await startReference(init);
    }
    const readyRssMb = process.memoryUsage.rss() / 2 ** 20;
    const losses: number[] = [], times: number[] = [], torchTimes: number[] = [];
    const torchLosses = [...(reference?.warmupLosses ?? [])];
    const loadStart = loadavg()[0];
    await interleaveSteps(c.warmup, c.steps, async (i) => {
      const t0 = performance.now();
      const r = await t.trainer.step(batch, c.lr);
      const ms = performance.now() - t0;
      losses.push(r.loss);
      if (i >= c.warmup) times.push(ms);
      log(`  step ${i + 1}${i < c.warmup ? ' (warm-up)' : ''}: loss ${r.loss.toFixed(4)}, ${ms.toFixed(0)} ms`);
    }, reference && (async () => {
      const r = await reference!.step();
      torchTimes.push(r.ms);
      torchLosses.push(r.loss);
      log(`  PyTorch step: loss ${r.loss.toFixed(4)}, ${r.ms.toFixed(0)} ms`);
    }));
    const peakRssMb = process.resourceUsage().maxRSS / 1024;
    const loadEnd = loadavg()[0];
    const provider = t.trainer.provider;
    const trainable = t.model.trainable.reduce((n, p) => n + p.shape.reduce<number>((a, d) => a * (d as number), 1), 0);
    const activationsMb = T.savedActivationBytes(t.loss, T.grad(t.loss, t.model.trainable), { B: c.batch, T: c.seq }) / 2 ** 20;
    await t.trainer.release();
    log(`measuring the fp32 GEMM peak through ONNX Runtime (${c.threads} threads)...`);
    let peak = 0;
    for (let i = 0; i < 2; i++) peak = Math.max(peak, (await measureGemmPeak({ threads: c.threads, provider: c.provider === 'webgpu' ? 'webgpu' : 'cpu' })).gflops);
    const stepMs = times.reduce((a, b) => a + b, 0) / times.length;
    const tokens = c.batch * c.seq;
    const achieved = loraFlopsPerStep(lc, trainable, tokens, c.seq) / (stepMs / 1000) / 1e9;
    const baseParams = [...model.weights.values()].reduce((n, w) => n + w.length, 0);
    const mask = batch.mask.data as Float32Array;
    const result: LoraBenchComparison = {
      tokens_per_s: tokens / (stepMs / 1000),
      step_ms: stepMs,
      achieved_gflops: achieved,
      mfu: achieved / peak,
      gemm_peak_gflops: peak,
      peak_rss_mb: peakRssMb,
      ready_rss_mb: readyRssMb,
      base_mb: (4 * baseParams) / 2 ** 20,
      activations_mb: activationsMb,
      logits_mb: (4 * tokens * lc.vocabSize) / 2 ** 20,
      provider,
      threads: c.threads,
      base_params: baseParams,
      trainable_params: trainable,
      adapted_modules: loraTargets(model.family, model.config, { rank: c.rank, alpha: c.alpha }).length,
      response_fraction: mask.reduce((a, b) => a + b, 0) / mask.length,
      loss_first: losses[0],
      loss_last: losses[losses.length - 1],
      load_average: [loadStart, loadEnd],
      config: c,
    };
    if (reference) {
      const s = await reference.finish();
      Object.assign(result, compareWithReference(s, { times, losses }, { times: torchTimes, losses: torchLosses }, new Rng(c.seed + 2)));
      const extra = s as unknown as { peft_version?: string; attention?: string };
      if (extra.peft_version) result.peft_version = extra.peft_version;
      if (extra.attention) result.torch_attention = extra.attention;
      result.torch_omp_wait_policy = torchWaitPolicy();
    }
    if (startBf16) {
      log('timing the PyTorch + peft reference alone in bf16...');
      Object.assign(result, await timeBf16Reference(() => startBf16(init), c.steps, losses));
    }
    return result;
  } catch (e) {
    reference?.kill();
    throw e;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** What the reference starts from: our batch and the adapters' initial values, by our names. */
export interface LoraInit {
  batch: Feeds;
  adapters: ReadonlyMap<string, NamedTensor>;
}

/**
 * OpenMP's wait policy for the reference: passive unless the caller set one. Our sessions'
 * pool threads do not spin (runtime/session.ts); PyTorch's OpenMP threads spin by default,
 * and on a shared machine a spinning thread that loses its core stalls every parallel
 * region: the comparison then measured the neighbours more than the engines.
 */
export const torchWaitPolicy = (): string => process.env.OMP_WAIT_POLICY ?? 'PASSIVE';

/**
 * Starts bench/torch_lora_train.py on the same folder, batch and initial adapters, with
 * the stage's optimizer settings. Started after our step is built (it needs our adapters'
 * initial values) and before our first step, so that both sides' steps interleave.
 */
export function startLoraReference(c: LoraBenchConfig, python?: string, torch: TorchOptions = {}): (init: LoraInit) => Promise<TorchReference> {
  const config = stageConfig(c);
  const args = [...['--model', c.model, '--rank', c.rank, '--alpha', c.alpha, '--lr', c.lr, '--weight-decay', config.weightDecay as number, '--clip', config.clipNorm as number, '--warmup', c.warmup, '--threads', c.threads].map(String), ...torchArgs(torch)];
  const env = { ...process.env, OMP_WAIT_POLICY: torchWaitPolicy() };
  return (init) => TorchReference.launch('torch_lora_train.py', args, (file) => writeLoraInit(file, init), python, env);
}

async function writeLoraInit(file: string, init: LoraInit): Promise<void> {
  const tensors = new Map(init.adapters);
  const feed = (name: string): ort.Tensor => init.batch[name];
  tensors.set('tokens', tensorOf('I64', [...feed('tokens').dims], feed('tokens').data as BigInt64Array));
  tensors.set('targets', tensorOf('I64', [...feed('targets').dims], feed('targets').data as BigInt64Array));
  tensors.set('mask', fromFloat32(feed('mask').data as Float32Array, [...feed('mask').dims]));
  await writeSafetensors(file, tensors);
}

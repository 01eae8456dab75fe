// The prepared GPU check (`afd bench gpu`, bench/gpu-check.ts) end to end at its tiny size,
// on the CPU and on WebGPU (lavapipe where there is no GPU), with PyTorch on the CPU as the
// reference: every part gives its numbers, and both training references train what we
// train. What the check does on a real GPU is the same code with PyTorch on CUDA.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { runGpuCheck, trainSummary, type GpuCheckResult } from '../bench/gpu-check.ts';
import { trainBpe, writeTokenizerFolder } from '../native-models/tokenizer/bpe-trainer.ts';
import { hhTranscripts, smallCorpus } from '../native-models/tokenizer/test-data.ts';
import { exportHfModel } from '../native-models/checkpoint/index.ts';
import { llamaDefaults, llamaFamily } from '../native-models/models/llama.ts';
import { Rng } from '../native-models/train/rng.ts';
import { pythonSkip } from './python/oracle.ts';
import { webgpuSkip } from './support/webgpu.ts';

const dir = mkdtempSync(join(tmpdir(), 'afd-gpu-check-test-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const torchSkip = (): string | false => pythonSkip(['torch', 'transformers', 'safetensors', 'peft'], 'GPU check against PyTorch');

/** A SmolLM2-like shape scaled down (grouped-query attention, tied head), as the check gets it: config and tokenizer. */
async function tinyShape(): Promise<string> {
  const bpe = trainBpe((hhTranscripts() ?? smallCorpus()).slice(0, 400), { vocabSize: 320, specialTokens: ['<|endoftext|>'] });
  const tokenizer = join(dir, 'tokenizer'), shape = join(dir, 'shape');
  await writeTokenizerFolder(tokenizer, bpe, { modelMaxLength: 64 });
  const config = llamaDefaults({ vocabSize: bpe.vocabSize, hiddenSize: 32, intermediateSize: 48, numLayers: 3, numHeads: 4, numKvHeads: 2, maxPositions: 64, tieWordEmbeddings: true });
  // The check writes its own weights; these only carry the config and tokenizer there.
  await exportHfModel(shape, { family: llamaFamily, config, weights: llamaFamily.init(config, new Rng(1)), tokenizerFrom: tokenizer, baseConfig: { eos_token_id: 0 } });
  return shape;
}
let shape: Promise<string> | undefined;

function assertComplete(r: GpuCheckResult, provider: string, withTorch: boolean): void {
  assert.deepEqual(r.errors, {}, 'no part failed');
  assert.equal(r.provider, provider);
  for (const part of [r.train!, r.lora!]) {
    assert.equal(part.provider, provider, `${part.what} ran on ${provider}`);
    assert.ok(part.tokens_per_s > 0 && part.mfu > 0, JSON.stringify(part));
    if (!withTorch) continue;
    assert.ok(part.torch_tokens_per_s! > 0 && part.torch_mfu! > 0 && part.torch_bf16_tokens_per_s! > 0);
    // Same model, weights, batch and optimizer on both sides: fp32 rounding apart.
    assert.ok(part.torch_loss_max_diff! < 1e-4, `${part.what}: losses differ by ${part.torch_loss_max_diff}`);
  }
  assert.equal(r.lora!.what.includes('with 2 blocks'), true, r.lora!.what);
  assert.deepEqual(r.generate!.runs.map((x) => x.batch), [1, 16]);
  for (const run of r.generate!.runs) {
    assert.ok(run.prefill_tokens_per_s > 0 && run.decode_tokens_per_s > 0);
    if (withTorch) assert.ok(run.torch_decode_tokens_per_s! > 0 && run.torch_bf16_decode_tokens_per_s! !== undefined && run.greedy_rows_equal! >= 0);
  }
  assert.deepEqual(Object.keys(r.detail).sort(), ['generate', 'lora', 'train']);
}

test('the check on the CPU with PyTorch on the CPU: every part, both sides, one JSON', { skip: torchSkip() }, async () => {
  shape ??= tinyShape();
  const out = join(dir, 'cpu.json');
  const r = await runGpuCheck({ provider: 'cpu', torchDevice: 'cpu', bf16: true, size: 'tiny', modelShape: await shape, threads: 1, out });
  assertComplete(r, 'cpu', true);
  assert.equal(r.torch!.device, 'cpu');
  assert.equal(r.detail.lora && (r.detail.lora as { torch_device: string }).torch_device, 'cpu');
});

test('the check on WebGPU, without a reference when PyTorch is asked for where it cannot run', { skip: webgpuSkip('GPU check on WebGPU') }, async () => {
  shape ??= tinyShape();
  // A Python that is not there: the torch part fails and says so; the engine's parts still run.
  const r = await runGpuCheck({ provider: 'webgpu', torchDevice: 'cpu', bf16: true, size: 'tiny', modelShape: await shape, threads: 1, python: join(dir, 'no-such-python') });
  assert.match(r.errors.torch, /the PyTorch GEMM peak could not be measured/);
  delete (r.errors as Record<string, string>).torch;
  assertComplete(r, 'webgpu', false);
});

test('MFU of both sides over the same peak: their ratio is the ratio of their step times', () => {
  const peak = { device: 'cuda', torch_version: '2.11', float32_gflops: 50_000, bfloat16_gflops: 700_000 };
  const s = trainSummary('x', { provider: 'webgpu', tokens_per_s: 2048, step_ms: 100, achieved_gflops: 4000, mfu: 0.5, gemm_peak_gflops: 8000, torch_step_ms: 20, torch_tokens_per_s: 10240, torch_bf16_step_ms: 5, torch_bf16_tokens_per_s: 40960 }, peak);
  assert.equal(s.mfu, 4000 / 50_000);
  assert.ok(Math.abs(s.torch_mfu! - (4000 * 100) / 20 / 50_000) < 1e-12);
  assert.ok(Math.abs(s.torch_bf16_mfu! - (4000 * 100) / 5 / 700_000) < 1e-12);
  assert.equal(s.ratio_bf16, 5 / 100);
  // Without PyTorch: over ONNX Runtime's GEMM peak, as the benchmark measured it, and said so.
  const alone = trainSummary('x', { provider: 'webgpu', tokens_per_s: 2048, step_ms: 100, achieved_gflops: 4000, mfu: 0.5, gemm_peak_gflops: 8000 }, undefined);
  assert.equal(alone.mfu, 0.5);
  assert.match(alone.mfu_over, /ONNX Runtime's fp32 GEMM on webgpu: 8000 GFLOP\/s/);
});

// The training benchmark's comparison with PyTorch: the steps of both sides alternate,
// and the ratio comes with the spread of the per-round ratios.
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { defaultTrainBench, geometricMeanInterval, runTrainBench, TorchReference } from '../bench/train.ts';
import { defaultLoraBench, runLoraBench, startLoraReference } from '../bench/train-lora.ts';
import { exportHfModel } from '../native-models/checkpoint/index.ts';
import { llamaDefaults, llamaFamily } from '../native-models/models/llama.ts';
import { trainBpe, writeTokenizerFolder } from '../native-models/tokenizer/bpe-trainer.ts';
import { hhTranscripts, smallCorpus } from '../native-models/tokenizer/test-data.ts';
import { Rng } from '../native-models/train/rng.ts';
import { pythonSkip } from './python/oracle.ts';

const dir = mkdtempSync(join(tmpdir(), 'afd-bench-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const peftSkip = (): string | false => pythonSkip(['torch', 'transformers', 'safetensors', 'peft'], 'LoRA training benchmark against PyTorch + peft');
const torchSkip = (): string | false => pythonSkip(['torch'], 'training benchmark against PyTorch');
const tiny = { ...defaultTrainBench(1), vocab: 64, dModel: 32, layers: 1, heads: 2, seq: 16, batch: 2, steps: 4, warmup: 1 };

test('the bootstrap interval of a geometric mean: exact for equal ratios, around the mean otherwise', () => {
  assert.deepEqual(geometricMeanInterval([1.25, 1.25, 1.25], new Rng(1)), [1.25, 1.25]);
  const ratios = [0.8, 1.0, 1.1, 1.3, 0.9, 1.2, 1.05, 0.95];
  const gm = Math.exp(ratios.reduce((s, r) => s + Math.log(r), 0) / ratios.length);
  const [lo, hi] = geometricMeanInterval(ratios, new Rng(2));
  assert.ok(lo < gm && gm < hi, `${lo} < ${gm} < ${hi}`);
  assert.ok(lo > 0.8 && hi < 1.3, `the interval [${lo}, ${hi}] is narrower than the range of the ratios`);
  // Four times the rounds: about half the width.
  const [lo4, hi4] = geometricMeanInterval([...ratios, ...ratios, ...ratios, ...ratios], new Rng(3));
  assert.ok(hi4 - lo4 < 0.7 * (hi - lo), `${hi4 - lo4} vs ${hi - lo}`);
});

test('the interval resamples blocks of neighbouring rounds: a slow burst over several rounds widens it', () => {
  // 32 rounds where the machine was slow for our side eight rounds at a time.
  const bursty = Array.from({ length: 32 }, (_, i) => (Math.floor(i / 8) % 2 === 0 ? 1.15 : 0.87));
  const width = ([lo, hi]: [number, number]): number => hi - lo;
  const oneByOne = width(geometricMeanInterval(bursty, new Rng(4), { block: 1 }));
  const inBlocks = width(geometricMeanInterval(bursty, new Rng(4), { block: 4 }));
  assert.ok(inBlocks > 1.3 * oneByOne, `blocks of 4: ${inBlocks}, one by one: ${oneByOne}`);
  // The default block for 32 rounds is 3 (the cube root), between the two.
  const byDefault = width(geometricMeanInterval(bursty, new Rng(4)));
  assert.ok(byDefault > oneByOne, `default: ${byDefault}, one by one: ${oneByOne}`);
});

test('--vs-torch alternates the steps of both sides and compares them over the same rounds', { skip: torchSkip() }, async () => {
  const torch = await TorchReference.start(tiny);
  const r = await runTrainBench(tiny, () => {}, torch);
  assert.ok(r.torch_step_ms! > 0 && r.step_ms > 0);
  // tokens/s of both sides over the same rounds: ratio = torch time / our time
  assert.ok(Math.abs(r.ratio! - r.torch_step_ms! / r.step_ms) < 1e-9 * r.ratio!, `${r.ratio} vs ${r.torch_step_ms! / r.step_ms}`);
  assert.ok(Math.abs(r.torch_tokens_per_s! / r.tokens_per_s - 1 / r.ratio!) < 1e-6);
  const [lo, hi] = r.ratio_interval!;
  assert.ok(lo > 0 && lo <= hi);
  assert.ok(r.ratio_paired_median! > 0);
  assert.ok(r.loss_last < r.loss_first, 'our side trained');
  // PyTorch starts from our weights and trains on our batch: the same losses, step by step, up to fp32 rounding.
  assert.equal(r.torch_losses!.length, tiny.warmup + tiny.steps);
  assert.ok(r.torch_loss_max_diff! < 1e-4, `the losses differ by up to ${r.torch_loss_max_diff}: ours ${r.loss_first}..${r.loss_last}, PyTorch's ${r.torch_losses!.join(', ')}`);
});

test('without PyTorch, --vs-torch says how to install it', { skip: pythonSkip([], 'check of --vs-torch with a Python without PyTorch') }, async () => {
  // A Python that cannot see its site-packages (where torch is) stands for one without torch.
  const python = join(dir, 'python-without-torch');
  writeFileSync(python, '#!/bin/sh\nexec python3 -S "$@"\n');
  chmodSync(python, 0o755);
  await assert.rejects(TorchReference.start(tiny, python), /PyTorch is not installed: pip install torch/);
});

test('without Python, --vs-torch says how to install it', async () => {
  await assert.rejects(TorchReference.start(tiny, join(dir, 'no-such-python')), /could not run .*pip install torch/);
});

/**
 * A tiny Llama (grouped-query attention, tied head, width 32, two blocks) with a
 * byte-level BPE of 320 tokens, as a Hugging Face folder: the LoRA benchmark's path with
 * SmolLM2's shape scaled down.
 */
async function tinyLlama(root: string): Promise<string> {
  const texts = (hhTranscripts() ?? smallCorpus()).slice(0, 400);
  const bpe = trainBpe(texts, { vocabSize: 320, specialTokens: ['<|endoftext|>'] });
  const tokenizer = join(root, 'tiny-tokenizer'), model = join(root, 'tiny-llama');
  await writeTokenizerFolder(tokenizer, bpe, { modelMaxLength: 64 });
  const config = llamaDefaults({ vocabSize: bpe.vocabSize, hiddenSize: 32, intermediateSize: 48, numLayers: 2, numHeads: 4, numKvHeads: 2, maxPositions: 64, tieWordEmbeddings: true, initializerRange: 0.1 });
  await exportHfModel(model, { family: llamaFamily, config, weights: llamaFamily.init(config, new Rng(7)), tokenizerFrom: tokenizer, baseConfig: { eos_token_id: 0 } });
  return model;
}

test('--model --lora --vs-torch: the SFT stage\'s LoRA step against PyTorch + peft from the same adapters and batch', { skip: peftSkip() }, async () => {
  const c = { ...defaultLoraBench(await tinyLlama(dir), 1), seq: 24, batch: 2, steps: 4, warmup: 1, lr: 1e-2 };
  const r = await runLoraBench(c, () => {}, startLoraReference(c));
  assert.equal(r.adapted_modules, 2 * 7, 'q, k, v, o, gate, up and down in each of the two blocks');
  // rank 8 on [in, 8] and [8, out] of every adapted projection
  assert.equal(r.trainable_params, 2 * 8 * (4 * (32 + 32) - 2 * 16 + 3 * (32 + 48)));
  assert.ok(r.response_fraction > 0 && r.response_fraction < 1, `response tokens: ${r.response_fraction}`);
  assert.ok(r.loss_last < r.loss_first, 'our side trained');
  assert.ok(Math.abs(r.ratio! - r.torch_step_ms! / r.step_ms) < 1e-9 * r.ratio!);
  assert.equal(r.torch_losses!.length, c.warmup + c.steps);
  // Same base weights, adapters, batch, loss and optimizer: the same losses up to fp32 rounding.
  assert.ok(r.torch_loss_max_diff! < 1e-4, `the losses differ by up to ${r.torch_loss_max_diff}: ours ${r.loss_first}..${r.loss_last}, PyTorch's ${r.torch_losses!.join(', ')}`);
  assert.ok(r.peak_rss_mb >= r.ready_rss_mb && r.torch_peak_rss_mb! > 0);
});

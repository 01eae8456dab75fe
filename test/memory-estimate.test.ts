// The memory estimate against the measured peak RSS of the stage it sizes: SFT for a few
// steps (and the save) in a process of its own, on the default model (full fine-tuning)
// and on a model of SmolLM2-135M's shape with random weights (LoRA), within 25%.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { test } from 'node:test';
import { availableMemory, folderShape } from '../main/stages/memory-check.ts';
import { formatBytes, stageEstimate } from '../main/stages/memory-estimate.ts';
import { STAGES } from '../main/stages/kinds/index.ts';
import { DEFAULT_MODEL_DIR } from '../main/models/builtin.ts';
import { exportHfModel } from '../native-models/checkpoint/index.ts';
import { llamaDefaults, llamaFamily } from '../native-models/models/llama.ts';
import { trainBpe, writeTokenizerFolder } from '../native-models/tokenizer/bpe-trainer.ts';
import { withTempDir } from './support/temp-dir.ts';

const CHILD = new URL('./support/stage-peak-rss.ts', import.meta.url).pathname;

/** Runs a stage in a child process (test/support/stage-peak-rss.ts); its peak RSS in bytes. */
function measure(args: object): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, JSON.stringify(args)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve((JSON.parse(out.trim().split('\n').at(-1)!) as { peakBytes: number }).peakBytes) : reject(new Error(`the stage's process exited with ${code}: ${err.slice(-2000)}`))));
  });
}

/** SmolLM2-135M's shape (30 blocks of width 576, 9 heads on 3 KV heads, a tied 49152-token head) with weights of no meaning, and a small tokenizer. */
async function smolLm2Shaped(dir: string): Promise<string> {
  const bpe = trainBpe(['Human: Assistant: the cat sat on a mat and then it rained over the old town while we walked home slowly'], { vocabSize: 300, specialTokens: ['<|endoftext|>'] });
  await writeTokenizerFolder(join(dir, 'tokenizer'), bpe, { modelMaxLength: 8192 });
  const config = llamaDefaults({ vocabSize: 49152, hiddenSize: 576, intermediateSize: 1536, numLayers: 30, numHeads: 9, numKvHeads: 3, maxPositions: 8192, rmsNormEps: 1e-5, ropeTheta: 100000, tieWordEmbeddings: true });
  // Memory does not depend on the values, but they must differ from tensor to tensor (ONNX
  // Runtime merges identical initializers and the computations that read them): a cheap
  // uniform fill, one xorshift stream for all, instead of a 135M-value normal init.
  let x = 2463534242;
  const weights = new Map([...llamaFamily.paramShapes(config)].map(([name, shape]) => {
    const w = new Float32Array(shape.reduce((a, b) => a * b, 1));
    for (let i = 0; i < w.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      w[i] = shape.length === 1 ? 1 : ((x >>> 0) / 2 ** 32 - 0.5) * 0.04;
    }
    return [name, w] as const;
  }));
  const model = join(dir, 'smollm2-shaped');
  await exportHfModel(model, { family: llamaFamily, config, weights, tokenizerFrom: join(dir, 'tokenizer'), baseConfig: { eos_token_id: 0 } });
  return model;
}

async function check(dir: string, model: string, settings: Record<string, string | number>): Promise<void> {
  const estimate = stageEstimate('sft', STAGES.sft.parse(settings), () => folderShape(model))!;
  // 3 steps of batch x maxLength: responses of 400 words are longer than 128 tokens in both tokenizers.
  const measured = await measure({ stage: 'sft', inputs: { model }, settings, dir, rows: 3 * Number(settings.batch), words: 400 });
  const ratio = estimate.bytes / measured;
  const what = `${model.split('/').at(-1)} ${JSON.stringify(settings)}: estimated ${formatBytes(estimate.bytes)} (${estimate.phase}), measured ${formatBytes(measured)}, ratio ${ratio.toFixed(3)}`;
  console.log(`# ${what}`);
  assert.ok(Math.abs(ratio - 1) <= 0.25, what);
}

test('the estimate is within 25% of the measured peak: SFT of the default model, full, 2 x 128 tokens', { timeout: 300_000 }, async () => {
  await withTempDir('memory-default', (dir) => check(join(dir, 'run'), DEFAULT_MODEL_DIR, { epochs: 1, batch: 2, maxLength: 128 }));
});

const smolSkip = availableMemory() < 5 * 2 ** 30 ? 'a SmolLM2-shaped SFT needs about 3 GiB, and less than 5 GiB is available' : false;

test('the estimate is within 25% of the measured peak: SFT of a SmolLM2-135M-shaped model, LoRA rank 8, 2 x 128 tokens', { timeout: 600_000, skip: smolSkip }, async () => {
  await withTempDir('memory-smollm2', async (dir) => {
    const model = await smolLm2Shaped(dir);
    await check(join(dir, 'run'), model, { epochs: 1, batch: 2, maxLength: 128, adaptation: 'lora', loraRank: 8, loraAlpha: 16 });
  });
});

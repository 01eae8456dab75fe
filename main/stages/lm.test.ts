// Batching for sequence objectives: what is a target, what is masked, where the last
// real token is, and how long pairs are cut.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { exportHfModel } from '../../native-models/checkpoint/index.ts';
import { llamaDefaults, llamaFamily } from '../../native-models/models/llama.ts';
import { sftLoss } from '../../native-models/objectives/losses.ts';
import { trainBpe, writeTokenizerFolder } from '../../native-models/tokenizer/bpe-trainer.ts';
import { Rng } from '../../native-models/train/rng.ts';
import { DEFAULT_MODEL_DIR } from '../models/builtin.ts';
import { encodePair, loadModel, sequenceFeeds, sequenceInputs, trainableModel, type LoadedModel } from './lm.ts';
import type { StageContext } from './stage.ts';
import { createTrainer } from './training.ts';

test('sequenceFeeds: next-token targets, a mask on response targets only, the last real token of each row', () => {
  // Row 0: prompt [5, 6], response [7, 8]; row 1: prompt [9], response [3] (shorter, padded with 0).
  const f = sequenceFeeds([{ ids: [5, 6, 7, 8], start: 2 }, { ids: [9, 3], start: 1 }], 0);
  assert.deepEqual(f.tokens.dims, [2, 3]);
  assert.deepEqual([...(f.tokens.data as BigInt64Array)].map(Number), [5, 6, 7, 9, 0, 0]);
  assert.deepEqual([...(f.targets.data as BigInt64Array)].map(Number), [6, 7, 8, 3, 0, 0]);
  // Targets 7 and 8 (the response) count; 6 (prompt) and padding do not.
  assert.deepEqual([...(f.mask.data as Float32Array)], [0, 1, 1, 1, 0, 0]);
  // Flat indices b*T + t of the last input position of each row.
  assert.deepEqual([...(f.last.data as BigInt64Array)].map(Number), [2, 3]);
});

test('encodePair keeps the response and EOS, dropping the oldest prompt tokens when too long', async () => {
  const m = await loadModel(DEFAULT_MODEL_DIR);
  const prompt = '\n\nHuman: ' + 'tell me more about this '.repeat(40) + '\n\nAssistant:';
  const full = encodePair(m, prompt, ' Sure.', 4096);
  const response = m.tokenizer.encode(' Sure.', { addSpecialTokens: false });
  assert.deepEqual(full.ids.slice(full.start), [...response, m.eosId]);
  const cut = encodePair(m, prompt, ' Sure.', 32);
  assert.equal(cut.ids.length, 32);
  assert.deepEqual(cut.ids.slice(cut.start), [...response, m.eosId], 'the response survives the cut');
  assert.deepEqual(cut.ids.slice(0, cut.start), full.ids.slice(full.start - cut.start, full.start), 'the prompt keeps its most recent tokens');
});

test('LoRA on an F32 folder: the frozen base weights reference its file (ONNX external data) and train exactly as weights in memory', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'afd-lm-'));
  try {
    const config = llamaDefaults({ vocabSize: 260, hiddenSize: 16, intermediateSize: 32, numLayers: 1, numHeads: 2, maxPositions: 16, tieWordEmbeddings: true, initializerRange: 0.2 });
    const tokenizer = join(dir, 'tokenizer'), folder = join(dir, 'model');
    await writeTokenizerFolder(tokenizer, trainBpe(['a b c d e f g h'], { vocabSize: 260 }), { modelMaxLength: 16 });
    await exportHfModel(folder, { family: llamaFamily, config, weights: llamaFamily.init(config, new Rng(1)), tokenizerFrom: tokenizer, baseConfig: { eos_token_id: 0 } });
    const mapped = await loadModel(folder);
    assert.ok(mapped.mapped, 'an F32 folder is mapped');
    const inMemory: LoadedModel = { ...mapped, mapped: undefined };
    const lora = { kind: 'lora', rank: 2, alpha: 4 } as const;
    const losses = async (m: LoadedModel): Promise<number[]> => {
      const tm = trainableModel(m, lora, new Rng(2));
      assert.equal(tm.external !== undefined, m === mapped);
      assert.ok([...tm.frozen.values()].every((d) => (m === mapped) === !(d instanceof Float32Array)), 'frozen weights are external exactly when mapped');
      const x = sequenceInputs();
      const { logits } = m.family.forward(m.config, tm.params, { tokens: x.tokens, loraScale: tm.loraScale! });
      const ctx = { seed: 0, dir, checkpoint: null, provider: 'cpu', threads: 1 } as unknown as StageContext;
      const trainer = await createTrainer(ctx, tm, sftLoss(logits, x.targets, x.mask), { steps: 3, lr: 0.05, warmupSteps: 0, weightDecay: 0, clipNorm: 1, checkpointEvery: 10 });
      try {
        const batch = sequenceFeeds([{ ids: [3, 4, 5, 6, 7, 8], start: 2 }, { ids: [9, 10, 11, 12], start: 1 }], 0);
        const out: number[] = [];
        for (let i = 0; i < 3; i++) out.push((await trainer.step(batch, 0.05)).loss);
        return out;
      } finally {
        await trainer.release();
      }
    };
    const a = await losses(mapped), b = await losses(inMemory);
    assert.ok(a[2] < a[0], 'it trains');
    assert.deepEqual(a, b);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a folder stored in F16 (the default model) is not mapped: LoRA copies its converted weights into the graph', async () => {
  const m = await loadModel(DEFAULT_MODEL_DIR);
  assert.equal(m.mapped, undefined);
  const tm = trainableModel(m, { kind: 'lora', rank: 2, alpha: 4 }, new Rng(0));
  assert.equal(tm.external, undefined);
  assert.ok([...tm.frozen.values()].every((d) => d instanceof Float32Array));
});

import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import ort from 'onnxruntime-node';
import { frozenParams } from '../../native-models/generate/graphs.ts';
import * as T from '../../native-models/ir/index.ts';
import { readSafetensors } from '../../native-models/runtime/safetensors.ts';
import { Rng } from '../../native-models/train/rng.ts';
import { encodePair, loadModel, type LoadedModel } from './lm.ts';
import { HEAD_FILE, hiddenSize, loadScorerReward, saveScorer, SCORER_JSON, type ScoreHead } from './scorer.ts';
import { isSavedScorer } from './scorer-folder.ts';
import { buildToyModel } from './toy.ts';

let root: string, model: LoadedModel, head: ScoreHead;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'afd-scorer-'));
  // Untrained: a random backbone is all the arithmetic needs.
  await buildToyModel(join(root, 'pi0'), { steps: 0 });
  model = await loadModel(join(root, 'pi0'));
  const rng = new Rng(5);
  const D = hiddenSize(model);
  head = { weight: Float32Array.from({ length: D }, () => rng.normal()), bias: 0.25 };
});
after(() => rm(root, { recursive: true, force: true }));

const items = [
  { prompt: '\n\nHuman: tell me about cats 1\n\nAssistant:', response: ' cats is good.' },
  { prompt: '\n\nHuman: tell me about rain 2\n\nAssistant:', response: ' rain the a is very good and old red new it we like. Have a nice day.' },
  { prompt: '\n\nHuman: tea\n\nAssistant:', response: '' },
  { prompt: '\n\nHuman: tell me about stars and boats and bikes 3\n\nAssistant:', response: ' stars here now.' },
];

/** The backbone's final hidden states of one unpadded sequence [T * D], by a plain forward graph. */
async function hiddenStates(ids: readonly number[]): Promise<Float32Array> {
  const frozen = frozenParams(model.family, model.config, model.weights);
  const tokens = T.input('tokens', 'int64', ['B', 'T']);
  const { hidden } = model.family.forward(model.config, frozen.params, { tokens });
  const g = T.emitOnnx({ outputs: { hidden }, initializers: frozen.initializers, inputs: [tokens] });
  const session = await ort.InferenceSession.create(g.bytes);
  try {
    const r = await session.run({ tokens: new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [1, ids.length]) });
    return r.hidden.data as Float32Array;
  } finally {
    await session.release();
  }
}

test('a saved scorer scores h_last . w + b, where h_last is the hidden state of the last input token (the token before EOS)', async () => {
  const dir = await saveScorer(root, model, model.weights, head, 48);
  assert.equal(dir, join(root, 'scorer'));
  assert.deepEqual(JSON.parse(readFileSync(join(dir, SCORER_JSON), 'utf8')).maxLength, 48);
  const st = await readSafetensors(join(dir, HEAD_FILE));
  assert.deepEqual(st.tensors.get('score.weight')?.shape, [head.weight.length, 1]);
  assert.deepEqual(st.tensors.get('score.bias')?.shape, [1]);
  assert.ok(existsSync(join(dir, 'config.json')) && existsSync(join(dir, 'tokenizer.json')), 'the backbone is a Hugging Face folder');
  assert.deepEqual([isSavedScorer(dir), isSavedScorer(join(root, 'pi0'))], [true, false], 'a saved scorer is told from the language model it was made of');

  const reward = await loadScorerReward(dir, { provider: 'cpu', threads: 1 });
  try {
    const progress: number[] = [];
    const got = await reward.score(items, (done, total) => {
      assert.equal(total, items.length);
      progress.push(done);
    });
    assert.equal(progress.at(-1), items.length);
    const D = head.weight.length;
    for (const [i, x] of items.entries()) {
      const e = encodePair(model, x.prompt, x.response, 48);
      const input = e.ids.slice(0, -1); // the EOS is a target, never an input
      const h = await hiddenStates(input);
      let want = head.bias;
      for (let d = 0; d < D; d++) want += h[(input.length - 1) * D + d] * head.weight[d];
      assert.ok(Math.abs(got[i] - want) < 1e-4 * Math.max(1, Math.abs(want)), `item ${i}: scorer ${got[i]}, by hand ${want}`);
    }
    // The scores depend on the item, not the batch it was padded into.
    for (const [i, x] of items.entries()) {
      const [alone] = await reward.score([x]);
      assert.ok(Math.abs(alone - got[i]) < 1e-5, `item ${i}: alone ${alone}, in a padded batch ${got[i]}`);
    }
    // Returned in input order whatever the internal length sort.
    const reversed = await reward.score([...items].reverse());
    reversed.reverse().forEach((s, i) => assert.ok(Math.abs(s - got[i]) < 1e-5));
    assert.ok(new Set(got.map((s) => s.toFixed(4))).size === items.length, 'different items score differently');
  } finally {
    await reward.release();
  }
});

test('loading a folder that is not a scorer fails with a sentence', async () => {
  await assert.rejects(loadScorerReward(join(root, 'pi0'), { provider: 'cpu', threads: 1 }), /not a saved scorer/);
});

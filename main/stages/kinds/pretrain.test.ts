// The pretrain stage: a decoder from scratch on the transcripts, with another model's
// tokenizer; its loss falls, it loads as a model of the asked shape, and a stopped run
// resumes to the same weights.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadModel } from '../lm.ts';
import { buildToyModel, toyDemonstrations } from '../toy.ts';
import { pretrainStage } from './pretrain.ts';
import { pi0, runStage } from './testing.ts';

let root = '';
const data = toyDemonstrations();
const config = { layers: 2, dModel: 32, heads: 2, seq: 32, batch: 4, steps: 40, lr: 3e-3, checkpointEvery: 5 };

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'afd-pretrain-'));
  await buildToyModel(join(root, 'pi0'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

test('defaults: pi0 tokenizer, all transcripts, a 6-layer width-384 GPT-2; dModel must split into heads', () => {
  const c = pretrainStage.parse({});
  assert.equal(c.tokenizer, 'pi0');
  assert.equal(c.corpus, 'all');
  assert.deepEqual([c.layers, c.dModel, c.heads, c.seq], [6, 384, 6, 512]);
  assert.throws(() => pretrainStage.parse({ dModel: 100, heads: 3 }), /multiple of heads/);
});

test('the loss falls; the model has the asked shape and the tokenizer of its input; a stopped run resumes to the same weights', async () => {
  const full = await runStage(pretrainStage, config, { tokenizer: pi0(join(root, 'pi0')) }, { dir: join(root, 'full'), data });
  assert.equal(full.outcome.status, 'done');
  const losses = full.metrics.map((m) => m.values.loss).filter((x) => x !== undefined);
  const head = losses.slice(0, 5).reduce((a, b) => a + b, 0) / 5, tail = losses.slice(-5).reduce((a, b) => a + b, 0) / 5;
  assert.ok(tail < 0.7 * head, `the loss should fall by 30%: from ${head.toFixed(3)} to ${tail.toFixed(3)}`);

  const model = await loadModel(join(root, 'full', 'model'));
  const tok = await loadModel(join(root, 'pi0'));
  assert.deepEqual([model.configJson.n_layer, model.configJson.n_embd, model.configJson.n_head, model.configJson.n_positions], [2, 32, 2, 32]);
  assert.equal(model.configJson.model_type, 'gpt2');
  assert.equal(model.eosId, tok.eosId);
  assert.deepEqual(model.tokenizer.encode('Human: hello'), tok.tokenizer.encode('Human: hello'));
  assert.ok(existsSync(join(root, 'full', 'artifact.json')));

  const dir = join(root, 'resumed');
  const first = await runStage(pretrainStage, config, { tokenizer: pi0(join(root, 'pi0')) }, { dir, data, stopAtProgress: 17 });
  assert.equal(first.outcome.status, 'stopped');
  const second = await runStage(pretrainStage, config, { tokenizer: pi0(join(root, 'pi0')) }, { dir, data, checkpoint: first.checkpoint });
  assert.equal(second.outcome.status, 'done');
  const resumed = await loadModel(join(dir, 'model'));
  for (const [name, w] of model.weights) assert.deepEqual(resumed.weights.get(name), w, `${name} differs after resuming`);
});

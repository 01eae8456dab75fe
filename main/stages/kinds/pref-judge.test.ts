import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { demonstrations, type Demonstrations } from '../data.ts';
import { loadRewardFunction } from '../reward-artifact.ts';
import type { Artifact } from '../stage.ts';
import { buildToyModel, MARKER, toyDemonstrations } from '../toy.ts';
import { foldOf, judgeStage } from './judge.ts';
import { prefRewardStage } from './pref-reward.ts';
import { pi0, runStage } from './testing.ts';

// A tiny preference data set: chosen = a demonstration, rejected = the same reply without the marker.
let root: string, base: Artifact;
const toy = toyDemonstrations(60);
const strip = (s: string): string => s.slice(0, s.length - MARKER.length);
const data: Demonstrations = demonstrations(toy.train.map((d) => ({ ...d, rejected: strip(d.response) })), toy.eval.map((d) => ({ ...d, rejected: strip(d.response) })));
const judgeConfig = { folds: 2, epochs: 3, batch: 8, lr: 3e-4 };

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'afd-pref-judge-'));
  await buildToyModel(join(root, 'pi0'), { steps: 150 });
  base = pi0(join(root, 'pi0'));
});
after(() => rm(root, { recursive: true, force: true }));

test('pref-reward (LoRA) learns chosen over rejected on train prompts and reports held-out and eval accuracy', async () => {
  const run = await runStage(prefRewardStage, { epochs: 3, lr: 1e-3, adaptation: 'lora', loraRank: 4 }, { backbone: base }, { dir: join(root, 'pref'), data });
  assert.equal(run.outcome.status, 'done');
  if (run.outcome.status !== 'done') return;
  const s = run.outcome.summary;
  assert.equal(typeof s.held_out_accuracy, 'number');
  assert.ok((s.eval_preference_agreement as number) > 0.75, `agreement on eval prompts ${s.eval_preference_agreement}`);
  assert.equal(s.eval_preference_pairs, data.eval.length);
  const details = JSON.parse(readFileSync(join(root, 'pref', 'artifact.json'), 'utf8'));
  assert.equal(details.reward, 'scorer');
  const reward = await loadRewardFunction(run.artifact, { provider: 'cpu', threads: 1 });
  await reward.release();
});

test('pref-reward without rejected responses says what is missing', async () => {
  const plain: Demonstrations = demonstrations(toy.train, toy.eval);
  await assert.rejects(runStage(prefRewardStage, {}, { backbone: base }, { dir: join(root, 'pref-none'), data: plain }), /no train demonstration has a rejected response/);
  await assert.rejects(runStage(judgeStage, {}, { backbone: base }, { dir: join(root, 'judge-none'), data: plain }), /no demonstration has a rejected response/);
});

test('the judge trains on all pairs, reports a 2-fold cross-validated accuracy, and resumes mid-fold to the same judge', async () => {
  const all = [...data.train, ...data.eval];
  const fold0 = all.filter((d) => foldOf(d.prompt, 2) === 0).length;
  assert.ok(fold0 > 0 && fold0 < all.length, 'both folds have prompts');

  const full = await runStage(judgeStage, judgeConfig, { backbone: base }, { dir: join(root, 'judge'), data });
  assert.equal(full.outcome.status, 'done');
  if (full.outcome.status !== 'done') return;
  const acc = full.outcome.summary.gold_judge_accuracy as number;
  assert.ok(acc > 0.75, `cross-validated accuracy ${acc}`);
  const details = JSON.parse(readFileSync(join(root, 'judge', 'artifact.json'), 'utf8'));
  assert.equal(details.cvAccuracy, acc);
  assert.equal(details.gold_judge_accuracy, acc);
  assert.equal(details.reward, 'scorer');
  assert.equal(details.pairs, all.length);
  assert.ok(existsSync(join(root, 'judge', 'fold-0', 'result.json')) && existsSync(join(root, 'judge', 'fold-1', 'result.json')));

  // Stop inside the second fold, then resume: fold 0 is not trained again, and the judge is the same.
  const steps = (n: number): number => judgeConfig.epochs * Math.ceil(n / judgeConfig.batch);
  const stopAt = steps(all.length - fold0) + 2;
  const dir = join(root, 'judge-resumed');
  const first = await runStage(judgeStage, { ...judgeConfig, checkpointEvery: 2 }, { backbone: base }, { dir, data, stopAtProgress: stopAt });
  assert.equal(first.outcome.status, 'stopped');
  assert.ok(first.checkpoint?.includes('fold-1'), `checkpoint ${first.checkpoint}`);
  const second = await runStage(judgeStage, { ...judgeConfig, checkpointEvery: 2 }, { backbone: base }, { dir, data, checkpoint: first.checkpoint });
  assert.equal(second.outcome.status, 'done');
  if (second.outcome.status !== 'done') return;
  assert.ok(second.metrics.every((m) => m.step > stopAt), 'no step before the checkpoint ran again');
  assert.deepEqual(second.outcome.summary, full.outcome.summary);
  const items = data.eval.map((d) => ({ prompt: d.prompt, response: d.response }));
  const [a, b] = [await loadRewardFunction(full.artifact, { provider: 'cpu', threads: 1 }), await loadRewardFunction(second.artifact, { provider: 'cpu', threads: 1 })];
  try {
    assert.deepEqual(await b.score(items), await a.score(items));
  } finally {
    await a.release();
    await b.release();
  }
});

test('with allPrompts the judge learns from every dialogue of the source, not only the experiment\'s cut', async () => {
  // The methods see 6 train and 3 eval prompts; the source has all of them.
  const cut: Demonstrations = { ...demonstrations(data.train.slice(0, 6), data.eval.slice(0, 3)), all: data.all };
  const config = { ...judgeConfig, epochs: 1 };
  const some = await runStage(judgeStage, config, { backbone: base }, { dir: join(root, 'judge-cut'), data: cut });
  const every = await runStage(judgeStage, { ...config, allPrompts: true }, { backbone: base }, { dir: join(root, 'judge-all'), data: cut });
  const pairs = (dir: string): number => JSON.parse(readFileSync(join(root, dir, 'artifact.json'), 'utf8')).pairs as number;
  assert.equal(some.outcome.status, 'done');
  assert.equal(every.outcome.status, 'done');
  assert.equal(pairs('judge-cut'), 9);
  assert.equal(pairs('judge-all'), data.all.length);
  assert.deepEqual(judgeStage.parse({}), judgeStage.parse({ allPrompts: false }), 'the default leaves the parsed settings as they were');
  assert.throws(() => judgeStage.parse({ allPrompts: 'yes' }), /allPrompts must be true or false, not "yes"/);
});

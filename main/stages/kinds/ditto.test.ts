import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { buildToyModel, toyDemonstrations } from '../toy.ts';
import { dittoPairs, dittoStage, iterationCounts, iterationSteps } from './ditto.ts';
import { pi0, runStage } from './testing.ts';

let root = '';
const data = toyDemonstrations(40);
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'afd-ditto-'));
  await buildToyModel(join(root, 'pi0'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

test('ditto settings: the paper\'s beta and mix, and refusals', () => {
  const c = dittoStage.parse({});
  assert.equal(c.policy, 'sft');
  assert.equal(c.reference, 'sft');
  assert.equal(c.beta, 0.05);
  assert.deepEqual([c.iterations, c.n, c.replay, c.intermodel, c.epochs], [4, 4, 0.2, 0.1, 1]);
  assert.throws(() => dittoStage.parse({ replay: 0.6, intermodel: 0.4 }), /replay \+ intermodel must leave room for expert pairs/);
  assert.throws(() => dittoStage.parse({ iterations: 0 }), /iterations must be a whole number from 1/);
});

test('iteration t: every demonstration over each sample of t, then replay and intermodel pairs of earlier samples in their shares', () => {
  const train = [0, 1, 2].map((i) => ({ prompt: `p${i}`, response: `demo${i}` }));
  // samples[s][i][k] = 's<s>p<i>k<k>'
  const samples = [0, 1, 2].map((s) => train.map((_, i) => [0, 1].map((k) => `s${s}p${i}k${k}`)));
  const c = { n: 2, replay: 0.2, intermodel: 0.1 };
  // Iteration 0 has nothing earlier: expert pairs only.
  assert.deepEqual(iterationCounts(3, c, 0), { expert: 6, replay: 0, intermodel: 0 });
  const first = dittoPairs(train, samples, 0, c, 7);
  assert.deepEqual(first.map((p) => `${p.chosen}>${p.rejected}`), ['demo0>s0p0k0', 'demo0>s0p0k1', 'demo1>s0p1k0', 'demo1>s0p1k1', 'demo2>s0p2k0', 'demo2>s0p2k1']);
  // Iteration 2: 6 expert pairs are 70% of 8.57: 2 replay (20%), 1 intermodel (10%).
  assert.deepEqual(iterationCounts(3, c, 2), { expert: 6, replay: 2, intermodel: 1 });
  const third = dittoPairs(train, samples, 2, c, 7);
  assert.equal(third.length, 9);
  const prompt = (y: string): string => `p${y.match(/p(\d)/)![1]}`;
  third.slice(0, 6).forEach((p) => assert.match(`${p.chosen}>${p.rejected}`, /^demo(\d)>s2p\1k\d$/));
  for (const p of third.slice(6, 8)) {
    assert.match(`${p.chosen}>${p.rejected}`, /^demo(\d)>s[01]p\1k\d$/, 'replay: a demonstration over an earlier sample of its prompt');
    assert.equal(prompt(p.rejected), p.prompt);
  }
  assert.match(`${third[8].chosen}>${third[8].rejected}`, /^s2p(\d)k\d>s[01]p\1k\d$/, 'intermodel: a sample of t over an earlier sample of the same prompt');
  assert.equal(prompt(third[8].chosen), third[8].prompt);
  // Seeded: the same seed draws the same pairs, another seed (here) others.
  assert.deepEqual(dittoPairs(train, samples, 2, c, 7), third);
  assert.ok([1, 2, 3, 4, 5].some((s) => JSON.stringify(dittoPairs(train, samples, 2, c, s).slice(6)) !== JSON.stringify(third.slice(6))));
  // The shares ask for more than exist: all of them (6 replay, 12 intermodel at t = 1).
  assert.deepEqual(iterationCounts(3, { n: 2, replay: 0.6, intermodel: 0.3 }, 1), { expert: 6, replay: 6, intermodel: 12 });
  // Without replay and intermodel it is SPIN iterated with a fixed reference.
  assert.deepEqual(iterationCounts(3, { n: 2, replay: 0, intermodel: 0 }, 2), { expert: 6, replay: 0, intermodel: 0 });
});

test('DITTO on the toy world: samples written per iteration, DPO from log 2 down, and a resumed run repeats an uninterrupted one', async (t) => {
  const model = pi0(join(root, 'pi0'));
  const raw = { policy: 'pi0', iterations: 2, n: 1, maxNewTokens: 24, batch: 8, lr: 1e-3, beta: 0.1, warmup: 0, checkpointEvery: 2 };
  const config = dittoStage.parse(raw);
  // 32 train prompts: iteration 0, 32 expert pairs (4 steps); iteration 1, 32 expert + 9 replay + 5 intermodel (6 steps).
  assert.deepEqual(iterationSteps(32, config), { starts: [0, 4], total: 10 });
  const whole = await runStage(dittoStage, raw, { policy: model, reference: model }, { dir: join(root, 'ditto'), data, id: 'ditto' });
  assert.equal(whole.outcome.status, 'done');
  assert.ok(whole.outcome.status === 'done' && whole.outcome.summary.pairs === 32 + 46);
  const losses = whole.metrics.filter((m) => 'loss' in m.values).map((m) => m.values.loss);
  assert.equal(losses.length, 10);
  assert.ok(Math.abs(losses[0] - Math.LN2) < 1e-4, `first loss ${losses[0]}`);
  assert.deepEqual(whole.metrics.filter((m) => 'iteration' in m.values).map((m) => m.values.iteration), [0, 0, 0, 0, 1, 1, 1, 1, 1, 1]);
  t.diagnostic(`loss ${losses.map((l) => l.toFixed(3)).join(' ')}`);
  // Within iteration 0 the loss falls; iteration 1's fresh samples, from the trained policy, start it higher again.
  assert.ok(mean(losses.slice(1, 4)) < Math.LN2 - 0.05, 'the loss falls over iteration 0');
  const texts = (i: number): string[][] => JSON.parse(readFileSync(join(root, 'ditto', `ditto-samples-${i}.json`), 'utf8')).texts;
  assert.equal(texts(0).length, 32);
  assert.notDeepEqual(texts(0), texts(1), 'iteration 1 samples the trained policy with other seeds');

  // Stopped inside iteration 1 (after step 6), then resumed from its checkpoint.
  const dir = join(root, 'ditto-resumed');
  const part = await runStage(dittoStage, raw, { policy: model, reference: model }, { dir, data, id: 'ditto', stopAtProgress: 6 });
  assert.equal(part.outcome.status, 'stopped');
  assert.ok(existsSync(join(dir, 'ditto-samples-1.json')) && part.checkpoint !== null);
  const rest = await runStage(dittoStage, raw, { policy: model, reference: model }, { dir, data, id: 'ditto', checkpoint: part.checkpoint });
  assert.equal(rest.outcome.status, 'done');
  const lossesOf = (r: typeof rest): number[] => r.metrics.filter((m) => 'loss' in m.values).map((m) => m.values.loss);
  assert.deepEqual([...lossesOf(part), ...lossesOf(rest)], losses);
  assert.deepEqual(readFileSync(join(dir, 'model', 'model.safetensors')), readFileSync(join(root, 'ditto', 'model', 'model.safetensors')));
});

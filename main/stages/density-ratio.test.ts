import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Generator } from '../../native-models/generate/generator.ts';
import { densityRatioReward, splitEncoded } from './density-ratio.ts';
import { loadModel } from './lm.ts';
import { loadRewardFunction } from './reward-artifact.ts';
import { densityRatioStage } from './kinds/density-ratio.ts';
import { pi0, runStage } from './kinds/testing.ts';
import { buildToyModel, toyDemonstrations } from './toy.ts';

let root: string, policyDir: string, baseDir: string;
const runtime = { provider: 'cpu' as const, threads: 1 };
const data = toyDemonstrations(40);
const items = [
  ...data.eval.map((d) => ({ prompt: d.prompt, response: d.response })),
  { prompt: data.eval[0].prompt, response: '' },
  { prompt: data.eval[1].prompt, response: ' tea tea tea tea tea tea tea tea.' },
];

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'afd-density-'));
  // Same seed, so one tokenizer; different training, so different weights.
  // Where a model stage `sft` keeps its model, so that it can stand in for one.
  policyDir = join(root, 'sft', 'model');
  baseDir = join(root, 'base');
  await buildToyModel(policyDir, { steps: 30 });
  await buildToyModel(baseDir, { steps: 5 });
});
after(() => rm(root, { recursive: true, force: true }));

/** Summed log-probs of the items' responses (EOS included) under the model at `dir`, by Generator.score. */
async function logProbs(dir: string): Promise<{ sum: number; n: number }[]> {
  const m = await loadModel(dir);
  const g = await Generator.create(m.family, m.config, m.weights, runtime);
  try {
    const enc = items.map((x) => splitEncoded(m, x, m.maxLength));
    const r = await g.score(enc.map((e) => e.prompt), enc.map((e) => e.response));
    return r.map((s, i) => ({ sum: s.sum, n: enc[i].response.length }));
  } finally {
    await g.release();
  }
}

test('the density-ratio reward is log pi_policy(y|x) - log pi_base(y|x), summed or per token, exactly', async () => {
  const p = await logProbs(policyDir), b = await logProbs(baseDir);
  for (const perToken of [false, true]) {
    const reward = await densityRatioReward(policyDir, baseDir, perToken, runtime);
    try {
      const got = await reward.score(items);
      const want = p.map((x, i) => (perToken ? (x.sum - b[i].sum) / x.n : x.sum - b[i].sum));
      assert.deepEqual(got, want);
      assert.ok(got.some((x) => Math.abs(x) > 1e-3), 'the two models differ');
    } finally {
      await reward.release();
    }
  }
  const same = await densityRatioReward(baseDir, baseDir, false, runtime);
  try {
    assert.ok((await same.score(items)).every((x) => x === 0), 'a model against itself gives 0');
  } finally {
    await same.release();
  }
});

test('the density-ratio stage records both folders, and its artifact loads as the same reward', async () => {
  const run = await runStage(densityRatioStage, { perToken: true }, { policy: { type: 'model', dir: join(root, 'sft'), stage: 'sft' }, base: pi0(baseDir) }, { dir: join(root, 'stage'), data });
  assert.equal(run.outcome.status, 'done');
  const details = JSON.parse(readFileSync(join(root, 'stage', 'artifact.json'), 'utf8'));
  assert.deepEqual(details, { type: 'reward', reward: 'density-ratio', policy: policyDir, base: baseDir, perToken: true });
  assert.ok(run.outcome.status === 'done' && typeof run.outcome.summary.eval_demo_reward_mean === 'number', 'the stage reports the reward on evaluation demonstrations');
  assert.throws(() => densityRatioStage.parse({ perToken: 'yes' }), /perToken must be true or false/);
  assert.deepEqual(densityRatioStage.parse({}), { policy: 'sft', base: 'pi0', perToken: false });
});

test('the reward loaded from a density-ratio artifact scores like densityRatioReward', async () => {
  const dir = join(root, 'artifact');
  const run = await runStage(densityRatioStage, {}, { policy: pi0(policyDir), base: pi0(baseDir) }, { dir, data });
  assert.equal(run.outcome.status, 'done');
  const loaded = await loadRewardFunction(run.artifact, runtime);
  const direct = await densityRatioReward(policyDir, baseDir, false, runtime);
  try {
    assert.deepEqual(await loaded.score(items), await direct.score(items));
  } finally {
    await loaded.release();
    await direct.release();
  }
});

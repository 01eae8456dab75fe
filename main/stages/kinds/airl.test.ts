import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadModel } from '../lm.ts';
import { loadScorerReward } from '../scorer.ts';
import { buildToyModel, toyDemonstrations, modelMarkerRate } from '../toy.ts';
import { airlStage } from './airl.ts';
import { pi0, runStage } from './testing.ts';

let root = '';
const data = toyDemonstrations();

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'afd-airl-'));
  await buildToyModel(join(root, 'pi0'), { markerRate: 0.3 });
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

/** Marker rate of 4 seeded samples per eval prompt. */
const evalMarkerRate = (dir: string): Promise<number> => modelMarkerRate(dir, data.eval.map((d) => d.prompt), { perPrompt: 4, maxNewTokens: 24, seed: 1000 });

const model = (): ReturnType<typeof pi0> => pi0(join(root, 'pi0'));

test('AIRL: the discriminator learns to tell demonstrations from samples and the policy moves toward the marker', async (t) => {
  const before = await evalMarkerRate(join(root, 'pi0'));
  const run = await runStage(airlStage, { policy: 'pi0', steps: 20, lr: 1e-3, discriminatorLr: 1e-3, maxNewTokens: 24, warmup: 0 }, { policy: model(), reference: model() }, { dir: join(root, 'airl'), data });
  assert.equal(run.outcome.status, 'done');
  const after = await evalMarkerRate(join(root, 'airl', 'model'));
  const v = run.metrics.map((m) => m.values);
  t.diagnostic(`marker rate ${before.toFixed(3)} -> ${after.toFixed(3)}`);
  t.diagnostic(`discriminator accuracy ${v.map((x) => x.discriminator_accuracy.toFixed(2)).join(' ')}`);
  t.diagnostic(`reward ${v.map((x) => x.reward.toFixed(2)).join(' ')}`);
  t.diagnostic(`kl ${v.map((x) => x.kl.toFixed(2)).join(' ')}`);
  assert.ok(after >= before + 0.2, `marker rate ${before} -> ${after}`);
  const accuracy = v.slice(1).reduce((a, x) => a + x.discriminator_accuracy, 0) / (v.length - 1);
  assert.ok(accuracy > 0.6, `mean discriminator accuracy ${accuracy}`);
  // The final discriminator is saved as a scorer folder that loads as a reward function.
  const reward = await loadScorerReward(join(root, 'airl', 'scorer'), { provider: 'cpu', threads: 1 });
  try {
    const scores = await reward.score(data.eval.slice(0, 4).map((d) => ({ prompt: d.prompt, response: d.response })));
    assert.ok(scores.length === 4 && scores.every(Number.isFinite));
  } finally {
    await reward.release();
  }
});

test('airl parses its defaults: shape logit, discriminator lr = policy lr', () => {
  const c = airlStage.parse({ lr: 2e-5 });
  assert.deepEqual([c.policy, c.reference, c.shape, c.discriminatorLr, c.estimator, c.k, c.beta], ['sft', 'sft', 'logit', 2e-5, 'rloo', 4, 0.05]);
  assert.throws(() => airlStage.parse({ shape: 'tanh' }), /shape must be one of logit, logD, neglog1mD/);
});

test('a stopped and resumed AIRL run ends with the same policy and discriminator as an uninterrupted one', async (t) => {
  const raw = { policy: 'pi0', steps: 4, lr: 1e-3, discriminatorLr: 1e-3, k: 2, promptsPerStep: 4, maxNewTokens: 16, shape: 'logD', checkpointEvery: 1 };
  await runStage(airlStage, raw, { policy: model(), reference: model() }, { dir: join(root, 'whole'), data });
  const first = await runStage(airlStage, raw, { policy: model(), reference: model() }, { dir: join(root, 'parts'), data, stopAtProgress: 2 });
  assert.equal(first.outcome.status, 'stopped');
  const second = await runStage(airlStage, raw, { policy: model(), reference: model() }, { dir: join(root, 'parts'), data, checkpoint: first.checkpoint });
  assert.equal(second.outcome.status, 'done');
  assert.deepEqual(second.metrics.map((m) => m.step), [3, 4]);
  let maxDiff = 0;
  for (const sub of ['model', 'scorer']) {
    const [a, b] = [await loadModel(join(root, 'whole', sub)), await loadModel(join(root, 'parts', sub))];
    for (const [name, w] of a.weights) {
      const v = b.weights.get(name)!;
      for (let i = 0; i < w.length; i++) maxDiff = Math.max(maxDiff, Math.abs(w[i] - v[i]));
    }
  }
  t.diagnostic(`max weight difference ${maxDiff}`);
  assert.ok(maxDiff <= 1e-6, `max weight difference ${maxDiff}`);
  // Older checkpoints are removed once a newer one is recorded.
  assert.deepEqual((await readdir(join(root, 'parts'))).filter((f) => f.startsWith('checkpoint')), ['checkpoint-3']);
});

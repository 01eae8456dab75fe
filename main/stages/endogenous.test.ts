// The endogenous reward end to end on a toy model: our graph (right-padded, the masks of
// endogenousFeeds, the reduction in-graph) against the operator applied on the host to
// the logits the generator's own graph computes, and against its telescoped form
// log pi(y|x) + V(s_1) - V(s_H+1) with log pi from Generator.score.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Generator } from '../../native-models/generate/generator.ts';
import { endogenousFeeds, endogenousReward } from './endogenous.ts';
import { encodePair, loadModel } from './lm.ts';
import { loadRewardFunction } from './reward-artifact.ts';
import { endogenousStage } from './kinds/endogenous.ts';
import { runStage } from './kinds/testing.ts';
import { buildToyModel, toyDemonstrations } from './toy.ts';

let root: string, modelDir: string;
const runtime = { provider: 'cpu' as const, threads: 1 };
const data = toyDemonstrations(40);
const items = [
  ...data.eval.map((d) => ({ prompt: d.prompt, response: d.response })),
  { prompt: data.eval[0].prompt, response: '' },
  // Longer than the toy model's 64 positions: cut before its EOS, so its last state is not terminal.
  { prompt: data.eval[1].prompt, response: ' tea'.repeat(80) },
];

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'afd-endogenous-'));
  modelDir = join(root, 'sft', 'model');
  await buildToyModel(modelDir, { steps: 30 });
});
after(() => rm(root, { recursive: true, force: true }));

test('endogenousFeeds: response actions, and next states except the one after a final EOS', () => {
  const eos = 0;
  const f = endogenousFeeds([{ ids: [5, 6, 7, 0], start: 2 }, { ids: [5, 6, 7], start: 1 }], eos);
  assert.deepEqual(f.tokens.dims, [2, 4]);
  assert.deepEqual([...(f.tokens.data as BigInt64Array)].map(Number), [5, 6, 7, 0, 5, 6, 7, 0]);
  // Row 0: actions 7 (at position 1) and EOS (at 2); next states 2 and none (after EOS).
  // Row 1 (cut, no EOS): actions 6, 7 at positions 0, 1; next states 1 and 2.
  assert.deepEqual([...(f.targets.data as BigInt64Array)].map(Number), [0, 7, 0, 0, 6, 7, 0, 0]);
  assert.deepEqual([...(f.action.data as Float32Array)], [0, 1, 1, 0, 1, 1, 0, 0]);
  assert.deepEqual([...(f.value.data as Float32Array)], [0, 0, 1, 0, 0, 1, 1, 0]);
  assert.throws(() => endogenousFeeds([{ ids: [5, 6], start: 2 }], eos), /no response token/);
});

const lse = (z: Float32Array, alpha: number): number => {
  const m = Math.max(...z);
  return alpha * (m / alpha + Math.log(z.reduce((s, x) => s + Math.exp((x - m) / alpha), 0)));
};

test("the endogenous reward equals Q - gamma V(next) on the generator's logits, and telescopes to log pi + V(s_1) at gamma 1", async () => {
  const m = await loadModel(modelDir);
  const V = m.family.vocabSize(m.config);
  const enc = items.map((x) => encodePair(m, x.prompt, x.response, m.maxLength));
  assert.notEqual(enc.at(-1)!.ids.at(-1), m.eosId, 'the long response is cut before its EOS');
  const g = await Generator.create(m.family, m.config, m.weights, runtime);
  let logits: Float32Array[], logp: number[];
  try {
    logits = await g.logits(enc.map((e) => e.ids));
    logp = (await g.score(enc.map((e) => e.ids.slice(0, e.start)), enc.map((e) => e.ids.slice(e.start)))).map((s) => s.sum);
  } finally {
    await g.release();
  }
  const at = (i: number, t: number): Float32Array => logits[i].subarray(t * V, (t + 1) * V);
  for (const s of [{ alpha: 1, gamma: 1 }, { alpha: 0.7, gamma: 0.9 }]) {
    const reward = await endogenousReward(modelDir, { ...s, perToken: false }, runtime);
    const perToken = await endogenousReward(modelDir, { ...s, perToken: true }, runtime);
    try {
      const got = await reward.score(items), gotMean = await perToken.score(items);
      enc.forEach((e, i) => {
        let want = 0;
        for (let t = e.start - 1; t < e.ids.length - 1; t++) {
          const terminal = t + 1 === e.ids.length - 1 && e.ids[t + 1] === m.eosId;
          want += at(i, t)[e.ids[t + 1]] - (terminal ? 0 : s.gamma * lse(at(i, t + 1), s.alpha));
        }
        assert.ok(Math.abs(got[i] - want) < 2e-4 * (1 + Math.abs(want)), `item ${i} (${JSON.stringify(s)}): ${got[i]} vs ${want}`);
        assert.ok(Math.abs(gotMean[i] - got[i] / (e.ids.length - e.start)) < 1e-5 * (1 + Math.abs(got[i])), `item ${i}: per-token mean`);
        if (s.gamma === 1 && s.alpha === 1) {
          const end = e.ids.at(-1) === m.eosId ? 0 : lse(at(i, e.ids.length - 1), 1);
          const telescoped = logp[i] + lse(at(i, e.start - 1), 1) - end;
          assert.ok(Math.abs(got[i] - telescoped) < 2e-4 * (1 + Math.abs(telescoped)), `item ${i}: ${got[i]} vs telescoped ${telescoped}`);
        }
      });
    } finally {
      await reward.release();
      await perToken.release();
    }
  }
});

test('the reward:endogenous stage records the model and the operator, and its artifact loads as the same reward', async () => {
  assert.deepEqual(endogenousStage.parse({}), { model: 'sft', alpha: 1, gamma: 1, perToken: false });
  assert.throws(() => endogenousStage.parse({ gamma: 1.5 }), /gamma must be a number from 0 to 1/);
  assert.throws(() => endogenousStage.parse({ alpha: 0 }), /alpha must be a number/);
  const run = await runStage(endogenousStage, { gamma: 0.9 }, { model: { type: 'model', dir: join(root, 'sft'), stage: 'sft' } }, { dir: join(root, 'stage'), data });
  assert.equal(run.outcome.status, 'done');
  assert.ok(run.outcome.status === 'done' && typeof run.outcome.summary.eval_demo_reward_mean === 'number');
  assert.deepEqual(JSON.parse(readFileSync(join(root, 'stage', 'artifact.json'), 'utf8')), { type: 'reward', reward: 'endogenous', model: modelDir, alpha: 1, gamma: 0.9, perToken: false });
  const loaded = await loadRewardFunction(run.artifact, runtime);
  const direct = await endogenousReward(modelDir, { alpha: 1, gamma: 0.9, perToken: false }, runtime);
  try {
    assert.deepEqual(await loaded.score(items), await direct.score(items));
  } finally {
    await loaded.release();
    await direct.release();
  }
});

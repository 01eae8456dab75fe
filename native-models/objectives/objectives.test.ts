// Each objective against values computed by hand (or in closed form) on tiny examples:
// a wrong sign, a missing mask or a swapped argument fails here.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import ort from 'onnxruntime-node';
import * as T from '../ir/index.ts';
import { gradCheck } from '../ir/gradcheck.ts';
import { bradleyTerry, dpoLoss, pointwiseBce, policyGradientLoss, sftLoss } from './losses.ts';
import { softplus } from './functions.ts';
import { airlReward, grpoAdvantages, klEstimate, klPenalizedReward, rlooAdvantages } from './rewards.ts';

const f64 = (a: number[], dims = [a.length]) => new ort.Tensor('float64', Float64Array.from(a), dims);
const i64 = (a: number[], dims = [a.length]) => new ort.Tensor('int64', BigInt64Array.from(a.map(BigInt)), dims);

async function evaluate(out: T.Value, feeds: Record<string, ort.Tensor>): Promise<number> {
  const s = await ort.InferenceSession.create(T.emitOnnx({ outputs: { out } }).bytes);
  const r = await s.run(feeds);
  return Number((r.out.data as Float64Array)[0]);
}
const near = (a: number, b: number, tol = 1e-12) => assert.ok(Math.abs(a - b) <= tol * (1 + Math.abs(b)), `${a} vs ${b}`);
const sig = (x: number) => 1 / (1 + Math.exp(-x));

test('SFT loss averages the cross-entropy of response tokens only', async () => {
  const logits = T.input('logits', 'float64', [1, 3, 2]);
  const targets = T.input('targets', 'int64', [1, 3]);
  const mask = T.input('mask', 'float64', [1, 3]);
  // Rows: [0, 0] (p = .5, .5), [ln 3, 0] (p = .75, .25), [0, ln 3] (p = .25, .75).
  const lv = [0, 0, Math.log(3), 0, 0, Math.log(3)];
  // Position 0 is prompt (masked); targets 1 and 0 at positions 1, 2: -log .25 and -log .25.
  const got = await evaluate(sftLoss(logits, targets, mask), { logits: f64(lv, [1, 3, 2]), targets: i64([1, 1, 0], [1, 3]), mask: f64([0, 1, 1], [1, 3]) });
  near(got, -Math.log(0.25));
  // Unmasking the prompt position changes it (its target 1 has p = .5).
  const all = await evaluate(sftLoss(logits, targets, mask), { logits: f64(lv, [1, 3, 2]), targets: i64([1, 1, 0], [1, 3]), mask: f64([1, 1, 1], [1, 3]) });
  near(all, (-Math.log(0.5) - 2 * Math.log(0.25)) / 3);
});

test('pointwise BCE on the reward logit', async () => {
  const r = T.input('r', 'float64', [3]), y = T.input('y', 'float64', [3]);
  const got = await evaluate(pointwiseBce(r, y), { r: f64([2, -1, 0.5]), y: f64([1, 0, 0]) });
  near(got, (-Math.log(sig(2)) - Math.log(1 - sig(-1)) - Math.log(1 - sig(0.5))) / 3);
});

test('Bradley-Terry loss prefers the chosen score', async () => {
  const c = T.input('c', 'float64', [2]), r = T.input('r', 'float64', [2]);
  const got = await evaluate(bradleyTerry(c, r), { c: f64([1, 0]), r: f64([0, 2]) });
  near(got, (-Math.log(sig(1)) - Math.log(sig(-2))) / 2);
});

test('DPO (and SPIN) loss from sequence log-probs', async () => {
  const names = ['pc', 'pr', 'rc', 'rr'] as const;
  const [pc, pr, rc, rr] = names.map((n) => T.input(n, 'float64', [2]));
  const beta = 0.1;
  const v = { pc: [-10, -4], pr: [-12, -3], rc: [-11, -5], rr: [-11, -2] };
  const got = await evaluate(dpoLoss(pc, pr, rc, rr, beta), Object.fromEntries(names.map((n) => [n, f64(v[n])])));
  const m = [0, 1].map((i) => beta * ((v.pc[i] - v.rc[i]) - (v.pr[i] - v.rr[i])));
  near(got, -(Math.log(sig(m[0])) + Math.log(sig(m[1]))) / 2);
});

test('policy-gradient loss and its gradient: -A / N per log-prob, advantages held constant', async () => {
  await gradCheck({ name: 'policyGradientLoss', inputs: [{ shape: [3] }], build: ([lp]) => policyGradientLoss(lp, T.constant(Float64Array.of(0.5, -2, 1), [3])) });
  const lp = T.input('lp', 'float64', [2]), a = T.input('a', 'float64', [2]);
  near(await evaluate(policyGradientLoss(lp, a), { lp: f64([-2, -1]), a: f64([1, -3]) }), -(1 * -2 + -3 * -1) / 2);
  const [ga] = T.grad(policyGradientLoss(lp, a), [a]);
  const s = await ort.InferenceSession.create(T.emitOnnx({ outputs: { ga } }).bytes);
  assert.deepEqual([...((await s.run({ lp: f64([-2, -1]), a: f64([1, -3]) })).ga.data as Float64Array)], [0, 0]);
});

test('softplus is stable at large |x| and has the right gradient', async () => {
  const x = T.input('x', 'float64', [4]);
  const s = await ort.InferenceSession.create(T.emitOnnx({ outputs: { y: softplus(x) } }).bytes);
  const y = [...((await s.run({ x: f64([-800, -1, 2, 800]) })).y.data as Float64Array)];
  near(y[0], 0, 1e-300);
  near(y[1], Math.log1p(Math.exp(-1)));
  near(y[2], Math.log1p(Math.exp(2)));
  near(y[3], 800);
  await gradCheck({ name: 'softplus', inputs: [{ shape: [5], range: [-4, 4] }], build: ([v]) => softplus(v) });
});

test('RLOO and GRPO advantages', () => {
  assert.deepEqual(rlooAdvantages([1, 2, 6]), [1 - 4, 2 - 3.5, 6 - 1.5]);
  assert.throws(() => rlooAdvantages([1]), /at least two/);
  const g = grpoAdvantages([1, 2, 3]);
  const std = Math.sqrt(2 / 3);
  [-1 / std, 0, 1 / std].forEach((e, i) => near(g[i], e, 1e-5));
  assert.ok(Math.abs(g.reduce((a, b) => a + b, 0)) < 1e-12, 'group advantages sum to zero');
});

test('KL estimates: k1 is the log ratio, k3 is non-negative and zero at equality', () => {
  near(klEstimate(-1, -2, 'k1'), 1);
  near(klEstimate(-1, -2, 'k3'), Math.exp(-1) - 1 + 1);
  assert.equal(klEstimate(-3, -3, 'k3'), 0);
  for (const [p, q] of [[-1, -4], [-4, -1], [-0.1, -0.2]]) assert.ok(klEstimate(p, q, 'k3') >= 0);
  near(klPenalizedReward(2, -1, -3, 0.5), 2 - 0.5 * 2);
});

test('AIRL reward shapes from the discriminator logit', () => {
  const z = Math.log(0.8 / 0.2); // D = 0.8
  near(airlReward(z, 'logit'), Math.log(4));
  near(airlReward(z, 'logD'), Math.log(0.8));
  near(airlReward(z, 'neglog1mD'), -Math.log(0.2));
  // logit = log D - log(1 - D) = logD + neglog1mD
  near(airlReward(z, 'logit'), airlReward(z, 'logD') + airlReward(z, 'neglog1mD'));
});

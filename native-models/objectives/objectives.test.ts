// Each objective against values computed by hand (or in closed form) on tiny examples:
// a wrong sign, a missing mask or a swapped argument fails here.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import ort from 'onnxruntime-node';
import * as T from '../ir/index.ts';
import { gradCheck } from '../ir/gradcheck.ts';
import { bradleyTerry, dftLoss, dpoLoss, pointwiseBce, policyGradientLoss, sftLoss } from './losses.ts';
import { endogenousReturn } from './endogenous.ts';
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

test('DFT loss weights each response token\'s cross-entropy by its probability', async () => {
  const logits = T.input('logits', 'float64', [1, 3, 2]);
  const targets = T.input('targets', 'int64', [1, 3]);
  const mask = T.input('mask', 'float64', [1, 3]);
  // The SFT case above: targets of p = .25 at the two response positions, the prompt's (p = .5) masked.
  const lv = [0, 0, Math.log(3), 0, 0, Math.log(3)];
  const got = await evaluate(dftLoss(logits, targets, mask), { logits: f64(lv, [1, 3, 2]), targets: i64([1, 1, 0], [1, 3]), mask: f64([0, 1, 1], [1, 3]) });
  near(got, -(0.25 * Math.log(0.25) + 0.25 * Math.log(0.25)) / 2);
  const all = await evaluate(dftLoss(logits, targets, mask), { logits: f64(lv, [1, 3, 2]), targets: i64([1, 1, 0], [1, 3]), mask: f64([1, 1, 1], [1, 3]) });
  near(all, -(0.5 * Math.log(0.5) + 2 * 0.25 * Math.log(0.25)) / 3);
});

test('DFT gradient on a toy model is SFT\'s token by token times sg(p_t), exactly', async () => {
  // A linear model: logits = h W, h [1, T, D] fixed features, W [D, V] trained.
  const D = 2, V = 3, L = 4;
  const h = [0.5, -1, 1.5, 0.25, -0.75, 2, 1, 1];
  const W = [0.3, -0.2, 0.8, -0.5, 0.1, 0.4];
  const y = [2, 0, 1, 2], m = [0, 1, 1, 1];
  const hv = T.input('h', 'float64', [1, L, D]), wv = T.input('w', 'float64', [D, V]);
  const tv = T.input('targets', 'int64', [1, L]), mv = T.input('mask', 'float64', [1, L]);
  const logits = T.matmul(hv, wv); // [1, L, V]
  const [gDft, gDftLogits] = T.grad(dftLoss(logits, tv, mv), [wv, logits]);
  const [gNll, gNllLogits] = T.grad(sftLoss(logits, tv, mv), [wv, logits]);
  const s = await ort.InferenceSession.create(T.emitOnnx({ outputs: { gDft, gNll, gDftLogits, gNllLogits }, inputs: [hv, wv, tv, mv] }).bytes);
  const r = await s.run({ h: f64(h, [1, L, D]), w: f64(W, [D, V]), targets: i64(y, [1, L]), mask: f64(m, [1, L]) });
  const data = (k: string): number[] => [...(r[k].data as Float64Array)];
  // By hand: z_t = h_t W, p = softmax(z_t); d(-log p_y)/dz_t = p - onehot(y); M = sum m.
  const M = m.reduce((a, b) => a + b, 0);
  const want = { dft: new Array<number>(D * V).fill(0), nll: new Array<number>(D * V).fill(0) };
  for (let t = 0; t < L; t++) {
    const z = Array.from({ length: V }, (_, v) => h[t * D] * W[v] + h[t * D + 1] * W[V + v]);
    const e = z.map(Math.exp), sum = e.reduce((a, b) => a + b, 0), p = e.map((x) => x / sum);
    const dz = p.map((pv, v) => (m[t] * (pv - (v === y[t] ? 1 : 0))) / M);
    for (let d = 0; d < D; d++) for (let v = 0; v < V; v++) {
      want.nll[d * V + v] += h[t * D + d] * dz[v];
      want.dft[d * V + v] += p[y[t]] * h[t * D + d] * dz[v];
    }
    // At the logits, DFT's gradient is SFT's scaled by p_t, row by row.
    for (let v = 0; v < V; v++) near(data('gDftLogits')[t * V + v], p[y[t]] * data('gNllLogits')[t * V + v]);
  }
  data('gNll').forEach((g, i) => near(g, want.nll[i]));
  data('gDft').forEach((g, i) => near(g, want.dft[i]));
  // The weight is a constant: with the gradient through p_t as well, d(-p log p)/dz = (1 + log p) p d(-log p)/dz would differ.
  assert.ok(data('gDft').some((g, i) => Math.abs(g - want.nll[i]) > 1e-3), 'DFT and SFT gradients differ');
});

test('endogenous reward: Q - gamma V(next) summed over the response, on a 3-token vocabulary by hand', async () => {
  // Two rows over the vocabulary {0 = EOS, 1, 2}: prompt [1], response [2, 1, EOS] (A) and
  // the same cut before its EOS (B, truncated, so its last next state is not terminal).
  // Logits by position: s0 [0, ln 2, ln 3] (lse ln 6), s1 [ln 4, 0, 0] (lse ln 6), s2 [ln 2, 0, 0] (lse ln 4); s3 is junk.
  const L = Math.log;
  const pos = [[0, L(2), L(3)], [L(4), 0, 0], [L(2), 0, 0]];
  const lv = [...pos.flat(), 7, -3, 5, ...pos.flat(), 9, 9, 9];
  const feeds = {
    logits: f64(lv, [2, 4, 3]),
    targets: i64([2, 1, 0, 0, 2, 1, 0, 0], [2, 4]),
    action: f64([1, 1, 1, 0, 1, 1, 0, 0], [2, 4]),
    // A: next states s1, s2 (s3 follows EOS: terminal, V = 0); B: s1 and s2.
    value: f64([0, 1, 1, 0, 0, 1, 1, 0], [2, 4]),
  };
  const [logits, targets, action, value] = [T.input('logits', 'float64', [2, 4, 3]), T.input('targets', 'int64', [2, 4]), T.input('action', 'float64', [2, 4]), T.input('value', 'float64', [2, 4])];
  const run = async (alpha: number, gamma: number): Promise<number[]> => {
    const s = await ort.InferenceSession.create(T.emitOnnx({ outputs: { r: endogenousReturn(logits, targets, action, value, { alpha, gamma }) } }).bytes);
    return [...((await s.run(feeds)).r.data as Float64Array)];
  };
  // alpha 1, gamma 1: A = Q0(2) + Q1(1) + Q2(EOS) - V1 - V2 = ln 3 + 0 + ln 2 - ln 6 - ln 4 = -ln 4; B = ln 3 + 0 - ln 6 - ln 4 = -ln 8.
  const [a, b] = await run(1, 1);
  near(a, -L(4));
  near(b, -L(8));
  // The telescoped form: log pi(y|x) + V(s1) - V(s_H+1): A = ln(3/6 * 1/6 * 2/4) + ln 6 - 0, B = ln(3/6 * 1/6) + ln 6 - ln 4.
  near(a, L((3 / 6) * (1 / 6) * (2 / 4)) + L(6));
  near(b, L((3 / 6) * (1 / 6)) + L(6) - L(4));
  // gamma 0.5 discounts only the values: A = ln 3 + ln 2 - (ln 6 + ln 4) / 2.
  near((await run(1, 0.5))[0], L(3) + L(2) - (L(6) + L(4)) / 2);
  // alpha 2: V(s) = 2 ln sum exp(Q / 2): V1 = 2 ln(2 + 1 + 1), V2 = 2 ln(sqrt 2 + 1 + 1); Q unchanged.
  near((await run(2, 1))[0], L(3) + L(2) - 2 * L(4) - 2 * L(2 + Math.SQRT2));
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

// The in-graph optimizers, clipping and schedules against closed-form references computed
// here in float64 on the host.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import ort from 'onnxruntime-node';
import * as T from '../ir/index.ts';
import { adamw } from './adamw.ts';
import { sgd } from './sgd.ts';
import { clipByGlobalNorm } from './clip.ts';
import { learningRate } from './schedule.ts';
import type { Optimizer } from './optimizer.ts';

const f64 = (a: number[], dims = [a.length]) => new ort.Tensor('float64', Float64Array.from(a), dims);
const arr = (t: ort.Tensor) => Array.from(t.data as Float64Array);

/** Runs `steps` updates of one float64 parameter through the optimizer graph, with given gradients. */
async function runOptimizer(opt: Optimizer, p0: number[], grads: number[][], lrs: number[], shape = [p0.length]): Promise<number[][]> {
  const p = T.param('p', shape, 'float64');
  const g = T.input('g', 'float64', shape);
  const step = T.input('step', 'float64', []);
  const lr = T.input('lr', 'float64', []);
  const state = Object.fromEntries(opt.slots.map((s) => [s, T.input(`s_${s}`, 'float64', shape)]));
  const r = opt.update({ param: p, grad: g, state, step, lr });
  const outputs: Record<string, T.Value> = { p_next: r.param };
  for (const s of opt.slots) outputs[`s_${s}_next`] = r.state[s];
  const m = T.emitOnnx({ outputs });
  const sess = await ort.InferenceSession.create(m.bytes);
  let pv = p0;
  const sv: Record<string, number[]> = Object.fromEntries(opt.slots.map((s) => [s, p0.map(() => 0)]));
  const history: number[][] = [];
  for (let t = 0; t < grads.length; t++) {
    const feeds: Record<string, ort.Tensor> = { p: f64(pv, shape), g: f64(grads[t], shape), step: f64([t + 1], []), lr: f64([lrs[t]], []) };
    for (const s of opt.slots) feeds[`s_${s}`] = f64(sv[s], shape);
    const out = await sess.run(feeds);
    pv = arr(out.p_next);
    for (const s of opt.slots) sv[s] = arr(out[`s_${s}_next`]);
    history.push(pv);
  }
  return history;
}

const close = (a: number[], b: number[], tol: number, what: string) =>
  a.forEach((x, i) => assert.ok(Math.abs(x - b[i]) <= tol * (1 + Math.abs(b[i])), `${what}[${i}]: ${x} vs ${b[i]}`));

test('AdamW matches the closed form for several steps (decayed matrix and undecayed vector)', async () => {
  const cfg = { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 };
  const grads = [[0.5, -1, 2, 0.1], [0.3, 0.2, -1.5, 0.0], [-0.7, 1.1, 0.4, 2.0], [0.05, -0.02, 0.3, -1.0]];
  const lrs = [1e-2, 2e-2, 5e-3, 1e-2];
  for (const shape of [[2, 2], [4]]) {
    const p0 = [1, -2, 0.5, 3];
    const got = await runOptimizer(adamw(cfg), p0, grads, lrs, shape);
    // Reference: torch.optim.AdamW's update order, written out.
    let p = [...p0];
    const m = [0, 0, 0, 0], v = [0, 0, 0, 0];
    const decay = shape.length >= 2;
    for (let t = 1; t <= grads.length; t++) {
      const lr = lrs[t - 1];
      p = p.map((x, i) => {
        const g = grads[t - 1][i];
        const xd = decay ? x * (1 - lr * cfg.weightDecay) : x;
        m[i] = cfg.beta1 * m[i] + (1 - cfg.beta1) * g;
        v[i] = cfg.beta2 * v[i] + (1 - cfg.beta2) * g * g;
        const denom = Math.sqrt(v[i]) / Math.sqrt(1 - cfg.beta2 ** t) + cfg.eps;
        return xd - (lr / (1 - cfg.beta1 ** t)) * (m[i] / denom);
      });
      close(got[t - 1], p, 1e-12, `AdamW step ${t} shape [${shape}]`);
    }
  }
});

test('the first AdamW step moves every parameter by about lr against the sign of its gradient', async () => {
  const [p1] = await runOptimizer(adamw({ weightDecay: 0 }), [0, 0, 0], [[3, -0.001, 50]], [0.1]);
  close(p1, [-0.1, 0.1, -0.1], 1e-5, 'first step');
});

test('SGD with momentum matches the closed form', async () => {
  const grads = [[1, -2], [0.5, 0.5], [-1, 0]];
  const got = await runOptimizer(sgd({ momentum: 0.9 }), [1, 1], grads, [0.1, 0.1, 0.1]);
  let p = [1, 1];
  const buf = [0, 0];
  grads.forEach((g, t) => {
    p = p.map((x, i) => {
      buf[i] = 0.9 * buf[i] + g[i];
      return x - 0.1 * buf[i];
    });
    close(got[t], p, 1e-12, `SGD step ${t + 1}`);
  });
});

test('global-norm clipping scales every gradient by max/norm only when the norm exceeds max', async () => {
  const a = T.input('a', 'float64', [3]), b = T.input('b', 'float64', [2, 2]);
  for (const maxNorm of [1, 100]) {
    const { grads, norm } = clipByGlobalNorm([a, b], maxNorm);
    const m = T.emitOnnx({ outputs: { ca: grads[0], cb: grads[1], norm } });
    const s = await ort.InferenceSession.create(m.bytes);
    const av = [3, 0, -4], bv = [1, 2, 2, 4]; // norm = sqrt(9 + 16 + 1 + 4 + 4 + 16) = sqrt(50)
    const out = await s.run({ a: f64(av), b: f64(bv, [2, 2]) });
    const n = Math.sqrt(50);
    assert.ok(Math.abs(arr(out.norm)[0] - n) < 1e-12);
    const scale = maxNorm < n ? maxNorm / (n + 1e-6) : 1;
    close(arr(out.ca), av.map((x) => x * scale), 1e-12, `clip ${maxNorm} a`);
    close(arr(out.cb), bv.map((x) => x * scale), 1e-12, `clip ${maxNorm} b`);
  }
});

test('learning-rate schedules: constant, warm-up then cosine, warm-up then linear', () => {
  assert.equal(learningRate({ kind: 'constant', lr: 0.1 }, 1000), 0.1);
  const cos = { kind: 'cosine', lr: 1, warmupSteps: 10, totalSteps: 110, minLr: 0.1 } as const;
  assert.equal(learningRate(cos, 0), 0.1);
  assert.equal(learningRate(cos, 9), 1);
  assert.equal(learningRate(cos, 10), 1);
  assert.ok(Math.abs(learningRate(cos, 60) - 0.55) < 1e-12); // halfway: min + (max - min) / 2
  assert.ok(Math.abs(learningRate(cos, 110) - 0.1) < 1e-12);
  assert.ok(Math.abs(learningRate(cos, 500) - 0.1) < 1e-12);
  const lin = { kind: 'linear', lr: 2, warmupSteps: 0, totalSteps: 100 } as const;
  assert.equal(learningRate(lin, 0), 2);
  assert.ok(Math.abs(learningRate(lin, 25) - 1.5) < 1e-12);
  assert.equal(learningRate(lin, 100), 0);
});

// The training engine end to end: models that must overfit, accumulation, divergence,
// and checkpoints that resume bit for bit.

import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import ort from 'onnxruntime-node';
import * as T from '../ir/index.ts';
import { adamw } from '../optim/adamw.ts';
import { Rng } from './rng.ts';
import { buildTrainStep } from './step.ts';
import { Trainer, TrainingDivergedError, type Feeds } from './trainer.ts';
import { gptTrainer, randomLmBatch, tinyLmConfig, trainTinyLm } from './tiny-lm.ts';

/** A 2-layer MLP classifier on random data, its trainer and a fixed batch. */
async function mlp(opts: { accumulation?: number; seed?: number } = {}) {
  const x = T.input('x', 'float32', ['B', 8]);
  const y = T.input('y', 'int64', ['B']);
  const w1 = T.param('w1', [8, 32]), b1 = T.param('b1', [32]), w2 = T.param('w2', [32, 4]), b2 = T.param('b2', [4]);
  const loss = T.crossEntropy(T.linear(T.relu(T.linear(x, w1, b1)), w2, b2), y);
  const graphs = buildTrainStep({ loss, trainable: [w1, b1, w2, b2], optimizer: adamw({ weightDecay: 0 }), clipNorm: 5, accumulation: opts.accumulation });
  const rng = new Rng(opts.seed ?? 3);
  const init = new Map([
    ['w1', Float32Array.from({ length: 256 }, () => rng.normal() * 0.3)], ['b1', new Float32Array(32)],
    ['w2', Float32Array.from({ length: 128 }, () => rng.normal() * 0.3)], ['b2', new Float32Array(4)],
  ]);
  const trainer = await Trainer.create(graphs, init, { threads: 1 });
  const batch = (n: number, r = new Rng(11)): Feeds => ({
    x: new ort.Tensor('float32', Float32Array.from({ length: n * 8 }, () => r.normal()), [n, 8]),
    y: new ort.Tensor('int64', BigInt64Array.from({ length: n }, () => BigInt(r.int(4))), [n]),
  });
  return { trainer, batch };
}

test('an MLP overfits one batch: final loss below 5% of the first', async () => {
  const { trainer, batch } = await mlp();
  const b = batch(16);
  const losses: number[] = [];
  for (let i = 0; i < 150; i++) losses.push((await trainer.step(b, 1e-2)).loss);
  assert.ok(losses.at(-1)! < 0.05 * losses[0], `loss went from ${losses[0]} to ${losses.at(-1)}`);
});

test('a 2-layer transformer LM overfits one batch: final loss below 5% of the first', async () => {
  const { losses } = await trainTinyLm({ steps: 60, threads: 2, lr: 1e-2 });
  assert.ok(losses.at(-1)! < 0.05 * losses[0], `loss went from ${losses[0]} to ${losses.at(-1)}`);
});

test('accumulating two micro-batches of 4 equals one batch of 8', async () => {
  const one = await mlp();
  const two = await mlp({ accumulation: 2 });
  const full = one.batch(8);
  const half = (lo: number): Feeds => ({
    x: new ort.Tensor('float32', (full.x.data as Float32Array).slice(lo * 8, (lo + 4) * 8), [4, 8]),
    y: new ort.Tensor('int64', (full.y.data as BigInt64Array).slice(lo, lo + 4), [4]),
  });
  for (let i = 0; i < 3; i++) {
    const a = await one.trainer.step(full, 1e-2);
    const b = await two.trainer.step([half(0), half(4)], 1e-2);
    assert.ok(Math.abs(a.loss - b.loss) < 1e-5, `step ${i + 1} loss ${a.loss} vs ${b.loss}`);
    assert.ok(Math.abs(a.gradNorm - b.gradNorm) < 1e-4 * a.gradNorm, `step ${i + 1} grad norm ${a.gradNorm} vs ${b.gradNorm}`);
  }
  const pa = one.trainer.parameters(), pb = two.trainer.parameters();
  for (const [name, v] of pa) v.forEach((x, i) => assert.ok(Math.abs(x - pb.get(name)![i]) < 1e-5, `${name}[${i}]`));
});

test('micro-batches of 2 and 6 rows, weighted by their rows, equal one batch of 8; unweighted they do not', async () => {
  const one = await mlp();
  const two = await mlp({ accumulation: 2 });
  const three = await mlp({ accumulation: 2 });
  const full = one.batch(8);
  const rows = (lo: number, n: number): Feeds => ({
    x: new ort.Tensor('float32', (full.x.data as Float32Array).slice(lo * 8, (lo + n) * 8), [n, 8]),
    y: new ort.Tensor('int64', (full.y.data as BigInt64Array).slice(lo, lo + n), [n]),
  });
  for (let i = 0; i < 3; i++) {
    const a = await one.trainer.step(full, 1e-2);
    const b = await two.trainer.step([rows(0, 2), rows(2, 6)], 1e-2, [2, 6]);
    const c = await three.trainer.step([rows(0, 2), rows(2, 6)], 1e-2);
    assert.ok(Math.abs(a.loss - b.loss) < 1e-5, `step ${i + 1} loss ${a.loss} vs ${b.loss}`);
    assert.ok(Math.abs(a.gradNorm - b.gradNorm) < 1e-4 * a.gradNorm, `step ${i + 1} grad norm ${a.gradNorm} vs ${b.gradNorm}`);
    assert.ok(Math.abs(a.gradNorm - c.gradNorm) > 1e-3 * a.gradNorm, `step ${i + 1}: the mean of the two means should differ`);
  }
  const pa = one.trainer.parameters(), pb = two.trainer.parameters();
  for (const [name, v] of pa) v.forEach((x, i) => assert.ok(Math.abs(x - pb.get(name)![i]) < 1e-5, `${name}[${i}]`));
  await assert.rejects(two.trainer.step([rows(0, 2), rows(2, 6)], 1e-2, [2, 0]), /the micro-batch weights must be 2 positive numbers, got \[2, 0\]/);
});

test('a NaN loss stops training with a clear error and keeps the last good state', async () => {
  const { trainer, batch } = await mlp();
  await trainer.step(batch(8), 1e-2);
  const before = trainer.parameters();
  const bad = batch(8);
  (bad.x.data as Float32Array)[3] = NaN;
  await assert.rejects(trainer.step(bad, 1e-2), (e: Error) => e instanceof TrainingDivergedError && /step 2/.test(e.message) && /not a finite number/.test(e.message));
  assert.equal(trainer.stepCount, 1);
  for (const [name, v] of trainer.parameters()) assert.deepEqual(v, before.get(name), `${name} changed`);
  // Training continues from the good state.
  assert.ok(Number.isFinite((await trainer.step(batch(8), 1e-2)).loss));
});

test('save, load and continue is bit-identical to an uninterrupted run', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'afd-trainer-'));
  try {
    const c = tinyLmConfig();
    const batchFrom = (rng: Rng) => randomLmBatch(c, 2, rng); // batches come from the trainer's own RNG
    const straight = await gptTrainer(c, { threads: 2, seed: 5 });
    const straightLosses: number[] = [];
    for (let i = 0; i < 6; i++) straightLosses.push((await straight.step(batchFrom(straight.rng), 3e-3)).loss);

    const first = await gptTrainer(c, { threads: 2, seed: 5 });
    for (let i = 0; i < 3; i++) await first.step(batchFrom(first.rng), 3e-3);
    const path = join(dir, 'state.safetensors');
    await first.save(path);
    await first.release();
    const resumed = await gptTrainer(c, { threads: 2, seed: 999 }); // fresh weights and RNG, replaced by load
    await resumed.load(path);
    assert.equal(resumed.stepCount, 3);
    const resumedLosses: number[] = [];
    for (let i = 0; i < 3; i++) resumedLosses.push((await resumed.step(batchFrom(resumed.rng), 3e-3)).loss);
    assert.deepEqual(resumedLosses, straightLosses.slice(3));
    for (const [name, v] of straight.parameters()) assert.deepEqual(resumed.parameters().get(name), v, `${name} differs`);
    // Saving again overwrites atomically; a wrong file is refused with a sentence.
    await resumed.save(path);
    assert.ok(readFileSync(path).length > 0);
    const other = await mlp();
    await assert.rejects(other.trainer.load(path), /has no tensor w1|different model/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the loss evaluator gives the loss the next training step reports', async () => {
  const { LossEvaluator } = await import('./evaluator.ts');
  const x = T.input('x', 'float32', ['B', 8]);
  const y = T.input('y', 'int64', ['B']);
  const w = T.param('w', [8, 4]);
  const loss = T.crossEntropy(T.matmul(x, w), y);
  const graphs = buildTrainStep({ loss, trainable: [w], optimizer: adamw() });
  const r = new Rng(2);
  const trainer = await Trainer.create(graphs, new Map([['w', Float32Array.from({ length: 32 }, () => r.normal())]]), { threads: 1 });
  const batch = { x: new ort.Tensor('float32', Float32Array.from({ length: 48 }, () => r.normal()), [6, 8]), y: new ort.Tensor('int64', BigInt64Array.from({ length: 6 }, () => BigInt(r.int(4))), [6]) };
  const evaluator = await LossEvaluator.create(loss, [w], { provider: 'cpu', intraOpThreads: 1 });
  await trainer.step(batch, 0.1);
  const evaluated = await evaluator.mean([batch], trainer.state);
  const stepped = await trainer.step(batch, 0.1);
  assert.ok(Math.abs(evaluated - stepped.loss) < 1e-6, `${evaluated} vs ${stepped.loss}`);
  await evaluator.release();
});

test('a step frees the state it replaced, never the arrays the trainer was given', async () => {
  for (const accumulation of [1, 2]) {
    const { trainer, batch } = await mlp({ accumulation });
    const b = accumulation === 1 ? batch(8) : [batch(4), batch(4, new Rng(12))];
    const given = trainer.state.get('w1')!.data as Float32Array;
    const givenCopy = Float32Array.from(given);
    await trainer.step(b, 1e-2);
    const first = trainer.state.get('w1')!.data as Float32Array;
    const firstM = trainer.state.get('w1.m')!.data as Float32Array;
    assert.equal(first.length, 256);
    await trainer.step(b, 1e-2);
    assert.equal(first.length, 0, 'the parameters of step 1 were released');
    assert.equal(firstM.length, 0, 'the moments of step 1 were released');
    assert.deepEqual(given, givenCopy, 'the initial parameters are untouched');
    assert.equal((trainer.state.get('w1')!.data as Float32Array).length, 256);
  }
});

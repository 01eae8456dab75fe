import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { buildToyModel, toyDemonstrations } from '../toy.ts';
import { sampleStage } from './sample.ts';
import { spinStage } from './spin.ts';
import { pi0, runStage } from './testing.ts';

let root = '';
const data = toyDemonstrations();
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'afd-spin-'));
  await buildToyModel(join(root, 'pi0'));
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

test('SPIN on samples drawn in the stage starts at log 2 and lowers its loss', async (t) => {
  const model = pi0(join(root, 'pi0'));
  const run = await runStage(spinStage, { policy: 'pi0', maxNewTokens: 24, epochs: 2, batch: 8, lr: 1e-3, warmup: 0 }, { policy: model, reference: model }, { dir: join(root, 'spin'), data });
  assert.equal(run.outcome.status, 'done');
  const losses = run.metrics.map((m) => m.values.loss);
  assert.equal(losses.length, 24);
  assert.ok(Math.abs(losses[0] - Math.LN2) < 1e-4, `first loss ${losses[0]}`);
  t.diagnostic(`loss ${losses[0].toFixed(4)} -> ${mean(losses.slice(-4)).toFixed(4)}; margin -> ${mean(run.metrics.slice(-4).map((m) => m.values.margin)).toFixed(2)}`);
  assert.ok(mean(losses.slice(-4)) < 0.5, `losses ${losses.map((l) => l.toFixed(3)).join(' ')}`);
});

test('SPIN takes its rejected responses from a samples stage of the train prompts, and refuses eval-prompt samples', async (t) => {
  const model = pi0(join(root, 'pi0'));
  const samples = await runStage(sampleStage, { model: 'pi0', n: 2, maxNewTokens: 24 }, { model }, { dir: join(root, 'samples'), data, id: 'samples' });
  const run = await runStage(spinStage, { policy: 'pi0', samples: 'samples', epochs: 1, batch: 16, lr: 1e-3, warmup: 0 }, { policy: model, reference: model, samples: samples.artifact }, { dir: join(root, 'spin-samples'), data });
  assert.equal(run.outcome.status, 'done');
  // Two samples per prompt: twice as many pairs as prompts, 16 pairs a step.
  assert.equal(run.metrics.length, Math.ceil((2 * data.train.length) / 16));
  const losses = run.metrics.map((m) => m.values.loss);
  t.diagnostic(`loss ${losses[0].toFixed(4)} -> ${losses.at(-1)!.toFixed(4)}`);
  assert.ok(losses.at(-1)! < losses[0] - 0.1, `losses ${losses.map((l) => l.toFixed(3)).join(' ')}`);
  const evalSamples = await runStage(sampleStage, { model: 'pi0', split: 'eval', maxNewTokens: 8 }, { model }, { dir: join(root, 'eval-samples'), data, id: 'eval-samples' });
  await assert.rejects(
    runStage(spinStage, { policy: 'pi0', samples: 'eval-samples' }, { policy: model, reference: model, samples: evalSamples.artifact }, { dir: join(root, 'spin-bad'), data }),
    /SPIN needs samples of the train prompts, but eval-samples sampled the eval prompts/,
  );
});

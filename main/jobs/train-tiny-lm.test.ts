// The `train-tiny-lm` job: the loss falls, and a run paused, cancelled and resumed (each
// time in a new worker, from its checkpoint) ends bit for bit like an uninterrupted one.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, test } from 'node:test';
import { openDatabase } from '../../db/database.ts';
import { MetricStore } from '../../db/metrics.ts';
import { StudioFiles } from './files.ts';
import type { JobEvent } from './runner.ts';
import { JobRunner } from './runner.ts';
import { trainTinyLm } from './train-tiny-lm.ts';

const db = await openDatabase(':memory:');
const files = StudioFiles.forDatabase(':memory:');
const runner = await JobRunner.open({ db, files });
after(async () => {
  await runner.close();
  db.close();
  files.dispose();
});
const config = { steps: 60, checkpointEvery: 25, seed: 7, lr: 1e-2, threads: 1 };

function stepReached(runId: number, step: number): Promise<void> {
  return new Promise((resolve) => {
    const off = runner.onEvent((e: JobEvent) => {
      if (e.type === 'progress' && e.runId === runId && e.step >= step) {
        off();
        resolve();
      }
    });
  });
}

test('the config is checked and completed, so the stored config repeats the run', () => {
  assert.deepEqual(trainTinyLm.parseConfig({ steps: 30 }), {
    steps: 30, checkpointEvery: 3, seed: 0, lr: 3e-3, batch: 4, provider: 'cpu', threads: 1,
    model: { vocabSize: 64, nPositions: 32, nEmbd: 64, nLayer: 2, nHead: 4 },
  });
  assert.throws(() => trainTinyLm.parseConfig({}), /steps must be a whole number from 1 up, not missing\./);
  assert.throws(() => trainTinyLm.parseConfig({ steps: 3, provider: 'tpu' }), /provider must be one of cpu, webgpu, cuda, not "tpu"\./);
  assert.throws(() => trainTinyLm.parseConfig({ steps: 3, model: { nEmbd: 30, nHead: 4 } }), /model\.nEmbd \(30\) must be a multiple of model\.nHead \(4\)\./);
  assert.equal(trainTinyLm.device(trainTinyLm.parseConfig({ steps: 1, provider: 'webgpu' })), 'gpu');
  // Strict: a misspelt key is refused, not ignored; a stored (parsed) config parses to itself.
  assert.throws(() => trainTinyLm.parseConfig({ steps: 3, step: 2 }), { message: "the train-tiny-lm job's config has no key 'step'; did you mean 'steps'?" });
  assert.throws(() => trainTinyLm.parseConfig({ steps: 3, model: { nLayers: 3 } }), { message: "model has no key 'nLayers'; did you mean 'nLayer'?" });
  const stored = trainTinyLm.parseConfig({ steps: 30, model: { nLayer: 3 } });
  assert.deepEqual(trainTinyLm.parseConfig(stored), stored);
});

test('paused, cancelled and resumed twice, a run ends exactly like an uninterrupted one', async () => {
  const straight = runner.submit('train-tiny-lm', config);
  const a = await runner.settled(straight.id);
  assert.equal(a.status, 'done');
  const metrics = new MetricStore(db);
  const lossA = metrics.series(a.id, 'loss').map((p) => p.value);
  assert.equal(lossA.length, 60);
  assert.ok(lossA.at(-1)! < 0.6 * lossA[0], `the loss should fall: ${lossA[0]} -> ${lossA.at(-1)}`);
  assert.equal(a.result?.finalLoss, lossA.at(-1));
  assert.equal(a.provider, 'cpu');

  const broken = runner.submit('train-tiny-lm', config);
  await stepReached(broken.id, 13);
  runner.pause(broken.id);
  const paused = await runner.settled(broken.id);
  assert.equal(paused.status, 'paused');
  runner.resume(broken.id);
  await stepReached(broken.id, 41);
  runner.cancel(broken.id);
  assert.equal((await runner.settled(broken.id)).status, 'cancelled');
  runner.resume(broken.id);
  const b = await runner.settled(broken.id);
  assert.equal(b.status, 'done');
  assert.deepEqual(metrics.series(b.id, 'loss').map((p) => p.value), lossA);
  assert.deepEqual(metrics.series(b.id, 'grad_norm'), metrics.series(a.id, 'grad_norm'));
  assert.equal(b.result?.finalLoss, a.result?.finalLoss);
  // The final training states are the same bytes.
  assert.deepEqual(readFileSync(files.absolute(b.checkpointPath ?? '')), readFileSync(files.absolute(a.checkpointPath ?? '')));
});

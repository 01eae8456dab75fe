// The thin stores (models, experiments, runs, metrics, generations, judgments, artifacts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ArtifactStore } from './artifacts.ts';
import { openDatabase } from './database.ts';
import { ExperimentStore } from './experiments.ts';
import { GenerationStore } from './generations.ts';
import { JudgmentStore } from './judgments.ts';
import { MetricStore } from './metrics.ts';
import { ModelStore } from './models.ts';
import { RunStore } from './runs.ts';

test('an experiment, its run, metrics, models, generations and a judgment, then a cascading delete', async () => {
  const db = await openDatabase(':memory:');
  const experiments = new ExperimentStore(db);
  const runs = new RunStore(db);
  const metrics = new MetricStore(db);
  const models = new ModelStore(db);
  const generations = new GenerationStore(db);
  const judgments = new JudgmentStore(db);

  const exp = experiments.insert({ name: 'hh microcosm', definition: { stages: ['sft', 'bon'], n: 16 } });
  assert.deepEqual(experiments.get(exp.id)?.definition, { stages: ['sft', 'bon'], n: 16 });

  const run = runs.insert({ experimentId: exp.id, stage: 'sft', config: { lr: 3e-4 }, seed: 1234 });
  assert.equal(run.status, 'queued');
  assert.equal(run.startedAt, null);
  const running = runs.setStatus(run.id, 'running', { provider: 'cpu' });
  assert.ok(running.startedAt !== null);
  assert.equal(running.finishedAt, null);
  assert.equal(runs.markInterrupted(), 1);
  assert.equal(runs.get(run.id)?.status, 'interrupted');
  const failed = runs.setStatus(run.id, 'failed', { error: 'out of memory' });
  assert.equal(failed.startedAt, running.startedAt);
  assert.ok(failed.finishedAt !== null);
  assert.deepEqual([failed.error, failed.provider, failed.seed], ['out of memory', 'cpu', 1234]);
  assert.deepEqual(runs.list({ experimentId: exp.id, status: 'failed' }).map((r) => r.id), [run.id]);
  assert.equal(runs.setStatus(run.id, 'queued').error, null); // a retry forgets the old error
  runs.setStatus(run.id, 'failed', { error: 'out of memory' });
  assert.deepEqual(runs.list({ status: 'done' }), []);
  assert.throws(() => runs.setStatus(999, 'done'), /There is no run #999/);

  metrics.log(run.id, 1, { loss: 2.5, lr: 3e-4 });
  metrics.log(run.id, 2, { loss: Number.NaN });
  metrics.log(run.id, 1, { loss: 2.4 }); // a resumed run repeats step 1
  assert.deepEqual(metrics.series(run.id, 'loss'), [{ step: 1, value: 2.4 }, { step: 2, value: Number.NaN }]);
  assert.deepEqual(metrics.names(run.id), ['loss', 'lr']);

  const base = models.insert({ name: 'pi_0', kind: 'imported', family: 'gpt2', path: '/models/pi0' });
  const sft = models.insert({ name: 'pi_SFT', kind: 'trained', family: 'gpt2', parentId: base.id, runId: run.id, stage: 'sft', config: { nLayer: 4 } });
  assert.deepEqual(models.list().map((m) => m.name), ['pi_SFT', 'pi_0']);
  assert.deepEqual([sft.parentId, sft.runId, sft.config], [base.id, run.id, { nLayer: 4 }]);

  const [g1, g2] = generations.insertMany([
    { runId: run.id, modelId: sft.id, prompt: 'p', text: 'one', tokenCount: 3 },
    { modelId: base.id, prompt: 'p', sampleIndex: 1, text: 'two', scores: { gold: 0.5 } },
  ]);
  generations.addScores(g2, { rm: -1 });
  assert.deepEqual(generations.get(g2)?.scores, { gold: 0.5, rm: -1 });
  assert.deepEqual(generations.listByModel(base.id).map((g) => g.text), ['two']);

  const j = judgments.insert({ aGenerationId: g1, bGenerationId: g2, shownOrder: ['b', 'a'], winner: 'tie', judge: 'human' });
  assert.deepEqual(judgments.get(j.id)?.shownOrder, ['b', 'a']);
  assert.deepEqual(judgments.listForGeneration(g2).map((x) => x.id), [j.id]);
  assert.throws(() => judgments.insert({ aGenerationId: g1, bGenerationId: g1, shownOrder: ['a', 'b'], winner: 'a', judge: 'human' }), /CHECK constraint failed/);

  // Deleting the experiment removes its run with metrics and generations (and the judgment
  // on them); the trained model stays, forgetting only which run made it.
  assert.equal(experiments.delete(exp.id), true);
  assert.equal(runs.get(run.id), undefined);
  assert.deepEqual(metrics.series(run.id, 'loss'), []);
  assert.equal(generations.get(g1), undefined);
  assert.equal(judgments.get(j.id), undefined);
  assert.equal(models.get(sft.id)?.runId, null);
  db.close();
});

test('artifacts are recorded once per content hash', async () => {
  const db = await openDatabase(':memory:');
  const artifacts = new ArtifactStore(db);
  const a = artifacts.put({ hash: 'ab'.repeat(32), size: 10, path: 'blobs/ab' });
  assert.deepEqual(artifacts.put({ hash: a.hash, size: 10, path: 'elsewhere' }), a);
  assert.equal(artifacts.delete(a.hash), true);
  assert.equal(artifacts.get(a.hash), undefined);
  db.close();
});

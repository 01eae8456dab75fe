// The thin stores (models, experiments, runs, metrics, generations, judgments, artifacts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ArtifactStore } from './artifacts.ts';
import { openDatabase } from './database.ts';
import { ExperimentStore } from './experiments.ts';
import { bestOfScores, GenerationStore } from './generations.ts';
import { JudgmentStore } from './judgments.ts';
import { MetricStore } from './metrics.ts';
import { ModelStore } from './models.ts';
import { RunLogStore } from './run-logs.ts';
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
  assert.deepEqual(runs.interruptAbandoned(() => false).map((r) => r.id), [run.id]); // running, and its owner is gone
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

test("Best-of-N picks are a side of their own: pairs and judgments keep them apart from their model's plain answers", async () => {
  const db = await openDatabase(':memory:');
  const models = new ModelStore(db);
  const generations = new GenerationStore(db);
  const judgments = new JudgmentStore(db);
  const policy = models.insert({ name: 'policy', kind: 'imported' });
  const rm = models.insert({ name: 'rm', kind: 'trained', stage: 'reward' });
  const plain = { modelId: policy.id };
  const best4 = { modelId: policy.id, bestOf: { n: 4, rewardModelId: rm.id } };
  const best8 = { modelId: policy.id, bestOf: { n: 8, rewardModelId: rm.id } };
  assert.deepEqual(bestOfScores(best4.bestOf, 1.5), { bestOf: 4, bestOfReward: rm.id, [`rm:${rm.id}`]: 1.5 });
  const [p1, b1, p2, b2, e1] = generations.insertMany([
    { modelId: policy.id, prompt: 'p', text: 'plain' },
    { modelId: policy.id, prompt: 'p', text: 'best of 4', scores: bestOfScores(best4.bestOf, 1.5) },
    { modelId: policy.id, prompt: 'q', text: 'plain q', scores: { [`rm:${rm.id}`]: 0.2 } }, // scored later, still a plain answer
    { modelId: policy.id, prompt: 'q', text: 'best of 4 q', scores: bestOfScores(best4.bestOf, 2) },
    { modelId: policy.id, prompt: 'p', text: 'best of 8', scores: bestOfScores(best8.bestOf, 3) },
  ]);
  const pairs = (a: typeof plain, b: typeof plain) => generations.unjudgedPairs(a, b).map((x) => [x.a, x.b]);
  assert.deepEqual(pairs(plain, best4), [[p2, b2], [p1, b1]]);
  assert.deepEqual(pairs(best4, plain), [[b2, p2], [b1, p1]]);
  assert.deepEqual(pairs(best4, best8), [[b1, e1]]);
  assert.deepEqual(pairs(plain, plain), [], 'an answer is never paired with itself, nor a pick with a plain answer');

  // The best-of-4 answer shown as judgment side b: seen from side best4 it is 'b'.
  judgments.insert({ aGenerationId: p1, bGenerationId: b1, shownOrder: ['a', 'b'], winner: 'b', judge: 'human' });
  judgments.insert({ aGenerationId: b1, bGenerationId: e1, shownOrder: ['a', 'b'], winner: 'a', judge: 'human' });
  assert.deepEqual(judgments.betweenSides(best4, plain).map((j) => [j.sideOfA, j.winner]), [['b', 'b']]);
  assert.deepEqual(judgments.betweenSides(plain, best4).map((j) => [j.sideOfA, j.winner]), [['a', 'b']]);
  assert.deepEqual(judgments.betweenSides(best8, best4).map((j) => [j.sideOfA, j.winner]), [['b', 'a']]);
  assert.deepEqual(pairs(plain, best4), [[p2, b2]], 'a judged pair is not offered again');
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

test('runs for the job runner: owners, results, stops asked from elsewhere, interrupted runs, logs, metric summaries', async () => {
  const db = await openDatabase(':memory:');
  const runs = new RunStore(db);
  const metrics = new MetricStore(db);
  const logs = new RunLogStore(db);
  const a = runs.insert({ stage: 'train', owner: 'host|1|10' });
  assert.equal(a.owner, 'host|1|10');
  runs.setStatus(a.id, 'running', { owner: 'host|1|11' });
  assert.equal(runs.get(a.id)?.owner, 'host|1|11');
  // A stop asked by another process waits for the owner; a cancel is not downgraded.
  assert.equal(runs.requestControl(a.id, 'pause'), true);
  assert.equal(runs.requestControl(a.id, 'cancel'), true);
  assert.equal(runs.requestControl(a.id, 'pause'), true);
  runs.setStatus(a.id, 'running', { provider: 'cpu' }); // still running: the request stays
  assert.deepEqual(runs.pendingControls('host|1|11'), [{ id: a.id, control: 'cancel' }]);
  assert.deepEqual(runs.pendingControls('host|1|10'), []);
  // Leaving 'running' clears owner and control; a result is kept until the run restarts.
  const done = runs.setStatus(a.id, 'done', { result: { finalLoss: 1.5 } });
  assert.deepEqual([done.owner, done.control, done.result], [null, null, { finalLoss: 1.5 }]);
  assert.equal(runs.requestControl(a.id, 'cancel'), false);
  assert.equal(runs.setStatus(a.id, 'queued', { owner: 'host|1|12' }).result, null);
  runs.setCheckpoint(a.id, 'runs/1/checkpoint.safetensors');
  assert.equal(runs.get(a.id)?.checkpointPath, 'runs/1/checkpoint.safetensors');

  // Interrupted: queued or running runs whose owner is gone; unowned queued runs wait.
  const b = runs.insert({ stage: 'train', owner: 'host|1|13' });
  runs.setStatus(b.id, 'running', { owner: 'host|1|13' });
  const c = runs.insert({ stage: 'train' });
  const marked = runs.interruptAbandoned((owner) => owner === 'host|1|13');
  assert.deepEqual(marked.map((r) => [r.id, r.status, r.owner]), [[a.id, 'interrupted', null]]);
  assert.deepEqual([runs.get(b.id)?.status, runs.get(c.id)?.status], ['running', 'queued']);

  logs.append(b.id, 'info', 'one');
  logs.append(b.id, 'warn', 'two');
  logs.append(b.id, 'error', 'three');
  assert.deepEqual(logs.tail(b.id, 2).map((l) => [l.level, l.text]), [['warn', 'two'], ['error', 'three']]);
  assert.throws(() => logs.append(b.id, 'debug' as 'info', 'x'), /CHECK constraint failed/);

  metrics.log(b.id, 1, { loss: 3, acc: Number.NaN });
  metrics.log(b.id, 2, { loss: 2 });
  metrics.log(b.id, 3, { loss: 2.5 });
  assert.deepEqual(metrics.summary(b.id), [
    { name: 'acc', count: 1, firstStep: 1, lastStep: 1, last: Number.NaN, min: null, max: null },
    { name: 'loss', count: 3, firstStep: 1, lastStep: 3, last: 2.5, min: 2, max: 3 },
  ]);
  assert.deepEqual([...metrics.lastSteps()], [[b.id, 3]]);
  // Deleting a run deletes its logs and metrics.
  db.sqlite.prepare('DELETE FROM runs WHERE id = ?').run(b.id);
  assert.deepEqual([logs.tail(b.id), metrics.summary(b.id)], [[], []]);
  db.close();
});

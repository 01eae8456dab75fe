// The driver on a dataset from the store: the experiment reads an export named by its
// content hash, recorded as an artifact, so start-up cleaning keeps it; the trained model
// descends from pi_0 in the store.
import assert from 'node:assert/strict';
import { existsSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { openDatabase } from '../../db/database.ts';
import { ModelStore } from '../../db/models.ts';
import { RunStore } from '../../db/runs.ts';
import type { JsonObject } from '../../db/json.ts';
import type { StageSpec } from './contract.ts';
import { importDataset } from '../datasets/import.ts';
import { StudioFiles } from '../jobs/files.ts';
import { DEFAULT_MODEL_DIR } from '../models/builtin.ts';
import { recoverStore } from '../jobs/recovery.ts';
import { JobRunner } from '../jobs/runner.ts';
import { withTempDir } from '../../test/support/temp-dir.ts';
import { ExperimentDriver, staleness } from './driver.ts';
import { buildToyModel, writeToyDataset } from '../stages/toy.ts';

test('an experiment on a store dataset: hashed export kept as an artifact, model lineage from pi_0', { timeout: 180_000 }, async () => {
  await withTempDir('driver', async (dir) => {
    await buildToyModel(join(dir, 'pi0'), { steps: 50 });
    await writeToyDataset(join(dir, 'toy.jsonl'), 40);
    const dbFile = join(dir, 'studio.db');
    const db = await openDatabase(dbFile);
    const files = StudioFiles.forDatabase(dbFile);
    await importDataset(db, join(dir, 'toy.jsonl'), { name: 'toy' });
    const runner = await JobRunner.open({ db, files });
    // A named model (`models:`) is an input beside pi0: here the sampler reads it as it is.
    const driver = ExperimentDriver.start(db, runner, {
      name: 't', model: join(dir, 'pi0'), models: { other: DEFAULT_MODEL_DIR }, data: { source: 'store:toy' }, threads: 1,
      stages: [{ id: 'sft', kind: 'sft', epochs: 1, batch: 8 }, { id: 'other-samples', kind: 'sample', model: 'other', split: 'eval', n: 1, maxNewTokens: 2 }],
    });
    const outcome = await driver.done;
    await runner.close();
    assert.equal(outcome.status, 'done', outcome.error);

    const artifact = db.statement<[], { path: string; size: number }>('SELECT path, size FROM artifacts').get()!;
    assert.match(artifact.path, /^datasets\/[0-9a-f]{64}\.jsonl$/);
    assert.ok(artifact.size > 0);
    await recoverStore(db, files);
    assert.ok(existsSync(files.absolute(artifact.path)), 'the export survives start-up cleaning');

    const models = new ModelStore(db).list();
    const pi0 = models.find((m) => m.path === join(dir, 'pi0'))!, sft = models.find((m) => m.name === 't/sft')!;
    assert.equal(sft.parentId, pi0.id);
    assert.equal(pi0.name, 'pi0', 'pi_0 from a folder is named as its folder is, not by its path');
    assert.ok(existsSync(files.absolute(sft.path!)), 'the trained model is in the store');
    const sampled = new RunStore(db).list().find((r) => r.config.id === 'other-samples')!;
    assert.equal(sampled.status, 'done');
    assert.deepEqual({ dir: (sampled.config.inputs as JsonObject & { model: JsonObject }).model.dir, external: (sampled.config.inputs as JsonObject & { model: JsonObject }).model.external }, { dir: DEFAULT_MODEL_DIR, external: true });
    db.close();
  });
});

test('staleness: an input run again, changed settings, seed or data; not threads, provider or the folder of a store export', () => {
  const spec = { id: 'best', kind: 'bon:length', samples: 's', ns: [1, 2] } as unknown as StageSpec;
  const before = { stage: 'bon:length', settings: { samples: 's', ns: [1, 2], mode: 'median' }, seed: 5, threads: 1, provider: 'cpu', data: { source: '/old/s.db.files/datasets/' + 'a'.repeat(64) + '.jsonl', chatTemplateModel: '/old/models/default' } };
  const same = { ...before, threads: 2, provider: 'webgpu', data: { source: '/new/place/s.db.files/datasets/' + 'a'.repeat(64) + '.jsonl', chatTemplateModel: '/elsewhere' } };
  assert.equal(staleness(spec, before, same, new Set()), null);
  assert.equal(staleness(spec, before, same, new Set(['s'])), "its input 's' was run again");
  assert.equal(staleness({ ...spec, ns: [1, 4] } as unknown as StageSpec, before, { ...same, settings: { samples: 's', ns: [1, 4] } }, new Set()), 'its settings changed (ns: [1,2] -> [1,4])');
  assert.equal(staleness(spec, before, { ...same, seed: 6 }, new Set()), 'its seed changed');
  assert.equal(staleness(spec, before, { ...same, data: { source: '/x/datasets/' + 'b'.repeat(64) + '.jsonl' } }, new Set()), 'its data changed');
});

test('resuming with an edited definition runs again the changed stage and what reads it, and keeps the rest', { timeout: 180_000 }, async () => {
  await withTempDir('driver-edit', async (dir) => {
    await buildToyModel(join(dir, 'pi0'), { steps: 30 });
    const dbFile = join(dir, 'studio.db');
    const db = await openDatabase(dbFile);
    const runner = await JobRunner.open({ db, files: StudioFiles.forDatabase(dbFile) });
    const def = (sampleTokens: number, ns: number[]): JsonObject => ({
      name: 'edit', model: join(dir, 'pi0'), data: { source: join(dir, 'toy.jsonl') }, threads: 1,
      stages: [
        { id: 's', kind: 'sample', model: 'pi0', split: 'eval', n: 2, maxNewTokens: sampleTokens },
        { id: 'best', kind: 'bon:length', samples: 's', ns },
      ],
    });
    await writeToyDataset(join(dir, 'toy.jsonl'), 20);
    const runIds = () => new Map(new RunStore(db).list({}).reverse().map((r) => [String(r.config.id), r.id])); // the latest run of each stage
    const notes: string[] = [];
    const first = ExperimentDriver.start(db, runner, def(4, [1, 2]));
    assert.equal((await first.done).status, 'done');
    const ids1 = runIds();

    const second = ExperimentDriver.start(db, runner, def(4, [1]), { experimentId: first.experimentId, log: (t) => notes.push(t) });
    assert.equal((await second.done).status, 'done');
    const ids2 = runIds();
    assert.equal(ids2.get('s'), ids1.get('s'), 'the samples are kept');
    assert.notEqual(ids2.get('best'), ids1.get('best'), 'Best-of-N runs again');
    assert.deepEqual(notes, ['best: run again, its settings changed (ns: [1,2] -> [1]).']);

    notes.length = 0;
    const third = ExperimentDriver.start(db, runner, def(5, [1]), { experimentId: first.experimentId, log: (t) => notes.push(t) });
    assert.equal((await third.done).status, 'done');
    const ids3 = runIds();
    assert.notEqual(ids3.get('s'), ids2.get('s'));
    assert.notEqual(ids3.get('best'), ids2.get('best'), 'what reads the new samples runs again');
    assert.deepEqual(notes, ['s: run again, its settings changed (maxNewTokens: 4 -> 5).', "best: run again, its input 's' was run again."]);

    // The same definition again: nothing runs.
    const fourth = ExperimentDriver.start(db, runner, def(5, [1]), { experimentId: first.experimentId });
    assert.equal((await fourth.done).status, 'done');
    assert.deepEqual(runIds(), ids3);
    await runner.close();
    db.close();
  });
});

test('a stage interrupted before the data folder moved resumes with its inputs where they are now', { timeout: 180_000 }, async () => {
  await withTempDir('driver-move', async (dir) => {
    const place = (root: string) => ({ root, dbFile: join(root, 'studio.db') });
    const def = (root: string): JsonObject => ({
      name: 'moved', model: join(root, 'pi0'), data: { source: 'store:toy' }, threads: 1,
      stages: [
        { id: 's', kind: 'sample', model: 'pi0', split: 'eval', n: 2, maxNewTokens: 4 },
        { id: 'best', kind: 'bon:length', samples: 's', ns: [1, 2] },
      ],
    });
    const a = place(join(dir, 'a'));
    await buildToyModel(join(a.root, 'pi0'), { steps: 30 });
    await writeToyDataset(join(a.root, 'toy.jsonl'), 20);
    let db = await openDatabase(a.dbFile);
    await importDataset(db, join(a.root, 'toy.jsonl'), { name: 'toy' });
    let runner = await JobRunner.open({ db, files: StudioFiles.forDatabase(a.dbFile) });
    const first = ExperimentDriver.start(db, runner, def(a.root));
    assert.equal((await first.done).status, 'done');
    await runner.close();
    // As if the process had died while Best-of-N ran.
    const runs = new RunStore(db);
    const best = runs.list({}).find((r) => r.config.id === 'best')!;
    runs.setStatus(best.id, 'interrupted');
    db.close();

    const b = place(join(dir, 'b'));
    renameSync(a.root, b.root);
    db = await openDatabase(b.dbFile);
    runner = await JobRunner.open({ db, files: StudioFiles.forDatabase(b.dbFile) });
    const resumed = ExperimentDriver.start(db, runner, def(b.root), { experimentId: first.experimentId });
    const outcome = await resumed.done;
    await runner.close();
    assert.equal(outcome.status, 'done', outcome.error);
    const after = new RunStore(db).get(best.id)!;
    assert.equal(after.status, 'done', 'the interrupted run itself finished');
    assert.ok(JSON.stringify(after.config).includes(b.root) && !JSON.stringify(after.config).includes(a.root), 'its config names the new place only');
    db.close();
  });
});

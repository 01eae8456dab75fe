// The driver on a dataset from the store: the experiment reads an export named by its
// content hash, recorded as an artifact, so start-up cleaning keeps it; the trained model
// descends from pi_0 in the store.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { openDatabase } from '../../db/database.ts';
import { ModelStore } from '../../db/models.ts';
import { importDataset } from '../datasets/import.ts';
import { StudioFiles } from '../jobs/files.ts';
import { recoverStore } from '../jobs/recovery.ts';
import { JobRunner } from '../jobs/runner.ts';
import { withTempDir } from '../../test/support/temp-dir.ts';
import { ExperimentDriver } from './driver.ts';
import { buildToyModel, writeToyDataset } from './toy.ts';

test('an experiment on a store dataset: hashed export kept as an artifact, model lineage from pi_0', { timeout: 180_000 }, async () => {
  await withTempDir('driver', async (dir) => {
    await buildToyModel(join(dir, 'pi0'), { steps: 50 });
    await writeToyDataset(join(dir, 'toy.jsonl'), 40);
    const dbFile = join(dir, 'studio.db');
    const db = await openDatabase(dbFile);
    const files = StudioFiles.forDatabase(dbFile);
    await importDataset(db, join(dir, 'toy.jsonl'), { name: 'toy' });
    const runner = await JobRunner.open({ db, files });
    const driver = ExperimentDriver.start(db, runner, { name: 't', model: join(dir, 'pi0'), data: { source: 'store:toy' }, threads: 1, stages: [{ id: 'sft', kind: 'sft', epochs: 1, batch: 8 }] });
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
    assert.ok(existsSync(files.absolute(sft.path!)), 'the trained model is in the store');
    db.close();
  });
});

// Start-up cleaning keeps what later runs read: a finished AfD stage's whole folder is its
// output (samples, selections, evaluations), a paused one's is what its resume continues
// from, while other kinds keep only referenced files.
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { openDatabase } from '../../db/database.ts';
import { RunStore } from '../../db/runs.ts';
import { withTempDir } from '../../test/support/temp-dir.ts';
import { OWNER_FILE, StudioFiles } from './files.ts';
import { recoverStore } from './recovery.ts';

test('a finished afd-stage run keeps its folder through start-up cleaning; a finished run of another kind does not', async () => {
  await withTempDir('recovery', async (dir) => {
    const db = await openDatabase(join(dir, 'studio.db'));
    const files = new StudioFiles(join(dir, 'files'));
    const runs = new RunStore(db);
    const stage = runs.insert({ stage: 'afd-stage', config: { id: 'samples' } });
    const tiny = runs.insert({ stage: 'train-tiny-lm', config: {} });
    for (const r of [stage, tiny]) {
      runs.setStatus(r.id, 'done', { result: {} });
      mkdirSync(files.runDir(r.id), { recursive: true });
      writeFileSync(join(files.runDir(r.id), 'samples.jsonl'), '{}\n');
    }
    await recoverStore(db, files);
    assert.ok(existsSync(join(files.runDir(stage.id), 'samples.jsonl')), 'the stage output stays');
    assert.ok(!existsSync(join(files.runDir(tiny.id), 'samples.jsonl')), 'an unreferenced file of another kind goes');
    db.close();
  });
});

test('a paused or interrupted afd-stage run keeps its finished phases (files beside its checkpoint) through start-up cleaning', async () => {
  // The judge's fold results sit beside the checkpoint of the phase that was running; sweeping
  // them once made a resumed judge train its finished folds again.
  await withTempDir('recovery', async (dir) => {
    const db = await openDatabase(join(dir, 'studio.db'));
    const files = new StudioFiles(join(dir, 'files'));
    const runs = new RunStore(db);
    for (const status of ['paused', 'interrupted', 'failed'] as const) {
      const run = runs.insert({ stage: 'afd-stage', config: { id: 'judge' } });
      const folder = files.runDir(run.id);
      mkdirSync(join(folder, 'fold-0'), { recursive: true });
      mkdirSync(join(folder, 'fold-1'), { recursive: true });
      writeFileSync(join(folder, 'fold-0', 'result.json'), '{"correct":1,"pairs":2}\n');
      writeFileSync(join(folder, 'fold-1', 'checkpoint.safetensors'), 'x');
      runs.setStatus(run.id, status, { checkpointPath: files.relative(join(folder, 'fold-1', 'checkpoint.safetensors')) });
      await recoverStore(db, files);
      assert.ok(existsSync(join(folder, 'fold-0', 'result.json')), `a ${status} run's finished fold stays`);
    }
    db.close();
  });
});

test('a copy of the database beside a link to the same files folder removes nothing from it; a moved or fully copied database sweeps its own', async () => {
  await withTempDir('recovery', async (dir) => {
    const original = join(dir, 'studio.db');
    const db = await openDatabase(original);
    const files = StudioFiles.forDatabase(original);
    const runs = new RunStore(db);
    const done = runs.insert({ stage: 'afd-stage', config: { id: 'samples' } });
    runs.setStatus(done.id, 'done', { result: {} });
    assert.equal((await recoverStore(db, files)).sharedWith, null);
    db.close();
    copyFileSync(original, join(dir, 'copy.db'));
    // The original goes on: a run the copy never saw writes its folder.
    const later = join(files.runDir(done.id + 1), 'samples.jsonl');
    mkdirSync(dirname(later), { recursive: true });
    writeFileSync(later, '{}\n');
    symlinkSync(files.root, join(dir, 'copy.db.files'));
    const copy = await openDatabase(join(dir, 'copy.db'));
    const report = await recoverStore(copy, StudioFiles.forDatabase(join(dir, 'copy.db')));
    copy.close();
    assert.equal(report.sharedWith, original);
    assert.deepEqual(report.removedFiles, []);
    assert.ok(existsSync(later), "the original's newer run keeps its samples");

    // Moved with its folder (the old path is gone): the folder is its own, and swept.
    mkdirSync(join(dir, 'moved'));
    renameSync(original, join(dir, 'moved', 'studio.db'));
    renameSync(files.root, join(dir, 'moved', 'studio.db.files'));
    const moved = await openDatabase(join(dir, 'moved', 'studio.db'));
    const movedFiles = StudioFiles.forDatabase(join(dir, 'moved', 'studio.db'));
    const again = await recoverStore(moved, movedFiles);
    moved.close();
    assert.equal(again.sharedWith, null);
    assert.ok(!existsSync(join(movedFiles.runDir(done.id + 1), 'samples.jsonl')), 'a run folder this database never made is swept from its own folder');
    assert.equal(readFileSync(join(movedFiles.root, OWNER_FILE), 'utf8').trim(), join(dir, 'moved', 'studio.db'));
  });
});

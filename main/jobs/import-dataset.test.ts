// The `import-dataset` job: the same dataset as the library import, hidden until it is
// complete, deleted whole when cancelled or failed, and a taken name refused up front.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { openDatabase } from '../../db/database.ts';
import { DatasetStore } from '../../db/datasets.ts';
import { HH_HARMLESS_FILE } from '../datasets/hh.ts';
import { importDataset } from '../datasets/import.ts';
import { DEFAULT_MODEL_DIR } from '../models/builtin.ts';
import { StudioFiles } from './files.ts';
import { JobRunner } from './runner.ts';

const HH_FILE = HH_HARMLESS_FILE;
const dir = mkdtempSync(join(tmpdir(), 'afd-import-job-'));
const db = await openDatabase(':memory:');
const files = StudioFiles.forDatabase(':memory:');
const runner = await JobRunner.open({ db, files });
const datasets = new DatasetStore(db);
after(() => {
  db.close();
  files.dispose();
  rmSync(dir, { recursive: true, force: true });
});
const counts = (): { datasets: number; examples: number } => ({
  datasets: db.sqlite.prepare<[], number>('SELECT count(*) FROM datasets').pluck().get() as number,
  examples: db.sqlite.prepare<[], number>('SELECT count(*) FROM examples').pluck().get() as number,
});

test('the HH split imports as a job into the same examples as the library import', async () => {
  const run = runner.submit('import-dataset', { file: HH_FILE, name: 'hh' });
  const end = await runner.settled(run.id);
  assert.equal(end.status, 'done', end.error ?? '');
  assert.deepEqual(end.result, { datasetId: end.result?.datasetId, name: 'hh', format: 'hh', records: 2312, inserted: 2312, duplicates: 0, train: 1847, eval: 465 });
  const d = datasets.getByName('hh');
  assert.equal(d?.importRunId, run.id);

  const other = await openDatabase(':memory:');
  const lib = await importDataset(other, HH_FILE, { name: 'hh' });
  const rows = (x: typeof db, id: number): unknown[] => x.sqlite.prepare('SELECT prompt, response, chosen, rejected, source, split, hash FROM examples WHERE dataset_id = ? ORDER BY id').all(id);
  assert.deepEqual(rows(db, d?.id ?? 0), rows(other, lib.datasetId));
  other.close();
});

test('a bad line fails the job with its sentence and leaves nothing behind', async () => {
  const before = counts();
  const file = join(dir, 'bad.jsonl');
  const good = Array.from({ length: 2500 }, (_, i) => `${JSON.stringify({ prompt: `p${i}`, response: `r${i}` })}\n`).join('');
  writeFileSync(file, `${good}{"prompt": "x"}\n`);
  const end = await runner.settled(runner.submit('import-dataset', { file, name: 'bad' }).id);
  assert.equal(end.status, 'failed');
  assert.match(end.error ?? '', /^bad\.jsonl, line 2501: /);
  assert.deepEqual(counts(), before);
});

test('a cancelled import is deleted whole; the name can be used again', async () => {
  const before = counts();
  const file = join(dir, 'big.jsonl');
  writeFileSync(file, Array.from({ length: 60_000 }, (_, i) => `${JSON.stringify({ prompt: `prompt ${i}`, response: `response ${i} `.repeat(4) })}\n`).join(''));
  const run = runner.submit('import-dataset', { file, name: 'big' });
  await new Promise<void>((resolve) => {
    const off = runner.onEvent((e) => {
      if (e.type === 'progress' && e.runId === run.id && e.step > 0 && e.fraction !== 'unknown' && e.fraction > 0.2) {
        off();
        resolve();
      }
    });
  });
  // Partly written, but hidden.
  assert.ok(counts().examples > before.examples);
  assert.equal(datasets.getByName('big'), undefined);
  assert.deepEqual(datasets.list().map((d) => d.name), ['hh']);
  // Another import of the same name is refused while this one runs.
  assert.throws(() => runner.submit('import-dataset', { file, name: 'big' }), new RegExp(`A dataset named "big" is being imported right now \\(run #${run.id}\\); wait for that import to finish or choose another name\\.`));
  runner.cancel(run.id);
  const end = await runner.settled(run.id);
  assert.equal(end.status, 'cancelled');
  assert.deepEqual(counts(), before);
  const ok = await runner.settled(runner.submit('import-dataset', { file, name: 'big' }).id);
  assert.equal(ok.status, 'done');
  assert.equal(datasets.getByName('big')?.examples, 60_000);
  // Now the name is taken: refused before a run is recorded, as is a missing file.
  const runs = db.sqlite.prepare('SELECT count(*) FROM runs').pluck();
  const before2 = runs.get();
  assert.throws(() => runner.submit('import-dataset', { file, name: 'big' }), /^Error: A dataset named "big" already exists; choose another name or delete the old dataset first\.$/);
  assert.throws(() => runner.submit('import-dataset', { file: join(dir, 'none.jsonl'), name: 'none' }), /Could not read .*none\.jsonl \(ENOENT\); check that the path names a dataset file\./);
  assert.equal(runs.get(), before2);
});

test('chat lines import with a model\'s chat template, and are refused with a sentence without one', async () => {
  const file = join(dir, 'chats.jsonl');
  writeFileSync(file, `${JSON.stringify({ messages: [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello.' }] })}\n`);
  const without = await runner.settled(runner.submit('import-dataset', { file, name: 'chats-0' }).id);
  assert.equal(without.status, 'failed');
  assert.match(without.error ?? '', /needs the chat template of a model/);
  const run = runner.submit('import-dataset', { file, name: 'chats', chatTemplateModel: DEFAULT_MODEL_DIR });
  assert.equal((await runner.settled(run.id)).status, 'done');
  const page = datasets.searchExamples(datasets.getByName('chats')!.id);
  assert.deepEqual(page.items.map((e) => [e.prompt, e.response]), [['\n\nHuman: Hi\n\nAssistant:', ' Hello.']]);
});

// A reader on another connection and thread, reading all the time while an import job and
// a training job write, only ever sees whole states: a dataset is invisible until every
// example is in, and each training step's metrics appear together and in order.
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { openDatabase } from '../../db/database.ts';
import { StudioFiles } from './files.ts';
import { JobRunner } from './runner.ts';

const dir = mkdtempSync(join(tmpdir(), 'afd-consistency-'));
after(() => rmSync(dir, { recursive: true, force: true }));

// Plain JavaScript, so the reader needs no TypeScript loader. Each read is one snapshot.
const READER = `
const { parentPort, workerData } = require('node:worker_threads');
const Database = require(workerData.sqlite);
const db = new Database(workerData.file, { readonly: true, timeout: 5000 });
let stop = false;
parentPort.on('message', () => { stop = true; });
const seen = { reads: 0, visibleBig: 0, trainSteps: 0, problems: [] };
const datasets = db.prepare("SELECT d.id, d.source_records - d.source_duplicates AS expected, (SELECT count(*) FROM examples e WHERE e.dataset_id = d.id) AS n FROM datasets d WHERE d.ready = 1 AND d.name = 'big'");
const metrics = db.prepare("SELECT name, count(*) AS n, min(step) AS lo, max(step) AS hi FROM metrics WHERE run_id = ? GROUP BY name ORDER BY name");
const snapshot = db.transaction(() => ({ d: datasets.all(), m: metrics.all(workerData.trainRun) }));
function loop() {
  for (let i = 0; i < 50; i++) {
    const { d, m } = snapshot();
    seen.reads++;
    for (const x of d) {
      seen.visibleBig++;
      if (x.n !== x.expected || x.n !== workerData.rows) seen.problems.push('dataset visible with ' + x.n + ' of ' + workerData.rows + ' rows');
    }
    if (m.length > 0) {
      const [g, l] = m;
      if (m.length !== 2 || g.n !== l.n || g.hi !== l.hi || l.lo !== 1 || l.n !== l.hi) seen.problems.push('metrics ' + JSON.stringify(m));
      seen.trainSteps = Math.max(seen.trainSteps, l.hi);
    }
  }
  if (stop) parentPort.postMessage(seen); else setImmediate(loop);
}
loop();
`;

test('a reader never sees a half-imported dataset or half a training step', async (t) => {
  const rows = 40_000;
  const file = join(dir, 'big.jsonl');
  writeFileSync(file, Array.from({ length: rows }, (_, i) => `${JSON.stringify({ prompt: `prompt ${i}`, response: `response ${i}` })}\n`).join(''));
  const dbFile = join(dir, 'studio.db');
  const db = await openDatabase(dbFile);
  const files = StudioFiles.forDatabase(dbFile);
  const runner = await JobRunner.open({ db, files });
  try {
    const train = runner.submit('train-tiny-lm', { steps: 150, checkpointEvery: 50, threads: 1 });
    const reader = new Worker(READER, { eval: true, execArgv: [], workerData: { file: dbFile, sqlite: createRequire(import.meta.url).resolve('better-sqlite3'), trainRun: train.id, rows } });
    const imported = runner.submit('import-dataset', { file, name: 'big' });
    const [a, b] = await Promise.all([runner.settled(train.id), runner.settled(imported.id)]);
    assert.deepEqual([a.status, b.status], ['done', 'done']);
    reader.postMessage('stop');
    const [seen] = (await once(reader, 'message')) as [{ reads: number; visibleBig: number; trainSteps: number; problems: string[] }];
    await reader.terminate();
    t.diagnostic(`reader: ${seen.reads} snapshots, ${seen.visibleBig} with the finished dataset, metrics up to step ${seen.trainSteps}`);
    assert.deepEqual(seen.problems.slice(0, 5), []);
    assert.ok(seen.reads > 100, `only ${seen.reads} reads`);
    assert.ok(seen.visibleBig > 0 && seen.trainSteps === 150, JSON.stringify(seen));
  } finally {
    await runner.close();
    db.close();
  }
});

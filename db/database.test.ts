import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import Database from 'better-sqlite3';
import { DatabaseVersionError, StoreBusyError, openDatabase } from './database.ts';
import { DatasetStore } from './datasets.ts';
import type { Migration } from './migrations/index.ts';
import { MIGRATIONS, checkMigrations } from './migrations/index.ts';

const dir = mkdtempSync(join(tmpdir(), 'afd-db-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const dbFile = (): string => join(dir, `studio-${++n}.db`);
const backupsOf = (file: string): string[] => readdirSync(dirname(file)).filter((f) => f.startsWith(`${file.split('/').pop()}.backup-`));

const V1_TABLES = ['artifacts', 'datasets', 'example_edits', 'examples', 'experiments', 'generations', 'judgments', 'metrics', 'models', 'runs'];
const TABLES = [...V1_TABLES.slice(0, -1), 'run_logs', 'runs'];

function dump(sqlite: Database.Database): Record<string, unknown[]> {
  return Object.fromEntries(V1_TABLES.map((t) => [t, sqlite.prepare(`SELECT * FROM ${t} ORDER BY 1, 2, 3`).all()]));
}

/** Fills every table of schema v1 with a few related rows, through plain SQL so that the
 *  test does not depend on the store modules' current shape. */
function populateV1(sqlite: Database.Database): void {
  sqlite.exec(`
    INSERT INTO datasets (name, source_file, source_format, source_records) VALUES ('demo', '/data/demo.jsonl', 'jsonl', 3);
    INSERT INTO examples (dataset_id, prompt, response, split, hash, tags) VALUES (1, 'p1', 'r1', 'train', 'h1', '["a"]'), (1, 'p2', 'r2', 'eval', 'h2', '[]');
    INSERT INTO examples (dataset_id, prompt, response, chosen, rejected, split, hash) VALUES (1, 'p3', 'c3', 'c3', 'x3', 'train', 'h3');
    INSERT INTO example_edits (example_id, field, old_value, new_value) VALUES (1, 'response', 'r0', 'r1');
    INSERT INTO experiments (name, definition) VALUES ('exp', '{"stages": ["sft"]}');
    INSERT INTO runs (experiment_id, stage, status, config, seed) VALUES (1, 'sft', 'done', '{"lr": 0.001}', 7);
    INSERT INTO models (name, kind, family) VALUES ('base', 'imported', 'gpt2');
    INSERT INTO models (name, kind, family, parent_id, run_id, stage) VALUES ('sft', 'trained', 'gpt2', 1, 1, 'sft');
    INSERT INTO metrics (run_id, step, name, value) VALUES (1, 1, 'loss', 2.5), (1, 2, 'loss', 2.1);
    INSERT INTO generations (run_id, model_id, prompt, text) VALUES (1, 2, 'p2', 'g1'), (NULL, 1, 'p2', 'g2');
    INSERT INTO judgments (a_generation_id, b_generation_id, shown_order, winner, judge) VALUES (1, 2, '["b","a"]', 'a', 'human');
    INSERT INTO artifacts (hash, size, path) VALUES ('abc', 10, 'blobs/abc');
  `);
}

test('a new in-memory database is at the latest version with the pragmas set', async () => {
  const db = await openDatabase(':memory:');
  assert.equal(db.schemaVersion, MIGRATIONS.length);
  assert.equal(db.migratedFrom, 0);
  assert.equal(db.backupFile, undefined);
  assert.equal(db.sqlite.pragma('foreign_keys', { simple: true }), 1);
  assert.equal(db.sqlite.pragma('synchronous', { simple: true }), 1); // NORMAL
  assert.equal(db.sqlite.pragma('busy_timeout', { simple: true }), 5000);
  const tables = db.sqlite.prepare<[], string>("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name").pluck().all();
  assert.deepEqual(tables, TABLES);
  db.close();
  db.close(); // closing twice is harmless
});

test('a file database uses WAL, and a fresh file needs no backup', async () => {
  const file = dbFile();
  const db = await openDatabase(file);
  assert.equal(db.sqlite.pragma('journal_mode', { simple: true }), 'wal');
  assert.equal(db.backupFile, undefined);
  db.close();
  const again = await openDatabase(file);
  assert.equal(again.migratedFrom, MIGRATIONS.length);
  assert.equal(again.backupFile, undefined);
  again.close();
  assert.deepEqual(backupsOf(file), []);
});

test('a populated v1 database migrates to v2 with its data intact and a backup made first', async () => {
  const file = dbFile();
  const v1 = await openDatabase(file, { migrations: MIGRATIONS.slice(0, 1) });
  assert.equal(v1.schemaVersion, 1);
  populateV1(v1.sqlite);
  const before = dump(v1.sqlite);
  v1.close();

  const db = await openDatabase(file, { migrations: MIGRATIONS.slice(0, 2) });
  assert.equal(db.migratedFrom, 1);
  assert.equal(db.schemaVersion, 2);
  assert.deepEqual(dump(db.sqlite), before);
  const indexes = db.sqlite.prepare<[], string>("SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'examples'").pluck().all();
  assert.ok(indexes.includes('examples_by_split'));
  // (The stores read the latest schema only; the v3 test reads these rows through them.)
  assert.deepEqual(db.sqlite.prepare("SELECT split, count(*) AS n FROM examples GROUP BY split ORDER BY split").all(), [{ split: 'eval', n: 1 }, { split: 'train', n: 2 }]);
  db.close();

  assert.ok(db.backupFile !== undefined);
  assert.match(db.backupFile, /\.backup-v1-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d-\d{3}Z$/);
  assert.deepEqual(backupsOf(file), [db.backupFile.split('/').pop()]);
  const backup = new Database(db.backupFile, { readonly: true });
  assert.equal(backup.pragma('user_version', { simple: true }), 1);
  assert.deepEqual(dump(backup), before);
  backup.close();
});

test('v3 adds the job columns with values that keep existing rows as they were', async () => {
  const file = dbFile();
  const v2 = await openDatabase(file, { migrations: MIGRATIONS.slice(0, 2) });
  populateV1(v2.sqlite);
  v2.close();
  const db = await openDatabase(file);
  assert.deepEqual([db.migratedFrom, db.schemaVersion], [2, 3]);
  assert.deepEqual(db.sqlite.prepare('SELECT ready, import_run_id FROM datasets').all(), [{ ready: 1, import_run_id: null }]);
  assert.deepEqual(db.sqlite.prepare('SELECT status, owner, result FROM runs').all(), [{ status: 'done', owner: null, result: null }]);
  assert.equal(new DatasetStore(db).getByName('demo')?.examples, 3);
  assert.throws(() => db.sqlite.exec("UPDATE runs SET result = 'not json'"), /CHECK constraint failed/);
  // A dataset's import run is provenance: deleting the run keeps the dataset.
  db.sqlite.exec('UPDATE datasets SET import_run_id = 1; DELETE FROM runs');
  assert.deepEqual(db.sqlite.prepare('SELECT ready, import_run_id FROM datasets').all(), [{ ready: 1, import_run_id: null }]);
  db.close();
});

test('the split index of v2 is what the counts and the split filter use', async () => {
  const db = await openDatabase(':memory:');
  const plan = (sql: string): string => db.sqlite.prepare<[], { detail: string }>(`EXPLAIN QUERY PLAN ${sql}`).all().map((r) => r.detail).join('; ');
  assert.match(plan('SELECT dataset_id, split, count(*) FROM examples GROUP BY dataset_id, split'), /COVERING INDEX examples_by_split/);
  assert.match(plan("SELECT * FROM examples WHERE dataset_id = 1 AND split = 'eval' ORDER BY id LIMIT 50"), /examples_by_split/);
  db.close();
});

test('a database from a newer version is refused and left untouched', async () => {
  const file = dbFile();
  (await openDatabase(file)).close();
  const raw = new Database(file);
  raw.pragma('user_version = 99');
  raw.close();
  const size = statSync(file).size;
  await assert.rejects(openDatabase(file), (err: unknown) => {
    assert.ok(err instanceof DatabaseVersionError);
    assert.equal(err.found, 99);
    assert.equal(err.known, MIGRATIONS.length);
    assert.match(err.message, /was written by a newer version of AfD Studio \(schema 99; this version knows up to 3\); open it with that newer version, or restore one of its \.backup files\.$/);
    return true;
  });
  const check = new Database(file, { readonly: true });
  assert.equal(check.pragma('user_version', { simple: true }), 99);
  check.close();
  assert.equal(statSync(file).size, size);
  assert.deepEqual(backupsOf(file), []);
});

test('an SQLite file that is not a studio database is refused', async () => {
  const file = dbFile();
  const raw = new Database(file);
  raw.exec('CREATE TABLE contacts (name TEXT)');
  raw.close();
  await assert.rejects(openDatabase(file), /is an SQLite database but not an AfD Studio one \(it has tables such as "contacts" and no schema version\); choose another file name/);
});

test('a failing migration is rolled back whole and the version stays', async () => {
  const file = dbFile();
  (await openDatabase(file, { migrations: MIGRATIONS.slice(0, 1) })).close();
  const broken: Migration = {
    version: 2,
    name: 'broken',
    up(sqlite) {
      sqlite.exec('CREATE TABLE half_done (x INTEGER)');
      throw new Error('boom');
    },
  };
  await assert.rejects(openDatabase(file, { migrations: [MIGRATIONS[0], broken] }), /boom/);
  const check = new Database(file, { readonly: true });
  assert.equal(check.pragma('user_version', { simple: true }), 1);
  assert.deepEqual(check.prepare("SELECT name FROM sqlite_schema WHERE name = 'half_done'").all(), []);
  check.close();
  // The backup was made before the attempt, so the user has a copy either way.
  assert.equal(backupsOf(file).length, 1);
});

test('the migration list runs 1, 2, 3... and matches the files in db/migrations', () => {
  assert.throws(() => checkMigrations([MIGRATIONS[1]]), /has version 2 but is number 1 in the list/);
  const folder = join(dirname(fileURLToPath(import.meta.url)), 'migrations');
  const files = readdirSync(folder).filter((f) => /^\d{3}-.*\.ts$/.test(f) && !f.endsWith('.test.ts')).sort();
  assert.deepEqual(files.map((f) => Number(f.slice(0, 3))), MIGRATIONS.map((m) => m.version));
  assert.deepEqual(files.map((f) => f.slice(4, -3)), MIGRATIONS.map((m) => m.name));
});

test('a long transaction owns its connection; other connections read the last commit and cannot write', async () => {
  const file = dbFile();
  const writer = await openDatabase(file);
  const other = await openDatabase(file, { busyTimeoutMs: 50 });
  const tx = writer.beginLongTransaction('a test import');
  tx.statement("INSERT INTO datasets (name) VALUES ('pending')").run();

  assert.throws(() => new DatasetStore(writer).list(), (err: unknown) => err instanceof StoreBusyError && /busy with a test import; wait for it to finish/.test(err.message));
  assert.throws(() => writer.beginLongTransaction('another'), StoreBusyError);
  assert.equal(writer.busyWith, 'a test import');
  assert.deepEqual(new DatasetStore(other).list(), []);
  assert.throws(() => new DatasetStore(other).create({ name: 'sneaky' }), /database is locked/);
  assert.throws(() => other.beginLongTransaction('a second import'), /Another window or process is writing to the database, so a second import cannot start/);

  // A failing savepoint is undone on its own; the transaction goes on.
  assert.throws(() => tx.savepoint(() => {
    tx.statement("INSERT INTO datasets (name) VALUES ('in savepoint')").run();
    throw new Error('batch failed');
  }), /batch failed/);
  assert.deepEqual(tx.statement<[], string>('SELECT name FROM datasets ORDER BY id').pluck().all(), ['pending']);

  tx.commit();
  assert.equal(writer.busyWith, undefined);
  assert.deepEqual(new DatasetStore(other).list().map((d) => d.name), ['pending']);
  assert.throws(() => tx.statement('SELECT 1'), /has already ended/);
  writer.close();
  other.close();
});

test('close() rolls back an unfinished long transaction', async () => {
  const file = dbFile();
  const db = await openDatabase(file);
  const tx = db.beginLongTransaction('an abandoned import');
  tx.statement("INSERT INTO datasets (name) VALUES ('never')").run();
  db.close();
  assert.equal(tx.open, false);
  const again = await openDatabase(file);
  assert.deepEqual(new DatasetStore(again).list(), []);
  again.close();
  assert.ok(existsSync(file));
});

test('a populated database of every earlier version migrates to the latest with its rows kept', async () => {
  for (let from = 1; from < MIGRATIONS.length; from++) {
    const file = dbFile();
    const old = await openDatabase(file, { migrations: MIGRATIONS.slice(0, from) });
    populateV1(old.sqlite);
    const counts = (d: Database.Database) =>
      Object.fromEntries(['datasets', 'examples', 'models', 'runs', 'metrics', 'generations', 'judgments'].map((t) => [t, d.prepare(`SELECT count(*) AS n FROM ${t}`).get()]));
    const before = counts(old.sqlite);
    old.close();
    const db = await openDatabase(file);
    assert.deepEqual([db.migratedFrom, db.schemaVersion], [from, MIGRATIONS.length], `from v${from}`);
    assert.deepEqual(counts(db.sqlite), before, `rows kept from v${from}`);
    assert.equal(db.sqlite.pragma('integrity_check', { simple: true }), 'ok');
    assert.ok(db.backupFile !== undefined, `a backup of the v${from} file was made`);
    assert.equal(new DatasetStore(db).getByName('demo')?.examples, 3);
    db.close();
  }
});

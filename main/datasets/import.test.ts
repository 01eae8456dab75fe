import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { finished } from 'node:stream/promises';
import { describe, test } from 'node:test';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { StudioDatabase } from '../../db/database.ts';
import { openDatabase } from '../../db/database.ts';
import { DatasetStore } from '../../db/datasets.ts';
import { HH_HARMLESS_FILE } from './hh.ts';
import { importDataset } from './import.ts';
import type { ImportProgress } from './import.ts';
import { DatasetFormatError } from './readers.ts';
import { tempFiles } from '../../test/support/temp-dir.ts';

const HH_FILE = HH_HARMLESS_FILE;
const { dir, file } = tempFiles('import');

const TABLES = ['datasets', 'examples', 'example_edits'];
function counts(db: StudioDatabase): Record<string, number> {
  return Object.fromEntries(TABLES.map((t) => [t, db.sqlite.prepare<[], number>(`SELECT count(*) FROM ${t}`).pluck().get() as number]));
}

/** An independent reading of the HH file: prompt = the longest common prefix of chosen and
 *  rejected, cut after its last "\n\nAssistant:"; split from sha256 directly. */
function independentHhCounts(): { lines: number; distinct: number; train: number; eval: number } {
  const lines = gunzipSync(readFileSync(HH_FILE)).toString('utf8').split('\n').filter((l) => l.trim() !== '');
  const distinct = new Set<string>();
  let evalCount = 0;
  for (const l of lines) {
    const { chosen, rejected } = JSON.parse(l) as { chosen: string; rejected: string };
    distinct.add(JSON.stringify([chosen, rejected]));
    let k = 0;
    while (k < chosen.length && chosen[k] === rejected[k]) k++;
    const common = chosen.slice(0, k);
    const prompt = common.slice(0, common.lastIndexOf('\n\nAssistant:') + '\n\nAssistant:'.length);
    const x = createHash('sha256').update(prompt).digest().readBigUInt64BE(0);
    if (Number(x) / 2 ** 64 < 0.2) evalCount++;
  }
  return { lines: lines.length, distinct: distinct.size, train: lines.length - evalCount, eval: evalCount };
}

describe('importing the real HH harmless-base test split', () => {
  test('imports 2312 examples, as an independent count says, split 80/20 by prompt', async (t) => {
    const expected = independentHhCounts();
    assert.deepEqual(expected, { lines: 2312, distinct: 2312, train: 1847, eval: 465 });

    const db = await openDatabase(':memory:');
    const r = await importDataset(db, HH_FILE, { name: 'harmless' });
    t.diagnostic(`HH import: ${r.ms.toFixed(0)} ms for ${r.records} records (${(r.bytes / 1024).toFixed(0)} KB gzip)`);
    assert.equal(r.format, 'hh');
    assert.deepEqual([r.records, r.inserted, r.duplicates, r.train, r.eval], [2312, expected.distinct, 0, expected.train, expected.eval]);
    const [d] = new DatasetStore(db).list();
    assert.deepEqual([d.name, d.examples, d.train, d.eval, d.sourceFormat, d.sourceRecords, d.sourceDuplicates], ['harmless', 2312, 1847, 465, 'hh', 2312, 0]);
    assert.equal(d.sourceFile, HH_FILE);

    // Every stored example is a pair whose prompt + chosen rebuilds the chosen transcript.
    const [first] = new DatasetStore(db).searchExamples(d.id, { limit: 1 }).items;
    const firstLine = JSON.parse(gunzipSync(readFileSync(HH_FILE)).toString('utf8').split('\n')[0]) as { chosen: string; rejected: string };
    assert.equal(first.prompt + first.chosen, firstLine.chosen);
    assert.equal(first.prompt + first.rejected, firstLine.rejected);
    assert.equal(first.response, first.chosen);
    assert.equal(first.source, 'harmless-base-test.jsonl.gz:1');

    await assert.rejects(importDataset(db, HH_FILE, { name: 'harmless' }), /A dataset named "harmless" already exists; choose another name/);
    assert.deepEqual(counts(db), { datasets: 1, examples: 2312, example_edits: 0 });
    db.close();
  });

  test('the file twice over keeps 2312 examples and counts 2312 duplicates', async () => {
    const twice = file('twice.jsonl.gz', gzipSync(Buffer.concat([gunzipSync(readFileSync(HH_FILE)), gunzipSync(readFileSync(HH_FILE))])));
    const db = await openDatabase(':memory:');
    const r = await importDataset(db, twice, { name: 'twice', batchRows: 500 });
    assert.deepEqual([r.records, r.inserted, r.duplicates, r.train, r.eval], [4624, 2312, 2312, 1847, 465]);
    db.close();
  });

  test('a second connection sees nothing until the import commits, then everything', async () => {
    const dbPath = join(dir, 'wal.db');
    const writer = await openDatabase(dbPath);
    const reader = await openDatabase(dbPath, { busyTimeoutMs: 20 });
    const readerStore = new DatasetStore(reader);
    let checked = false;
    const r = await importDataset(writer, HH_FILE, {
      name: 'harmless',
      batchRows: 100,
      progressIntervalMs: 0,
      onProgress: (p) => {
        if (checked || p.examples < 1000) return;
        checked = true;
        // Written on the import's connection (read here past its guard)...
        const own = writer.sqlite.prepare<[], number>('SELECT count(*) FROM examples').pluck().get() as number;
        assert.ok(own >= 900, `rows written so far: ${own}`);
        // ...but invisible to the other connection, which cannot write meanwhile.
        assert.deepEqual(readerStore.list(), []);
        assert.deepEqual(counts(reader), { datasets: 0, examples: 0, example_edits: 0 });
        assert.throws(() => readerStore.create({ name: 'interleaved' }), /database is locked/);
        assert.throws(() => new DatasetStore(writer).list(), /busy with importing the dataset "harmless"/);
      },
    });
    assert.ok(checked);
    assert.equal(r.inserted, 2312);
    assert.deepEqual(counts(reader), { datasets: 1, examples: 2312, example_edits: 0 });
    assert.equal(writer.busyWith, undefined);
    writer.close();
    reader.close();
  });

  test('progress comes at most every 100 ms with growing byte counts', async () => {
    // On a fake clock that advances 1 ms at each reading (the import reads it once per
    // example), so that the machine's load cannot move the reports.
    let clock = 0;
    const db = await openDatabase(':memory:');
    const seen: (ImportProgress & { at: number })[] = [];
    await importDataset(db, HH_FILE, { name: 'h', now: () => clock++, onProgress: (p) => seen.push({ ...p, at: clock }) });
    // Never more often than every 100 ms, and not less often either: one report per 100 ms of the clock.
    assert.ok(seen.length >= Math.floor(clock / 100) - 1, `${seen.length} reports in ${clock} ms`);
    for (let i = 1; i < seen.length; i++) {
      assert.ok(seen[i].at - seen[i - 1].at >= 100, `reports ${i - 1} and ${i} are ${seen[i].at - seen[i - 1].at} ms apart`);
      // The examples grow between reports; the bytes read grow by whole chunks, not at every report.
      assert.ok(seen[i].bytesRead >= seen[i - 1].bytesRead && seen[i].examples > seen[i - 1].examples);
    }
    assert.ok(seen.at(-1)!.bytesRead > seen[0].bytesRead);
    for (const p of seen) assert.ok(p.bytesRead <= p.totalBytes && p.totalBytes === 742801);
    db.close();
  });
});

describe('bad input leaves the store exactly as it was', () => {
  const good = (i: number): string => JSON.stringify({ prompt: `prompt ${i}`, response: `response ${i}` });
  const goodLines = (k: number): string => Array.from({ length: k }, (_, i) => `${good(i)}\n`).join('');
  const hh = (p: string, c: string, r: string): string => JSON.stringify({ chosen: `\n\nHuman: ${p}\n\nAssistant: ${c}`, rejected: `\n\nHuman: ${p}\n\nAssistant: ${r}` });
  const cases: { name: string; file: () => string; line: number; pattern: RegExp }[] = [
    { name: 'invalid UTF-8', line: 6, pattern: /not valid UTF-8/, file: () => file('latin1.jsonl', Buffer.concat([Buffer.from(goodLines(5)), Buffer.from([0x7b, 0xff, 0x7d, 0x0a])])) },
    { name: 'truncated gzip', line: 0, pattern: /the gzip data is truncated or damaged/, file: () => { const gz = gzipSync(goodLines(20000)); return file('cut.jsonl.gz', gz.subarray(0, gz.length - 100)); } },
    { name: 'truncated JSON', line: 6, pattern: /not valid JSON/, file: () => file('cut.jsonl', `${goodLines(5)}{"prompt": "p", "respo`) },
    { name: 'non-object line', line: 6, pattern: /the line is a number, not a JSON object/, file: () => file('num.jsonl', `${goodLines(5)}42\n`) },
    { name: 'missing field', line: 6, pattern: /the field "prompt" is missing/, file: () => file('missing.jsonl', `${goodLines(5)}{"response": "r"}\n`) },
    { name: 'wrong field type', line: 6, pattern: /the field "response" is an array, not a string/, file: () => file('type.jsonl', `${goodLines(5)}{"prompt": "p", "response": ["r"]}\n`) },
    { name: 'HH prompts that differ', line: 4, pattern: /"chosen" and "rejected" differ before their final Assistant turn/, file: () => file('hh.jsonl', `${hh('a', 'x', 'y')}\n${hh('b', 'x', 'y')}\n${hh('c', 'x', 'y')}\n${JSON.stringify({ chosen: '\n\nHuman: a\n\nAssistant: x', rejected: '\n\nHuman: b\n\nAssistant: y' })}\n`) },
    { name: 'unterminated CSV quote', line: 5, pattern: /unterminated quote/, file: () => file('open.csv', 'prompt,response\na,b\nc,d\ne,f\n"g,h\ni,j\n') },
    { name: 'stray CSV quote', line: 5, pattern: /stray quote/, file: () => file('stray.csv', 'prompt,response\na,b\nc,d\ne,f\ng,5" tall\n') },
    { name: 'empty file', line: 0, pattern: /has no examples: it is empty/, file: () => file('empty.jsonl', '') },
    { name: '10 MB line', line: 6, pattern: /the line is longer than 8 MB, the limit for one example/, file: () => file('long.jsonl', `${goodLines(5)}${JSON.stringify({ prompt: 'p', response: 'x'.repeat(10 * 1024 * 1024) })}\n`) },
  ];

  for (const c of cases) {
    test(c.name, async () => {
      const db = await openDatabase(':memory:');
      const existing = await importDataset(db, file('existing.jsonl', goodLines(3)), { name: 'existing' });
      const store = new DatasetStore(db);
      store.editExample(store.searchExamples(existing.datasetId, { limit: 1 }).items[0].id, { response: 'edited' });
      const before = counts(db);
      const path = c.file();
      await assert.rejects(importDataset(db, path, { name: 'bad', batchRows: 2 }), (err: unknown) => {
        assert.ok(err instanceof DatasetFormatError, String(err));
        if (c.line > 0) assert.equal(err.line, c.line);
        assert.ok(err.message.includes(`line ${err.line}: `) || /has no examples/.test(err.message), err.message);
        assert.match(err.message, c.pattern);
        return true;
      });
      assert.deepEqual(counts(db), before);
      assert.equal(db.busyWith, undefined);
      assert.equal(db.sqlite.inTransaction, false);
      assert.equal(store.getByName('bad'), undefined);
      db.close();
    });
  }

  test('a cancelled import saves nothing', async () => {
    const db = await openDatabase(':memory:');
    const controller = new AbortController();
    await assert.rejects(importDataset(db, HH_FILE, {
      name: 'h',
      batchRows: 50,
      progressIntervalMs: 0,
      signal: controller.signal,
      onProgress: (p) => { if (p.examples === 300) controller.abort(); },
    }), /The import of "h" was cancelled; nothing was saved\./);
    assert.deepEqual(counts(db), { datasets: 0, examples: 0, example_edits: 0 });
    db.close();
  });

  test('a missing file and a bad eval fraction are sentences', async () => {
    const db = await openDatabase(':memory:');
    await assert.rejects(importDataset(db, join(dir, 'nope.jsonl'), { name: 'x' }), /Could not read .*nope\.jsonl \(ENOENT\); check that the path names a dataset file\./);
    await assert.rejects(importDataset(db, HH_FILE, { name: 'x', evalFraction: 2 }), /The eval fraction must be a number from 0 to 1/);
    assert.deepEqual(counts(db), { datasets: 0, examples: 0, example_edits: 0 });
    db.close();
  });
});

test('an exported dataset imports back to the same examples and splits', async () => {
  const db = await openDatabase(':memory:');
  const store = new DatasetStore(db);
  const src = file('mix.csv', 'prompt,chosen,rejected\n"multi\nline",yes,no\nq,"say ""a""",b\n');
  const a = await importDataset(db, src, { name: 'a' });
  const out = join(dir, 'a-export.jsonl');
  await finished(store.exportJsonl(a.datasetId).pipe(createWriteStream(out)));
  const b = await importDataset(db, out, { name: 'b' });
  const strip = (id: number): unknown[] => store.searchExamples(id).items.map(({ prompt, response, chosen, rejected, split, hash }) => ({ prompt, response, chosen, rejected, split, hash }));
  assert.deepEqual(strip(b.datasetId), strip(a.datasetId));
  assert.equal(b.format, 'jsonl');
  db.close();
});

test('memory stays bounded importing a ~200 MB JSONL file', { skip: process.env.AFD_SLOW_TESTS === '1' ? false : 'set AFD_SLOW_TESTS=1 to run' }, async (t) => {
  const path = join(dir, 'big.jsonl');
  const out = createWriteStream(path);
  const filler = 'lorem ipsum dolor sit amet '.repeat(36); // ~1 KB per line
  let bytes = 0;
  for (let i = 0; bytes < 200 * 1024 * 1024; i++) {
    const line = `${JSON.stringify({ prompt: `prompt ${i}: ${filler.slice(0, 200)}`, response: `${i} ${filler}` })}\n`;
    bytes += line.length;
    if (!out.write(line)) await once(out, 'drain');
  }
  out.end();
  await finished(out);

  const db = await openDatabase(join(dir, 'big.db'));
  globalThis.gc?.();
  const rssBefore = process.memoryUsage().rss;
  let peak = rssBefore;
  const timer = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); }, 20);
  const r = await importDataset(db, path, { name: 'big', onProgress: () => { peak = Math.max(peak, process.memoryUsage().rss); } });
  clearInterval(timer);
  peak = Math.max(peak, process.memoryUsage().rss);
  const growthMb = (peak - rssBefore) / 2 ** 20;
  const summary = `big import: ${(bytes / 2 ** 20).toFixed(0)} MB, ${r.inserted} examples in ${(r.ms / 1000).toFixed(1)} s; RSS ${(rssBefore / 2 ** 20).toFixed(0)} MB -> peak ${(peak / 2 ** 20).toFixed(0)} MB (growth ${growthMb.toFixed(0)} MB)`;
  t.diagnostic(summary);
  console.log(summary);
  assert.equal(r.inserted, r.records);
  assert.ok(growthMb < 200, summary);
  db.close();
});

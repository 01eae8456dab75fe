import assert from 'node:assert/strict';
import { text } from 'node:stream/consumers';
import { beforeEach, describe, test } from 'node:test';
import type { StudioDatabase } from './database.ts';
import { openDatabase } from './database.ts';
import type { NewExample } from './datasets.ts';
import { DatasetStore, exampleHash } from './datasets.ts';

let db: StudioDatabase;
let store: DatasetStore;
beforeEach(async () => {
  db?.close();
  db = await openDatabase(':memory:');
  store = new DatasetStore(db);
});

const rows: NewExample[] = [
  { prompt: 'How do I bake bread?', response: 'Flour, water, salt, yeast.', split: 'train', tags: ['cooking'], source: 'a.jsonl:1' },
  { prompt: 'Is 100% rye hard?', response: 'A little.', split: 'eval', tags: ['cooking', 'hard'] },
  { prompt: 'Tell me a joke', response: 'No.', chosen: 'No.', rejected: 'A rude one', split: 'train' },
  { prompt: 'snake_case or camelCase?', response: 'Either, consistently.', split: 'eval' },
];

describe('datasets', () => {
  test('create, list with counts, get, get by name', () => {
    const d = store.create({ name: '  demo  ', sourceFile: '/x/demo.jsonl', sourceFormat: 'jsonl' });
    assert.equal(d.name, 'demo');
    assert.equal(store.addExamples(d.id, rows), 4);
    store.create({ name: 'empty' });
    assert.deepEqual(store.list().map((s) => [s.name, s.examples, s.train, s.eval]), [['demo', 4, 2, 2], ['empty', 0, 0, 0]]);
    assert.equal(store.get(d.id)?.examples, 4);
    assert.equal(store.getByName('demo')?.sourceFile, '/x/demo.jsonl');
    assert.equal(store.get(999), undefined);
  });

  test('a taken or empty name is refused with a sentence', () => {
    store.create({ name: 'demo' });
    assert.throws(() => store.create({ name: 'demo' }), /A dataset named "demo" already exists; choose another name or delete the old dataset first\./);
    assert.throws(() => store.create({ name: '   ' }), /A dataset needs a name; type one in\./);
  });

  test('exact duplicates are stored once; tags and source do not make a difference', () => {
    const d = store.create({ name: 'demo' });
    assert.equal(store.addExamples(d.id, [...rows, { ...rows[0], tags: ['other'], source: 'b.jsonl:9', split: 'train' }]), 4);
    assert.equal(store.addExamples(d.id, rows), 0);
    assert.equal(store.get(d.id)?.examples, 4);
    // Same text in another field is different content.
    assert.notEqual(exampleHash({ prompt: 'a', response: 'b' }), exampleHash({ prompt: 'a', chosen: 'b', rejected: 'c' }));
    assert.notEqual(exampleHash({ prompt: 'ab', response: 'c' }), exampleHash({ prompt: 'a', response: 'bc' }));
  });

  test('invalid examples are refused before anything is written', () => {
    const d = store.create({ name: 'demo' });
    assert.throws(() => store.addExamples(d.id, [rows[0], { prompt: 'p', chosen: 'c', split: 'train' }]), /has only one of "chosen" and "rejected"/);
    assert.throws(() => store.addExamples(d.id, [{ prompt: 'p', split: 'train', source: 'f.csv:3' }]), /The example from f\.csv:3 has no response; give a response or a chosen\/rejected pair\./);
    assert.equal(store.get(d.id)?.examples, 0);
  });

  test('search: text (LIKE, with % and _ taken literally), split, tag, pagination', () => {
    const d = store.create({ name: 'demo' });
    store.addExamples(d.id, rows);
    const prompts = (q: Parameters<DatasetStore['searchExamples']>[1]): string[] => store.searchExamples(d.id, q).items.map((e) => e.prompt);
    assert.deepEqual(prompts({ text: 'BREAD' }), ['How do I bake bread?']);
    assert.deepEqual(prompts({ text: 'rude' }), ['Tell me a joke']); // rejected is searched too
    assert.deepEqual(prompts({ text: '100%' }), ['Is 100% rye hard?']);
    assert.deepEqual(prompts({ text: '%' }), ['Is 100% rye hard?']);
    assert.deepEqual(prompts({ text: 'e_c' }), ['snake_case or camelCase?']);
    assert.deepEqual(prompts({ split: 'eval' }), ['Is 100% rye hard?', 'snake_case or camelCase?']);
    assert.deepEqual(prompts({ tag: 'cooking' }), ['How do I bake bread?', 'Is 100% rye hard?']);
    assert.deepEqual(prompts({ tag: 'cooking', split: 'eval', text: 'rye' }), ['Is 100% rye hard?']);
    const page = store.searchExamples(d.id, { limit: 3, offset: 2 });
    assert.deepEqual([page.total, page.limit, page.offset, page.items.length], [4, 3, 2, 2]);
    assert.equal(store.searchExamples(d.id, { limit: 10_000 }).limit, 500);
    assert.throws(() => store.searchExamples(d.id, { split: 'test' as 'eval' }), /"test" is not a split; use "train" or "eval"\./);
  });

  test('edit records each changed field in the history and updates the hash', () => {
    const d = store.create({ name: 'demo' });
    store.addExamples(d.id, rows);
    const [first] = store.searchExamples(d.id).items;
    const edited = store.editExample(first.id, { response: 'Flour and water.', tags: ['cooking', 'easy'], split: 'eval' });
    assert.equal(edited.response, 'Flour and water.');
    assert.deepEqual(edited.tags, ['cooking', 'easy']);
    assert.equal(edited.hash, exampleHash({ prompt: first.prompt, response: 'Flour and water.' }));
    assert.ok(edited.updatedAt >= first.updatedAt);
    assert.deepEqual(store.history(first.id).map((h) => [h.field, h.oldValue, h.newValue]), [
      ['response', 'Flour, water, salt, yeast.', 'Flour and water.'],
      ['split', 'train', 'eval'],
      ['tags', '["cooking"]', '["cooking","easy"]'],
    ]);
    assert.deepEqual(store.editExample(first.id, { response: 'Flour and water.' }), edited); // no change, no history
    assert.equal(store.history(first.id).length, 3);
    assert.deepEqual([store.get(d.id)?.train, store.get(d.id)?.eval], [1, 3]);
  });

  test('an edit that would duplicate another example, or break it, is refused and changes nothing', () => {
    const d = store.create({ name: 'demo' });
    store.addExamples(d.id, rows);
    const [a, b] = store.searchExamples(d.id).items;
    assert.throws(() => store.editExample(b.id, { prompt: a.prompt, response: a.response }), new RegExp(`would make example #${b.id} identical to example #${a.id} of the same dataset`));
    assert.throws(() => store.editExample(b.id, { response: null }), new RegExp(`Example #${b.id} has no response`));
    assert.throws(() => store.editExample(999, { prompt: 'x' }), /There is no example #999/);
    assert.deepEqual(store.getExample(b.id), b);
    assert.deepEqual(store.history(b.id), []);
  });

  test('deleting a dataset deletes its examples and their history', () => {
    const d = store.create({ name: 'demo' });
    store.addExamples(d.id, rows);
    const [first] = store.searchExamples(d.id).items;
    store.editExample(first.id, { prompt: 'changed' });
    assert.equal(store.delete(d.id), true);
    assert.equal(store.delete(d.id), false);
    const count = (t: string): number => db.sqlite.prepare<[], number>(`SELECT count(*) FROM ${t}`).pluck().get() as number;
    assert.deepEqual([count('datasets'), count('examples'), count('example_edits')], [0, 0, 0]);
  });

  test('export streams JSON Lines in id order, page by page', async () => {
    const d = store.create({ name: 'demo' });
    const many: NewExample[] = Array.from({ length: 600 }, (_, i) => ({ prompt: `p${i}`, response: `r${i}`, split: i % 5 === 0 ? 'eval' : 'train' }));
    store.addExamples(d.id, [...rows, ...many]);
    const lines = (await text(store.exportJsonl(d.id))).split('\n');
    assert.equal(lines.pop(), '');
    assert.equal(lines.length, 604);
    assert.deepEqual(JSON.parse(lines[0]), { prompt: rows[0].prompt, response: rows[0].response, split: 'train', tags: ['cooking'], source: 'a.jsonl:1' });
    assert.deepEqual(JSON.parse(lines[2]), { prompt: 'Tell me a joke', response: 'No.', chosen: 'No.', rejected: 'A rude one', split: 'train', tags: [] });
    assert.equal(JSON.parse(lines[603]).prompt, 'p599');
    const evalLines = (await text(store.exportJsonl(d.id, { split: 'eval' }))).trim().split('\n');
    assert.equal(evalLines.length, 2 + 120);
    assert.throws(() => store.exportJsonl(999), /There is no dataset #999 to export/);
  });
});

describe('imports in short transactions (the import job)', () => {
  const runId = (): number => Number(db.sqlite.prepare("INSERT INTO runs (stage) VALUES ('import-dataset')").run().lastInsertRowid);

  test('the dataset stays hidden until finishImport, which records the counts', () => {
    const run = runId();
    const id = store.beginImport(run, { name: 'demo', sourceFile: '/x/demo.jsonl' });
    assert.equal(store.addImportBatch(run, rows.slice(0, 2)), 2);
    assert.equal(store.addImportBatch(run, [rows[0], ...rows.slice(2)]), 2); // rows[0] again: a duplicate
    assert.deepEqual([store.list(), store.get(id), store.getByName('demo')], [[], undefined, undefined]);
    assert.throws(() => store.create({ name: 'demo' }), new RegExp(`A dataset named "demo" is being imported right now \\(run #${run}\\); wait for that import to finish or choose another name\\.`));
    const d = store.finishImport(run, { format: 'jsonl', records: 5 });
    assert.deepEqual([d.id, d.examples, d.train, d.eval, d.sourceRecords, d.sourceDuplicates, d.sourceFormat, d.importRunId], [id, 4, 2, 2, 5, 1, 'jsonl', run]);
    assert.deepEqual(store.list().map((x) => x.name), ['demo']);
    // Finished: a discard no longer touches it, and a second finish is refused.
    assert.equal(store.discardImport(run), false);
    assert.throws(() => store.finishImport(run, { format: 'jsonl', records: 5 }), /Run #\d+ has no import in progress/);
  });

  test('discardImport deletes the hidden dataset with every row written so far', () => {
    const run = runId();
    store.beginImport(run, { name: 'half' });
    store.addImportBatch(run, rows);
    assert.throws(() => store.addImportBatch(run, [{ prompt: 'p', split: 'train' }]), /has no response/);
    assert.equal(db.sqlite.prepare('SELECT count(*) FROM examples').pluck().get(), 4); // the bad batch left nothing
    assert.equal(store.discardImport(run), true);
    assert.deepEqual(db.sqlite.prepare('SELECT (SELECT count(*) FROM datasets) AS d, (SELECT count(*) FROM examples) AS e').get(), { d: 0, e: 0 });
    assert.equal(store.create({ name: 'half' }).name, 'half'); // the name is free again
  });
});

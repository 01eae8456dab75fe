// Datasets and their examples: create, list with counts, browse and search, edit with
// history, delete, export. Bulk imports either write through DatasetImportWriter inside a
// LongTransaction (see main/datasets/import.ts), or, as a job, in short transactions into
// a dataset that stays hidden until its import finishes (beginImport ... finishImport).
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { LongTransaction, Statement, StudioDatabase } from './database.ts';
import { parseJson } from './json.ts';

export type DatasetFormat = 'hh' | 'jsonl' | 'csv';
export type Split = 'train' | 'eval';

export interface Dataset {
  id: number;
  name: string;
  createdAt: string;
  sourceFile: string | null;
  sourceFormat: DatasetFormat | null;
  /** Records read from the source file, and how many of them were exact duplicates. */
  sourceRecords: number;
  sourceDuplicates: number;
  /** The run that imported it, if an import job did. */
  importRunId: number | null;
}

export interface DatasetSummary extends Dataset {
  examples: number;
  train: number;
  eval: number;
}

export interface NewDataset {
  name: string;
  sourceFile?: string | null;
  sourceFormat?: DatasetFormat | null;
}

/** The fields that make an example what it is; its hash covers exactly these. */
export interface ExampleContent {
  prompt: string;
  response?: string | null;
  chosen?: string | null;
  rejected?: string | null;
}

export interface NewExample extends ExampleContent {
  split: Split;
  source?: string | null;
  tags?: string[];
}

export interface Example {
  id: number;
  datasetId: number;
  prompt: string;
  response: string | null;
  chosen: string | null;
  rejected: string | null;
  source: string | null;
  tags: string[];
  split: Split;
  hash: string;
  createdAt: string;
  updatedAt: string;
}

export interface ExampleQuery {
  /** Substring of prompt, response, chosen or rejected (LIKE; case-insensitive for ASCII). */
  text?: string;
  split?: Split;
  tag?: string;
  /** Page size, 1..500 (default 50), and rows to skip. */
  limit?: number;
  offset?: number;
}

export interface ExamplePage {
  items: Example[];
  /** Matches of the whole query, for the pager. */
  total: number;
  limit: number;
  offset: number;
}

export interface ExamplePatch {
  prompt?: string;
  response?: string | null;
  chosen?: string | null;
  rejected?: string | null;
  tags?: string[];
  split?: Split;
}

export type ExampleField = keyof ExamplePatch;

export interface ExampleEdit {
  id: number;
  exampleId: number;
  field: ExampleField;
  oldValue: string | null;
  newValue: string | null;
  at: string;
}

/** sha256 of the content fields, so that identical examples collapse on import. */
export function exampleHash(e: ExampleContent): string {
  return createHash('sha256').update(JSON.stringify([e.prompt, e.response ?? null, e.chosen ?? null, e.rejected ?? null])).digest('hex');
}

const DATASET_COLUMNS = 'id, name, created_at AS createdAt, source_file AS sourceFile, source_format AS sourceFormat, source_records AS sourceRecords, source_duplicates AS sourceDuplicates, import_run_id AS importRunId';
const EXAMPLE_COLUMNS = 'id, dataset_id AS datasetId, prompt, response, chosen, rejected, source, tags, split, hash, created_at AS createdAt, updated_at AS updatedAt';
// Counts per split come from the (dataset_id, split, id) index alone (migration 2).
const COUNTS = `SELECT dataset_id AS datasetId, split, count(*) AS n FROM examples %WHERE% GROUP BY dataset_id, split`;
// Datasets with ready = 0 are imports in progress (migration 3): invisible until complete.
const INSERT_DATASET = 'INSERT INTO datasets (name, source_file, source_format, ready, import_run_id) VALUES (@name, @sourceFile, @sourceFormat, @ready, @importRunId)';
const IMPORTING = 'SELECT id FROM datasets WHERE import_run_id = ? AND ready = 0';
const INSERT_EXAMPLE = `INSERT INTO examples (dataset_id, prompt, response, chosen, rejected, source, tags, split, hash)
  VALUES (@datasetId, @prompt, @response, @chosen, @rejected, @source, @tags, @split, @hash) ON CONFLICT (dataset_id, hash) DO NOTHING`;
const PAGE_MAX = 500;
const EXPORT_PAGE = 256;

type ExampleRow = Omit<Example, 'tags'> & { tags: string };
type CountRow = { datasetId: number; split: Split; n: number };
type InsertDatasetParams = { name: string; sourceFile: string | null; sourceFormat: DatasetFormat | null; ready: number; importRunId: number | null };
type InsertExampleParams = {
  datasetId: number; prompt: string; response: string | null; chosen: string | null; rejected: string | null;
  source: string | null; tags: string; split: Split; hash: string;
};
type SourceCounts = { id: number; format: DatasetFormat | null; records: number; duplicates: number };
// What a search may filter on; better-sqlite3 ignores the keys its SQL text does not name.
type SearchParams = { datasetId: number; split?: Split; tag?: string; pattern?: string; limit: number; offset: number };

export class DatasetStore {
  private readonly db: StudioDatabase;

  constructor(db: StudioDatabase) {
    this.db = db;
  }

  create(input: NewDataset): Dataset {
    const id = insertDataset(this.db, this.db.statement<[InsertDatasetParams]>(INSERT_DATASET), input);
    return this.getDataset(id) as Dataset;
  }

  /** Every dataset, by name, with its example counts. */
  list(): DatasetSummary[] {
    const datasets = this.db.statement<[], Dataset>(`SELECT ${DATASET_COLUMNS} FROM datasets WHERE ready = 1 ORDER BY name, id`).all();
    const counts = new Map<number, CountRow[]>();
    for (const c of this.db.statement<[], CountRow>(COUNTS.replace('%WHERE%', 'WHERE dataset_id IN (SELECT id FROM datasets WHERE ready = 1)')).all()) {
      counts.set(c.datasetId, [...(counts.get(c.datasetId) ?? []), c]);
    }
    return datasets.map((d) => withCounts(d, counts.get(d.id) ?? []));
  }

  get(id: number): DatasetSummary | undefined {
    const d = this.getDataset(id);
    if (d === undefined) return undefined;
    return withCounts(d, this.db.statement<[number], CountRow>(COUNTS.replace('%WHERE%', 'WHERE dataset_id = ?')).all(id));
  }

  getByName(name: string): DatasetSummary | undefined {
    const row = this.db.statement<[string], { id: number }>('SELECT id FROM datasets WHERE name = ? AND ready = 1').get(name);
    return row === undefined ? undefined : this.get(row.id);
  }

  /** Deletes the dataset with its examples and their history; false if there was none. */
  delete(id: number): boolean {
    return this.db.statement<[number]>('DELETE FROM datasets WHERE id = ?').run(id).changes > 0;
  }

  /** Adds examples in one transaction; exact duplicates of existing ones are skipped. */
  addExamples(datasetId: number, rows: readonly NewExample[]): number {
    return this.db.transaction(() => {
      const insert = this.db.statement<[InsertExampleParams]>(INSERT_EXAMPLE);
      let inserted = 0;
      for (const row of rows) inserted += insertExample(insert, datasetId, row);
      return inserted;
    });
  }

  getExample(id: number): Example | undefined {
    const row = this.db.statement<[number], ExampleRow>(`SELECT ${EXAMPLE_COLUMNS} FROM examples WHERE id = ?`).get(id);
    return row === undefined ? undefined : toExample(row);
  }

  /** One page of a dataset's examples in id order, filtered by text, split and tag. */
  searchExamples(datasetId: number, query: ExampleQuery = {}): ExamplePage {
    const limit = Math.min(PAGE_MAX, Math.max(1, Math.floor(query.limit ?? 50)));
    const offset = Math.max(0, Math.floor(query.offset ?? 0));
    const where = ['dataset_id = @datasetId'];
    const params: SearchParams = { datasetId, limit, offset };
    if (query.split !== undefined) {
      checkSplit(query.split);
      where.push('split = @split');
      params.split = query.split;
    }
    if (query.tag !== undefined) {
      where.push('EXISTS (SELECT 1 FROM json_each(examples.tags) WHERE json_each.value = @tag)');
      params.tag = query.tag;
    }
    if (query.text !== undefined && query.text !== '') {
      params.pattern = `%${query.text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
      where.push(`(${['prompt', 'response', 'chosen', 'rejected'].map((c) => `${c} LIKE @pattern ESCAPE '\\'`).join(' OR ')})`);
    }
    // One SQL text per combination of filters, so each is prepared once and cached.
    const condition = where.join(' AND ');
    const total = this.db.statement<[SearchParams], { n: number }>(`SELECT count(*) AS n FROM examples WHERE ${condition}`).get(params)?.n ?? 0;
    const items = this.db.statement<[SearchParams], ExampleRow>(`SELECT ${EXAMPLE_COLUMNS} FROM examples WHERE ${condition} ORDER BY id LIMIT @limit OFFSET @offset`)
      .all(params).map(toExample);
    return { items, total, limit, offset };
  }

  /** Changes an example and records each changed field in its history, atomically. */
  editExample(id: number, patch: ExamplePatch): Example {
    return this.db.transaction(() => {
      const before = this.getExample(id);
      if (before === undefined) throw new Error(`There is no example #${id}; it may have been deleted, so reload the list.`);
      const after: Example = { ...before };
      for (const field of ['prompt', 'response', 'chosen', 'rejected', 'tags', 'split'] as const) {
        if (patch[field] !== undefined) Object.assign(after, { [field]: patch[field] });
      }
      checkContent(after, `Example #${id}`);
      checkSplit(after.split);
      checkTags(after.tags);

      const changes: { field: ExampleField; old: string | null; new: string | null }[] = [];
      for (const field of ['prompt', 'response', 'chosen', 'rejected', 'split'] as const) {
        if (after[field] !== before[field]) changes.push({ field, old: before[field], new: after[field] });
      }
      const oldTags = JSON.stringify(before.tags);
      const newTags = JSON.stringify(after.tags);
      if (oldTags !== newTags) changes.push({ field: 'tags', old: oldTags, new: newTags });
      if (changes.length === 0) return before;

      const hash = exampleHash(after);
      const duplicate = this.db.statement<[number, string, number], { id: number }>('SELECT id FROM examples WHERE dataset_id = ? AND hash = ? AND id <> ?').get(before.datasetId, hash, id);
      if (duplicate !== undefined) {
        throw new Error(`This edit would make example #${id} identical to example #${duplicate.id} of the same dataset; change it differently, or delete one of the two.`);
      }
      this.db.statement<[Omit<InsertExampleParams, 'datasetId' | 'source'> & { id: number }]>(
        `UPDATE examples SET prompt = @prompt, response = @response, chosen = @chosen, rejected = @rejected, tags = @tags, split = @split, hash = @hash,
           updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = @id`,
      ).run({ id, prompt: after.prompt, response: after.response, chosen: after.chosen, rejected: after.rejected, tags: newTags, split: after.split, hash });
      const record = this.db.statement<[{ id: number; field: ExampleField; old: string | null; new: string | null }]>(
        'INSERT INTO example_edits (example_id, field, old_value, new_value) VALUES (@id, @field, @old, @new)',
      );
      for (const c of changes) record.run({ id, ...c });
      return this.getExample(id) as Example;
    });
  }

  /** The example's edits, oldest first. */
  history(exampleId: number): ExampleEdit[] {
    return this.db.statement<[number], ExampleEdit>(
      'SELECT id, example_id AS exampleId, field, old_value AS oldValue, new_value AS newValue, at FROM example_edits WHERE example_id = ? ORDER BY id',
    ).all(exampleId);
  }

  /** Character lengths of every example's prompt and response (the chosen text of a pair
   *  without one), for the dataset's statistics. */
  lengths(datasetId: number): { prompt: number; response: number | null; pair: number; hasResponse: number }[] {
    return this.db.statement<[number], { prompt: number; response: number | null; pair: number; hasResponse: number }>(
      `SELECT length(prompt) AS prompt, length(coalesce(response, chosen)) AS response, chosen IS NOT NULL AS pair, response IS NOT NULL AS hasResponse
       FROM examples WHERE dataset_id = ?`,
    ).all(datasetId);
  }

  /** How many examples carry each tag, most used first. */
  tagCounts(datasetId: number): { tag: string; count: number }[] {
    return this.db.statement<[number], { tag: string; count: number }>(
      'SELECT json_each.value AS tag, count(*) AS count FROM examples, json_each(examples.tags) WHERE dataset_id = ? GROUP BY json_each.value ORDER BY count DESC, tag',
    ).all(datasetId);
  }

  deleteExample(id: number): boolean {
    return this.db.statement<[number]>('DELETE FROM examples WHERE id = ?').run(id).changes > 0;
  }

  /** The dataset as JSON Lines ({prompt, response, chosen?, rejected?, split, tags, source}),
   *  which the importer reads back. Pages of rows are read on demand (keyset pagination),
   *  so no statement or transaction stays open between reads; edits made while the stream
   *  runs may or may not appear in it. */
  exportJsonl(datasetId: number, options: { split?: Split } = {}): Readable {
    const dataset = this.getDataset(datasetId);
    if (dataset === undefined) throw new Error(`There is no dataset #${datasetId} to export; reload the dataset list.`);
    if (options.split !== undefined) checkSplit(options.split);
    const sql = `SELECT ${EXAMPLE_COLUMNS} FROM examples WHERE dataset_id = ? AND id > ?${options.split === undefined ? '' : ' AND split = ?'} ORDER BY id LIMIT ${EXPORT_PAGE}`;
    const params: (string | number)[] = options.split === undefined ? [] : [options.split];
    let after = 0;
    const page = (): Example[] => this.db.statement<(string | number)[], ExampleRow>(sql).all(datasetId, after, ...params).map(toExample);
    return new Readable({
      encoding: 'utf8',
      read() {
        try {
          const rows = page();
          if (rows.length === 0) {
            this.push(null);
            return;
          }
          after = rows[rows.length - 1].id;
          this.push(rows.map(exportLine).join(''));
        } catch (err) {
          this.destroy(err as Error);
        }
      },
    });
  }

  /** Throws the sentence create() would if `name` is taken, before any work starts. */
  checkNameFree(name: string): void {
    const taken = nameTaken(this.db, name.trim());
    if (taken !== undefined) throw taken;
  }

  // The import of a job, in short transactions (each method is one): the dataset is
  // created hidden, filled batch by batch, and shown by finishImport; discardImport (on
  // cancel, failure, or after a crash) deletes it with everything written so far.

  /** Creates the hidden dataset that run `runId` will fill; refuses a taken name. */
  beginImport(runId: number, input: NewDataset): number {
    return this.db.transaction(() => insertDataset(this.db, this.db.statement<[InsertDatasetParams]>(INSERT_DATASET), input, runId));
  }

  /** Stores one batch of run `runId`'s import; returns how many rows were new. */
  addImportBatch(runId: number, rows: readonly NewExample[]): number {
    return this.db.transaction(() => {
      const datasetId = this.importing(runId);
      const insert = this.db.statement<[InsertExampleParams]>(INSERT_EXAMPLE);
      let inserted = 0;
      for (const row of rows) inserted += insertExample(insert, datasetId, row);
      return inserted;
    });
  }

  /** Records the source's counts and shows the dataset. */
  finishImport(runId: number, source: { format: DatasetFormat | null; records: number }): DatasetSummary {
    return this.db.transaction(() => {
      const datasetId = this.importing(runId);
      const stored = this.db.statement<[number], number>('SELECT count(*) FROM examples WHERE dataset_id = ?').pluck().get(datasetId) as number;
      this.db.statement<[SourceCounts]>('UPDATE datasets SET source_format = @format, source_records = @records, source_duplicates = @duplicates, ready = 1 WHERE id = @id')
        .run({ id: datasetId, format: source.format, records: source.records, duplicates: source.records - stored });
      return this.get(datasetId) as DatasetSummary;
    });
  }

  /** Deletes the unfinished import of run `runId`, if there is one. */
  discardImport(runId: number): boolean {
    return this.db.statement<[number]>('DELETE FROM datasets WHERE import_run_id = ? AND ready = 0').run(runId).changes > 0;
  }

  private importing(runId: number): number {
    const row = this.db.statement<[number], { id: number }>(IMPORTING).get(runId);
    if (row === undefined) throw new Error(`Run #${runId} has no import in progress; it may have been cancelled, so start the import again.`);
    return row.id;
  }

  private getDataset(id: number): Dataset | undefined {
    return this.db.statement<[number], Dataset>(`SELECT ${DATASET_COLUMNS} FROM datasets WHERE id = ? AND ready = 1`).get(id);
  }
}

/** The writes of one bulk import, all inside the caller's LongTransaction. */
export class DatasetImportWriter {
  private readonly tx: LongTransaction;

  constructor(tx: LongTransaction) {
    this.tx = tx;
  }

  createDataset(input: NewDataset): number {
    return insertDataset(this.tx, this.tx.statement<[InsertDatasetParams]>(INSERT_DATASET), input);
  }

  /** Inserts a batch in one SAVEPOINT; returns how many rows of each split were new. */
  insertExamples(datasetId: number, rows: readonly NewExample[]): { inserted: number; train: number; eval: number } {
    return this.tx.savepoint(() => {
      const insert = this.tx.statement<[InsertExampleParams]>(INSERT_EXAMPLE);
      let train = 0;
      let evalCount = 0;
      for (const row of rows) {
        if (insertExample(insert, datasetId, row) === 1) {
          if (row.split === 'train') train++;
          else evalCount++;
        }
      }
      return { inserted: train + evalCount, train, eval: evalCount };
    });
  }

  finish(datasetId: number, source: { format: DatasetFormat | null; records: number; duplicates: number }): void {
    this.tx.statement<[SourceCounts]>('UPDATE datasets SET source_format = @format, source_records = @records, source_duplicates = @duplicates WHERE id = @id')
      .run({ id: datasetId, format: source.format, records: source.records, duplicates: source.duplicates });
  }
}

/** Inserts a dataset row, shown at once, or hidden until run `importRunId` finishes it. */
function insertDataset(db: Pick<StudioDatabase, 'statement'>, statement: Statement<[InsertDatasetParams]>, input: NewDataset, importRunId: number | null = null): number {
  const name = input.name.trim();
  if (name === '') throw new Error('A dataset needs a name; type one in.');
  try {
    return Number(statement.run({ name, sourceFile: input.sourceFile ?? null, sourceFormat: input.sourceFormat ?? null, ready: importRunId === null ? 1 : 0, importRunId }).lastInsertRowid);
  } catch (err) {
    if ((err as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') throw nameTaken(db, name, err) ?? err;
    throw err;
  }
}

/** The sentence for a dataset name in use (by a dataset or an import in progress). */
function nameTaken(db: Pick<StudioDatabase, 'statement'>, name: string, cause?: unknown): Error | undefined {
  const holder = db.statement<[string], { ready: number; runId: number | null }>('SELECT ready, import_run_id AS runId FROM datasets WHERE name = ?').get(name);
  if (holder === undefined) return undefined;
  if (holder.ready === 0) return new Error(`A dataset named "${name}" is being imported right now (run #${holder.runId}); wait for that import to finish or choose another name.`, { cause });
  return new Error(`A dataset named "${name}" already exists; choose another name or delete the old dataset first.`, { cause });
}

function insertExample(statement: Statement<[InsertExampleParams]>, datasetId: number, row: NewExample): number {
  checkContent(row, row.source == null ? 'An example' : `The example from ${row.source}`);
  const tags = row.tags ?? [];
  checkTags(tags);
  return statement.run({
    datasetId, prompt: row.prompt, response: row.response ?? null, chosen: row.chosen ?? null, rejected: row.rejected ?? null,
    source: row.source ?? null, tags: JSON.stringify(tags), split: row.split, hash: exampleHash(row),
  }).changes;
}

function checkContent(e: ExampleContent, label: string): void {
  if ((e.chosen == null) !== (e.rejected == null)) throw new Error(`${label} has only one of "chosen" and "rejected"; a preference pair needs both, so fill in both or clear both.`);
  if (e.response == null && e.chosen == null) throw new Error(`${label} has no response; give a response or a chosen/rejected pair.`);
}

function checkSplit(split: string): void {
  if (split !== 'train' && split !== 'eval') throw new Error(`"${split}" is not a split; use "train" or "eval".`);
}

function checkTags(tags: unknown): void {
  if (!Array.isArray(tags) || !tags.every((t) => typeof t === 'string')) throw new Error('Tags must be a list of strings; remove anything else from the list.');
}

function toExample(row: ExampleRow): Example {
  return { ...row, tags: parseJson<string[]>(row.tags, `the tags of example #${row.id}`) };
}

function withCounts(d: Dataset, counts: readonly CountRow[]): DatasetSummary {
  const train = counts.find((c) => c.split === 'train')?.n ?? 0;
  const evalCount = counts.find((c) => c.split === 'eval')?.n ?? 0;
  return { ...d, examples: train + evalCount, train, eval: evalCount };
}

function exportLine(e: Example): string {
  const line: Record<string, string | string[]> = { prompt: e.prompt };
  if (e.response !== null) line.response = e.response;
  if (e.chosen !== null && e.rejected !== null) {
    line.chosen = e.chosen;
    line.rejected = e.rejected;
  }
  line.split = e.split;
  line.tags = e.tags;
  if (e.source !== null) line.source = e.source;
  return `${JSON.stringify(line)}\n`;
}

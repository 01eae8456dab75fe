// Importing a dataset file into the store, all or nothing.
//
// better-sqlite3 transactions are synchronous, but reading a 1 GB file is not, so the
// import opens ONE transaction by hand (BEGIN IMMEDIATE, through beginLongTransaction)
// and holds it across the awaits of the reader. Rows are collected in bounded batches,
// each written synchronously inside a SAVEPOINT; COMMIT comes only after the last line
// has been read and checked, and any error or cancellation rolls everything back, so a
// bad line at the end of a file leaves the store exactly as it was. While it runs:
// - other connections keep reading the last committed state (WAL), and their writes wait
//   for busy_timeout and then fail, because BEGIN IMMEDIATE holds the write lock;
// - on the import's own connection every other statement is refused (StoreBusyError),
//   since it would silently join this transaction. Give the import its own connection,
//   ideally in a worker, and keep a second one for the UI.
import { stat } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import type { StudioDatabase } from '../../db/database.ts';
import type { DatasetFormat, NewExample } from '../../db/datasets.ts';
import { DatasetImportWriter } from '../../db/datasets.ts';
import type { RenderMessages } from './readers.ts';
import { readDataset } from './readers.ts';
import { stableSplit } from './split.ts';

export interface ImportProgress {
  /** Bytes of the file read so far (compressed bytes for .gz) and the file's size. */
  bytesRead: number;
  totalBytes: number;
  /** Examples read so far, duplicates included. */
  examples: number;
}

export interface ImportOptions {
  name: string;
  format?: DatasetFormat;
  /** Fraction of prompts held out for evaluation (default 0.2), split by prompt hash. */
  evalFraction?: number;
  /** Called at most once per progressIntervalMs (default 100 ms). */
  onProgress?: (progress: ImportProgress) => void;
  progressIntervalMs?: number;
  renderMessages?: RenderMessages;
  maxLineBytes?: number;
  signal?: AbortSignal;
  /** Rows per SAVEPOINT batch (default 1000; a batch also ends at 16 M characters). */
  batchRows?: number;
}

export interface ImportResult {
  datasetId: number;
  name: string;
  format: DatasetFormat;
  /** Records read, rows stored, and exact duplicates dropped (records - inserted). */
  records: number;
  inserted: number;
  duplicates: number;
  train: number;
  eval: number;
  bytes: number;
  ms: number;
}

const BATCH_CHARS = 16 * 1024 * 1024;

export async function importDataset(db: StudioDatabase, file: string, options: ImportOptions): Promise<ImportResult> {
  const started = performance.now();
  const name = options.name.trim();
  if (name === '') throw new Error('A dataset needs a name; type one in.');
  const evalFraction = options.evalFraction ?? 0.2;
  stableSplit('', evalFraction); // refuses a fraction outside [0, 1] before any work
  const batchRows = Math.max(1, options.batchRows ?? 1000);
  const interval = options.progressIntervalMs ?? 100;
  const cancelled = (): Error => Object.assign(new Error(`The import of "${name}" was cancelled; nothing was saved.`), { name: 'AbortError' });
  if (options.signal?.aborted) throw cancelled();

  let totalBytes: number;
  try {
    const s = await stat(file);
    if (!s.isFile()) throw new Error('not a file');
    totalBytes = s.size;
  } catch (err) {
    throw new Error(`Could not read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); check that the path names a dataset file.`, { cause: err });
  }

  const reader = readDataset(file, { format: options.format, renderMessages: options.renderMessages, maxLineBytes: options.maxLineBytes });
  const source = basename(file);
  const tx = db.beginLongTransaction(`importing the dataset "${name}"`);
  try {
    const writer = new DatasetImportWriter(tx);
    const datasetId = writer.createDataset({ name, sourceFile: resolve(file), sourceFormat: options.format ?? null });
    let batch: NewExample[] = [];
    let batchChars = 0;
    let records = 0;
    let train = 0;
    let evalCount = 0;
    const flush = (): void => {
      if (batch.length === 0) return;
      const r = writer.insertExamples(datasetId, batch);
      train += r.train;
      evalCount += r.eval;
      batch = [];
      batchChars = 0;
    };
    let lastReport = performance.now();

    for await (const rec of reader) {
      if (options.signal?.aborted) throw cancelled();
      records++;
      const row: NewExample = { prompt: rec.prompt, split: stableSplit(rec.prompt, evalFraction), source: `${source}:${rec.line}` };
      if (rec.response !== undefined) row.response = rec.response;
      if (rec.chosen !== undefined && rec.rejected !== undefined) {
        row.chosen = rec.chosen;
        row.rejected = rec.rejected;
      }
      batch.push(row);
      batchChars += rec.prompt.length + (rec.response?.length ?? 0) + (rec.chosen?.length ?? 0) + (rec.rejected?.length ?? 0);
      if (batch.length >= batchRows || batchChars >= BATCH_CHARS) flush();
      if (options.onProgress !== undefined) {
        const now = performance.now();
        if (now - lastReport >= interval) {
          lastReport = now;
          options.onProgress({ bytesRead: reader.bytesRead, totalBytes, examples: records });
        }
      }
    }
    flush();
    if (options.signal?.aborted) throw cancelled();
    const inserted = train + evalCount;
    const format = reader.format ?? 'jsonl';
    writer.finish(datasetId, { format, records, duplicates: records - inserted });
    tx.commit();
    return { datasetId, name, format, records, inserted, duplicates: records - inserted, train, eval: evalCount, bytes: totalBytes, ms: performance.now() - started };
  } catch (err) {
    tx.rollback();
    throw err;
  }
}

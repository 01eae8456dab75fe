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
import type { DatasetReader, RenderMessages } from './readers.ts';
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
  /** The clock of that interval in ms (default performance.now); tests drive a fake one. */
  now?: () => number;
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

/** The examples of a dataset file as batches of rows ready to store, each with its split
 *  and source line: what every import does before it writes. Used by importDataset (one
 *  long transaction) and by the import-dataset job (short transactions on the app's
 *  thread). Iterating it checks the signal at every record and reports progress. */
export class ExampleBatches implements AsyncIterable<NewExample[]> {
  /** Records read so far, duplicates included. */
  records = 0;
  readonly file: string;
  readonly totalBytes: number;
  private readonly reader: DatasetReader;
  private readonly options: ImportOptions;

  private constructor(file: string, totalBytes: number, options: ImportOptions) {
    this.file = file;
    this.totalBytes = totalBytes;
    this.options = options;
    this.reader = readDataset(file, { format: options.format, renderMessages: options.renderMessages, maxLineBytes: options.maxLineBytes });
  }

  /** Checks the options and that `file` is a readable file, with sentences. */
  static async open(file: string, options: ImportOptions): Promise<ExampleBatches> {
    stableSplit('', options.evalFraction ?? 0.2); // refuses a fraction outside [0, 1] before any work
    if (options.signal?.aborted) throw cancelled(options.name);
    try {
      const s = await stat(file);
      if (!s.isFile()) throw new Error('not a file');
      return new ExampleBatches(file, s.size, options);
    } catch (err) {
      throw unreadableFile(file, err);
    }
  }

  /** The format in use: the requested one, or what detection found. */
  get format(): DatasetFormat {
    return this.reader.format ?? 'jsonl';
  }

  get bytesRead(): number {
    return this.reader.bytesRead;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<NewExample[]> {
    const { signal, onProgress } = this.options;
    const evalFraction = this.options.evalFraction ?? 0.2;
    const batchRows = Math.max(1, this.options.batchRows ?? 1000);
    const interval = this.options.progressIntervalMs ?? 100;
    const now = this.options.now ?? (() => performance.now());
    const source = basename(this.file);
    let batch: NewExample[] = [];
    let batchChars = 0;
    let lastReport = now();
    this.records = 0;
    for await (const rec of this.reader) {
      if (signal?.aborted) throw cancelled(this.options.name);
      this.records++;
      const row: NewExample = { prompt: rec.prompt, split: stableSplit(rec.prompt, evalFraction), source: `${source}:${rec.line}` };
      if (rec.response !== undefined) row.response = rec.response;
      if (rec.chosen !== undefined && rec.rejected !== undefined) {
        row.chosen = rec.chosen;
        row.rejected = rec.rejected;
      }
      batch.push(row);
      batchChars += rec.prompt.length + (rec.response?.length ?? 0) + (rec.chosen?.length ?? 0) + (rec.rejected?.length ?? 0);
      if (batch.length >= batchRows || batchChars >= BATCH_CHARS) {
        yield batch;
        batch = [];
        batchChars = 0;
      }
      if (onProgress !== undefined) {
        const at = now();
        if (at - lastReport >= interval) {
          lastReport = at;
          onProgress({ bytesRead: this.reader.bytesRead, totalBytes: this.totalBytes, examples: this.records });
        }
      }
    }
    if (batch.length > 0) yield batch;
    if (signal?.aborted) throw cancelled(this.options.name);
  }
}

/** The sentence for a dataset path that is missing or not a readable file. */
export function unreadableFile(file: string, err: unknown): Error {
  return new Error(`Could not read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); check that the path names a dataset file.`, { cause: err });
}

function cancelled(name: string): Error {
  return Object.assign(new Error(`The import of "${name}" was cancelled; nothing was saved.`), { name: 'AbortError' });
}

export async function importDataset(db: StudioDatabase, file: string, options: ImportOptions): Promise<ImportResult> {
  const started = performance.now();
  const name = options.name.trim();
  if (name === '') throw new Error('A dataset needs a name; type one in.');
  const batches = await ExampleBatches.open(file, { ...options, name });
  const tx = db.beginLongTransaction(`importing the dataset "${name}"`);
  try {
    const writer = new DatasetImportWriter(tx);
    const datasetId = writer.createDataset({ name, sourceFile: resolve(file), sourceFormat: options.format ?? null });
    let train = 0;
    let evalCount = 0;
    for await (const batch of batches) {
      const r = writer.insertExamples(datasetId, batch);
      train += r.train;
      evalCount += r.eval;
    }
    const inserted = train + evalCount;
    const { records, format } = batches;
    writer.finish(datasetId, { format, records, duplicates: records - inserted });
    tx.commit();
    return { datasetId, name, format, records, inserted, duplicates: records - inserted, train, eval: evalCount, bytes: batches.totalBytes, ms: performance.now() - started };
  } catch (err) {
    tx.rollback();
    throw err;
  }
}

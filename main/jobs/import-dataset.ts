// Job kind `import-dataset`: reads and checks a dataset file in the run's own process and
// stores it batch by batch in short transactions on the main thread, into a dataset that
// stays hidden until the last batch is in (DatasetStore.beginImport). A cancelled,
// failed or interrupted import is deleted whole, so the dataset is there complete or
// not at all, and the app can keep writing (metrics of a training run, edits) meanwhile.
import type { Stats } from 'node:fs';
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import type { DatasetFormat, NewExample } from '../../db/datasets.ts';
import { DatasetStore } from '../../db/datasets.ts';
import type { JsonObject } from '../../db/json.ts';
import { unreadableFile } from '../datasets/import.ts';
import { nullable, number, oneOf, text } from '../schema/fields.ts';
import { configSchema, parseConfig } from './config.ts';
import type { JobKind } from './kind.ts';

const FORMATS = ['auto', 'hh', 'jsonl', 'csv'] as const;

export type ImportDatasetConfig = {
  /** Absolute path of the file. */
  file: string;
  name: string;
  format: (typeof FORMATS)[number];
  evalFraction: number;
  /** A model folder whose chat template renders `{"messages": [...]}` lines (none: chats are refused with a sentence). */
  chatTemplateModel: string | null;
};

/** One batch of rows from the worker. */
export type ImportBatch = { rows: NewExample[] };

const CONFIG = configSchema({
  file: text(),
  name: text(),
  format: oneOf([...FORMATS], { default: 'auto' }),
  evalFraction: number(0, 1, { default: 0.2 }),
  chatTemplateModel: nullable(text(), { default: null }),
});

export const importDatasetKind: JobKind<ImportDatasetConfig, ImportBatch> = {
  name: 'import-dataset',
  summary: 'import a dataset file (HH, JSON Lines or CSV, optionally gzip-compressed)',
  worker: new URL('./import-dataset.worker.ts', import.meta.url),
  // An import is one transaction in spirit: interrupted, it starts again from the top.
  resume: 'restart',
  pausable: false,

  parseConfig(raw: JsonObject): ImportDatasetConfig {
    const c = parseConfig('import-dataset', CONFIG, raw);
    return { ...c, file: resolve(c.file), name: c.name.trim(), chatTemplateModel: c.chatTemplateModel === null ? null : resolve(c.chatTemplateModel) };
  },

  device: () => 'io',

  check(db, config) {
    new DatasetStore(db).checkNameFree(config.name);
    let file: Stats;
    try {
      file = statSync(config.file);
    } catch (err) {
      throw unreadableFile(config.file, err);
    }
    if (!file.isFile()) throw unreadableFile(config.file, new Error('not a file'));
  },

  start({ db, run }, config) {
    new DatasetStore(db).beginImport(run.id, { name: config.name, sourceFile: config.file, sourceFormat: config.format === 'auto' ? null : config.format });
  },

  apply({ db, run }, _config, batch) {
    new DatasetStore(db).addImportBatch(run.id, batch.rows);
  },

  finish({ db, run }, _config, result) {
    const format = result.format as DatasetFormat;
    const d = new DatasetStore(db).finishImport(run.id, { format, records: Number(result.records) });
    return { datasetId: d.id, name: d.name, format, records: d.sourceRecords, inserted: d.examples, duplicates: d.sourceDuplicates, train: d.train, eval: d.eval };
  },

  discard({ db, run }) {
    new DatasetStore(db).discardImport(run.id);
  },
};

// `afd datasets import|list|show|export`: the datasets in the store, through the
// StudioService's datasets.* methods (the same the window and `afd serve` call); --json
// prints what the method returns (show: the page's examples).
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { DatasetSummary, Split } from '../../db/datasets.ts';
import type { Params } from '../api/contract.ts';
import { DATASET_FORMATS, SPLITS } from '../api/contract.ts';
import type { StudioService } from '../api/service.ts';
import { oneLine, onePositional, printJson, table, wholeNumber } from './output.ts';
import { followInForeground } from './runs.ts';
import { DB_OPTION, DB_USAGE, withService } from './studio.ts';

const IMPORT_USAGE = `usage: afd datasets import FILE --name NAME [--format ${DATASET_FORMATS.join('|')}] [--eval-fraction 0.2] [--model DIR (its chat template renders {"messages": [...]} lines)] [${DB_USAGE}]`;
export async function datasetsImport(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { ...DB_OPTION, name: { type: 'string' }, format: { type: 'string' }, 'eval-fraction': { type: 'string' }, model: { type: 'string' }, help: { type: 'boolean', default: false } },
  });
  if (values.help) return usage(IMPORT_USAGE);
  const file = resolve(onePositional(positionals, 'dataset file', IMPORT_USAGE));
  if (values.name === undefined || values.name.trim() === '') throw new Error(`Give the dataset a name with --name: ${IMPORT_USAGE}`);
  const name = values.name.trim();
  // The service checks the format and the fraction, in its own sentences.
  const params: Params<'datasets.importFile'> = { path: file, name };
  if (values.format !== undefined) params.format = values.format as Params<'datasets.importFile'>['format'];
  if (values['eval-fraction'] !== undefined) params.evalFraction = decimal('eval-fraction', values['eval-fraction']);
  // The CLI names a chat-template model by its folder; the window picks a stored one (chatModelId).
  if (values.model !== undefined) params.chatModelDir = resolve(values.model);
  return withService(values.db, async ({ service }) => {
    const run = await service.call('datasets.importFile', params);
    return followInForeground(service, run.id, `Importing ${name}`, []);
  });
}

const LIST_USAGE = `usage: afd datasets list [--json] [${DB_USAGE}]`;
export async function datasetsList(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { ...DB_OPTION, json: { type: 'boolean', default: false }, help: { type: 'boolean', default: false } } });
  if (values.help) return usage(LIST_USAGE);
  return withService(values.db, async ({ service }) => {
    const list = await service.call('datasets.list', {});
    if (values.json) printJson(list);
    else if (list.length === 0) console.log('No datasets yet; import one with `afd datasets import FILE --name NAME`.');
    else console.log(table(['name', 'examples', 'train', 'eval', 'duplicates', 'format', 'created', 'source'], list.map((d) => [d.name, d.examples, d.train, d.eval, d.sourceDuplicates, d.sourceFormat, d.createdAt.slice(0, 19).replace('T', ' '), d.sourceFile])));
    return 0;
  });
}

const SHOW_USAGE = `usage: afd datasets show NAME [--json] [--limit 20] [--offset 0] [--search TEXT] [--split ${SPLITS.join('|')}] [${DB_USAGE}]`;
export async function datasetsShow(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      ...DB_OPTION, json: { type: 'boolean', default: false }, limit: { type: 'string' }, offset: { type: 'string' }, search: { type: 'string' }, split: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) return usage(SHOW_USAGE);
  const name = onePositional(positionals, 'dataset name', SHOW_USAGE);
  const limit = wholeNumber('limit', values.limit, 20, 1);
  const offset = wholeNumber('offset', values.offset, 0);
  const split = values.split as Split | undefined; // the service refuses another
  return withService(values.db, async ({ service }) => {
    const d = await findDataset(service, name);
    const page = await service.call('datasets.examples', { datasetId: d.id, limit, offset, ...(values.search === undefined ? {} : { text: values.search }), ...(split === undefined ? {} : { split }) });
    if (values.json) {
      printJson(page.items);
      return 0;
    }
    console.log(`${d.name}: ${d.examples} examples (train ${d.train}, eval ${d.eval}), ${d.sourceFormat ?? 'added by hand'}${d.sourceFile !== null ? ` from ${d.sourceFile}` : ''}, created ${d.createdAt}`);
    const filter = [values.search !== undefined ? `matching "${values.search}"` : '', split !== undefined ? `in ${split}` : ''].filter((s) => s !== '').join(' ');
    if (page.total === 0) {
      console.log(filter === '' ? 'It has no examples.' : `No examples ${filter}.`);
      return 0;
    }
    console.log(`Examples ${offset + 1}-${offset + page.items.length} of ${page.total}${filter === '' ? '' : ` ${filter}`}:`);
    const width = Math.max(40, (process.stdout.columns ?? 120) - 20);
    for (const e of page.items) {
      console.log(`\n#${e.id} [${e.split}]${e.tags.length > 0 ? ` tags: ${e.tags.join(', ')}` : ''}${e.source !== null ? ` (${e.source})` : ''}`);
      console.log(`  prompt:    ${oneLine(e.prompt, width)}`);
      if (e.chosen !== null) {
        console.log(`  chosen:    ${oneLine(e.chosen, width)}`);
        console.log(`  rejected:  ${oneLine(e.rejected, width)}`);
      } else console.log(`  response:  ${oneLine(e.response, width)}`);
    }
    return 0;
  });
}

const EXPORT_USAGE = `usage: afd datasets export NAME [--out FILE] [--split ${SPLITS.join('|')}] [${DB_USAGE}]`;
export async function datasetsExport(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { ...DB_OPTION, out: { type: 'string' }, split: { type: 'string' }, help: { type: 'boolean', default: false } },
  });
  if (values.help) return usage(EXPORT_USAGE);
  const name = onePositional(positionals, 'dataset name', EXPORT_USAGE);
  const split = values.split as Split | undefined; // the service refuses another
  return withService(values.db, async ({ service }) => {
    const d = await findDataset(service, name);
    if (values.out === undefined) {
      // The export's content, as the window downloads it.
      const { content } = await service.call('datasets.export', { datasetId: d.id, ...(split === undefined ? {} : { split }) });
      await toStdout(content ?? '');
      return 0;
    }
    const out = resolve(values.out);
    // Written whole or not at all: an interrupted export leaves no half file.
    const { lines } = await service.call('datasets.export', { datasetId: d.id, path: out, ...(split === undefined ? {} : { split }) });
    console.error(`Exported ${lines} examples of "${d.name}" to ${out}.`);
    return 0;
  });
}

/** The dataset a command names (the API knows datasets by id). */
async function findDataset(service: StudioService, name: string): Promise<DatasetSummary> {
  const list = await service.call('datasets.list', {});
  const d = list.find((x) => x.name === name);
  if (d === undefined) {
    const names = list.map((x) => x.name);
    throw new Error(`There is no dataset named "${name}"; ${names.length === 0 ? 'the store has none yet' : `the store has ${names.slice(0, 5).map((n) => `"${n}"`).join(', ')}${names.length > 5 ? '...' : ''}`}.`);
  }
  return d;
}

/** A number given as an option's text (its range is the service's to check). */
function decimal(option: string, value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n)) throw new Error(`--${option} must be a number, not '${value}'.`);
  return n;
}

/** Writes text to stdout and waits until it is out; a closed pipe (`| head`) ends it quietly. */
function toStdout(text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const failed = (err: NodeJS.ErrnoException): void => (err.code === 'EPIPE' ? resolve() : reject(err));
    // Left attached after a failed write: the stream emits 'error' after the write's callback.
    process.stdout.on('error', failed);
    process.stdout.write(text, (err) => {
      if (err) failed(err);
      else {
        process.stdout.off('error', failed);
        resolve();
      }
    });
  });
}

function usage(text: string): number {
  console.log(text);
  return 0;
}

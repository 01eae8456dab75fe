// `afd datasets import|list|show|export`: the datasets in the store. list, show and
// export --out call the StudioService's datasets.* methods (the same the window and
// `afd serve` call); --json prints what the method returns (show: the page's examples).
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { DatasetSummary } from '../../db/datasets.ts';
import { DatasetStore } from '../../db/datasets.ts';
import type { StudioService } from '../api/service.ts';
import { oneLine, onePositional, printJson, table, wholeNumber } from './output.ts';
import { runInForeground } from './runs.ts';
import { DB_OPTION, DB_USAGE, withService, withStudio } from './studio.ts';

const FORMATS = ['hh', 'jsonl', 'csv'] as const;

const IMPORT_USAGE = `usage: afd datasets import FILE --name NAME [--format hh|jsonl|csv] [--eval-fraction 0.2] [--model DIR (its chat template renders {"messages": [...]} lines)] [${DB_USAGE}]`;
export async function datasetsImport(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { ...DB_OPTION, name: { type: 'string' }, format: { type: 'string' }, 'eval-fraction': { type: 'string' }, model: { type: 'string' }, help: { type: 'boolean', default: false } },
  });
  if (values.help) return usage(IMPORT_USAGE);
  const file = resolve(onePositional(positionals, 'dataset file', IMPORT_USAGE));
  if (values.name === undefined || values.name.trim() === '') throw new Error(`Give the dataset a name with --name: ${IMPORT_USAGE}`);
  const format = values.format ?? 'auto';
  if (format !== 'auto' && !(FORMATS as readonly string[]).includes(format)) throw new Error(`--format must be one of ${FORMATS.join(', ')}, not '${format}'.`);
  const evalFraction = values['eval-fraction'] === undefined ? 0.2 : Number(values['eval-fraction']);
  if (!(evalFraction >= 0 && evalFraction <= 1)) throw new Error(`--eval-fraction must be a number from 0 to 1, not '${values['eval-fraction']}'.`);

  const name = values.name.trim();
  return withStudio(values.db, (studio) => runInForeground(studio, (runner) => runner.submit('import-dataset', { file, name, format, evalFraction, ...(values.model === undefined ? {} : { chatTemplateModel: resolve(values.model) }) }), `Importing ${name}`, []));
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

const SHOW_USAGE = `usage: afd datasets show NAME [--json] [--limit 20] [--offset 0] [--search TEXT] [--split train|eval] [${DB_USAGE}]`;
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
  if (values.split !== undefined && values.split !== 'train' && values.split !== 'eval') throw new Error(`--split must be train or eval, not '${values.split}'.`);
  const split = values.split as 'train' | 'eval' | undefined;
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

const EXPORT_USAGE = `usage: afd datasets export NAME [--out FILE] [--split train|eval] [${DB_USAGE}]`;
export async function datasetsExport(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { ...DB_OPTION, out: { type: 'string' }, split: { type: 'string' }, help: { type: 'boolean', default: false } },
  });
  if (values.help) return usage(EXPORT_USAGE);
  const name = onePositional(positionals, 'dataset name', EXPORT_USAGE);
  if (values.split !== undefined && values.split !== 'train' && values.split !== 'eval') throw new Error(`--split must be train or eval, not '${values.split}'.`);
  const split = values.split as 'train' | 'eval' | undefined;
  return withService(values.db, async ({ service, studio }) => {
    const d = await findDataset(service, name);
    if (values.out === undefined) {
      // Streamed from the store with backpressure: the API's export without a path returns
      // the whole file as one string (the window downloads it), too much for a pipe.
      await toStdout(new DatasetStore(studio.db).exportJsonl(d.id, { split }));
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

/** Streams text to stdout with backpressure; a closed pipe (`| head`) ends it quietly. */
async function toStdout(chunks: AsyncIterable<unknown>): Promise<void> {
  let failure: NodeJS.ErrnoException | undefined;
  let wake = (): void => undefined;
  const onError = (err: NodeJS.ErrnoException): void => {
    failure = err;
    wake();
  };
  process.stdout.on('error', onError);
  try {
    for await (const chunk of chunks) {
      if (failure === undefined && !process.stdout.write(chunk as string)) {
        await new Promise<void>((resolve) => {
          wake = resolve;
          process.stdout.once('drain', resolve);
        });
      }
      if (failure !== undefined) break;
    }
    if (failure !== undefined && failure.code !== 'EPIPE') throw failure;
  } finally {
    process.stdout.off('error', onError);
  }
}

function usage(text: string): number {
  console.log(text);
  return 0;
}

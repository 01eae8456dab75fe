// `afd models list|import|export`: the models in the store, through the StudioService's
// models.* methods (the same the window and `afd serve` call); --json prints what the
// method returns. Import checks a Hugging Face folder or GGUF file completely and copies
// it into the store, and export to GGUF writes one, each as a job followed with progress;
// export to a Hugging Face folder copies (or converts) the model's files here, whole or
// not at all.
import { randomBytes } from 'node:crypto';
import { copyFile, mkdir, readdir, rename, rm, rmdir, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { MODEL_EXPORT_TYPES, ModelInfo } from '../api/contract.ts';
import { MODEL_EXPORT_FORMATS } from '../api/contract.ts';
import type { StudioService } from '../api/service.ts';
import { onePositional, printJson, table } from './output.ts';
import { followInForeground } from './runs.ts';
import { DB_OPTION, DB_USAGE, withService } from './studio.ts';

const LIST_USAGE = `usage: afd models list [--json] [${DB_USAGE}]`;
export async function modelsList(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { ...DB_OPTION, json: { type: 'boolean', default: false }, help: { type: 'boolean', default: false } } });
  if (values.help) return usage(LIST_USAGE);
  return withService(values.db, async ({ service }) => {
    // The embedded model is always there (models.list registers it), so the list is never empty.
    const models = await service.call('models.list', {});
    if (values.json) printJson(models);
    else console.log(table(['id', 'name', 'kind', 'family', 'params', 'stage', 'parent', 'run', 'created', 'path'], models.map((m) => [m.id, m.name, m.kind, m.family, m.params, m.stage, m.parentId, m.runId, m.createdAt.slice(0, 19).replace('T', ' '), m.folder])));
    return 0;
  });
}

const IMPORT_USAGE = `usage: afd models import FOLDER|FILE.gguf [--name NAME] [${DB_USAGE}]`;
export async function modelsImport(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { ...DB_OPTION, name: { type: 'string' }, help: { type: 'boolean', default: false } } });
  if (values.help) return usage(IMPORT_USAGE);
  const dir = resolve(onePositional(positionals, 'model folder or .gguf file', IMPORT_USAGE));
  return withService(values.db, async ({ service }) => {
    const run = await service.call('models.import', values.name === undefined ? { dir } : { dir, name: values.name });
    return followInForeground(service, run.id, `Importing ${basename(dir)}`, []);
  });
}

const EXPORT_USAGE = `usage: afd models export NAME|ID --out FOLDER [--dtype F32|F16|BF16] [${DB_USAGE}]
       afd models export NAME|ID --format gguf [--type f32|f16|q8_0] --out FILE.gguf [${DB_USAGE}]`;
export async function modelsExport(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { ...DB_OPTION, out: { type: 'string' }, dtype: { type: 'string' }, format: { type: 'string' }, type: { type: 'string' }, help: { type: 'boolean', default: false } } });
  if (values.help) return usage(EXPORT_USAGE);
  const which = onePositional(positionals, 'model name or id', EXPORT_USAGE);
  if (values.out === undefined) throw new Error(`Say where to write the model with --out: ${EXPORT_USAGE}`);
  const format = values.format ?? (/\.gguf$/i.test(values.out) ? 'gguf' : 'hf');
  if (!(MODEL_EXPORT_FORMATS as readonly string[]).includes(format)) throw new Error(`--format must be ${MODEL_EXPORT_FORMATS.join(' or ')}, not '${values.format}'.`);
  if (format === 'hf' && values.type !== undefined) throw new Error('--type is for --format gguf; a Hugging Face folder takes --dtype F32|F16|BF16.');
  if (format === 'gguf' && values.dtype !== undefined) throw new Error('--dtype is for Hugging Face folders; a GGUF file takes --type f32|f16|q8_0.');
  const dtype = values.dtype?.toUpperCase();
  if (dtype !== undefined && dtype !== 'F32' && dtype !== 'F16' && dtype !== 'BF16') throw new Error(`--dtype must be F32, F16 or BF16, not '${values.dtype}'.`);
  const out = resolve(values.out);
  if (format === 'gguf') {
    // A job, as the studio runs it: progress, and nothing left behind on failure.
    return withService(values.db, async ({ service }) => {
      const model = await findModel(service, which);
      const type = (values.type ?? 'f16') as (typeof MODEL_EXPORT_TYPES)[number]; // the service refuses another
      const run = await service.call('models.export', { modelId: model.id, format: 'gguf', type, out });
      return followInForeground(service, run.id, `Exporting ${model.name}`, []);
    });
  }
  // A Hugging Face folder is copied (or converted) here, with no job.
  return withService(values.db, async ({ service }) => {
    const model = await findModel(service, which);
    const source = model.folder;
    if (source === null) throw new Error(`Model #${model.id} ("${model.name}") has no files in the store to export.`);
    if (!(await emptyOrAbsent(out))) throw new Error(`Cannot export to ${out}: it exists and is not an empty folder; choose a new folder.`);
    if (dtype === undefined) await copyFolderAtomic(source, out);
    else {
      // Converting the stored dtype needs the weights: load, check and write them again.
      const { importHfModel, exportHfModel } = await import('../../native-models/checkpoint/index.ts');
      const m = await importHfModel(source);
      await exportHfModel(out, { family: m.family, config: m.config, weights: m.weights, baseConfig: m.configJson, generationConfig: m.generationConfig, tokenizerFrom: source, dtype });
    }
    console.error(`Exported model #${model.id} ("${model.name}") to ${out}.`);
    return 0;
  });
}

/** The model a command names, by id or name (the API knows models by id). */
async function findModel(service: StudioService, which: string): Promise<ModelInfo> {
  const models = await service.call('models.list', {});
  const byId = /^#?\d+$/.test(which) ? models.find((m) => m.id === Number(which.replace('#', ''))) : undefined;
  if (byId !== undefined) return byId;
  const named = models.filter((m) => m.name === which);
  if (named.length === 1) return named[0];
  if (named.length > 1) throw new Error(`${named.length} models are named "${which}" (ids ${named.map((m) => m.id).join(', ')}); give the id instead.`);
  throw new Error(`There is no model "${which}"; \`afd models list\` shows the names and ids.`);
}

async function emptyOrAbsent(dir: string): Promise<boolean> {
  const st = await stat(dir).catch(() => undefined);
  return st === undefined || (st.isDirectory() && (await readdir(dir)).length === 0);
}

/** Copies the files of `from` to a new folder `to`, assembled beside it and renamed. */
async function copyFolderAtomic(from: string, to: string): Promise<void> {
  const temp = join(dirname(to), `.${basename(to)}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  await mkdir(temp, { recursive: true });
  try {
    for (const name of await readdir(from)) await copyFile(join(from, name), join(temp, name));
    await rmdir(to).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
    await rename(temp, to);
  } catch (err) {
    await rm(temp, { recursive: true, force: true });
    throw new Error(`Could not export to ${to} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); check that the folder is writable and the disk has room.`, { cause: err });
  }
}

function usage(text: string): number {
  console.log(text);
  return 0;
}

// The datasets view's methods: list, browse, import (a file path or uploaded text, as a
// job), edit with history, export, statistics.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, isAbsolute, join } from 'node:path';
import { text } from 'node:stream/consumers';
import { DatasetStore } from '../../db/datasets.ts';
import { ModelStore } from '../../db/models.ts';
import { writeFileAtomic } from '../../native-models/runtime/atomic-file.ts';
import type { DatasetStats, Histogram, LengthStats } from './contract.ts';
import type { ApiContext, Handlers } from './context.ts';
import { modelFolder } from './models.ts';
import { runInfo } from './runs.ts';

export function datasetHandlers(ctx: ApiContext): Handlers<'datasets.list' | 'datasets.examples' | 'datasets.importFile' | 'datasets.importText' | 'datasets.updateExample' | 'datasets.history' | 'datasets.export' | 'datasets.stats' | 'datasets.delete'> {
  const store = new DatasetStore(ctx.db);
  const dataset = (id: number) => {
    const d = store.get(id);
    if (d === undefined) throw new Error(`There is no dataset #${id}; it may have been deleted, so reload the list.`);
    return d;
  };
  const models = new ModelStore(ctx.db);
  /** The import job's chat-template setting: the folder of the chosen model, stored or not. */
  const chatTemplate = (p: { chatModelId?: number; chatModelDir?: string }): { chatTemplateModel: string | null } => {
    if (p.chatModelDir !== undefined) {
      if (!isAbsolute(p.chatModelDir)) throw new Error(`"${p.chatModelDir}" is not an absolute path; give the full path of the model folder whose chat template to use.`);
      return { chatTemplateModel: p.chatModelDir };
    }
    return { chatTemplateModel: p.chatModelId === undefined ? null : modelFolder(ctx, models, p.chatModelId) };
  };

  return {
    'datasets.list': () => store.list(),
    'datasets.examples': (p) => {
      dataset(p.datasetId);
      const { datasetId, ...query } = p;
      return store.searchExamples(datasetId, query);
    },
    'datasets.importFile': (p) => {
      if (!isAbsolute(p.path)) throw new Error(`"${p.path}" is not an absolute path; choose the file with the file picker.`);
      const run = ctx.runner.submit('import-dataset', { file: p.path, name: p.name, format: p.format ?? 'auto', evalFraction: p.evalFraction ?? 0.2, ...chatTemplate(p) });
      ctx.log('info', `Importing ${p.path} as dataset "${p.name}" (run #${run.id}).`);
      return runInfo(run);
    },
    'datasets.importText': (p) => {
      // The import job reads files: the upload goes to a private temporary folder that is
      // removed once the run has settled (done, failed or cancelled).
      const dir = mkdtempSync(join(tmpdir(), 'afd-upload-'));
      const file = join(dir, basename(p.fileName));
      try {
        writeFileSync(file, p.content, { mode: 0o600 });
        const run = ctx.runner.submit('import-dataset', { file, name: p.name, format: p.format ?? 'auto', evalFraction: p.evalFraction ?? 0.2, ...chatTemplate(p) });
        void ctx.runner.settled(run.id).finally(() => rmSync(dir, { recursive: true, force: true }));
        ctx.log('info', `Importing the uploaded ${p.fileName} as dataset "${p.name}" (run #${run.id}).`);
        return runInfo(run);
      } catch (err) {
        rmSync(dir, { recursive: true, force: true });
        throw err;
      }
    },
    'datasets.updateExample': (p) => {
      const example = store.editExample(p.exampleId, p.patch);
      return { example, history: store.history(p.exampleId) };
    },
    'datasets.history': (p) => {
      if (store.getExample(p.exampleId) === undefined) throw new Error(`There is no example #${p.exampleId}; it may have been deleted, so reload the list.`);
      return store.history(p.exampleId);
    },
    'datasets.export': async (p) => {
      const d = dataset(p.datasetId);
      const fileName = `${d.name.replace(/[^\w.-]+/g, '_')}${p.split === undefined ? '' : `-${p.split}`}.jsonl`;
      const jsonl = store.exportJsonl(p.datasetId, p.split === undefined ? {} : { split: p.split });
      if (p.path === undefined) {
        const content = await text(jsonl);
        return { fileName, lines: content === '' ? 0 : content.split('\n').length - 1, content, path: null };
      }
      if (!isAbsolute(p.path)) {
        jsonl.destroy();
        throw new Error(`"${p.path}" is not an absolute path; choose where to save with the file picker.`);
      }
      // Streamed into the file (whole or not at all), so that a dataset larger than memory
      // exports all the same; one example a line.
      let lines = 0;
      await writeFileAtomic(p.path, (async function* () {
        for await (const chunk of jsonl) {
          const part = chunk as string;
          for (let i = part.indexOf('\n'); i !== -1; i = part.indexOf('\n', i + 1)) lines++;
          yield Buffer.from(part);
        }
      })());
      ctx.log('info', `Exported dataset "${d.name}" (${lines} examples) to ${p.path}.`);
      return { fileName, lines, content: null, path: p.path };
    },
    'datasets.stats': (p) => {
      const d = dataset(p.datasetId);
      const rows = store.lengths(p.datasetId);
      const responses = rows.map((r) => r.response).filter((n): n is number => n !== null);
      const stats: DatasetStats = {
        datasetId: d.id,
        examples: d.examples,
        train: d.train,
        eval: d.eval,
        withResponse: rows.filter((r) => r.hasResponse === 1).length,
        withPair: rows.filter((r) => r.pair === 1).length,
        promptLength: lengthStats(rows.map((r) => r.prompt)),
        responseLength: lengthStats(responses),
        responseHistogram: histogram(responses, p.bins ?? 20),
        tags: store.tagCounts(p.datasetId),
      };
      return stats;
    },
    'datasets.delete': (p) => {
      dataset(p.datasetId);
      const deleted = store.delete(p.datasetId);
      ctx.log('info', `Deleted dataset #${p.datasetId}.`);
      return { deleted };
    },
  };
}

export function lengthStats(xs: readonly number[]): LengthStats | null {
  if (xs.length === 0) return null;
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return {
    mean: sorted.reduce((a, b) => a + b, 0) / sorted.length,
    median: sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2,
    min: sorted[0],
    max: sorted[sorted.length - 1],
  };
}

/** Equal-width bins over [min, max] with whole-number edges (lengths are counts). */
export function histogram(xs: readonly number[], bins: number): Histogram {
  if (xs.length === 0) return { edges: [], counts: [] };
  let min = Infinity;
  let max = -Infinity;
  for (const x of xs) {
    if (x < min) min = x;
    if (x > max) max = x;
  }
  const width = Math.max(1, Math.ceil((max - min + 1) / bins));
  const n = Math.max(1, Math.ceil((max - min + 1) / width));
  const counts = new Array<number>(n).fill(0);
  for (const x of xs) counts[Math.min(n - 1, Math.floor((x - min) / width))]++;
  return { edges: Array.from({ length: n + 1 }, (_, i) => min + i * width), counts };
}

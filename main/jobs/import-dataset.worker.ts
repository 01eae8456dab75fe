// The worker side of `import-dataset` (see import-dataset.ts): reading, parsing, checking
// and splitting happen here; the rows go to the main thread to be stored.
import { Tokenizer } from '../../native-models/tokenizer/tokenizer.ts';
import { chatRenderer } from '../datasets/chat.ts';
import { ExampleBatches } from '../datasets/import.ts';
import type { WorkerRun } from './kind.ts';
import type { ImportBatch, ImportDatasetConfig } from './import-dataset.ts';

export const run: WorkerRun<ImportDatasetConfig, ImportBatch> = async (ctx) => {
  const { file, name, format, evalFraction, chatTemplateModel } = ctx.config;
  const batches = await ExampleBatches.open(file, {
    name,
    ...(chatTemplateModel === null ? {} : { renderMessages: chatRenderer(await Tokenizer.fromFolder(chatTemplateModel)) }),
    format: format === 'auto' ? undefined : format,
    evalFraction,
    signal: ctx.signal,
    onProgress: (p) => ctx.progress(p.bytesRead, p.totalBytes, 'byte'),
  });
  ctx.started({ step: 0 });
  ctx.progress(0, batches.totalBytes, 'byte');
  for await (const rows of batches) await ctx.write({ rows });
  ctx.progress(batches.totalBytes, batches.totalBytes, 'byte');
  ctx.log(`Read ${batches.records} records (${batches.format}) from ${file}.`);
  return { status: 'done', result: { format: batches.format, records: batches.records } };
};

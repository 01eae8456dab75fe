// The worker side of `import-model` (see import-model.ts).
import { copyFile, mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { convertGgufToHf, GGUF_SOURCE_FILE, importHfModel, isGgufPath, TOKENIZER_FILES } from '../../native-models/checkpoint/index.ts';
import type { JsonObject } from '../../db/json.ts';
import type { WorkerRun } from './kind.ts';
import type { ImportModelConfig } from './import-model.ts';
import { MODEL_FOLDER, modelFiles } from './import-model.ts';

export const run: WorkerRun<ImportModelConfig> = async (ctx) => {
  const { dir } = ctx.config;
  ctx.started({});
  if (isGgufPath(dir)) return importGguf(ctx);
  // Everything is read and checked first: a bad checkpoint fails here with its sentence.
  const model = await importHfModel(dir);
  const params = [...model.weights.values()].reduce((n, w) => n + w.length, 0);
  ctx.log(`${dir}: a ${model.family.name} model with ${params.toLocaleString('en')} parameters (${model.storedDtypes.join(', ')}).`);

  const names = modelFiles(await readdir(dir), TOKENIZER_FILES);
  const sizes = await Promise.all(names.map(async (n) => (await stat(join(dir, n))).size));
  const total = sizes.reduce((a, b) => a + b, 0);
  const final = join(ctx.runDir, MODEL_FOLDER);
  // Assembled under another name; what an attempt that died left here is unreferenced,
  // and start-up recovery has removed it already.
  const temp = join(ctx.runDir, `.${MODEL_FOLDER}.partial`);
  await rm(temp, { recursive: true, force: true });
  await rm(final, { recursive: true, force: true });
  await mkdir(temp);
  try {
    let copied = 0;
    ctx.progress(0, total, 'byte');
    for (const [i, name] of names.entries()) {
      if (ctx.stopRequested !== null) {
        await rm(temp, { recursive: true, force: true });
        return { status: 'stopped', step: copied };
      }
      await copyFile(join(dir, name), join(temp, name));
      const handle = await open(join(temp, name), 'r+');
      await handle.sync().finally(() => handle.close());
      copied += sizes[i];
      ctx.progress(copied, total, 'byte');
    }
    await rename(temp, final);
  } catch (err) {
    await rm(temp, { recursive: true, force: true });
    throw err;
  }
  const config = JSON.parse(JSON.stringify(model.config)) as JsonObject;
  return { status: 'done', result: { family: model.family.name, config, params, storedDtypes: model.storedDtypes, files: names } };
};

/**
 * A GGUF file, checked whole (metadata, tensor table, tokenizer) and then converted
 * tensor by tensor into the run's model folder (progress counts tensors).
 */
const importGguf: WorkerRun<ImportModelConfig> = async (ctx) => {
  const { dir: file } = ctx.config;
  const final = join(ctx.runDir, MODEL_FOLDER);
  await rm(final, { recursive: true, force: true });
  let source;
  try {
    source = await convertGgufToHf(file, final, (done, total) => ctx.progress(done, total, 'tensor'), ctx.signal);
  } catch (err) {
    if (ctx.stopRequested !== null) return { status: 'stopped', step: 0 };
    throw err;
  }
  // Read back as any folder is: what the studio will load is what was checked.
  const model = await importHfModel(final).catch(async (err: unknown) => {
    await rm(final, { recursive: true, force: true });
    throw err;
  });
  const params = [...model.weights.values()].reduce((n, w) => n + w.length, 0);
  ctx.log(`${file}: a ${source.architecture} model (${model.family.name} family) with ${params.toLocaleString('en')} parameters, stored as ${source.quantization} (${Object.entries(source.tensorTypes).map(([t, n]) => `${n} ${t}`).join(', ')}), converted to float32.`);
  const config = JSON.parse(JSON.stringify(model.config)) as JsonObject;
  const files = modelFiles(await readdir(final), [...TOKENIZER_FILES, GGUF_SOURCE_FILE]);
  return { status: 'done', result: { family: model.family.name, config, params, storedDtypes: [source.quantization], files, source: source as unknown as JsonObject } };
};

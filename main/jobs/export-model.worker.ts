// The worker side of `export-model` (see export-model.ts).
import { importHfModel, exportHfModel } from '../../native-models/checkpoint/index.ts';
import { exportGguf } from '../../native-models/checkpoint/gguf/from-hf.ts';
import type { WorkerRun } from './kind.ts';
import type { ExportModelConfig } from './export-model.ts';

export const run: WorkerRun<ExportModelConfig> = async (ctx) => {
  const { dir, out, format, type, name } = ctx.config;
  ctx.started({});
  const m = await importHfModel(dir);
  const params = [...m.weights.values()].reduce((n, w) => n + w.length, 0);
  if (format === 'gguf') {
    if (type === 'bf16') throw new Error('a GGUF export takes f32, f16 or q8_0');
    await exportGguf(out, { family: m.family, config: m.config, weights: m.weights, tokenizerFrom: dir, type, name, onProgress: (done, total) => ctx.progress(done, total, 'tensor') });
  } else {
    await exportHfModel(out, { family: m.family, config: m.config, weights: m.weights, baseConfig: m.configJson, generationConfig: m.generationConfig, tokenizerFrom: dir, dtype: type === 'q8_0' ? 'F32' : (type.toUpperCase() as 'F32' | 'F16' | 'BF16') });
  }
  ctx.log(`Wrote ${out}: a ${m.family.name} model with ${params.toLocaleString('en')} parameters as ${format === 'gguf' ? `GGUF (${type})` : `a Hugging Face folder (${type})`}.`);
  return { status: 'done', result: { out, format, type, params } };
};

// Job kind `afd-stage`: runs one AfD stage (main/stages/kinds) in the run's own process and
// stores what it made: its metrics (as it goes), a trained model with its lineage, the
// samples it drew as generations. The config holds everything the stage was given
// (settings with defaults filled in, input artifacts, data, seed, provider), so a run
// repeats exactly; the experiment driver (main/experiments/driver.ts) fills it in.
import type { JsonObject } from '../../db/json.ts';
import { GenerationStore } from '../../db/generations.ts';
import { ModelStore } from '../../db/models.ts';
import type { DataSpec } from '../stages/contract.ts';
import type { Artifact, StageInputs } from '../stages/stage.ts';
import { STAGES } from '../stages/kinds/index.ts';
import { readSamples } from '../stages/kinds/sample.ts';
import { integer, nullable, oneOf, text } from '../schema/fields.ts';
import { anObject, configSchema, parseConfig } from './config.ts';
import type { JobKind } from './kind.ts';

export type AfdStageConfig = JsonObject & {
  /** The stage's kind (sft, sample, reward...). */
  stage: string;
  /** Its id in the experiment. */
  id: string;
  experiment: string;
  settings: JsonObject;
  inputs: JsonObject;
  data: JsonObject;
  seed: number;
  provider: 'auto' | 'cpu' | 'webgpu' | 'cuda';
  threads: number | null;
};

export const stageInputs = (config: AfdStageConfig): StageInputs => config.inputs as unknown as StageInputs;
export const stageData = (config: AfdStageConfig): DataSpec => config.data as unknown as DataSpec;

/** The model artifact among a stage's inputs that a trained model descends from. */
function parentModel(inputs: StageInputs): Artifact | undefined {
  for (const name of ['policy', 'model', 'sft', 'backbone']) {
    const a = inputs[name];
    if (a !== undefined && !Array.isArray(a) && a.type === 'model') return a;
  }
  return undefined;
}

const CONFIG = configSchema({
  stage: text(),
  id: text(),
  experiment: text(),
  settings: anObject(),
  inputs: anObject(),
  data: anObject(),
  seed: integer(0, 2 ** 32 - 1, { default: 0 }),
  provider: oneOf(['auto', 'cpu', 'webgpu', 'cuda'], { default: 'auto' }),
  threads: nullable(integer(1, 1024), { default: null }),
});

export const afdStageKind: JobKind<AfdStageConfig> = {
  name: 'afd-stage',
  summary: 'one stage of an AfD experiment (SFT, sampling, reward model, Best-of-N, RL, evaluation...)',
  worker: new URL('./afd-stage.worker.ts', import.meta.url),
  resume: 'checkpoint',
  pausable: true,
  keepsFolder: true,

  parseConfig(raw) {
    const c = parseConfig('afd-stage', CONFIG, raw);
    const stage = STAGES[c.stage];
    if (stage === undefined) throw new Error(`stage must be one of ${Object.keys(STAGES).join(', ')}, not ${JSON.stringify(c.stage)}.`);
    return { ...c, settings: stage.parse(c.settings as JsonObject), inputs: c.inputs as JsonObject, data: c.data as JsonObject };
  },

  device: (config) => (config.provider === 'cpu' || config.provider === 'auto' ? 'cpu' : 'gpu'),

  finish({ db, run }, config, result) {
    const stage = STAGES[config.stage];
    const inputs = stageInputs(config);
    if (stage.produces === 'model') {
      const parent = parentModel(inputs);
      const model = new ModelStore(db).insert({
        name: `${config.experiment}/${config.id}`, kind: 'trained', family: typeof result.family === 'string' ? result.family : null,
        parentId: parent?.modelId ?? null, runId: run.id, stage: config.stage, config: config.settings, path: `runs/${run.id}/model`,
      });
      return { ...result, modelId: model.id };
    }
    if (stage.produces === 'reward' && result.scorer === true) {
      // A trained reward model is a model too (backbone + head), in the lineage init -> SFT -> reward model.
      const parent = parentModel(inputs);
      const model = new ModelStore(db).insert({
        name: `${config.experiment}/${config.id}`, kind: 'trained', family: typeof result.family === 'string' ? result.family : null,
        parentId: parent?.modelId ?? null, runId: run.id, stage: config.stage, config: config.settings, path: `runs/${run.id}/scorer`,
      });
      return { ...result, modelId: model.id };
    }
    if (stage.produces === 'samples') {
      const source = inputs.model;
      const modelId = source !== undefined && !Array.isArray(source) ? source.modelId ?? null : null;
      if (modelId !== null) {
        const set = readSamples({ type: 'samples', dir: String(result.dir), stage: config.id });
        new GenerationStore(db).insertMany(set.byPrompt.flat().map((s) => ({ runId: run.id, modelId, prompt: s.prompt, sampleIndex: s.k, text: s.text, tokenCount: s.tokens })));
      }
    }
    return result;
  },
};

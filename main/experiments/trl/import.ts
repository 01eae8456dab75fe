// `afd import results DIR`: the outputs of a project that `afd export trl` wrote (export.ts)
// come back into the store as a new experiment, linked to the one exported (its
// definition's `origin`). Each exported stage that finished there becomes a finished
// `afd-stage` run of the new experiment with exactly the config a studio run of it would
// have (stageJobConfig), its output converted to the studio's artifact in the run's
// folder: model folders as models with their lineage, samples as generations, reward
// models as scorers, Best-of-N picks as selections. Resuming the experiment then keeps
// those runs and runs the other stages (the gold judge, the evaluation...) here, so
// Compare and Results show the project's outputs beside the studio's own runs.
import { copyFile, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { StudioDatabase } from '../../../db/database.ts';
import { ExperimentStore } from '../../../db/experiments.ts';
import { GenerationStore, type NewGeneration } from '../../../db/generations.ts';
import type { JsonObject } from '../../../db/json.ts';
import { ModelStore } from '../../../db/models.ts';
import { RunStore } from '../../../db/runs.ts';
import { importHfModel, TOKENIZER_FILES } from '../../../native-models/checkpoint/index.ts';
import { fromFloat32, readSafetensors, toFloat32, writeSafetensors, type NamedTensor } from '../../../native-models/runtime/safetensors.ts';
import { bonKlBound } from '../../eval/stats.ts';
import type { StudioFiles } from '../../jobs/files.ts';
import { modelFiles } from '../../jobs/import-model.ts';
import { processOwner } from '../../jobs/owner.ts';
import type { ExperimentDefinition, ExperimentOrigin, StageSpec } from '../contract.ts';
import { loadDemonstrations, type Demonstrations } from '../../stages/data.ts';
import { modelsFromOutside, resolveDataSpec, stageJobConfig } from '../driver.ts';
import { DEMOS, inputRefs, parseExperiment, PI0 } from '../experiment.ts';
import { HEAD_FILE, SCORE_BIAS, SCORE_WEIGHT, SCORER_DIR, SCORER_JSON } from '../../stages/scorer.ts';
import { modelDir, writeArtifactDetails, type Artifact } from '../../stages/stage.ts';
import { SELECTION_FILE, type Selection } from '../../stages/kinds/bon.ts';
import { STAGES } from '../../stages/kinds/index.ts';
import { SAMPLES_FILE, type Sample } from '../../stages/kinds/sample.ts';
import { MANIFEST, MANIFEST_FORMAT, type TrlManifest } from './export.ts';

export interface ImportedStage {
  id: string;
  kind: string;
  runId: number;
  /** The model (or reward model) it added to the store. */
  modelId?: number;
}

export interface ImportOutcome {
  experimentId: number;
  definition: ExperimentDefinition;
  imported: ImportedStage[];
  /** Stages left to the studio, and why. */
  local: { id: string; kind: string; why: string }[];
}

/** The suffix of an imported experiment's name. */
export const IMPORTED_SUFFIX = ' (trl)';

async function readManifest(dir: string): Promise<TrlManifest> {
  const file = join(dir, MANIFEST);
  let m: TrlManifest;
  try {
    m = JSON.parse(await readFile(file, 'utf8')) as TrlManifest;
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    throw new Error(e.code === 'ENOENT' ? `${dir} has no ${MANIFEST}; point at a folder that \`afd export trl\` wrote.` : `${file} cannot be read (${e.message}); export the experiment again.`, { cause: err });
  }
  if (m.format !== MANIFEST_FORMAT) throw new Error(`${file} is not an AfD Studio TRL export (format ${JSON.stringify(m.format ?? null)}, expected ${MANIFEST_FORMAT}).`);
  return m;
}

/** The experiment the project was exported from: by id when the store still has it, else the newest of that name. */
function origin(db: StudioDatabase, m: TrlManifest, dir: string): ExperimentOrigin {
  const store = new ExperimentStore(db);
  const byId = m.experiment.id === null ? undefined : store.get(m.experiment.id);
  const found = byId?.name === m.experiment.name ? byId : store.list().find((e) => e.name === m.experiment.name);
  return { experimentId: found?.id ?? null, name: m.experiment.name, project: dir };
}

/** What an imported stage leaves in its run's folder, and what the store records of it. */
interface StageOutput {
  result: JsonObject;
  /** A model row (trained models and reward models). */
  model?: { family: string; path: string };
  generations?: NewGeneration[];
}

interface StageContext {
  dir: string;
  runDir: string;
  runId: number;
  spec: StageSpec;
  artifacts: ReadonlyMap<string, Artifact>;
  demos: Demonstrations;
}

const outputs = (c: StageContext, ...rest: string[]): string => join(c.dir, 'outputs', c.spec.id, ...rest);

/** Copies a Hugging Face folder's model files (weights, config, tokenizer) into `dest`. */
async function copyModel(src: string, dest: string): Promise<void> {
  await mkdir(dest, { recursive: true });
  for (const name of modelFiles(await readdir(src), TOKENIZER_FILES)) await copyFile(join(src, name), join(dest, name));
}

/** A trained policy (sft, dpo, spin, rl): its folder, checked as any model import is. */
async function importPolicy(c: StageContext): Promise<StageOutput> {
  const src = outputs(c, 'model');
  const model = await importHfModel(src);
  await copyModel(src, join(c.runDir, 'model'));
  await writeArtifactDetails(c.runDir, { type: 'model', from: c.spec.kind });
  return { result: {}, model: { family: model.family.name, path: `runs/${c.runId}/model` } };
}

/** A sample stage's samples.jsonl, checked against the split's prompts and n. */
async function importSamples(c: StageContext): Promise<StageOutput> {
  const split = c.spec.split as 'train' | 'eval', n = c.spec.n as number;
  const prompts = c.demos[split].map((d) => d.prompt);
  const file = outputs(c, SAMPLES_FILE);
  const rows: Sample[] = [];
  for (const [j, line] of (await readFile(file, 'utf8')).split('\n').entries()) {
    if (line.trim() === '') continue;
    let s: Sample;
    try {
      s = JSON.parse(line) as Sample;
    } catch (err) {
      throw new Error(`${file}:${j + 1} is not JSON (${(err as Error).message}); run the stage again.`, { cause: err });
    }
    if (!Number.isInteger(s.i) || !Number.isInteger(s.k) || typeof s.text !== 'string' || s.i < 0 || s.i >= prompts.length || s.k < 0 || s.k >= n) throw new Error(`${file}:${j + 1} is not a sample {i, k, prompt, text} of this stage (${prompts.length} ${split} prompts, n ${n}).`);
    if (s.prompt !== prompts[s.i]) throw new Error(`${file}:${j + 1}: prompt ${s.i} is not the experiment's ${split} prompt ${s.i}; the project's data differs from the studio's.`);
    rows.push({ i: s.i, k: s.k, prompt: s.prompt, text: s.text, tokens: Number.isInteger(s.tokens) ? s.tokens : 0, finish: typeof s.finish === 'string' ? s.finish : 'length' });
  }
  if (rows.length !== prompts.length * n || new Set(rows.map((s) => `${s.i}/${s.k}`)).size !== rows.length) throw new Error(`${file} has ${rows.length} samples, but the stage draws ${n} for each of ${prompts.length} ${split} prompts; run it again.`);
  rows.sort((a, b) => a.i - b.i || a.k - b.k);
  await writeFile(join(c.runDir, SAMPLES_FILE), rows.map((s) => `${JSON.stringify(s)}\n`).join(''));
  const source = c.artifacts.get(c.spec.model as string)!;
  await writeArtifactDetails(c.runDir, { type: 'samples', model: modelDir(source), split, n, prompts: prompts.length });
  const modelId = source.modelId ?? null;
  return {
    result: { prompts: prompts.length, samples: rows.length },
    generations: modelId === null ? [] : rows.map((s) => ({ runId: c.runId, modelId, prompt: s.prompt, sampleIndex: s.k, text: s.text, tokenCount: s.tokens })),
  };
}

/** The safetensors tensors of a folder (one file or shards). */
async function folderTensors(dir: string): Promise<Map<string, NamedTensor>> {
  const out = new Map<string, NamedTensor>();
  for (const f of (await readdir(dir)).filter((n) => n.endsWith('.safetensors')).sort()) {
    for (const [name, t] of (await readSafetensors(join(dir, f))).tensors) out.set(name, t);
  }
  return out;
}

/**
 * A reward model (AutoModelForSequenceClassification with one label) as the studio's
 * scorer folder: the backbone as a causal LM folder, score_head.safetensors (the head's
 * weight [D, 1] and bias) and scorer.json. Both read the score at the last response token.
 */
async function importReward(c: StageContext): Promise<StageOutput> {
  const src = outputs(c, 'model');
  const config = JSON.parse(await readFile(join(src, 'config.json'), 'utf8')) as JsonObject;
  const tensors = await folderTensors(src);
  const weight = tensors.get(SCORE_WEIGHT);
  if (weight === undefined || weight.shape.length !== 2 || weight.shape[0] !== 1) throw new Error(`${src} has no ${SCORE_WEIGHT} of shape [1, hidden]; a reward stage writes a sequence classifier with one label.`);
  const bias = tensors.get(SCORE_BIAS);
  tensors.delete(SCORE_WEIGHT);
  tensors.delete(SCORE_BIAS);
  const backboneDir = modelDir(c.artifacts.get(c.spec.backbone as string)!);
  const backbone = JSON.parse(await readFile(join(backboneDir, 'config.json'), 'utf8')) as JsonObject;
  // The causal LM's output head is unused by a scorer, but the folder must be a whole model: an untied one comes from the backbone.
  if (backbone.tie_word_embeddings === false && !tensors.has('lm_head.weight')) {
    const head = (await folderTensors(backboneDir)).get('lm_head.weight');
    if (head === undefined) throw new Error(`${backboneDir} has no lm_head.weight for the imported reward model's backbone.`);
    tensors.set('lm_head.weight', head);
  }
  const { id2label: _a, label2id: _b, problem_type: _c, num_labels: _d, ...rest } = config;
  const dest = join(c.runDir, SCORER_DIR);
  await mkdir(dest, { recursive: true });
  await writeFile(join(dest, 'config.json'), `${JSON.stringify({ ...rest, architectures: backbone.architectures ?? null }, null, 1)}\n`);
  await writeSafetensors(join(dest, 'model.safetensors'), tensors);
  for (const name of (await readdir(src)).filter((n) => TOKENIZER_FILES.includes(n))) await copyFile(join(src, name), join(dest, name));
  const model = await importHfModel(dest);
  const D = weight.shape[1];
  await writeSafetensors(join(dest, HEAD_FILE), {
    [SCORE_WEIGHT]: fromFloat32(Float32Array.from(toFloat32(weight)), [D, 1]),
    [SCORE_BIAS]: fromFloat32(Float32Array.of(bias === undefined ? 0 : toFloat32(bias)[0]), [1]),
  });
  const contextLength = Number(model.configJson.n_positions ?? model.configJson.max_position_embeddings ?? 2048);
  await writeFile(join(dest, SCORER_JSON), `${JSON.stringify({ maxLength: Math.min(c.spec.maxLength as number, contextLength), hiddenSize: D }, null, 1)}\n`);
  const details: JsonObject = c.spec.kind === 'pref-reward' ? { source: 'preferences' } : { positive: c.spec.positive as string, negative: c.spec.negative as string };
  const loss = c.spec.kind === 'pref-reward' ? 'bt' : (c.spec.loss as string);
  const stage = JSON.parse(await readFile(outputs(c, 'stage.json'), 'utf8')) as { metrics?: JsonObject };
  const heldOutAccuracy = typeof stage.metrics?.held_out_accuracy === 'number' ? stage.metrics.held_out_accuracy : null;
  await writeArtifactDetails(c.runDir, { type: 'reward', reward: 'scorer', dir: dest, loss, ...details, heldOutAccuracy });
  return { result: { scorer: true, held_out_accuracy: heldOutAccuracy }, model: { family: model.family.name, path: `runs/${c.runId}/${SCORER_DIR}` } };
}

/** Best-of-N picks (selection.json), indexing into the imported samples. */
async function importSelection(c: StageContext): Promise<StageOutput> {
  const file = outputs(c, SELECTION_FILE);
  const raw = JSON.parse(await readFile(file, 'utf8')) as { ns?: unknown; picks?: unknown; rewards?: unknown };
  const samples = c.artifacts.get(c.spec.samples as string)!;
  const set = (await readFile(join(samples.dir, SAMPLES_FILE), 'utf8')).split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Sample);
  const prompts = set.reduce((m, s) => Math.max(m, s.i + 1), 0), n = set.length / prompts;
  const ns = raw.ns, picks = raw.picks as Record<string, unknown> | undefined, rewards = raw.rewards;
  const ok = Array.isArray(ns) && ns.every((x) => Number.isInteger(x) && x >= 1 && x <= n) && typeof picks === 'object' && picks !== null
    && ns.every((x) => Array.isArray(picks[String(x)]) && (picks[String(x)] as unknown[]).length === prompts && (picks[String(x)] as unknown[]).every((k) => Number.isInteger(k) && (k as number) >= 0 && (k as number) < (x as number)))
    && Array.isArray(rewards) && rewards.length === prompts && rewards.every((r) => Array.isArray(r) && r.length === n && r.every((v) => typeof v === 'number' && Number.isFinite(v)));
  if (!ok) throw new Error(`${file} is not a Best-of-N selection of ${c.spec.samples as string}'s ${prompts} prompts x ${n} samples ({ns, picks, rewards}); run the stage again.`);
  const nsList = ns as number[];
  const selection: Selection = {
    samples: samples.dir, ns: nsList, picks: picks as Record<string, number[]>, rewards: rewards as number[][],
    klBound: Object.fromEntries(nsList.map((x) => [String(x), bonKlBound(x)])),
  };
  await writeFile(join(c.runDir, SELECTION_FILE), JSON.stringify(selection));
  const reward = `scorer of ${c.spec.reward as string} (TRL)`;
  await writeArtifactDetails(c.runDir, { type: 'selection', samples: samples.dir, ns: nsList, reward });
  return { result: { prompts, ns: nsList, reward } };
}

const IMPORTERS: Readonly<Record<string, (c: StageContext) => Promise<StageOutput>>> = {
  sft: importPolicy, dpo: importPolicy, spin: importPolicy, rl: importPolicy,
  sample: importSamples, reward: importReward, 'pref-reward': importReward, bon: importSelection,
};

/** Finds a parent for a trained model's lineage among a stage's inputs (as afd-stage does). */
function parentModelId(spec: StageSpec, artifacts: ReadonlyMap<string, Artifact>): number | null {
  for (const field of ['policy', 'model', 'sft', 'backbone']) {
    const ref = spec[field];
    const a = typeof ref === 'string' ? artifacts.get(ref) : undefined;
    if (a !== undefined && a.type === 'model') return a.modelId ?? null;
  }
  return null;
}

/**
 * Imports the outputs of the exported project at `dir` as a new experiment. Everything is
 * checked before the store is left as it was: on any error the new experiment, its runs,
 * models, generations and folders are removed and the error (one sentence) is thrown.
 */
export async function importTrlResults(db: StudioDatabase, files: StudioFiles, projectDir: string): Promise<ImportOutcome> {
  const dir = resolve(projectDir);
  const manifest = await readManifest(dir);
  const exported = parseExperiment(manifest.definition);
  const def = parseExperiment({ ...exported, name: `${exported.name}${IMPORTED_SUFFIX}`, origin: origin(db, manifest, dir) } as unknown as JsonObject);
  const experiments = new ExperimentStore(db), runs = new RunStore(db), models = new ModelStore(db), generations = new GenerationStore(db);
  const experimentId = experiments.insert({ name: def.name, definition: def as unknown as JsonObject }).id;
  const owner = processOwner();
  const made: { runs: number[]; models: number[] } = { runs: [], models: [] };
  try {
    const artifacts = await modelsFromOutside(db, files, def);
    const data = { ...(await resolveDataSpec(db, files, def.data, experimentId)), chatTemplateModel: artifacts.get(PI0)!.dir };
    const demos = await loadDemonstrations(data);
    const imported: ImportedStage[] = [], local: ImportOutcome['local'] = [];
    for (const spec of def.stages) {
      const entry = manifest.stages.find((s) => s.id === spec.id);
      const missingInput = Object.keys(STAGES[spec.kind].inputs).flatMap((f) => inputRefs(spec[f])).find((r) => r !== DEMOS && !artifacts.has(r));
      const why = entry?.exported !== true ? `not exported: ${entry?.why ?? 'not in the project'}`
        : !existsSync(join(dir, 'outputs', spec.id, 'stage.json')) ? `not run in the project (it has no outputs/${spec.id}/stage.json)`
          : missingInput !== undefined ? `its input '${missingInput}' was not imported`
            : null;
      if (why !== null) {
        local.push({ id: spec.id, kind: spec.kind, why });
        continue;
      }
      const config = stageJobConfig(def, spec, artifacts, data);
      const run = runs.insert({ experimentId, stage: 'afd-stage', config, seed: config.seed as number, owner });
      made.runs.push(run.id);
      runs.setStatus(run.id, 'running', { owner, provider: 'trl' });
      const runDir = files.ensureRunDir(run.id);
      const stage = JSON.parse(await readFile(join(dir, 'outputs', spec.id, 'stage.json'), 'utf8')) as JsonObject;
      const out = await IMPORTERS[spec.kind]({ dir, runDir, runId: run.id, spec, artifacts, demos });
      const modelId = db.transaction(() => {
        const m = out.model === undefined ? undefined : models.insert({
          name: `${def.name}/${spec.id}`, kind: 'trained', family: out.model.family, parentId: parentModelId(spec, artifacts),
          runId: run.id, stage: spec.kind, config: config.settings as JsonObject, path: out.model.path,
        });
        if (m !== undefined) made.models.push(m.id);
        if (out.generations !== undefined && out.generations.length > 0) generations.insertMany(out.generations);
        runs.setStatus(run.id, 'done', { result: { ...out.result, dir: runDir, ...(m === undefined ? {} : { modelId: m.id }), imported: { project: dir, ...stage } } });
        return m?.id;
      });
      artifacts.set(spec.id, { type: STAGES[spec.kind].produces, dir: runDir, stage: spec.id, ...(modelId === undefined ? {} : { modelId }) });
      imported.push({ id: spec.id, kind: spec.kind, runId: run.id, ...(modelId === undefined ? {} : { modelId }) });
    }
    if (imported.length === 0) throw new Error(`${dir} has no finished stage to import (each writes outputs/<id>/stage.json when it finishes); run its run.sh first.`);
    return { experimentId, definition: def, imported, local };
  } catch (err) {
    db.transaction(() => {
      for (const id of made.models) models.delete(id);
      experiments.delete(experimentId);
    });
    for (const id of made.runs) await rm(files.runDir(id), { recursive: true, force: true });
    throw err;
  }
}

// Running an experiment on the job runner: each stage becomes an `afd-stage` run of the
// experiment, in order, given the artifacts of the stages it names. Starting an
// experiment again (resume) reuses every finished stage, continues an unfinished one
// from its checkpoint, and runs the rest; it never redoes finished work.
import { createWriteStream } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, rename } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { StudioDatabase } from '../../db/database.ts';
import { ArtifactStore } from '../../db/artifacts.ts';
import { DatasetStore } from '../../db/datasets.ts';
import { ExperimentStore } from '../../db/experiments.ts';
import type { JsonObject } from '../../db/json.ts';
import { ModelStore } from '../../db/models.ts';
import { RunStore, type Run } from '../../db/runs.ts';
import { modelFolder } from '../../native-models/checkpoint/gguf/to-hf.ts';
import type { StudioFiles } from '../jobs/files.ts';
import type { JobRunner } from '../jobs/runner.ts';
import { DEFAULT_MODEL_DIR, ensureBuiltinModel } from '../models/builtin.ts';
import { resolveModelArg } from '../models/known.ts';
import type { DataSpec, ExperimentDefinition, ExperimentEndStatus, ExperimentProgress, StageSpec, StageState } from './contract.ts';
import { DEMOS, inputRefs, parseExperiment, PI0 } from './experiment.ts';
import type { Artifact } from '../stages/stage.ts';
import { STAGES } from '../stages/kinds/index.ts';

/** Each stage's seed: the experiment's, mixed with the stage id (so adding a stage changes no other stage's seed). */
export function stageSeed(experimentSeed: number, id: string): number {
  let h = 0x811c9dc5;
  for (const ch of id) h = Math.imul(h ^ ch.charCodeAt(0), 0x01000193) >>> 0;
  return (h ^ Math.imul(experimentSeed, 0x9e3779b1)) >>> 0;
}

/** The latest run of each stage id of an experiment. */
function stageRuns(db: StudioDatabase, experimentId: number): Map<string, Run> {
  const out = new Map<string, Run>();
  for (const r of new RunStore(db).list({ experimentId }).sort((a, b) => a.id - b.id)) {
    if (r.stage === 'afd-stage' && typeof r.config.id === 'string') out.set(r.config.id, r);
  }
  return out;
}

export function experimentProgress(db: StudioDatabase, experimentId: number): ExperimentProgress {
  const e = new ExperimentStore(db).get(experimentId);
  if (e === undefined) throw new Error(`There is no experiment #${experimentId}.`);
  return stagesProgress(db, experimentId, parseExperiment(e.definition));
}

/** Each stage of a definition with the state of its latest run. */
function stagesProgress(db: StudioDatabase, experimentId: number, def: ExperimentDefinition): ExperimentProgress {
  const runs = stageRuns(db, experimentId);
  return {
    experimentId,
    stages: def.stages.map((s) => {
      const r = runs.get(s.id);
      return { id: s.id, kind: s.kind, runId: r?.id ?? null, state: (r?.status ?? 'pending') as StageState };
    }),
  };
}

/** A store dataset is exported for the stages to `datasets/<sha256 of the content>.jsonl` under the store's files. */
const EXPORT_FOLDER = 'datasets';
const exportFileName = (digest: string): string => `${digest}.jsonl`;

/** Whether `path` is such an export, in whichever folder the store is now. */
function isStoreExport(path: string): boolean {
  const digest = basename(path).slice(0, 64);
  return basename(dirname(path)) === EXPORT_FOLDER && /^[0-9a-f]{64}$/.test(digest) && basename(path) === exportFileName(digest);
}

/** What identifies a stage's data: the definition's, with a store export named by its content hash alone (its folder may move). */
function dataIdentity(data: unknown): string {
  const { chatTemplateModel: _template, ...rest } = (data ?? {}) as Record<string, unknown>;
  const source = rest.source;
  if (typeof source === 'string' && isStoreExport(source)) rest.source = basename(source);
  return canonicalJson(rest);
}

function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object') return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`).join(',')}}`;
  return JSON.stringify(v);
}

/**
 * Why the earlier run of a stage (its stored config `before`) no longer matches what the
 * definition asks (`now`), or null when it still does: an input stage produced new output
 * in this drive, or the settings, seed or data differ. Threads and provider do not count.
 */
export function staleness(spec: StageSpec, before: JsonObject, now: JsonObject, renewed: ReadonlySet<string>): string | null {
  const { id: _id, kind: _kind, ...settings } = spec;
  for (const field of Object.keys(STAGES[spec.kind].inputs)) {
    const changed = inputRefs(settings[field]).find((r) => renewed.has(r));
    if (changed !== undefined) return `its input '${changed}' was run again`;
  }
  if (before.stage !== now.stage) return `its kind changed (${String(before.stage)} -> ${String(now.stage)})`;
  // Both as the stage parses them (defaults filled in), as the run stored its own.
  const a = (before.settings ?? {}) as JsonObject, b = STAGES[spec.kind].parse((now.settings ?? {}) as JsonObject);
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].filter((k) => canonicalJson(a[k]) !== canonicalJson(b[k])).sort();
  if (keys.length > 0) return `its settings changed (${keys.map((k) => `${k}: ${canonicalJson(a[k] ?? null)} -> ${canonicalJson(b[k] ?? null)}`).join(', ')})`;
  if (before.seed !== now.seed) return 'its seed changed';
  if (dataIdentity(before.data) !== dataIdentity(now.data)) return 'its data changed';
  return null;
}

export type ExperimentOutcome = ExperimentProgress & { status: ExperimentEndStatus; error?: string };

export class ExperimentDriver {
  readonly experimentId: number;
  readonly done: Promise<ExperimentOutcome>;
  private readonly listeners = new Set<(p: ExperimentProgress) => void>();
  private current: number | null = null;
  private currentStage: string | null = null;
  private stopping: 'pause' | 'cancel' | null = null;

  private constructor(
    private readonly db: StudioDatabase,
    private readonly runner: JobRunner,
    private readonly def: ExperimentDefinition,
    experimentId: number,
    private readonly log: (text: string) => void,
  ) {
    this.experimentId = experimentId;
    const unsubscribe = runner.onEvent((e) => {
      if (e.type === 'status' && e.run.experimentId === experimentId) this.emit();
    });
    this.done = this.drive().finally(unsubscribe);
  }

  /**
   * Starts (or with `experimentId`, resumes) an experiment; `definition` is checked first.
   * Resuming with an edited definition runs again each finished stage whose settings,
   * seed or data changed, and every stage after it that reads its output; the others are
   * kept. `log` hears why a stage runs again.
   */
  static start(db: StudioDatabase, runner: JobRunner, definition: ExperimentDefinition | JsonObject, opts: { experimentId?: number; log?: (text: string) => void } = {}): ExperimentDriver {
    const def = parseExperiment(definition);
    const store = new ExperimentStore(db);
    let id = opts.experimentId;
    if (id === undefined) id = store.insert({ name: def.name, definition: def as unknown as JsonObject }).id;
    else if (store.get(id) === undefined) throw new Error(`There is no experiment #${id} to resume.`);
    else store.setDefinition(id, def as unknown as JsonObject);
    return new ExperimentDriver(db, runner, def, id, opts.log ?? (() => {}));
  }

  /** Resumes the stored experiment with this id, with its stored definition. */
  static resume(db: StudioDatabase, runner: JobRunner, experimentId: number): ExperimentDriver {
    const e = new ExperimentStore(db).get(experimentId);
    if (e === undefined) throw new Error(`There is no experiment #${experimentId} to resume.`);
    return ExperimentDriver.start(db, runner, e.definition, { experimentId });
  }

  progress(): ExperimentProgress {
    // The driver's own parsed definition: progress is asked at every status event.
    const p = stagesProgress(this.db, this.experimentId, this.def);
    return this.currentStage === null ? p : { ...p, current: this.currentStage };
  }

  onProgress(listener: (p: ExperimentProgress) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Stops the running stage at its next step boundary (with a checkpoint); no later stage starts. */
  stop(reason: 'pause' | 'cancel'): void {
    this.stopping = reason;
    if (this.current !== null) {
      if (reason === 'pause') this.runner.pause(this.current);
      else this.runner.cancel(this.current);
    }
  }

  /** The run of the stage running now, if any. */
  get currentRun(): number | null {
    return this.current;
  }

  private emit(): void {
    if (this.listeners.size === 0) return;
    const p = this.progress();
    for (const l of this.listeners) l(p);
  }

  private async drive(): Promise<ExperimentOutcome> {
    const artifacts = await modelsFromOutside(this.db, this.runner.files, this.def);
    const pi0 = artifacts.get(PI0)!;
    const data = { ...(await this.dataSpec()), chatTemplateModel: pi0.dir };
    const finish = (status: ExperimentOutcome['status'], error?: string): ExperimentOutcome => ({ ...this.progress(), status, ...(error === undefined ? {} : { error }) });
    // Stages whose output is new in this drive: a finished stage that reads one of them is run again.
    const renewed = new Set<string>();
    for (const spec of this.def.stages) {
      if (this.stopping !== null) return finish(this.stopping === 'pause' ? 'paused' : 'cancelled');
      let run = stageRuns(this.db, this.experimentId).get(spec.id);
      const config = this.jobConfig(spec, artifacts, data);
      const outdated = run === undefined ? null : staleness(spec, run.config, config, renewed);
      if (outdated !== null) this.log(`${spec.id}: run again, ${outdated}.`);
      if (run === undefined || outdated !== null) run = this.runner.submit('afd-stage', config, { experimentId: this.experimentId });
      // Resumed under the config resolved now: staleness says it asks for the same work, and
      // its paths are where the inputs are now (the data folder may have moved).
      else if (run.status !== 'done' && run.status !== 'queued' && run.status !== 'running') run = this.runner.resume(run.id, config);
      if (run.status !== 'done') renewed.add(spec.id);
      this.current = run.id;
      this.currentStage = spec.id;
      this.emit();
      if (run.status !== 'done') run = await this.runner.settled(run.id);
      this.current = null;
      this.currentStage = null;
      if (run.status !== 'done') {
        const status = run.status === 'paused' || run.status === 'cancelled' || run.status === 'interrupted' ? run.status : 'failed';
        return finish(status, run.error ?? undefined);
      }
      const result = run.result ?? {};
      artifacts.set(spec.id, {
        type: STAGES[spec.kind].produces, dir: this.runner.files.runDir(run.id), stage: spec.id,
        ...(typeof result.modelId === 'number' ? { modelId: result.modelId } : {}),
      });
    }
    return finish('done');
  }

  private jobConfig(spec: StageSpec, artifacts: ReadonlyMap<string, Artifact>, data: DataSpec): JsonObject {
    return stageJobConfig(this.def, spec, artifacts, data);
  }

  private dataSpec(): Promise<DataSpec> {
    return resolveDataSpec(this.db, this.runner.files, this.def.data, this.experimentId);
  }
}

/** A stage's seed in its run: its own `seed` setting, or the experiment's mixed with its id. */
export const stageRunSeed = (def: ExperimentDefinition, spec: StageSpec): number => (typeof spec.seed === 'number' ? spec.seed : stageSeed(def.seed, spec.id));

/** The `afd-stage` config of a stage: its settings, its inputs resolved to artifacts, the data, seed and provider. */
export function stageJobConfig(def: ExperimentDefinition, spec: StageSpec, artifacts: ReadonlyMap<string, Artifact>, data: DataSpec): JsonObject {
  const stage = STAGES[spec.kind];
  const { id, kind: _kind, ...settings } = spec;
  const inputs: JsonObject = {};
  for (const field of Object.keys(stage.inputs)) {
    const refs = inputRefs(settings[field]).filter((r) => r !== DEMOS);
    const resolved = refs.map((r) => {
      const a = artifacts.get(r);
      if (a === undefined) throw new Error(`stage '${id}': input ${field} names '${r}', which has no output yet.`);
      return a as unknown as JsonObject;
    });
    if (resolved.length > 0) inputs[field] = stage.inputs[field].list ? resolved : resolved[0];
  }
  return {
    stage: spec.kind, id, experiment: def.name, settings: settings as JsonObject, inputs, data: data as unknown as JsonObject,
    seed: stageRunSeed(def, spec), provider: def.provider, threads: def.threads,
  };
}

/** The models an experiment's stages can name before any stage ran: `pi0` and the experiment's named `models`. */
export async function modelsFromOutside(db: StudioDatabase, files: StudioFiles, def: ExperimentDefinition): Promise<Map<string, Artifact>> {
  const artifacts = new Map<string, Artifact>([[PI0, await initialModelArtifact(db, files, def.model)]]);
  for (const [name, m] of Object.entries(def.models ?? {})) artifacts.set(name, { ...(await initialModelArtifact(db, files, m)), stage: name, external: true });
  return artifacts;
}

/** pi_0 (an experiment's `model`) as an artifact, registered in the store (once) so that trained models have a parent. */
export async function initialModelArtifact(db: StudioDatabase, files: StudioFiles, m: string): Promise<Artifact> {
  const models = new ModelStore(db);
  if (m.startsWith('store:')) {
    const name = m.slice('store:'.length);
    const row = models.list().find((x) => x.name === name);
    if (row === undefined || row.path === null) throw new Error(`There is no model named '${name}' in the store; import it first (afd models import DIR).`);
    return { type: 'model', stage: PI0, dir: files.absolute(row.path), modelId: row.id };
  }
  if (m === 'default') return { type: 'model', stage: PI0, dir: DEFAULT_MODEL_DIR, modelId: ensureBuiltinModel(db) };
  // A GGUF file runs as its converted folder in the model cache (made once per file); the
  // model is named as its file or folder is (the Models and Compare views show the name).
  const source = resolve(resolveModelArg(m));
  const dir = await modelFolder(source);
  const row = models.list().find((x) => x.path === dir) ?? models.insert({ name: basename(source).replace(/\.gguf$/i, ''), kind: 'imported', family: null, stage: 'base', path: dir });
  return { type: 'model', stage: PI0, dir, modelId: row.id };
}

/**
 * The demonstrations' DataSpec as stages read it: a store dataset is exported to a file
 * named by its content hash and recorded as an artifact (so start-up cleaning keeps it,
 * and the stages' configs name exactly the data they saw); `tag` names the temporary file.
 */
export async function resolveDataSpec(db: StudioDatabase, files: StudioFiles, d: DataSpec, tag: number | string): Promise<DataSpec> {
  if (!d.source.startsWith('store:')) return d;
  const name = d.source.slice('store:'.length);
  const datasets = new DatasetStore(db);
  const ds = datasets.getByName(name);
  if (ds === undefined) throw new Error(`There is no dataset named '${name}' in the store; import it first (afd datasets import FILE --name ${name}).`);
  const folder = join(files.root, EXPORT_FOLDER);
  await mkdir(folder, { recursive: true });
  const temp = join(folder, `.export-${tag}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`);
  const hash = createHash('sha256');
  let size = 0;
  await pipeline(datasets.exportJsonl(ds.id), async function* (chunks: AsyncIterable<Buffer | string>) {
    for await (const c of chunks) {
      const b = typeof c === 'string' ? Buffer.from(c) : c;
      hash.update(b);
      size += b.length;
      yield b;
    }
  }, createWriteStream(temp));
  const digest = hash.digest('hex');
  const file = join(folder, exportFileName(digest));
  await rename(temp, file);
  new ArtifactStore(db).put({ hash: digest, size, path: files.relative(file) });
  return { ...d, source: file, format: 'jsonl' };
}

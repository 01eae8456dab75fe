// The one typed API between the studio's views and its engine (DESIGN.md §4). The same
// table serves Electron IPC (window.afd.call), `afd serve` (POST /api/<method>) and tests:
// a method name, its params, its result, and a validator that turns untrusted input into
// params or throws one clear sentence. Events (job progress, experiment progress,
// generation tokens) come separately as a stream of StudioEvent.
//
// This file is loaded by the renderer too: no Node imports, only types: the pipeline's
// contract, and the store's row types that the API returns as they are (one definition,
// so the two cannot drift apart).
import type { DataSpec, ExperimentDefinition, ExperimentProgress, Recipe, ResultRow, ResultsTable, StageSpec, StageState } from '../experiments/contract.ts';
import type { DatasetFormat, DatasetSummary, Example, ExampleEdit, ExamplePage, ExamplePatch, Split } from '../../db/datasets.ts';
import type { Json, JsonObject } from '../../db/json.ts';
import type { LogLevel, LogLine } from '../../db/run-logs.ts';
import type { Run, RunStatus } from '../../db/runs.ts';

export type { DataSpec, ExperimentDefinition, ExperimentProgress, Recipe, ResultRow, ResultsTable, StageSpec, StageState, Json, JsonObject };
export type { DatasetFormat, DatasetSummary, Example, ExampleEdit, ExamplePage, ExamplePatch, LogLevel, LogLine, RunStatus, Split };

// ---- shared shapes ----

export type ProviderSetting = 'auto' | 'cpu' | 'webgpu' | 'cuda';

export interface ComputeDevice {
  /** The provider ONNX Runtime runs on (after the forced setting is applied), or null if none works. */
  provider: 'cuda' | 'webgpu' | 'cpu' | null;
  /** Why this provider: the sentence of the provider choice. */
  reason: string;
  /** The GPU found, if any (memory in bytes when known). */
  gpu: { name: string; memoryBytes: number | null } | null;
  /** Why a GPU is not used, when it is not (null when one is). */
  gpuUnusedReason: string | null;
  cpuThreads: number;
  /** Every provider tried, with its outcome. */
  tried: { provider: string; ok: boolean; reason: string }[];
}

export interface StudioStatus {
  version: string;
  /** The folder holding the database and its files folder. */
  dataFolder: string;
  dbPath: string;
  schemaVersion: number;
  device: ComputeDevice;
  forcedProvider: ProviderSetting;
  /** Runs running in this process right now. */
  runningRuns: number[];
  /** Streamed generations (one per model and prompt) not finished yet, waiting ones included. */
  runningGenerations: number;
}

export interface Settings {
  dataFolder: string;
  forcedProvider: ProviderSetting;
  /** Memory the models kept loaded for generation may take together (bytes); 0 keeps none. */
  modelCacheBytes: number;
}

export interface SettingsResult extends Settings {
  /** True when a change takes effect only after the studio restarts (a moved data folder). */
  restartRequired: boolean;
  /** What was done, in a sentence (e.g. where the data was copied). */
  message: string;
}

export interface Histogram {
  /** Bin edges, length counts.length + 1; bin i counts values in [edges[i], edges[i+1]). */
  edges: number[];
  counts: number[];
}

export interface LengthStats {
  mean: number;
  median: number;
  min: number;
  max: number;
}

export interface DatasetStats {
  datasetId: number;
  examples: number;
  train: number;
  eval: number;
  /** Examples with a response / with a chosen-rejected pair. */
  withResponse: number;
  withPair: number;
  /** Lengths in characters; null when there is nothing to measure. */
  promptLength: LengthStats | null;
  responseLength: LengthStats | null;
  /** Histogram of response lengths (characters; the response, else the chosen text). */
  responseHistogram: Histogram;
  tags: { tag: string; count: number }[];
}

/** A run as the API shows it: the store's row without the runner's bookkeeping (owner, pending control). */
export type RunInfo = Omit<Run, 'owner' | 'control'>;

export interface MetricSummary {
  name: string;
  count: number;
  firstStep: number;
  lastStep: number;
  /** null when the value was not a number (NaN). */
  last: number | null;
  min: number | null;
  max: number | null;
}

export interface RunDetail {
  run: RunInfo;
  metrics: MetricSummary[];
  /** The last log lines (up to 50). */
  logs: LogLine[];
}

export interface MetricSeries {
  name: string;
  /** value null: the step logged NaN. */
  points: { step: number; value: number | null }[];
}

export interface ModelInfo {
  id: number;
  name: string;
  /** 'builtin' is the embedded default model (pi_0). */
  kind: 'builtin' | 'imported' | 'trained';
  family: string | null;
  /** Lineage: the model it was trained from, and by which stage (sft, reward...). */
  parentId: number | null;
  stage: string | null;
  runId: number | null;
  createdAt: string;
  /** Parameter count, from the family's shapes (null when the config cannot say). */
  params: number | null;
  /** Where an imported model's weights came from: a GGUF file and the type most of them were stored in. */
  source: { format: 'gguf'; file: string; quantization: string } | null;
}

export const MODEL_EXPORT_FORMATS = ['hf', 'gguf'] as const;
export const MODEL_EXPORT_TYPES = ['f32', 'f16', 'bf16', 'q8_0'] as const;

export interface SamplingSettings {
  /** New tokens at most, 1..2048 (default 128). */
  maxTokens?: number;
  /** 0 = greedy; default 0.8. */
  temperature?: number;
  topP?: number;
  topK?: number;
  seed?: number;
  /** Format the prompt with the model's chat template (default true when it has one). */
  chat?: boolean;
}

/**
 * What a streamed generation is doing: waiting for the generations before it, reading its
 * model's weight files, preparing the model (ONNX Runtime building its sessions), or
 * producing tokens. A model kept loaded from an earlier generation goes straight to
 * 'generating'.
 */
export type GenerationPhase = 'queued' | 'loading' | 'preparing' | 'generating';

/** A model kept loaded for generation (Settings shows them). */
export interface LoadedModel {
  /** null when no store model has this folder any more. */
  modelId: number | null;
  name: string;
  /** The provider it runs on (the setting when it was loaded, if that was not told). */
  provider: string;
  /** Memory it took when it was loaded; `estimated` when it could not be measured alone. */
  bytes: number;
  estimated: boolean;
  /** How long reading and preparing it took. */
  loadMs: number;
  lastUsedAt: string;
  /** A generation is using it now. */
  inUse: boolean;
}

export interface ModelCacheInfo {
  budgetBytes: number;
  usedBytes: number;
  /** Most recently used first. */
  models: LoadedModel[];
}

/** One streamed generation: tokens arrive as 'generation.token' events with this id. */
export interface GenerationStream {
  streamId: string;
  modelId: number;
  promptIndex: number;
  prompt: string;
}

export interface ExperimentSummary {
  id: number;
  name: string;
  createdAt: string;
  /** Derived from its stages: the first of running, failed, paused... that applies. */
  state: StageState;
  stages: number;
  stagesDone: number;
}

export interface ExperimentDetail {
  id: number;
  name: string;
  createdAt: string;
  definition: JsonObject;
  progress: ExperimentProgress;
  runs: RunInfo[];
  /** Each sized stage's estimated peak memory, and the memory available now (absent when the definition cannot be read). */
  memory?: { available: number; stages: Record<string, StageMemory> };
}

/** A stage's estimated peak memory (main/stages/memory-estimate.ts): when the peak comes and its parts. */
export interface StageMemory {
  bytes: number;
  phase: string;
  parts: { name: string; bytes: number; why: string }[];
}

/** An experiment exported for TRL: the project's folder, and each stage with the script that runs it there, or why the studio runs it after the import. */
export interface TrlExport {
  out: string;
  stages: { id: string; kind: string; exported: boolean; script?: string; why?: string }[];
}

/** What the voter sees: two responses, unlabelled. Which model is which stays on the server until the vote. */
export interface BlindPair {
  pairId: string;
  prompt: string;
  /** Shown left (A) and right (B). */
  a: string;
  b: string;
}

export type Vote = 'A' | 'B' | 'tie' | 'skip';

export interface VoteResult {
  judgmentId: number;
  /** Revealed after the vote: which model was shown on each side. */
  reveal: { a: { modelId: number; name: string }; b: { modelId: number; name: string } };
  tally: Tally;
}

export interface Tally {
  modelA: number;
  modelB: number;
  /** Votes counted (skips excluded). */
  n: number;
  winsA: number;
  winsB: number;
  ties: number;
  skips: number;
  /** Model A's win rate against model B, ties as half; NaN-free: null with no votes. */
  winRateA: number | null;
  /** Wilson 95% interval of winRateA. */
  ci95: [number, number];
  /** How often the response shown on the left won (position bias check), of decisive votes. */
  leftWinRate: number | null;
}

export interface AppLogLine {
  at: string;
  level: LogLevel;
  text: string;
}

// ---- the method table ----

export interface Methods {
  'status': { params: Record<string, never>; result: StudioStatus };
  'settings.get': { params: Record<string, never>; result: Settings };
  /** Moving the data folder copies the database and its files there; it is used after a restart. */
  'settings.set': { params: { dataFolder?: string; forcedProvider?: ProviderSetting; modelCacheBytes?: number }; result: SettingsResult };

  'datasets.list': { params: Record<string, never>; result: DatasetSummary[] };
  'datasets.examples': { params: { datasetId: number; text?: string; split?: Split; tag?: string; limit?: number; offset?: number }; result: ExamplePage };
  /**
   * Imports a file on this machine as a job; follow it with run.* events. `chatModelId`: the
   * model whose chat template turns `{messages}` lines into a prompt and a response (chat
   * templates belong to models); without it such lines are refused, saying so.
   */
  'datasets.importFile': { params: { path: string; name: string; format?: DatasetFormat | 'auto'; evalFraction?: number; chatModelId?: number }; result: RunInfo };
  /** Imports uploaded text (a browser file picker's contents) as a job. `fileName` gives the format by its extension. */
  'datasets.importText': { params: { name: string; fileName: string; content: string; format?: DatasetFormat | 'auto'; evalFraction?: number; chatModelId?: number }; result: RunInfo };
  'datasets.updateExample': { params: { exampleId: number; patch: ExamplePatch }; result: { example: Example; history: ExampleEdit[] } };
  'datasets.history': { params: { exampleId: number }; result: ExampleEdit[] };
  /** JSON Lines the importer reads back; written to `path` when given, else returned as text. */
  'datasets.export': { params: { datasetId: number; split?: Split; path?: string }; result: { fileName: string; lines: number; content: string | null; path: string | null } };
  'datasets.stats': { params: { datasetId: number; bins?: number }; result: DatasetStats };
  'datasets.delete': { params: { datasetId: number }; result: { deleted: boolean } };

  'models.list': { params: Record<string, never>; result: ModelInfo[] };
  /** Imports a Hugging Face folder or a .gguf file on this machine as a job. */
  'models.import': { params: { dir: string; name?: string }; result: RunInfo };
  /** Writes a model as a Hugging Face folder or a GGUF file (`type`: f32, f16, bf16 for folders, q8_0 for GGUF) as a job. */
  'models.export': { params: { modelId: number; format: (typeof MODEL_EXPORT_FORMATS)[number]; type?: (typeof MODEL_EXPORT_TYPES)[number]; out: string }; result: RunInfo };
  /** Starts a streamed generation; tokens arrive as 'generation.token' events, the end as 'generation.done'. */
  'models.generate': { params: { modelId: number; prompt: string; sampling?: SamplingSettings }; result: GenerationStream };
  'generation.cancel': { params: { streamId: string }; result: { cancelled: boolean } };
  /** The models kept loaded for generation and their memory budget (Settings' modelCacheBytes). */
  'generation.cache': { params: Record<string, never>; result: ModelCacheInfo };
  /** Releases every loaded model (one in use when its generation ends); the next generation loads again. */
  'generation.unload': { params: Record<string, never>; result: ModelCacheInfo };

  'experiments.recipes': { params: Record<string, never>; result: Recipe[] };
  /** Checks the definition (parseExperiment) and starts it; progress as 'experiment.progress' events. */
  'experiments.start': { params: { definition: JsonObject }; result: ExperimentDetail };
  'experiments.list': { params: Record<string, never>; result: ExperimentSummary[] };
  'experiments.get': { params: { experimentId: number }; result: ExperimentDetail };
  'experiments.stop': { params: { experimentId: number; reason: 'pause' | 'cancel' }; result: ExperimentProgress };
  'experiments.resume': { params: { experimentId: number }; result: ExperimentDetail };
  /** Writes the experiment as a Python project for TRL on accelerate (GPU machines, clusters: afd export trl) into `out`, a new folder's full path. */
  'experiments.exportTrl': { params: { experimentId: number; out: string; gpus?: number }; result: TrlExport };

  'runs.list': { params: { experimentId?: number; status?: RunStatus }; result: RunInfo[] };
  'runs.get': { params: { runId: number }; result: RunDetail };
  'runs.cancel': { params: { runId: number }; result: RunInfo };
  'runs.pause': { params: { runId: number }; result: RunInfo };
  'runs.resume': { params: { runId: number }; result: RunInfo };
  'runs.logs': { params: { runId: number; limit?: number }; result: LogLine[] };
  /** Every metric of the run when `names` is absent. */
  'runs.metrics': { params: { runId: number; names?: string[] }; result: MetricSeries[] };

  /** Generates each prompt on each model (2..8 models, 1..20 prompts), streamed; the responses are stored for blind voting. */
  'compare.start': { params: { modelIds: number[]; prompts: string[]; sampling?: SamplingSettings }; result: { compareId: string; streams: GenerationStream[] } };
  /** A random prompt both models answered, the two responses in a random order that is recorded; null when there is none left. */
  'compare.nextPair': { params: { modelA: number; modelB: number }; result: BlindPair | null };
  'compare.vote': { params: { pairId: string; vote: Vote }; result: VoteResult };
  'compare.tally': { params: { modelA: number; modelB: number }; result: Tally };

  'results.get': { params: { experimentId: number }; result: ResultsTable | null };
  'logs.app': { params: { limit?: number }; result: AppLogLine[] };
  'diagnostics.bundle': { params: Record<string, never>; result: { fileName: string; text: string } };
  /** The desktop app's open dialog for a file or a folder (null when dismissed); refused over HTTP, where paths are typed. */
  'system.choosePath': { params: { kind: 'file' | 'folder' }; result: { path: string | null } };
}

export type Method = keyof Methods;
export type Params<M extends Method> = Methods[M]['params'];
export type Result<M extends Method> = Methods[M]['result'];

// ---- events ----

export type StudioEvent =
  | { type: 'run.status'; run: RunInfo }
  | { type: 'run.progress'; runId: number; step: number; total: number | null; unit: string; fraction: number | null; etaMs: number | null; rate: number | null }
  | { type: 'run.metric'; runId: number; step: number; values: Record<string, number | null> }
  | { type: 'run.log'; runId: number; level: LogLevel; text: string }
  | { type: 'run.checkpoint'; runId: number; step: number }
  | { type: 'experiment.progress'; progress: ExperimentProgress }
  /**
   * A stream entered a phase or moved on in it: `done` of `total` bytes read ('loading'),
   * `done` ONNX Runtime sessions built ('preparing', total null), `total` new tokens at
   * most ('generating'; the tokens come as events); `etaMs` the time left in the phase
   * when it can be told.
   */
  | { type: 'generation.phase'; streamId: string; phase: GenerationPhase; done: number; total: number | null; etaMs: number | null }
  /** `text` is the new text of this token (may be empty while a character is incomplete). */
  | { type: 'generation.token'; streamId: string; index: number; text: string }
  | { type: 'generation.done'; streamId: string; text: string; tokens: number; finishReason: 'eos' | 'stop' | 'length' | 'cancelled' | 'error'; error: string | null; generationId: number | null }
  | { type: 'app.log'; line: AppLogLine };

export type StudioEventListener = (event: StudioEvent) => void;

/** What every transport offers the views (window.afd in Electron, an HTTP client in a browser). */
export interface StudioApi {
  call<M extends Method>(method: M, params: Params<M>): Promise<Result<M>>;
  /** Returns the unsubscribe function. */
  onEvent(listener: StudioEventListener): () => void;
}

/** The untyped bridge the Electron preload exposes as window.afd. */
export interface AfdBridge {
  call(method: string, params: unknown): Promise<unknown>;
  onEvent(listener: (event: StudioEvent) => void): () => void;
}

/** How the HTTP transport names things (afd serve). */
export const HTTP = {
  /** POST `${prefix}${method}` with the params as JSON; 200 with the result, 400 `{error}`, 401 without the token. */
  prefix: '/api/',
  /** Server-sent events, one StudioEvent as JSON per `data:` line; the token as `?token=`. */
  events: '/api/events',
  tokenQuery: 'token',
} as const;

// ---- validators ----

/** Params that a validator refused; `message` is a sentence for the user. */
export class ValidationError extends Error {
  override readonly name = 'ValidationError';
}

type Validator<M extends Method> = (raw: unknown) => Params<M>;

const LIMITS = { text: 1_000_000, content: 256 * 1024 * 1024, prompts: 20, models: 8, promptChars: 20_000 } as const;

/** Reads one method's params, naming the method in every refusal. */
class Reader {
  readonly method: string;
  readonly raw: Record<string, unknown>;
  private readonly allowed: Set<string>;

  constructor(method: string, raw: unknown, allowed: readonly string[]) {
    this.method = method;
    if (raw === undefined || raw === null) raw = {};
    if (typeof raw !== 'object' || Array.isArray(raw)) this.fail(`its parameters must be an object, not ${describe(raw)}`);
    this.raw = raw as Record<string, unknown>;
    this.allowed = new Set(allowed);
    for (const key of Object.keys(this.raw)) {
      if (!this.allowed.has(key)) this.fail(`"${key}" is not one of its parameters (${allowed.length === 0 ? 'it takes none' : `it takes ${allowed.join(', ')}`})`);
    }
  }

  fail(what: string): never {
    throw new ValidationError(`The request "${this.method}" was refused: ${what}.`);
  }

  has(key: string): boolean {
    return this.raw[key] !== undefined;
  }

  int(key: string, min: number, max = Number.MAX_SAFE_INTEGER): number {
    const v = this.raw[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) this.fail(`"${key}" must be a whole number from ${min}${max === Number.MAX_SAFE_INTEGER ? ' up' : ` to ${max}`}, not ${describe(v)}`);
    return v;
  }

  optInt(key: string, min: number, max?: number): number | undefined {
    return this.has(key) ? this.int(key, min, max) : undefined;
  }

  num(key: string, min: number, max: number): number {
    const v = this.raw[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) this.fail(`"${key}" must be a number from ${min} to ${max}, not ${describe(v)}`);
    return v;
  }

  optNum(key: string, min: number, max: number): number | undefined {
    return this.has(key) ? this.num(key, min, max) : undefined;
  }

  str(key: string, opts: { max?: number; nonEmpty?: boolean } = {}): string {
    const v = this.raw[key];
    if (typeof v !== 'string') this.fail(`"${key}" must be text, not ${describe(v)}`);
    if (opts.nonEmpty !== false && v.trim() === '') this.fail(`"${key}" is empty; fill it in`);
    const max = opts.max ?? LIMITS.text;
    if (v.length > max) this.fail(`"${key}" is ${v.length} characters long; the most is ${max}`);
    return v;
  }

  optStr(key: string, opts: { max?: number; nonEmpty?: boolean } = {}): string | undefined {
    return this.has(key) ? this.str(key, opts) : undefined;
  }

  bool(key: string): boolean | undefined {
    const v = this.raw[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'boolean') this.fail(`"${key}" must be true or false, not ${describe(v)}`);
    return v;
  }

  oneOf<T extends string>(key: string, values: readonly T[]): T {
    const v = this.raw[key];
    if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) this.fail(`"${key}" must be one of ${values.map((x) => `"${x}"`).join(', ')}, not ${describe(v)}`);
    return v as T;
  }

  optOneOf<T extends string>(key: string, values: readonly T[]): T | undefined {
    return this.has(key) ? this.oneOf(key, values) : undefined;
  }

  /** null allowed (clears the field). */
  nullableStr(key: string): string | null | undefined {
    if (this.raw[key] === null) return null;
    return this.optStr(key, { nonEmpty: false });
  }

  strings(key: string, opts: { min: number; max: number; itemMax?: number }): string[] {
    const v = this.raw[key];
    if (!Array.isArray(v)) this.fail(`"${key}" must be a list of texts, not ${describe(v)}`);
    if (v.length < opts.min || v.length > opts.max) this.fail(`"${key}" must have ${opts.min === opts.max ? opts.min : `${opts.min} to ${opts.max}`} items, not ${v.length}`);
    v.forEach((item, i) => {
      if (typeof item !== 'string') this.fail(`item ${i + 1} of "${key}" must be text, not ${describe(item)}`);
      if (item.length > (opts.itemMax ?? LIMITS.text)) this.fail(`item ${i + 1} of "${key}" is too long (${item.length} characters; the most is ${opts.itemMax ?? LIMITS.text})`);
    });
    return v as string[];
  }

  ints(key: string, opts: { min: number; max: number }): number[] {
    const v = this.raw[key];
    if (!Array.isArray(v)) this.fail(`"${key}" must be a list of ids, not ${describe(v)}`);
    if (v.length < opts.min || v.length > opts.max) this.fail(`"${key}" must have ${opts.min} to ${opts.max} items, not ${v.length}`);
    v.forEach((item, i) => {
      if (typeof item !== 'number' || !Number.isInteger(item) || item < 1) this.fail(`item ${i + 1} of "${key}" must be an id (a whole number from 1 up), not ${describe(item)}`);
    });
    if (new Set(v).size !== v.length) this.fail(`"${key}" names the same id twice`);
    return v as number[];
  }

  object(key: string): Record<string, unknown> {
    const v = this.raw[key];
    if (typeof v !== 'object' || v === null || Array.isArray(v)) this.fail(`"${key}" must be an object, not ${describe(v)}`);
    return v as Record<string, unknown>;
  }

  /** A nested object read with the same rules, its errors naming the outer key. */
  nested(key: string, allowed: readonly string[]): Reader {
    return new Reader(`${this.method}" (in "${key}`, this.object(key), allowed);
  }
}

function describe(v: unknown): string {
  if (v === undefined) return 'missing';
  if (v === null) return 'null';
  if (typeof v === 'string') return v.length > 40 ? `the text "${v.slice(0, 40)}..."` : `the text "${v}"`;
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${String(v)}`;
}

const none = <M extends Method>(method: M): Validator<M> => (raw) => {
  new Reader(method, raw, []);
  return {} as Params<M>;
};

const byRun = <M extends 'runs.get' | 'runs.cancel' | 'runs.pause' | 'runs.resume'>(method: M): Validator<M> => (raw) => {
  const r = new Reader(method, raw, ['runId']);
  return { runId: r.int('runId', 1) } as Params<M>;
};

const SPLITS = ['train', 'eval'] as const;
const FORMATS = ['auto', 'hh', 'jsonl', 'csv'] as const;
const PROVIDERS = ['auto', 'cpu', 'webgpu', 'cuda'] as const;
const STATUSES = ['queued', 'running', 'paused', 'done', 'failed', 'cancelled', 'interrupted'] as const;

function sampling(r: Reader): SamplingSettings | undefined {
  if (!r.has('sampling')) return undefined;
  const s = r.nested('sampling', ['maxTokens', 'temperature', 'topP', 'topK', 'seed', 'chat']);
  const out: SamplingSettings = {};
  const maxTokens = s.optInt('maxTokens', 1, 2048);
  const temperature = s.optNum('temperature', 0, 5);
  const topP = s.optNum('topP', 0.000001, 1);
  const topK = s.optInt('topK', 1, 100_000);
  const seed = s.optInt('seed', 0, 2 ** 31 - 1);
  const chat = s.bool('chat');
  if (maxTokens !== undefined) out.maxTokens = maxTokens;
  if (temperature !== undefined) out.temperature = temperature;
  if (topP !== undefined) out.topP = topP;
  if (topK !== undefined) out.topK = topK;
  if (seed !== undefined) out.seed = seed;
  if (chat !== undefined) out.chat = chat;
  return out;
}

/** Copies only the keys that are present, so optional params stay absent. */
function defined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}

export const validators: { [M in Method]: Validator<M> } = {
  'status': none('status'),
  'settings.get': none('settings.get'),
  'settings.set': (raw) => {
    const r = new Reader('settings.set', raw, ['dataFolder', 'forcedProvider', 'modelCacheBytes']);
    return defined({ dataFolder: r.optStr('dataFolder', { max: 4096 }), forcedProvider: r.optOneOf('forcedProvider', PROVIDERS), modelCacheBytes: r.optInt('modelCacheBytes', 0, 2 ** 50) });
  },

  'datasets.list': none('datasets.list'),
  'datasets.examples': (raw) => {
    const r = new Reader('datasets.examples', raw, ['datasetId', 'text', 'split', 'tag', 'limit', 'offset']);
    return defined({
      datasetId: r.int('datasetId', 1),
      text: r.optStr('text', { max: 1000, nonEmpty: false }),
      split: r.optOneOf('split', SPLITS),
      tag: r.optStr('tag', { max: 200 }),
      limit: r.optInt('limit', 1, 500),
      offset: r.optInt('offset', 0),
    });
  },
  'datasets.importFile': (raw) => {
    const r = new Reader('datasets.importFile', raw, ['path', 'name', 'format', 'evalFraction', 'chatModelId']);
    return defined({ path: r.str('path', { max: 4096 }), name: r.str('name', { max: 200 }), format: r.optOneOf('format', FORMATS), evalFraction: r.optNum('evalFraction', 0, 1), chatModelId: r.optInt('chatModelId', 1) });
  },
  'datasets.importText': (raw) => {
    const r = new Reader('datasets.importText', raw, ['name', 'fileName', 'content', 'format', 'evalFraction', 'chatModelId']);
    const fileName = r.str('fileName', { max: 255 });
    if (/[\\/]|^\.\.?$/.test(fileName)) r.fail(`"fileName" must be a file name without folders, not "${fileName}"`);
    return defined({
      name: r.str('name', { max: 200 }),
      fileName,
      content: r.str('content', { max: LIMITS.content }),
      format: r.optOneOf('format', FORMATS),
      evalFraction: r.optNum('evalFraction', 0, 1),
      chatModelId: r.optInt('chatModelId', 1),
    });
  },
  'datasets.updateExample': (raw) => {
    const r = new Reader('datasets.updateExample', raw, ['exampleId', 'patch']);
    const exampleId = r.int('exampleId', 1);
    const p = r.nested('patch', ['prompt', 'response', 'chosen', 'rejected', 'tags', 'split']);
    const patch: ExamplePatch = defined({
      prompt: p.optStr('prompt'),
      response: p.nullableStr('response'),
      chosen: p.nullableStr('chosen'),
      rejected: p.nullableStr('rejected'),
      tags: p.has('tags') ? p.strings('tags', { min: 0, max: 100, itemMax: 200 }) : undefined,
      split: p.optOneOf('split', SPLITS),
    });
    if (Object.keys(patch).length === 0) r.fail('"patch" changes nothing; give at least one field to change');
    return { exampleId, patch };
  },
  'datasets.history': (raw) => {
    const r = new Reader('datasets.history', raw, ['exampleId']);
    return { exampleId: r.int('exampleId', 1) };
  },
  'datasets.export': (raw) => {
    const r = new Reader('datasets.export', raw, ['datasetId', 'split', 'path']);
    return defined({ datasetId: r.int('datasetId', 1), split: r.optOneOf('split', SPLITS), path: r.optStr('path', { max: 4096 }) });
  },
  'datasets.stats': (raw) => {
    const r = new Reader('datasets.stats', raw, ['datasetId', 'bins']);
    return defined({ datasetId: r.int('datasetId', 1), bins: r.optInt('bins', 1, 200) });
  },
  'datasets.delete': (raw) => {
    const r = new Reader('datasets.delete', raw, ['datasetId']);
    return { datasetId: r.int('datasetId', 1) };
  },

  'models.list': none('models.list'),
  'models.import': (raw) => {
    const r = new Reader('models.import', raw, ['dir', 'name']);
    return defined({ dir: r.str('dir', { max: 4096 }), name: r.optStr('name', { max: 200 }) });
  },
  'models.export': (raw) => {
    const r = new Reader('models.export', raw, ['modelId', 'format', 'type', 'out']);
    return defined({ modelId: r.int('modelId', 1), format: r.oneOf('format', MODEL_EXPORT_FORMATS), type: r.optOneOf('type', MODEL_EXPORT_TYPES), out: r.str('out', { max: 4096 }) });
  },
  'models.generate': (raw) => {
    const r = new Reader('models.generate', raw, ['modelId', 'prompt', 'sampling']);
    return defined({ modelId: r.int('modelId', 1), prompt: r.str('prompt', { max: LIMITS.promptChars }), sampling: sampling(r) });
  },
  'generation.cancel': (raw) => {
    const r = new Reader('generation.cancel', raw, ['streamId']);
    return { streamId: r.str('streamId', { max: 100 }) };
  },
  'generation.cache': none('generation.cache'),
  'generation.unload': none('generation.unload'),

  'experiments.recipes': none('experiments.recipes'),
  'experiments.start': (raw) => {
    const r = new Reader('experiments.start', raw, ['definition']);
    // The pipeline's parseExperiment checks the contents with its own sentences.
    return { definition: r.object('definition') as JsonObject };
  },
  'experiments.list': none('experiments.list'),
  'experiments.get': (raw) => {
    const r = new Reader('experiments.get', raw, ['experimentId']);
    return { experimentId: r.int('experimentId', 1) };
  },
  'experiments.stop': (raw) => {
    const r = new Reader('experiments.stop', raw, ['experimentId', 'reason']);
    return { experimentId: r.int('experimentId', 1), reason: r.oneOf('reason', ['pause', 'cancel'] as const) };
  },
  'experiments.resume': (raw) => {
    const r = new Reader('experiments.resume', raw, ['experimentId']);
    return { experimentId: r.int('experimentId', 1) };
  },
  'experiments.exportTrl': (raw) => {
    const r = new Reader('experiments.exportTrl', raw, ['experimentId', 'out', 'gpus']);
    return defined({ experimentId: r.int('experimentId', 1), out: r.str('out', { max: 4096 }), gpus: r.optInt('gpus', 1, 1024) });
  },

  'runs.list': (raw) => {
    const r = new Reader('runs.list', raw, ['experimentId', 'status']);
    return defined({ experimentId: r.optInt('experimentId', 1), status: r.optOneOf('status', STATUSES) });
  },
  'runs.get': byRun('runs.get'),
  'runs.cancel': byRun('runs.cancel'),
  'runs.pause': byRun('runs.pause'),
  'runs.resume': byRun('runs.resume'),
  'runs.logs': (raw) => {
    const r = new Reader('runs.logs', raw, ['runId', 'limit']);
    return defined({ runId: r.int('runId', 1), limit: r.optInt('limit', 1, 10_000) });
  },
  'runs.metrics': (raw) => {
    const r = new Reader('runs.metrics', raw, ['runId', 'names']);
    return defined({ runId: r.int('runId', 1), names: r.has('names') ? r.strings('names', { min: 1, max: 100, itemMax: 200 }) : undefined });
  },

  'compare.start': (raw) => {
    const r = new Reader('compare.start', raw, ['modelIds', 'prompts', 'sampling']);
    return defined({
      modelIds: r.ints('modelIds', { min: 2, max: LIMITS.models }),
      prompts: r.strings('prompts', { min: 1, max: LIMITS.prompts, itemMax: LIMITS.promptChars }).map((p, i) => {
        if (p.trim() === '') r.fail(`prompt ${i + 1} is empty; fill it in or remove it`);
        return p;
      }),
      sampling: sampling(r),
    });
  },
  'compare.nextPair': (raw) => {
    const r = new Reader('compare.nextPair', raw, ['modelA', 'modelB']);
    const modelA = r.int('modelA', 1);
    const modelB = r.int('modelB', 1);
    if (modelA === modelB) r.fail('"modelA" and "modelB" are the same model; choose two different models');
    return { modelA, modelB };
  },
  'compare.vote': (raw) => {
    const r = new Reader('compare.vote', raw, ['pairId', 'vote']);
    return { pairId: r.str('pairId', { max: 100 }), vote: r.oneOf('vote', ['A', 'B', 'tie', 'skip'] as const) };
  },
  'compare.tally': (raw) => {
    const r = new Reader('compare.tally', raw, ['modelA', 'modelB']);
    const modelA = r.int('modelA', 1);
    const modelB = r.int('modelB', 1);
    if (modelA === modelB) r.fail('"modelA" and "modelB" are the same model; choose two different models');
    return { modelA, modelB };
  },

  'results.get': (raw) => {
    const r = new Reader('results.get', raw, ['experimentId']);
    return { experimentId: r.int('experimentId', 1) };
  },
  'logs.app': (raw) => {
    const r = new Reader('logs.app', raw, ['limit']);
    return defined({ limit: r.optInt('limit', 1, 10_000) });
  },
  'diagnostics.bundle': none('diagnostics.bundle'),
  'system.choosePath': (raw) => {
    const r = new Reader('system.choosePath', raw, ['kind']);
    return { kind: r.oneOf('kind', ['file', 'folder'] as const) };
  },
};

export const METHODS = Object.keys(validators) as Method[];

export function isMethod(name: unknown): name is Method {
  return typeof name === 'string' && Object.prototype.hasOwnProperty.call(validators, name);
}

/** Checks a method name and its params from an untrusted caller; throws a ValidationError sentence. */
export function validate(method: unknown, params: unknown): { method: Method; params: Params<Method> } {
  if (!isMethod(method)) throw new ValidationError(`"${typeof method === 'string' ? method.slice(0, 80) : String(method)}" is not a method of the studio's API; update the app, or use one of: ${METHODS.join(', ')}.`);
  return { method, params: (validators[method] as (raw: unknown) => Params<Method>)(params) };
}

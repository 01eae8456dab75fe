// The one typed API between the studio's views and its engine (DESIGN.md §4). The same
// table serves Electron IPC (window.afd.call), `afd serve` (POST /api/<method>) and tests:
// a method name, the schema of its params (a strict TypeBox object: their TypeScript type
// is the schema's, so the two cannot drift apart), its result, and a validator that turns
// untrusted input into params or throws one clear sentence. Events (job progress,
// experiment progress, generation tokens) come separately as a stream of StudioEvent.
//
// This file is loaded by the renderer too: no Node imports. It imports the schema layer
// (main/schema/, TypeBox and a string distance: no Node either), and only types from
// the pipeline's contract and the store, whose row types the API returns as they are.
import Type, { type TObject, type TProperties, type TSchema } from 'typebox';
import { described, flag, integer, nullable, number, oneOf, text } from '../schema/fields.ts';
import { isObject, parseObject, SchemaError, show } from '../schema/parse.ts';
import type { DataSpec, ExperimentDefinition, ExperimentEndStatus, ExperimentProgress, Recipe, ResultRow, ResultsTable, StageSpec, StageState } from '../experiments/contract.ts';
import type { DatasetFormat, DatasetSummary, Example, ExampleEdit, ExamplePage, ExamplePatch, Split } from '../../db/datasets.ts';
import type { Json, JsonObject } from '../../db/json.ts';
import type { LogLevel, LogLine } from '../../db/run-logs.ts';
import type { Run, RunStatus } from '../../db/runs.ts';

export type { DataSpec, ExperimentDefinition, ExperimentEndStatus, ExperimentProgress, Recipe, ResultRow, ResultsTable, StageSpec, StageState, Json, JsonObject };
export type { DatasetFormat, DatasetSummary, Example, ExampleEdit, ExamplePage, ExamplePatch, LogLevel, LogLine, RunStatus, Split };

// ---- shared shapes ----

export const PROVIDER_SETTINGS = ['auto', 'cpu', 'webgpu', 'cuda'] as const;
export type ProviderSetting = (typeof PROVIDER_SETTINGS)[number];

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

/** A run in a list (runs.list): with the last step it logged a metric at (null before the first). */
export interface RunSummary extends RunInfo {
  lastStep: number | null;
}

/** The job kinds runs.start starts from their config alone; the others have their own
 *  methods, which check paths and store ids first (datasets.importFile, models.import...). */
export const STARTABLE_KINDS = ['train-tiny-lm'] as const;

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
  /** The last log lines (runs.get's `logs`, default 50). */
  logs: LogLine[];
  /** The absolute path of its checkpoint file on the machine that runs it (null without one). */
  checkpointFile: string | null;
  /** A pause or cancel asked (from any process) that the running job has not reached yet: it stops at its next step boundary. */
  asked: 'pause' | 'cancel' | null;
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
  /** The absolute folder of its files on the machine that runs the studio (null while a trained model has none yet). */
  folder: string | null;
  /** It scores answers: a reward model (backbone + score head, from a reward, pref-reward or judge stage), which Compare's Best-of-N columns choose by. */
  reward: boolean;
}

export const MODEL_EXPORT_FORMATS = ['hf', 'gguf'] as const;
export const MODEL_EXPORT_TYPES = ['f32', 'f16', 'bf16', 'q8_0'] as const;

const SAMPLING = Type.Object({
  maxTokens: Type.Optional(integer(1, 2048, { description: 'New tokens at most (default 128).' })),
  temperature: Type.Optional(number(0, 5, { description: '0 is greedy (default 0.8).' })),
  topP: Type.Optional(number(0.000001, 1)),
  topK: Type.Optional(integer(1, 100_000)),
  seed: Type.Optional(integer(0, 2 ** 31 - 1)),
  chat: Type.Optional(flag({ description: "Format the prompt with the model's chat template (default true when it has one)." })),
}, { additionalProperties: false });

/** How a generation samples; every setting is optional (the defaults are the generator's). */
export type SamplingSettings = Type.Static<typeof SAMPLING>;

/**
 * What a streamed generation is doing: waiting for the generations before it, reading its
 * model's weight files, preparing the model (ONNX Runtime building its sessions), or
 * producing tokens. A model kept loaded from an earlier generation goes straight to
 * 'generating'. A Best-of-N stream samples its N answers instead ('sampling': `done` of
 * `total` answers finished), then has the reward model score them ('scoring': `done` of
 * `total` answers scored, the comparison's prompts together), and streams no tokens.
 */
export type GenerationPhase = 'queued' | 'loading' | 'preparing' | 'generating' | 'sampling' | 'scoring';

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
  /** Its column in a comparison (0 for a single generation). */
  column: number;
  /** Set for a Best-of-N column: its answer is the reward model's pick of N. */
  bestOf: BestOf | null;
  promptIndex: number;
  prompt: string;
}

/** An answer a Best-of-N stream sampled, with the reward model's score of it. */
export interface BestOfCandidate {
  text: string;
  tokens: number;
  finishReason: 'eos' | 'stop' | 'length';
  reward: number;
}

/** What a Best-of-N stream chose: its candidates in the order they were sampled, and
 *  `chosen`, the index of the one with the highest reward (the first of equal ones). */
export interface BestOfOutcome extends BestOf {
  chosen: number;
  candidates: BestOfCandidate[];
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
  /** The exported experiment's name, and its id when it came from the store. */
  experiment: { id: number | null; name: string };
  /** The GPUs of the one machine accelerate.yaml describes. */
  gpus: number;
  /** Prompts written into the project. */
  data: { train: number; eval: number; preferences: number };
  stages: { id: string; kind: string; exported: boolean; script?: string; why?: string }[];
}

/** A TRL project's outputs read back (experiments.importTrl): the new experiment, what it imported, and the stages left to run here. */
export interface TrlImport {
  experimentId: number;
  name: string;
  imported: { id: string; kind: string; runId: number; modelId?: number }[];
  local: { id: string; kind: string; why: string }[];
}

/** A stage kind as a form is built from it (experiments.stageKinds). */
export interface StageKind {
  kind: string;
  summary: string;
  produces: string;
  /** The settings that name earlier stages (or pi0, demos, a model of `models:`), with the outputs each accepts. */
  inputs: Record<string, { types: string[]; list?: boolean; optional?: boolean }>;
  /** Its settings' schema as JSON Schema (an object's `properties`: type, minimum, maximum, enum, default, description, and `must`: what a value must be). */
  settings: JsonObject;
}

/** A problem of a definition (experiments.check): the sentence experiments.start refuses it with,
 *  the index of its stage (null: the definition's own keys) and that stage's id, and the
 *  setting or key it is about (`path`; empty: the stage or the definition as a whole). */
export interface DefinitionProblem {
  message: string;
  stage: number | null;
  stageId: string | null;
  path: string[];
}

/** What the voter sees: two responses, unlabelled. Which model is which stays on the server until the vote. */
export interface BlindPair {
  pairId: string;
  prompt: string;
  /** Shown left (A) and right (B). */
  a: string;
  b: string;
}

export const VOTES = ['A', 'B', 'tie', 'skip'] as const;
export type Vote = (typeof VOTES)[number];

/** A side of a blind vote, revealed: the model, and its Best-of-N when the side was its
 *  picks; `name` says both ("sft, best of 8 by rm"). */
export interface RevealedSide {
  modelId: number;
  bestOf: BestOf | null;
  name: string;
}

export interface VoteResult {
  judgmentId: number;
  /** Revealed after the vote: which side was shown on each side of the screen. */
  reveal: { a: RevealedSide; b: RevealedSide };
  tally: Tally;
}

/** Side A's answers against side B's: each a model's plain answers, or its Best-of-N picks (bestOfA, bestOfB). */
export interface Tally {
  modelA: number;
  modelB: number;
  bestOfA: BestOf | null;
  bestOfB: BestOf | null;
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

// ---- params ----

const LIMITS = { text: 1_000_000, path: 4096, name: 200, content: 256 * 1024 * 1024, prompts: 20, models: 8, promptChars: 20_000 } as const;

const params = <P extends TProperties>(properties: P) => Type.Object(properties, { additionalProperties: false });
const opt = Type.Optional;
const id = () => integer(1);
const NONE = params({});
export const SPLITS = ['train', 'eval'] as const satisfies readonly Split[];
export const DATASET_FORMATS = ['auto', 'hh', 'jsonl', 'csv'] as const satisfies readonly (DatasetFormat | 'auto')[];
export const RUN_STATUSES = ['queued', 'running', 'paused', 'done', 'failed', 'cancelled', 'interrupted'] as const satisfies readonly RunStatus[];
// And the other way: a status the store adds is a compile error here until it is listed.
const _everyStatus: readonly (typeof RUN_STATUSES)[number][] = [] as RunStatus[];
const path = () => text({ max: LIMITS.path });
const RUN = params({ runId: id() });
const DATASET = params({ datasetId: id() });
const EXAMPLE = params({ exampleId: id() });
const EXPERIMENT = params({ experimentId: id() });
const BEST_OF = Type.Object({
  rewardModelId: integer(1, Number.MAX_SAFE_INTEGER, { description: 'The reward model that scores the answers (one a reward, pref-reward or judge stage made).' }),
  n: integer(2, 64, { description: 'Answers sampled per prompt; the one the reward model scores highest is kept.' }),
}, { additionalProperties: false });
/** A comparison's column: a model's answers, or with `bestOf` its Best-of-N picks. */
const COLUMN = Type.Object({ modelId: id(), bestOf: opt(BEST_OF) }, { additionalProperties: false });
/** A side of a blind vote: model A or B, its Best-of-N picks when bestOfA or bestOfB is given. */
const PAIR = params({ modelA: id(), modelB: id(), bestOfA: opt(BEST_OF), bestOfB: opt(BEST_OF) });
const fileName = described(Type.String({ minLength: 1, maxLength: 255, pattern: '^(?!\\.\\.?$)[^\\\\/]+$' }), 'a file name without folders, of at most 255 characters');
/** The chat-template model is a stored model (`chatModelId`) or a model folder on this machine (`chatModelDir`, absolute). */
const importOptions = { format: opt(oneOf(DATASET_FORMATS)), evalFraction: opt(number(0, 1)), chatModelId: opt(id()), chatModelDir: opt(path()) };
/** A response, chosen or rejected text: null clears it. */
const clearable = () => opt(nullable(text({ max: LIMITS.text, empty: true })));
/** The experiment definition, read by the pipeline's parseExperiment with its own sentences. */
const definition = described(Type.Unsafe<JsonObject>(Type.Record(Type.String(), Type.Unknown())), 'a mapping (an experiment definition)');
/** A job's config, read by its kind's schema (main/jobs/) with its own sentences. */
const jobConfig = described(Type.Unsafe<JsonObject>(Type.Record(Type.String(), Type.Unknown())), "a mapping (the job kind's config)");

/** Every method's params: a strict object (an unknown key is refused, with the closest
 *  known one), whose type `Params<M>` is. Checks a schema cannot say (two fields that must
 *  differ, a patch that changes something) are in CHECKS below. */
export const PARAMS = {
  'status': NONE,
  'settings.get': NONE,
  'settings.set': params({ dataFolder: opt(path()), forcedProvider: opt(oneOf(PROVIDER_SETTINGS)), modelCacheBytes: opt(integer(0, 2 ** 50)) }),

  'datasets.list': NONE,
  'datasets.examples': params({
    datasetId: id(),
    text: opt(text({ max: 1000, empty: true })),
    split: opt(oneOf(SPLITS)),
    tag: opt(text({ max: LIMITS.name })),
    limit: opt(integer(1, 500)),
    offset: opt(integer(0)),
  }),
  'datasets.importFile': params({ path: path(), name: text({ max: LIMITS.name }), ...importOptions }),
  'datasets.importText': params({ name: text({ max: LIMITS.name }), fileName, content: text({ max: LIMITS.content }), ...importOptions }),
  'datasets.updateExample': params({
    exampleId: id(),
    patch: params({
      prompt: opt(text({ max: LIMITS.text })),
      response: clearable(),
      chosen: clearable(),
      rejected: clearable(),
      tags: opt(described(Type.Array(Type.String({ maxLength: LIMITS.name }), { maxItems: 100 }), `a list of at most 100 tags, each of at most ${LIMITS.name} characters`)),
      split: opt(oneOf(SPLITS)),
    }),
  }),
  'datasets.history': EXAMPLE,
  'datasets.export': params({ datasetId: id(), split: opt(oneOf(SPLITS)), path: opt(path()) }),
  'datasets.stats': params({ datasetId: id(), bins: opt(integer(1, 200)) }),
  'datasets.delete': DATASET,

  'models.list': NONE,
  'models.import': params({ dir: path(), name: opt(text({ max: LIMITS.name })) }),
  'models.export': params({ modelId: id(), format: oneOf(MODEL_EXPORT_FORMATS), type: opt(oneOf(MODEL_EXPORT_TYPES)), out: path() }),
  'models.generate': params({ modelId: id(), prompt: text({ max: LIMITS.promptChars }), sampling: opt(SAMPLING) }),
  'generation.cancel': params({ streamId: text({ max: 100 }) }),
  'generation.cache': NONE,
  'generation.unload': NONE,

  'experiments.recipes': NONE,
  'experiments.start': params({ definition }),
  'experiments.list': NONE,
  'experiments.get': EXPERIMENT,
  'experiments.stop': params({ experimentId: id(), reason: oneOf(['pause', 'cancel']) }),
  'experiments.resume': params({ experimentId: id(), definition: opt(definition) }),
  'experiments.exportTrl': params({ experimentId: opt(id()), definition: opt(definition), out: path(), gpus: opt(integer(1, 1024)), pi0: opt(text({ max: LIMITS.promptChars })) }),
  'experiments.importTrl': params({ dir: path() }),
  'experiments.stageKinds': NONE,
  'experiments.check': params({ definition }),

  'runs.list': params({ experimentId: opt(id()), status: opt(oneOf(RUN_STATUSES)) }),
  'runs.get': params({ runId: id(), logs: opt(integer(0, 10_000, { description: 'The last log lines to return (default 50).' })) }),
  'runs.start': params({ kind: oneOf(STARTABLE_KINDS), config: opt(jobConfig) }),
  'runs.cancel': RUN,
  'runs.pause': RUN,
  'runs.resume': RUN,
  'runs.logs': params({ runId: id(), limit: opt(integer(1, 10_000)) }),
  'runs.metrics': params({ runId: id(), names: opt(described(Type.Array(Type.String({ maxLength: LIMITS.name }), { minItems: 1, maxItems: 100 }), `a list of 1 to 100 metric names, each of at most ${LIMITS.name} characters`)) }),

  'compare.start': params({
    modelIds: opt(described(Type.Array(id(), { minItems: 2, maxItems: LIMITS.models, uniqueItems: true }), `a list of 2 to ${LIMITS.models} different model ids`)),
    columns: opt(described(Type.Array(COLUMN, { minItems: 2, maxItems: LIMITS.models }), `a list of 2 to ${LIMITS.models} columns, each {modelId} or {modelId, bestOf: {rewardModelId, n}}`)),
    prompts: described(Type.Array(text({ max: LIMITS.promptChars }), { minItems: 1, maxItems: LIMITS.prompts }), `a list of 1 to ${LIMITS.prompts} prompts, each a non-empty text of at most ${LIMITS.promptChars} characters`),
    sampling: opt(SAMPLING),
  }),
  'compare.nextPair': PAIR,
  'compare.vote': params({ pairId: text({ max: 100 }), vote: oneOf(VOTES) }),
  'compare.tally': PAIR,

  'results.get': EXPERIMENT,
  'logs.app': params({ limit: opt(integer(1, 10_000)) }),
  'diagnostics.bundle': NONE,
  'system.choosePath': params({ kind: oneOf(['file', 'folder']) }),
} satisfies Record<string, TObject>;

/** The params of a method, as its schema types them. */
type P<K extends keyof typeof PARAMS> = Type.Static<(typeof PARAMS)[K]>;

/** Best-of-N (the bon stage's rule, DESIGN.md §2.4): sample `n` answers per prompt and keep
 *  the one reward model `rewardModelId` scores highest. */
export type BestOf = Type.Static<typeof BEST_OF>;
/** A column of compare.start. */
export type CompareColumn = Type.Static<typeof COLUMN>;

// ---- the method table ----

export interface Methods {
  'status': { params: P<'status'>; result: StudioStatus };
  'settings.get': { params: P<'settings.get'>; result: Settings };
  /** Moving the data folder copies the database and its files there; it is used after a restart. */
  'settings.set': { params: P<'settings.set'>; result: SettingsResult };

  'datasets.list': { params: P<'datasets.list'>; result: DatasetSummary[] };
  'datasets.examples': { params: P<'datasets.examples'>; result: ExamplePage };
  /**
   * Imports a file on this machine as a job; follow it with run.* events. `chatModelId` (a
   * stored model) or `chatModelDir` (a model folder): the model whose chat template turns
   * `{messages}` lines into a prompt and a response (chat templates belong to models);
   * without one such lines are refused, saying so.
   */
  'datasets.importFile': { params: P<'datasets.importFile'>; result: RunInfo };
  /** Imports uploaded text (a browser file picker's contents) as a job. `fileName` gives the format by its extension. */
  'datasets.importText': { params: P<'datasets.importText'>; result: RunInfo };
  'datasets.updateExample': { params: P<'datasets.updateExample'>; result: { example: Example; history: ExampleEdit[] } };
  'datasets.history': { params: P<'datasets.history'>; result: ExampleEdit[] };
  /** JSON Lines the importer reads back; written to `path` when given, else returned as text. */
  'datasets.export': { params: P<'datasets.export'>; result: { fileName: string; lines: number; content: string | null; path: string | null } };
  'datasets.stats': { params: P<'datasets.stats'>; result: DatasetStats };
  'datasets.delete': { params: P<'datasets.delete'>; result: { deleted: boolean } };

  'models.list': { params: P<'models.list'>; result: ModelInfo[] };
  /** Imports a Hugging Face folder or a .gguf file on this machine as a job. */
  'models.import': { params: P<'models.import'>; result: RunInfo };
  /** Writes a model as a Hugging Face folder or a GGUF file (`type`: f32, f16, bf16 for folders, q8_0 for GGUF) as a job. */
  'models.export': { params: P<'models.export'>; result: RunInfo };
  /** Starts a streamed generation; tokens arrive as 'generation.token' events, the end as 'generation.done'. */
  'models.generate': { params: P<'models.generate'>; result: GenerationStream };
  'generation.cancel': { params: P<'generation.cancel'>; result: { cancelled: boolean } };
  /** The models kept loaded for generation and their memory budget (Settings' modelCacheBytes). */
  'generation.cache': { params: P<'generation.cache'>; result: ModelCacheInfo };
  /** Releases every loaded model (one in use when its generation ends); the next generation loads again. */
  'generation.unload': { params: P<'generation.unload'>; result: ModelCacheInfo };

  'experiments.recipes': { params: P<'experiments.recipes'>; result: Recipe[] };
  /** Checks the definition (parseExperiment) and starts it; progress as 'experiment.progress' events. */
  'experiments.start': { params: P<'experiments.start'>; result: ExperimentDetail };
  'experiments.list': { params: P<'experiments.list'>; result: ExperimentSummary[] };
  'experiments.get': { params: P<'experiments.get'>; result: ExperimentDetail };
  'experiments.stop': { params: P<'experiments.stop'>; result: ExperimentProgress };
  /** Continues a stored experiment; with `definition` (an edited one), each finished stage whose settings, seed or data changed runs again, and every stage that reads its output. */
  'experiments.resume': { params: P<'experiments.resume'>; result: ExperimentDetail };
  /** Writes the experiment as a Python project for TRL on accelerate (GPU machines, clusters: afd export trl) into `out`, a new folder's full path. */
  'experiments.exportTrl': { params: P<'experiments.exportTrl'>; result: TrlExport };
  /** Reads a project written by exportTrl, after its run: its outputs become a new experiment, linked to the exported one, whose other stages experiments.resume runs here. */
  'experiments.importTrl': { params: P<'experiments.importTrl'>; result: TrlImport };
  /** Every stage kind with its settings' JSON Schema, for the Experiments view's stage forms. */
  'experiments.stageKinds': { params: P<'experiments.stageKinds'>; result: StageKind[] };
  /** Checks a definition as experiments.start would, starting nothing: every problem with its stage and setting; none when it would start. */
  'experiments.check': { params: P<'experiments.check'>; result: DefinitionProblem[] };

  'runs.list': { params: P<'runs.list'>; result: RunSummary[] };
  'runs.get': { params: P<'runs.get'>; result: RunDetail };
  /** Starts a job of a kind in STARTABLE_KINDS with its config (its kind fills in and records every default). */
  'runs.start': { params: P<'runs.start'>; result: RunInfo };
  'runs.cancel': { params: P<'runs.cancel'>; result: RunInfo };
  'runs.pause': { params: P<'runs.pause'>; result: RunInfo };
  'runs.resume': { params: P<'runs.resume'>; result: RunInfo };
  'runs.logs': { params: P<'runs.logs'>; result: LogLine[] };
  /** Every metric of the run when `names` is absent. */
  'runs.metrics': { params: P<'runs.metrics'>; result: MetricSeries[] };

  /**
   * Generates each prompt in each column (2..8 columns, 1..20 prompts), streamed; the
   * responses are stored for blind voting. A column is a model (`modelIds`, or `columns`
   * without bestOf) or a model's Best-of-N by a reward model (`columns` with bestOf: its
   * N answers are sampled and scored, the best is its answer, stored with its label).
   */
  'compare.start': { params: P<'compare.start'>; result: { compareId: string; streams: GenerationStream[] } };
  /** A random prompt both sides answered, the two responses in a random order that is recorded; null when there is none left. */
  'compare.nextPair': { params: P<'compare.nextPair'>; result: BlindPair | null };
  'compare.vote': { params: P<'compare.vote'>; result: VoteResult };
  'compare.tally': { params: P<'compare.tally'>; result: Tally };

  'results.get': { params: P<'results.get'>; result: ResultsTable | null };
  'logs.app': { params: P<'logs.app'>; result: AppLogLine[] };
  'diagnostics.bundle': { params: P<'diagnostics.bundle'>; result: { fileName: string; text: string } };
  /** The desktop app's open dialog for a file or a folder (null when dismissed); refused over HTTP, where paths are typed. */
  'system.choosePath': { params: P<'system.choosePath'>; result: { path: string | null } };
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
  /** A line from the experiment's driver (why a finished stage runs again). */
  | { type: 'experiment.log'; experimentId: number; text: string }
  /** The driver stopped: every stage done, or paused, cancelled, failed or interrupted (`error` says why for a failure). */
  | { type: 'experiment.ended'; experimentId: number; status: ExperimentEndStatus; error: string | null }
  /**
   * A stream entered a phase or moved on in it: `done` of `total` bytes read ('loading'),
   * `done` ONNX Runtime sessions built ('preparing', total null), `total` new tokens at
   * most ('generating'; the tokens come as events); `etaMs` the time left in the phase
   * when it can be told.
   */
  | { type: 'generation.phase'; streamId: string; phase: GenerationPhase; done: number; total: number | null; etaMs: number | null }
  /** `text` is the new text of this token (may be empty while a character is incomplete). */
  | { type: 'generation.token'; streamId: string; index: number; text: string }
  /** `bestOf`: a Best-of-N stream's candidates and pick (its text and tokens are the pick's), when it got that far. */
  | { type: 'generation.done'; streamId: string; text: string; tokens: number; finishReason: 'eos' | 'stop' | 'length' | 'cancelled' | 'error'; error: string | null; generationId: number | null; bestOf?: BestOfOutcome }
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

/** Params that a validator refused; `message` is a sentence for the user, `path` the
 *  parameter it is about (for a form; empty when it is about the whole request). */
export class ValidationError extends Error {
  override readonly name = 'ValidationError';
  constructor(message: string, readonly path: readonly string[] = []) {
    super(message);
  }
}

type Validator<M extends Method> = (raw: unknown) => Params<M>;

const sameBestOf = (a: BestOf | undefined, b: BestOf | undefined): boolean => (a === undefined ? b === undefined : b !== undefined && a.n === b.n && a.rewardModelId === b.rewardModelId);
const SAME_SIDE = (p: { modelA: number; modelB: number; bestOfA?: BestOf; bestOfB?: BestOf }): string | null => {
  if (p.modelA !== p.modelB || !sameBestOf(p.bestOfA, p.bestOfB)) return null;
  return p.bestOfA === undefined ? 'modelA and modelB are the same model; choose two different models.' : "both sides are the same model's Best-of-N with the same N and reward model; choose two different sides.";
};
/** What compare.start's params cannot say by schema: one way of naming the columns, each column once, Best-of-N with sampling. */
const COMPARE_START = (p: { modelIds?: number[]; columns?: CompareColumn[]; sampling?: { temperature?: number } }): string | null => {
  if (p.modelIds !== undefined && p.columns !== undefined) return 'it names the models twice (modelIds and columns); give one of them.';
  if (p.modelIds === undefined && p.columns === undefined) return 'it names no models; give modelIds or columns.';
  const columns = p.columns ?? [];
  for (const [i, c] of columns.entries()) {
    const j = columns.findIndex((d) => d.modelId === c.modelId && sameBestOf(d.bestOf, c.bestOf));
    if (j < i) return `columns ${j + 1} and ${i + 1} are the same (model #${c.modelId}${c.bestOf === undefined ? '' : `, best of ${c.bestOf.n} by model #${c.bestOf.rewardModelId}`}); give each column once.`;
  }
  if (p.sampling?.temperature === 0 && columns.some((c) => c.bestOf !== undefined)) return 'Best-of-N needs sampled answers, and temperature 0 gives N copies of the greedy one; set sampling.temperature above 0.';
  return null;
};
const ONE_CHAT_MODEL = (p: { chatModelId?: number; chatModelDir?: string }): string | null => (p.chatModelId !== undefined && p.chatModelDir !== undefined ? 'it names a chat-template model twice (chatModelId and chatModelDir); give one of them.' : null);

/** What a schema cannot say: a sentence when the params are refused, else null. */
const CHECKS: { [M in Method]?: (p: Params<M>) => string | null } = {
  'datasets.importFile': ONE_CHAT_MODEL,
  'datasets.importText': ONE_CHAT_MODEL,
  'datasets.updateExample': (p) => (Object.keys(p.patch).length === 0 ? 'patch changes nothing; give at least one field to change.' : null),
  'compare.start': COMPARE_START,
  'compare.nextPair': SAME_SIDE,
  'compare.tally': SAME_SIDE,
  'experiments.exportTrl': (p) => ((p.experimentId === undefined) === (p.definition === undefined) ? 'give the experiment to export once: experimentId (a stored experiment) or definition (one not stored).' : null),
};

/** Reads one method's params by its schema, naming the method in every refusal. Absent
 *  params (undefined, null) are no params; a null param counts as absent unless it may be null. */
function validator<M extends Method>(method: M): Validator<M> {
  const schema: TSchema = PARAMS[method];
  const refuse = (what: string, path: readonly string[] = []): never => {
    throw new ValidationError(`The request "${method}" was refused: ${what}`, path);
  };
  return (raw) => {
    if (raw === undefined || raw === null) raw = {};
    if (!isObject(raw)) refuse(`its parameters must be an object, not ${Array.isArray(raw) ? 'a list' : show(raw)}.`);
    let parsed: Params<M>;
    try {
      parsed = parseObject(schema as TObject, raw, { where: 'it', noun: 'parameter' }) as Params<M>;
    } catch (err) {
      if (err instanceof SchemaError) refuse(err.message, err.path);
      throw err;
    }
    const problem = (CHECKS[method] as ((p: Params<M>) => string | null) | undefined)?.(parsed);
    if (problem) refuse(problem);
    return parsed;
  };
}

export const validators = Object.fromEntries(Object.keys(PARAMS).map((m) => [m, validator(m as Method)])) as { [M in Method]: Validator<M> };

export const METHODS = Object.keys(PARAMS) as Method[];

export function isMethod(name: unknown): name is Method {
  return typeof name === 'string' && Object.prototype.hasOwnProperty.call(PARAMS, name);
}

/** Checks a method name and its params from an untrusted caller; throws a ValidationError sentence. */
export function validate(method: unknown, params: unknown): { method: Method; params: Params<Method> } {
  if (!isMethod(method)) throw new ValidationError(`"${typeof method === 'string' ? method.slice(0, 80) : String(method)}" is not a method of the studio's API; update the app, or use one of: ${METHODS.join(', ')}.`);
  return { method, params: (validators[method] as (raw: unknown) => Params<Method>)(params) };
}

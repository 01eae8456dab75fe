// The fake studio's data for component tests (see fake-bridge.js), typed by the contract.
import type { DatasetStats, DatasetSummary, DefinitionProblem, Example, ExperimentDetail, ExperimentSummary, ModelCacheInfo, ModelInfo, Recipe, ResultsTable, StageKind, StudioStatus } from '../../main/api/contract.ts';

export interface Fixture {
  status: StudioStatus;
  datasets?: DatasetSummary[];
  examples?: Example[];
  stats?: Record<number, DatasetStats>;
  models?: ModelInfo[];
  recipes?: Recipe[];
  /** experiments.stageKinds (default: none, so stages are edited as JSON text). */
  stageKinds?: StageKind[];
  /** What experiments.check finds in any definition (default: nothing). */
  problems?: DefinitionProblem[];
  experiments?: ExperimentSummary[];
  experimentDetails?: Record<number, ExperimentDetail>;
  startedId?: number;
  pairs?: { pairId: string; prompt: string; a: string; b: string }[];
  results?: Record<number, ResultsTable>;
  /** The loaded models of generation.cache (default: none, a 4 GB budget). */
  cache?: ModelCacheInfo;
  /** Milliseconds models.generate holds its tokens back (its phases come first). */
  generateDelayMs?: number;
  /** Methods that fail, with their error sentence. */
  fail?: Record<string, string>;
}

export const STATUS: StudioStatus = {
  version: '0.1.0', dataFolder: '/data/afd', dbPath: '/data/afd/studio.db', schemaVersion: 3, forcedProvider: 'auto', runningRuns: [], runningGenerations: 0,
  device: { provider: 'cpu', reason: 'cpu: no GPU provider works here', gpu: null, gpuUnusedReason: 'CUDA libraries are not installed', cpuThreads: 2, tried: [{ provider: 'cpu', ok: true, reason: 'works' }] },
};

export function dataset(id: number, name: string, examples: number): DatasetSummary {
  return { id, name, createdAt: '2025-01-01T00:00:00Z', sourceFile: `${name}.jsonl`, sourceFormat: 'jsonl', sourceRecords: examples, sourceDuplicates: 0, importRunId: null, examples, train: examples - 1, eval: 1 };
}

export function example(id: number, datasetId: number, prompt: string, response: string): Example {
  return { id, datasetId, prompt, response, chosen: null, rejected: null, source: null, tags: [], split: id % 4 === 0 ? 'eval' : 'train', hash: String(id), createdAt: '2025-01-01T00:00:00Z', updatedAt: '2025-01-01T00:00:00Z' };
}

export function model(id: number, name: string, parentId: number | null = null, stage: string | null = null): ModelInfo {
  return { id, name, kind: id === 1 ? 'builtin' : parentId === null ? 'imported' : 'trained', family: 'gpt2', parentId, stage, runId: null, createdAt: '2025-01-01T00:00:00Z', params: id === 1 ? 4_300_000 : 134_515_008, source: id === 2 ? { format: 'gguf', file: 'SmolLM2-135M-Instruct.Q4_1.gguf', quantization: 'Q4_1' } : null, folder: `/data/afd/studio.db.files/models/${id}`, reward: stage === 'reward' };
}

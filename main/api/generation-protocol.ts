// The messages between the service (main thread) and the interactive-generation worker.
// Generation runs in a worker because ONNX Runtime's session.run blocks its thread
// (DESIGN.md §5), and the main thread serves the window, IPC and HTTP.
import type { ProviderSetting, SamplingSettings } from './contract.ts';
import type { ModelCacheState } from './model-cache.ts';

export type { ModelCacheState } from './model-cache.ts';

export type FinishReason = 'eos' | 'stop' | 'length' | 'cancelled';

export interface GenerateRequest {
  /** Hugging Face folder of the model. */
  modelDir: string;
  prompts: string[];
  sampling: SamplingSettings;
  provider: ProviderSetting;
  /** Memory budget of the worker's loaded models (bytes); see model-cache.ts. */
  cacheBytes: number;
  /** Best-of-N: `n` answers sampled per prompt and scored by the reward model saved in
   *  `rewardDir` (a scorer folder); each row's result is the best, with every candidate. */
  bestOf?: { n: number; rewardDir: string };
}

/**
 * Where a request is once the worker has taken it: reading the model's weight files
 * (`done` of `total` bytes), preparing it (`done` sessions built), or generating (`total`
 * new tokens at most). `etaMs`: time left in the phase when known.
 */
export interface WorkerPhase {
  phase: 'loading' | 'preparing' | 'generating' | 'sampling' | 'scoring';
  done: number;
  total: number | null;
  etaMs: number | null;
  /** The prompt (index) it is about, where prompts differ (a Best-of-N request's sampling); absent: all of them. */
  prompt?: number;
}

export interface GeneratedRow {
  text: string;
  tokens: number;
  finishReason: FinishReason;
  /** A Best-of-N request's row: its candidates in sampling order with their rewards, and
   *  the index of the one chosen (whose text, tokens and finish reason the row has). */
  bestOf?: { chosen: number; candidates: ScoredCandidate[] };
}

export interface ScoredCandidate {
  text: string;
  tokens: number;
  finishReason: Exclude<FinishReason, 'cancelled'>;
  reward: number;
}

export interface ProviderProbe {
  provider: 'cuda' | 'webgpu' | 'cpu' | null;
  reason: string;
  tried: { provider: string; ok: boolean; reason: string }[];
}

/** Service -> worker. */
export type GenCommand =
  | { type: 'generate'; id: number; request: GenerateRequest }
  | { type: 'cancel'; id: number }
  | { type: 'probe'; id: number; provider: ProviderSetting }
  /** The loaded models, after applying `budget` (bytes) when given. */
  | { type: 'cache'; id: number; budget: number | null }
  /** Empties the cache of loaded models. */
  | { type: 'unload'; id: number };

/** Worker -> service. */
export type GenReply =
  | ({ type: 'phase'; id: number } & WorkerPhase)
  | { type: 'token'; id: number; row: number; index: number; text: string }
  | { type: 'done'; id: number; rows: GeneratedRow[] }
  | { type: 'probed'; id: number; probe: ProviderProbe }
  | { type: 'cached'; id: number; state: ModelCacheState }
  | { type: 'failed'; id: number; message: string; cancelled: boolean; partial: GeneratedRow[] | null };

// The messages between the service (main thread) and the interactive-generation worker.
// Generation runs in a worker because ONNX Runtime's session.run blocks its thread
// (DESIGN.md §5), and the main thread serves the window, IPC and HTTP.
import type { ProviderSetting, SamplingSettings } from './contract.ts';

export type FinishReason = 'eos' | 'stop' | 'length' | 'cancelled';

export interface GenerateRequest {
  /** Hugging Face folder of the model. */
  modelDir: string;
  prompts: string[];
  sampling: SamplingSettings;
  provider: ProviderSetting;
}

export interface GeneratedRow {
  text: string;
  tokens: number;
  finishReason: FinishReason;
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
  | { type: 'probe'; id: number; provider: ProviderSetting };

/** Worker -> service. */
export type GenReply =
  | { type: 'token'; id: number; row: number; index: number; text: string }
  | { type: 'done'; id: number; rows: GeneratedRow[] }
  | { type: 'probed'; id: number; probe: ProviderProbe }
  | { type: 'failed'; id: number; message: string; cancelled: boolean; partial: GeneratedRow[] | null };

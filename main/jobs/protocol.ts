// The messages between the job runner and a run's process (job-process.ts, worker.ts).
// Workers never touch the database: they send what happened, and the runner stores it.
import type { JsonObject } from '../../db/json.ts';
import type { LogLevel } from '../../db/run-logs.ts';

export type StopReason = 'cancel' | 'pause';

/** What a worker needs to run one attempt of a run. */
export interface JobStart {
  runId: number;
  kind: string;
  /** URL of the module whose `run` export does the work (see kind.ts). */
  module: string;
  config: JsonObject;
  seed: number | null;
  /** The run's own folder for checkpoints and other files (exists). */
  runDir: string;
}

/** Runner -> worker. */
export type RunnerCommand =
  | { type: 'start'; job: JobStart }
  /** A new worker continuing a paused, cancelled or interrupted run from its checkpoint. */
  | { type: 'resume'; job: JobStart; checkpoint: string }
  /** Stop at the next step boundary; write a checkpoint first where the kind has one. */
  | { type: 'cancel' }
  | { type: 'pause' }
  /** Everything the worker sent up to message `seq` is in the store. */
  | { type: 'stored'; seq: number };

/** Worker -> runner. */
export type WorkerMessage =
  | { type: 'started'; provider: string | null; step: number }
  | { type: 'progress'; step: number; total: number | null; unit: string }
  | { type: 'metric'; step: number; values: Record<string, number> }
  | { type: 'log'; level: LogLevel; text: string }
  /** `file` is absolute and inside the run's folder; it holds the state after `step`. */
  | { type: 'checkpoint-written'; file: string; step: number }
  /** Data for the kind's `apply` hook (e.g. rows of an import), stored in order. */
  | { type: 'write'; seq: number; payload: unknown }
  /** Asks for `stored` once everything sent before it is in the store. */
  | { type: 'flush'; seq: number }
  | { type: 'done'; result: JsonObject }
  | { type: 'stopped'; reason: StopReason; step: number }
  | { type: 'failed'; message: string; name: string; stack: string | null };

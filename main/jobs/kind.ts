// What a job kind is: its config, where it runs, how it stops and continues, the work
// done in the run's own process, and the hooks that store its results on the main thread.
// Adding an AfD stage means writing one of these and listing it in kinds.ts.
import type { StudioDatabase } from '../../db/database.ts';
import type { JsonObject } from '../../db/json.ts';
import type { LogLevel } from '../../db/run-logs.ts';
import type { Run } from '../../db/runs.ts';
import type { StopReason } from './protocol.ts';

/** The lanes of the runner: one heavy job at a time on each. 'io' is for jobs that use
 *  neither ONNX Runtime nor much CPU (reading files), so they need not wait for training. */
export type Device = 'cpu' | 'gpu' | 'io';

/** What the kind's worker code is given. */
export interface WorkerContext<C, W = never> {
  readonly runId: number;
  readonly config: C;
  readonly seed: number | null;
  /** The run's own folder (exists); checkpoints go here. */
  readonly runDir: string;
  /** The checkpoint to continue from, or null to start from the beginning. */
  readonly checkpoint: string | null;
  /** 'cancel' or 'pause' once asked: check it at each step boundary. */
  readonly stopRequested: StopReason | null;
  /** Aborted when a stop is asked, for work that waits on I/O between steps. */
  readonly signal: AbortSignal;
  started(info: { provider?: string | null; step?: number }): void;
  progress(step: number, total: number | null, unit?: string): void;
  metric(step: number, values: Record<string, number>): void;
  log(text: string, level?: LogLevel): void;
  checkpointWritten(file: string, step: number): void;
  /** Sends data to the kind's `apply` hook; waits while too many writes are unstored. */
  write(payload: W): Promise<void>;
  /** Resolves once everything sent so far is in the store (call before a checkpoint, so
   *  that the store always has the metrics of every step a checkpoint contains). */
  flush(): Promise<void>;
}

export type WorkerOutcome = { status: 'done'; result: JsonObject } | { status: 'stopped'; step: number };

/** The `run` export of a kind's worker module. */
export type WorkerRun<C, W = never> = (ctx: WorkerContext<C, W>) => Promise<WorkerOutcome>;

/** What the main-thread hooks are given; each hook runs inside a short transaction. */
export interface HostContext {
  db: StudioDatabase;
  run: Run;
}

// Hooks are declared as methods so that a kind with a narrower config type fits the
// table's JobKind (method parameters are checked bivariantly).
export interface JobKind<C extends JsonObject = JsonObject, W = unknown> {
  readonly name: string;
  readonly summary: string;
  /** The module (loaded in the worker) whose `run` export is a WorkerRun<C, W>. */
  readonly worker: URL;
  /** How a stopped run goes on: from its checkpoint, or again from the start. */
  readonly resume: 'checkpoint' | 'restart';
  readonly pausable: boolean;
  /** A run's whole folder is its output (read by later runs) and, until it finishes, the
   *  state a resume continues from (a stage's finished phases: the judge's folds, DITTO's
   *  samples), so start-up cleaning keeps it whatever the run's status; otherwise only the
   *  files rows reference are kept. */
  readonly keepsFolder?: boolean;
  /** Checks a config and fills in every default, so the stored config repeats the run;
   *  throws a sentence naming what is wrong. */
  parseConfig(raw: JsonObject): C;
  device(config: C): Device;
  /** Refuses, before the run is recorded, a submission bound to fail at once (a taken
   *  name, a missing file); runs on the main thread, so it must be quick. */
  check?(db: StudioDatabase, config: C): void;
  /** Before the worker starts (each attempt), e.g. to create the rows it will fill. */
  start?(ctx: HostContext, config: C): void;
  /** Stores one `write` of the worker. */
  apply?(ctx: HostContext, config: C, payload: W): void;
  /** When the worker is done; returns the run's result. */
  finish?(ctx: HostContext, config: C, result: JsonObject): JsonObject;
  /** After a cancel, a failure or a crash: removes what a half-done attempt wrote. It
   *  gets no config, since after an upgrade a stored config may no longer parse. */
  discard?(ctx: HostContext): void;
}

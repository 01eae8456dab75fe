// The job runner: a queue of runs, at most one running on each device lane (cpu, gpu,
// io), each in its own process (job-process.ts): ONNX Runtime's session.run blocks the
// thread it runs on (DESIGN.md §5), and a process gives all its memory back when the run
// ends. The runner is the only writer of runs, metrics and logs: workers send messages,
// and each message is stored here in one short synchronous transaction, never held
// across an await. Subscribers get every event in order.
//
// Stops happen at step boundaries: cancel and pause ask the worker, which writes a
// checkpoint (for kinds that have one) and ends; resume queues the run again and a new
// worker continues from that checkpoint. Another process can ask for a stop through
// runs.control, which the owner's runner polls.
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { StudioDatabase } from '../../db/database.ts';
import type { JsonObject } from '../../db/json.ts';
import { MetricStore } from '../../db/metrics.ts';
import type { LogLevel } from '../../db/run-logs.ts';
import { RunLogStore } from '../../db/run-logs.ts';
import type { Run, RunControl, RunStatus } from '../../db/runs.ts';
import { RunStore } from '../../db/runs.ts';
import { ProgressClock } from './eta.ts';
import { startJobProcess } from './job-process.ts';
import type { StudioFiles } from './files.ts';
import type { Device, HostContext, JobKind } from './kind.ts';
import type { KindTable } from './kinds.ts';
import { KINDS } from './kinds.ts';
import { isLiveOwner, processOwner } from './owner.ts';
import type { JobStart, RunnerCommand, StopReason, WorkerMessage } from './protocol.ts';
import type { RecoveryReport } from './recovery.ts';
import { recoverStore } from './recovery.ts';

export type JobEvent =
  | { type: 'status'; run: Run }
  | { type: 'progress'; runId: number; step: number; total: number | null; unit: string; fraction: number | 'unknown'; etaMs: number | null; rate: number | null }
  | { type: 'metric'; runId: number; step: number; values: Record<string, number> }
  | { type: 'log'; runId: number; level: LogLevel; text: string }
  | { type: 'checkpoint'; runId: number; step: number; path: string };

export type JobListener = (event: JobEvent) => void;

export interface RunnerOptions {
  db: StudioDatabase;
  files: StudioFiles;
  kinds?: KindTable;
  /** This process's owner string (default: host|boot|pid). */
  owner?: string;
  isLive?: (owner: string) => boolean;
  /** How often to look for stops asked by other processes (default 250 ms). */
  controlPollMs?: number;
}

interface Queued {
  runId: number;
  kind: JobKind;
  config: JsonObject;
  device: Device;
}

interface Active extends Queued {
  /** The run's process (worker.ts runs in it). */
  worker: ChildProcess;
  clock: ProgressClock;
  /** The stop asked of the worker, if any. */
  stop: StopReason | null;
  /** A failure the runner found (a write the store refused); it wins over the worker's end. */
  failure: Error | null;
  checkpointPath: string | null;
  step: number;
  settled: boolean;
}

const FINISHED: readonly RunStatus[] = ['done', 'failed', 'cancelled'];

export class JobRunner {
  readonly db: StudioDatabase;
  readonly files: StudioFiles;
  readonly owner: string;
  /** What start-up recovery did (set by open). */
  recovery: RecoveryReport = { interrupted: [], removedFiles: [], sharedWith: null };
  private readonly kinds: KindTable;
  private readonly isLive: (owner: string) => boolean;
  private readonly runs: RunStore;
  private readonly metrics: MetricStore;
  private readonly logs: RunLogStore;
  private readonly listeners = new Set<JobListener>();
  private readonly warned = new WeakSet<JobListener>();
  private readonly queue: Queued[] = [];
  private readonly lanes = new Map<Device, Active>();
  private readonly active = new Map<number, Active>();
  private readonly waiters = new Map<number, ((run: Run) => void)[]>();
  private readonly controlPollMs: number;
  private controlTimer: NodeJS.Timeout | undefined;
  private closing = false;

  /** Recovers the store (see recovery.ts), then returns a runner over it. */
  static async open(options: RunnerOptions): Promise<JobRunner> {
    const runner = new JobRunner(options);
    runner.recovery = await recoverStore(options.db, options.files, { kinds: runner.kinds, isLive: runner.isLive });
    return runner;
  }

  constructor(options: RunnerOptions) {
    this.db = options.db;
    this.files = options.files;
    this.kinds = options.kinds ?? KINDS;
    this.owner = options.owner ?? processOwner();
    this.isLive = options.isLive ?? isLiveOwner;
    this.controlPollMs = options.controlPollMs ?? 250;
    this.runs = new RunStore(this.db);
    this.metrics = new MetricStore(this.db);
    this.logs = new RunLogStore(this.db);
  }

  /** Subscribes to every event of every run; returns the unsubscribe function. */
  onEvent(listener: JobListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Records a new run of `kind` and queues it. */
  submit(kind: string, config: JsonObject, options: { experimentId?: number | null } = {}): Run {
    if (this.closing) throw new Error('The job runner is shutting down; start the job again after restarting.');
    const k = this.kind(kind);
    const parsed = k.parseConfig(config);
    k.check?.(this.db, parsed);
    const seed = typeof parsed.seed === 'number' ? parsed.seed : null;
    const run = this.runs.insert({ stage: k.name, config: parsed, seed, owner: this.owner, experimentId: options.experimentId ?? null });
    this.emit({ type: 'status', run });
    this.enqueue({ runId: run.id, kind: k, config: parsed, device: k.device(parsed) });
    return this.runs.get(run.id) as Run;
  }

  /** Cancels a run: at once if queued, paused or interrupted; at the next step boundary
   *  (with a checkpoint) if running. Returns the run as it is now. */
  cancel(runId: number): Run {
    return this.stop(runId, 'cancel');
  }

  /** Pauses a run: it writes a checkpoint and stops; resume continues it. */
  pause(runId: number): Run {
    return this.stop(runId, 'pause');
  }

  /** Queues a paused, cancelled, failed or interrupted run again; it continues from its
   *  checkpoint, or starts over for kinds without one. With `config`, it continues under
   *  that config (the experiment driver's, resolved again: the same settings, but the
   *  paths of its inputs follow a data folder that has moved since the run started). */
  resume(runId: number, newConfig?: JsonObject): Run {
    if (this.closing) throw new Error('The job runner is shutting down; resume the run after restarting.');
    const run = this.get(runId);
    if (this.active.has(runId) || this.queue.some((q) => q.runId === runId)) throw new Error(`Run #${runId} is already ${run.status}; there is nothing to resume.`);
    if ((run.status === 'queued' || run.status === 'running') && run.owner !== null && this.isLive(run.owner)) {
      throw new Error(`Run #${runId} is already ${run.status} in another AfD Studio process; wait for it there or cancel it first.`);
    }
    if (run.status === 'done') throw new Error(`Run #${runId} has already finished; start a new run instead.`);
    const k = this.kind(run.stage);
    const config = k.parseConfig(newConfig ?? run.config);
    const queued = this.db.transaction(() => {
      if (newConfig !== undefined) this.runs.setConfig(runId, newConfig);
      // Left queued or running by a process that has gone since this one started.
      if (run.status === 'queued' || run.status === 'running') k.discard?.(this.host(run));
      this.logs.append(runId, 'info', run.checkpointPath !== null && k.resume === 'checkpoint' ? 'Queued to resume from its checkpoint.' : 'Queued to start again from the beginning.');
      return this.runs.setStatus(runId, 'queued', { owner: this.owner });
    });
    this.emit({ type: 'status', run: queued });
    this.enqueue({ runId, kind: k, config, device: k.device(config) });
    return this.runs.get(runId) as Run;
  }

  /** Resolves with the run once it is no longer queued or running in this runner. */
  settled(runId: number): Promise<Run> {
    if (!this.active.has(runId) && !this.queue.some((q) => q.runId === runId)) return Promise.resolve(this.get(runId));
    return new Promise((resolve) => this.waiters.set(runId, [...(this.waiters.get(runId) ?? []), resolve]));
  }

  /** The ids of the runs running in this runner. */
  running(): number[] {
    return [...this.active.keys()];
  }

  /** For shutdown: queued runs become interrupted, running ones pause (or cancel, for
   *  kinds that cannot pause); resolves when every worker has ended. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    for (const q of this.queue.splice(0)) this.finish(q.runId, 'interrupted', {});
    const ends = [...this.active.values()].map((a) => {
      const ended = this.settled(a.runId);
      this.command(a, a.kind.pausable ? 'pause' : 'cancel');
      return ended;
    });
    await Promise.all(ends);
    this.stopPolling();
  }

  // ---- scheduling ----

  private enqueue(q: Queued): void {
    this.queue.push(q);
    this.schedule();
    this.startPolling();
  }

  /** Starts the first queued run of every free lane, in queue order. */
  private schedule(): void {
    if (this.closing) return;
    for (const q of [...this.queue]) {
      if (this.lanes.has(q.device)) continue;
      this.queue.splice(this.queue.indexOf(q), 1);
      this.launch(q);
    }
  }

  private launch(q: Queued): void {
    const run = this.get(q.runId);
    const checkpointFile = q.kind.resume === 'checkpoint' && run.checkpointPath !== null ? this.files.absolute(run.checkpointPath) : null;
    const checkpoint = checkpointFile !== null && existsSync(checkpointFile) ? checkpointFile : null;
    let runDir: string;
    let started: Run;
    let worker: ChildProcess;
    try {
      runDir = this.files.ensureRunDir(q.runId);
      started = this.db.transaction(() => {
        q.kind.start?.(this.host(run), q.config);
        return this.runs.setStatus(q.runId, 'running', { owner: this.owner });
      });
      worker = startJobProcess();
    } catch (err) {
      this.finish(q.runId, 'failed', { error: err as Error, discard: true });
      this.schedule();
      return;
    }
    const job: JobStart = { runId: q.runId, kind: q.kind.name, module: q.kind.worker.href, config: q.config, seed: run.seed, runDir };
    const a: Active = { ...q, worker, clock: new ProgressClock(), stop: null, failure: null, checkpointPath: run.checkpointPath, step: 0, settled: false };
    this.active.set(q.runId, a);
    this.lanes.set(q.device, a);
    worker.on('message', (m: WorkerMessage) => this.onMessage(a, m));
    worker.on('error', (err) => this.fail(a, err));
    worker.on('exit', (code, signal) => this.fail(a, new Error(`The process of run #${a.runId} stopped unexpectedly (${signal !== null ? `signal ${signal}` : `exit code ${code}`}); see the run's log, then resume it.`)));
    this.emit({ type: 'status', run: started });
    this.post(a, checkpoint === null ? { type: 'start', job } : { type: 'resume', job, checkpoint });
  }

  // ---- messages from workers ----

  private onMessage(a: Active, m: WorkerMessage): void {
    if (a.settled) return;
    try {
      this.handle(a, m);
    } catch (err) {
      // The store refused something (disk full, a locked database...): the run fails
      // with that sentence once its worker has stopped.
      if (a.failure === null) a.failure = err as Error;
      this.command(a, 'cancel');
      if (m.type === 'write' || m.type === 'flush') this.post(a, { type: 'stored', seq: m.seq });
    }
  }

  private handle(a: Active, m: WorkerMessage): void {
    const id = a.runId;
    switch (m.type) {
      case 'started': {
        if (m.provider !== null) this.emit({ type: 'status', run: this.runs.setStatus(id, 'running', { provider: m.provider, owner: this.owner }) });
        this.log(id, 'info', `${m.step > 0 ? `Resumed at step ${m.step}` : 'Started'}${m.provider !== null ? ` on ${m.provider}` : ''}.`);
        return;
      }
      case 'progress': {
        a.step = m.step;
        const e = a.clock.update(m.step, m.total);
        this.emit({ type: 'progress', runId: id, step: m.step, total: m.total, unit: m.unit, ...e });
        return;
      }
      case 'metric':
        this.metrics.log(id, m.step, m.values);
        this.emit({ type: 'metric', runId: id, step: m.step, values: m.values });
        return;
      case 'log':
        this.log(id, m.level, m.text);
        return;
      case 'checkpoint-written': {
        const stored = this.files.relative(m.file);
        if (!stored.startsWith(`runs/${id}/`)) throw new Error(`Run #${id} wrote its checkpoint outside its folder (${m.file}); this is a bug in the job kind "${a.kind.name}".`);
        if (stored !== a.checkpointPath) {
          this.runs.setCheckpoint(id, stored);
          a.checkpointPath = stored;
        }
        this.emit({ type: 'checkpoint', runId: id, step: m.step, path: m.file });
        return;
      }
      case 'write':
        if (a.failure === null) this.db.transaction(() => a.kind.apply?.(this.host(this.get(id)), a.config, m.payload));
        this.post(a, { type: 'stored', seq: m.seq });
        return;
      case 'flush':
        this.post(a, { type: 'stored', seq: m.seq });
        return;
      case 'done':
        if (a.failure !== null) return this.fail(a, a.failure);
        return this.settle(a, () => {
          const result = a.kind.finish?.(this.host(this.get(id)), a.config, m.result) ?? m.result;
          this.logs.append(id, 'info', 'Done.');
          return this.runs.setStatus(id, 'done', { result });
        });
      case 'stopped':
        if (a.failure !== null) return this.fail(a, a.failure);
        return this.settle(a, () => {
          if (m.reason === 'cancel') a.kind.discard?.(this.host(this.get(id)));
          const kept = a.kind.resume === 'checkpoint' && a.checkpointPath !== null;
          const what = m.reason === 'cancel' ? 'Cancelled' : 'Paused';
          this.logs.append(id, 'info', `${what} at step ${m.step}${kept ? '; the checkpoint is kept, so the run can be resumed' : ''}.`);
          return this.runs.setStatus(id, m.reason === 'cancel' ? 'cancelled' : 'paused');
        });
      case 'failed': {
        const err = Object.assign(new Error(m.message), { name: m.name, stack: m.stack ?? undefined });
        return this.fail(a, a.failure ?? err);
      }
    }
  }

  /** The worker ended badly (or the runner failed it): record the failure. */
  private fail(a: Active, err: Error): void {
    if (a.settled) return;
    this.settle(a, () => {
      a.kind.discard?.(this.host(this.get(a.runId)));
      if (err.stack !== undefined) this.logs.append(a.runId, 'error', err.stack);
      return this.runs.setStatus(a.runId, 'failed', { error: err.message });
    });
  }

  /** Ends an active run: `store` records how, in one transaction; then the lane frees. */
  private settle(a: Active, store: () => Run): void {
    a.settled = true;
    this.active.delete(a.runId);
    if (this.lanes.get(a.device) === a) this.lanes.delete(a.device);
    // Its last message is in; whatever it left running (a session, a timer) ends with it.
    a.worker.kill('SIGKILL');
    let run: Run;
    try {
      run = this.db.transaction(store);
    } catch (err) {
      // Even the final write failed: say so in the status, which is one small UPDATE.
      run = this.runs.setStatus(a.runId, 'failed', { error: `The result of run #${a.runId} could not be stored (${(err as Error).message}); resume the run to try again.` });
    }
    this.announce(run);
    this.schedule();
    if (this.active.size === 0 && this.queue.length === 0) this.stopPolling();
  }

  // ---- stops ----

  private stop(runId: number, reason: StopReason): Run {
    const a = this.active.get(runId);
    const run = this.get(runId);
    const k = this.kinds[run.stage];
    if (reason === 'pause' && k !== undefined && !k.pausable) {
      throw new Error(`Run #${runId} (${run.stage}) cannot be paused; cancel it instead, and start it again later.`);
    }
    if (a !== undefined) {
      this.command(a, reason);
      return this.get(runId);
    }
    const qi = this.queue.findIndex((q) => q.runId === runId);
    if (qi >= 0) {
      this.queue.splice(qi, 1);
      return this.finish(runId, reason === 'cancel' ? 'cancelled' : 'paused', {});
    }
    if ((run.status === 'queued' || run.status === 'running') && run.owner !== null && this.isLive(run.owner)) {
      // Another process runs it: ask through the store; its runner carries it out.
      this.runs.requestControl(runId, reason);
      return this.get(runId);
    }
    if (FINISHED.includes(run.status)) throw new Error(`Run #${runId} has already finished (${run.status}); there is nothing to ${reason}.`);
    if (run.status === 'paused' && reason === 'pause') return run;
    // Paused, interrupted, or left queued/running by a process that is gone.
    return this.finish(runId, reason === 'cancel' ? 'cancelled' : 'paused', { discard: reason === 'cancel' });
  }

  private command(a: Active, reason: StopReason): void {
    if (a.stop === 'cancel' || a.stop === reason) return;
    a.stop = reason;
    this.post(a, { type: reason });
  }

  /** Sets the final (or paused) status of a run that has no worker. */
  private finish(runId: number, status: RunStatus, how: { error?: Error; discard?: boolean }): Run {
    const run = this.db.transaction(() => {
      const before = this.get(runId);
      if (how.discard === true || how.error !== undefined) this.kinds[before.stage]?.discard?.(this.host(before));
      if (how.error?.stack !== undefined) this.logs.append(runId, 'error', how.error.stack);
      return this.runs.setStatus(runId, status, { error: how.error?.message ?? null });
    });
    this.announce(run);
    return run;
  }

  // Stops asked by other processes (`afd runs cancel` in another terminal).
  private startPolling(): void {
    if (this.controlTimer !== undefined || this.controlPollMs <= 0) return;
    this.controlTimer = setInterval(() => this.pollControls(), this.controlPollMs);
    this.controlTimer.unref();
  }

  private stopPolling(): void {
    clearInterval(this.controlTimer);
    this.controlTimer = undefined;
  }

  private pollControls(): void {
    let pending: { id: number; control: RunControl }[];
    try {
      pending = this.runs.pendingControls(this.owner);
    } catch {
      return; // the database is busy; look again at the next tick
    }
    for (const p of pending) {
      const a = this.active.get(p.id);
      if (a !== undefined) this.command(a, p.control);
      else if (this.queue.some((q) => q.runId === p.id)) this.stop(p.id, p.control);
    }
  }

  // ---- helpers ----

  private kind(name: string): JobKind {
    const k = this.kinds[name];
    if (k === undefined) throw new Error(`"${name}" is not a job kind this version of AfD Studio knows (it knows ${Object.keys(this.kinds).join(', ')}).`);
    return k;
  }

  private get(runId: number): Run {
    const run = this.runs.get(runId);
    if (run === undefined) throw new Error(`There is no run #${runId}; check the number with \`afd runs list\`.`);
    return run;
  }

  private host(run: Run): HostContext {
    return { db: this.db, run };
  }

  private post(a: Active, cmd: RunnerCommand): void {
    // A process that has exited cannot take it; its exit has failed (or settled) the run.
    if (a.worker.connected) a.worker.send(cmd);
  }

  private log(runId: number, level: LogLevel, text: string): void {
    this.logs.append(runId, level, text);
    this.emit({ type: 'log', runId, level, text });
  }

  private announce(run: Run): void {
    this.emit({ type: 'status', run });
    const waiting = this.waiters.get(run.id);
    this.waiters.delete(run.id);
    for (const resolve of waiting ?? []) resolve(run);
  }

  private emit(event: JobEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch (err) {
        // A failing subscriber must not stop the runner or the other subscribers.
        if (!this.warned.has(listener)) process.emitWarning(`A job event listener failed (further failures of it are not reported): ${(err as Error).message}`);
        this.warned.add(listener);
      }
    }
  }
}

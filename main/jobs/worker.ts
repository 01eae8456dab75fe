// The harness inside a run's process (job-process.ts): receives start/resume, loads the
// kind's worker module, gives it a WorkerContext that turns calls into messages, and
// reports how it ended (done, stopped at a step boundary, or failed with its sentence).
import { Worker } from 'node:worker_threads';
import type { JsonObject } from '../../db/json.ts';
import type { WorkerContext, WorkerRun } from './kind.ts';
import type { JobStart, RunnerCommand, StopReason, WorkerMessage } from './protocol.ts';

/** Writes sent but not yet stored before `write` waits: bounds memory and keeps the
 *  worker from running far ahead of the store. */
const WRITE_WINDOW = 4;

if (process.send === undefined) throw new Error('main/jobs/worker.ts runs only in a run\'s own process; the job runner starts it.');
const send = process.send.bind(process);
const post = (m: WorkerMessage, sent: () => void = () => undefined): void => {
  if (process.connected) send(m, undefined, undefined, sent);
  else sent();
};
const failure = (err: Error): WorkerMessage => ({ type: 'failed', message: err.message, name: err.name, stack: err.stack ?? null });
// Ctrl-C in a terminal reaches the whole process group: the runner decides how a run
// stops (a pause at the next step boundary), so the run's process ignores it.
process.on('SIGINT', () => undefined);
// The runner is gone (killed, crashed): nobody stores what this run would write. The
// channel's close is heard only when the event loop is free, and a stage can be inside one
// native call (a session.run) for minutes: a watchdog thread ends this process within
// 100 ms of its parent's death, so that a studio started again never finds it still
// writing into a run it is resuming.
process.on('disconnect', () => process.exit(0));
const PARENT_WATCHDOG = `const parent = ${process.ppid}; setInterval(() => { if (process.ppid !== parent) process.kill(process.pid, 'SIGKILL'); }, 100);`;
new Worker(PARENT_WATCHDOG, { eval: true, name: 'afd run watchdog' }).unref();
// An error no await caught (a callback of the kind's code threw): the run fails with its
// sentence, and the process ends once the message is out.
const fatal = (e: unknown): void => post(failure(e instanceof Error ? e : new Error(String(e))), () => process.exit(1));
process.on('uncaughtException', fatal);
process.on('unhandledRejection', fatal);

let stop: StopReason | null = null;
const abort = new AbortController();
let sent = 0;
let stored = 0;
const waiting: { seq: number; resolve: () => void }[] = [];
let lastStep = 0;
let begun = false;

process.on('message', (cmd: RunnerCommand) => {
  switch (cmd.type) {
    case 'start':
    case 'resume':
      if (begun) return;
      begun = true;
      process.title = `afd run ${cmd.job.runId} (${cmd.job.kind})`;
      void execute(cmd.job, cmd.type === 'resume' ? cmd.checkpoint : null);
      return;
    case 'cancel':
    case 'pause':
      if (stop !== 'cancel') stop = cmd.type; // a cancel is never downgraded to a pause
      abort.abort();
      return;
    case 'stored':
      stored = Math.max(stored, cmd.seq);
      for (let i = waiting.length - 1; i >= 0; i--) {
        if (waiting[i].seq <= stored) waiting.splice(i, 1)[0].resolve();
      }
      return;
  }
});

function until(seq: number): Promise<void> {
  return seq <= stored ? Promise.resolve() : new Promise((resolve) => waiting.push({ seq, resolve }));
}

async function execute(job: JobStart, checkpoint: string | null): Promise<void> {
  const ctx: WorkerContext<JsonObject, unknown> = {
    runId: job.runId,
    config: job.config,
    seed: job.seed,
    runDir: job.runDir,
    checkpoint,
    get stopRequested() { return stop; },
    signal: abort.signal,
    started: (info) => post({ type: 'started', provider: info.provider ?? null, step: info.step ?? 0 }),
    progress: (step, total, unit = 'step') => {
      lastStep = step;
      post({ type: 'progress', step, total, unit });
    },
    metric: (step, values) => post({ type: 'metric', step, values }),
    log: (text, level = 'info') => post({ type: 'log', level, text }),
    checkpointWritten: (file, step) => post({ type: 'checkpoint-written', file, step }),
    write: async (payload) => {
      post({ type: 'write', seq: ++sent, payload });
      await until(sent - WRITE_WINDOW + 1);
    },
    flush: async () => {
      post({ type: 'flush', seq: ++sent });
      await until(sent);
    },
  };
  try {
    const mod = (await import(job.module)) as { run?: unknown };
    if (typeof mod.run !== 'function') throw new Error(`The job kind "${job.kind}" has no worker function (no \`run\` export in ${job.module}).`);
    const outcome = await (mod.run as WorkerRun<JsonObject, unknown>)(ctx);
    await until(sent); // the runner must have stored every write before done is final
    if (outcome.status === 'done') post({ type: 'done', result: outcome.result });
    else post({ type: 'stopped', reason: stop ?? 'cancel', step: outcome.step });
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    // Work that waits on I/O ends a stop by throwing an AbortError.
    if (stop !== null && err.name === 'AbortError') post({ type: 'stopped', reason: stop, step: lastStep });
    else post(failure(err));
  }
}

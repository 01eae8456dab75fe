// The job runner with the test kind `counter` (main/jobs/testing/): queue order, one job
// per device, events, cancel, pause and resume, failures, start-up recovery, stops asked
// by another process, a main thread that stays free while runs block theirs, and a run's
// process ended with the run, so that what it left (sessions, timers, memory) goes with it.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { StudioDatabase } from '../../db/database.ts';
import { openDatabase } from '../../db/database.ts';
import type { JsonObject } from '../../db/json.ts';
import { MetricStore } from '../../db/metrics.ts';
import { RunLogStore } from '../../db/run-logs.ts';
import type { Run } from '../../db/runs.ts';
import { RunStore } from '../../db/runs.ts';
import { StudioFiles } from './files.ts';
import { KINDS } from './kinds.ts';
import { processOwner } from './owner.ts';
import type { JobEvent } from './runner.ts';
import { JobRunner } from './runner.ts';
import { counterKind, counterWrites } from './testing/counter.ts';
import { JOB_MALLOC_TUNABLE, jobEnvironment } from './job-process.ts';
import { leakySessionKind } from './testing/leaky-session.ts';

const KINDS_WITH_COUNTER = { ...KINDS, counter: counterKind, [leakySessionKind.name]: leakySessionKind };
const cleanups: (() => void)[] = [];
after(() => cleanups.forEach((c) => c()));

async function harness(): Promise<{ db: StudioDatabase; files: StudioFiles; runner: JobRunner; events: JobEvent[] }> {
  const db = await openDatabase(':memory:');
  const files = StudioFiles.forDatabase(':memory:');
  const runner = await JobRunner.open({ db, files, kinds: KINDS_WITH_COUNTER, controlPollMs: 50 });
  const events: JobEvent[] = [];
  runner.onEvent((e) => events.push(e));
  cleanups.push(() => {
    db.close();
    files.dispose();
  });
  return { db, files, runner, events };
}

const counter = (config: JsonObject): JsonObject => ({ delayMs: 2, ...config });
const statusesOf = (events: JobEvent[], id: number): string[] => events.flatMap((e) => (e.type === 'status' && e.run.id === id ? [e.run.status] : []));
const dedupe = (xs: string[]): string[] => xs.filter((x, i) => i === 0 || xs[i - 1] !== x);
const sum = (n: number): number => (n * (n + 1)) / 2;

/** Resolves when `predicate` holds for an event of the runner. */
function when(runner: JobRunner, predicate: (e: JobEvent) => boolean): Promise<JobEvent> {
  return new Promise((resolve) => {
    const off = runner.onEvent((e) => {
      if (!predicate(e)) return;
      off();
      resolve(e);
    });
  });
}

test('runs start in queue order, one at a time per device, and lanes run side by side', async () => {
  const { runner, events } = await harness();
  const running = new Map<string, Set<number>>();
  let most = 0;
  let mostTogether = 0;
  runner.onEvent((e) => {
    if (e.type !== 'status') return;
    const d = String(e.run.config.device);
    const set = running.get(d) ?? new Set<number>();
    running.set(d, set);
    if (e.run.status === 'running') set.add(e.run.id);
    else set.delete(e.run.id);
    most = Math.max(most, set.size);
    mostTogether = Math.max(mostTogether, [...running.values()].reduce((n, s) => n + s.size, 0));
  });
  const submit = (d: 'cpu' | 'gpu', steps: number): Run => runner.submit('counter', counter({ steps, device: d, delayMs: 5 }));
  const cpu = [submit('cpu', 12), submit('cpu', 6), submit('cpu', 6)];
  const gpu = submit('gpu', 10);
  // The first of each lane starts at once; the others wait.
  assert.deepEqual([...cpu, gpu].map((r) => r.status), ['running', 'queued', 'queued', 'running']);
  const ends = await Promise.all([...cpu, gpu].map((r) => runner.settled(r.id)));
  assert.deepEqual(ends.map((r) => r.status), ['done', 'done', 'done', 'done']);
  assert.equal(most, 1, 'two runs of one device ran at once');
  assert.equal(mostTogether, 2, 'the gpu run should run beside a cpu run');
  const startOrder = events.flatMap((e) => (e.type === 'status' && e.run.status === 'running' && e.run.config.device === 'cpu' ? [e.run.id] : []));
  assert.deepEqual(dedupe(startOrder.map(String)).map(Number), cpu.map((r) => r.id));
  for (const r of ends) assert.equal(r.result?.sum, sum(Number(r.config.steps)));
  assert.equal(ends[0].result?.finishedBy, 'counter'); // the kind's finish hook made the result
});

test('every subscriber gets every event in the same order; unsubscribing stops them', async () => {
  const { runner } = await harness();
  const a: JobEvent[] = [], b: JobEvent[] = [], c: JobEvent[] = [];
  runner.onEvent((e) => a.push(e));
  runner.onEvent(() => { throw new Error('a broken subscriber'); }); // must not disturb the others
  runner.onEvent((e) => b.push(e));
  const offC = runner.onEvent((e) => c.push(e));
  offC();
  const run = runner.submit('counter', counter({ steps: 25 }));
  await runner.settled(run.id);
  assert.ok(a.length > 50);
  assert.deepEqual(b, a);
  assert.deepEqual(c, []);
  const progress = a.filter((e): e is Extract<JobEvent, { type: 'progress' }> => e.type === 'progress');
  assert.deepEqual(progress.map((p) => p.step), Array.from({ length: 25 }, (_, i) => i + 1));
  assert.equal(progress.at(-1)?.fraction, 1);
  assert.equal(progress[0].etaMs, null); // no rate yet after one step
  assert.ok(progress.slice(3).every((p) => p.etaMs !== null && p.rate !== null && p.rate > 0), 'time left and rate after a few steps');
  assert.ok(a.some((e) => e.type === 'log' && e.text === 'at step 20'));
  assert.ok(a.filter((e) => e.type === 'metric').length === 25);
  assert.ok(a.some((e) => e.type === 'checkpoint' && e.step === 25));
});

test('metrics, logs and the checkpoint reach the store', async () => {
  const { db, files, runner } = await harness();
  const run = runner.submit('counter', counter({ steps: 12, checkpointEvery: 5 }));
  const end = await runner.settled(run.id);
  assert.equal(end.status, 'done');
  assert.deepEqual(new MetricStore(db).series(run.id, 'value').map((p) => p.step), Array.from({ length: 12 }, (_, i) => i + 1));
  assert.equal(end.checkpointPath, `runs/${run.id}/checkpoint.json`);
  assert.deepEqual(JSON.parse(readFileSync(files.absolute(end.checkpointPath), 'utf8')), { step: 12, sum: sum(12) });
  assert.deepEqual(new RunLogStore(db).tail(run.id).map((l) => l.text), ['Started.', 'at step 10', 'Done.']);
  assert.equal(end.owner, null);
});

test('cancel stops a running job at a step boundary with a checkpoint; resume finishes it as if uninterrupted', async () => {
  const { db, files, runner, events } = await harness();
  const run = runner.submit('counter', counter({ steps: 400, checkpointEvery: 1000 }));
  await when(runner, (e) => e.type === 'progress' && e.runId === run.id && e.step >= 20);
  assert.equal(runner.cancel(run.id).status, 'running'); // asked; it stops at the next step
  const cancelled = await runner.settled(run.id);
  assert.equal(cancelled.status, 'cancelled');
  const saved = JSON.parse(readFileSync(files.absolute(cancelled.checkpointPath ?? ''), 'utf8')) as { step: number; sum: number };
  assert.ok(saved.step >= 20 && saved.step < 400);
  // The store holds the metrics of every step the checkpoint holds (flushed before it).
  assert.equal(new MetricStore(db).series(run.id, 'value').at(-1)?.step, saved.step);
  assert.throws(() => runner.cancel(run.id), /Run #\d+ has already finished \(cancelled\); there is nothing to cancel\./);

  const resumed = runner.resume(run.id);
  assert.equal(resumed.status, 'running');
  const end = await runner.settled(run.id);
  assert.equal(end.status, 'done');
  assert.equal(end.result?.sum, sum(400));
  assert.equal(end.error, null);
  assert.deepEqual(dedupe(statusesOf(events, run.id)), ['queued', 'running', 'cancelled', 'queued', 'running', 'done']);
  assert.ok(events.some((e) => e.type === 'log' && e.runId === run.id && e.text === `Resumed at step ${saved.step}.`));
  assert.throws(() => runner.resume(run.id), /has already finished; start a new run instead/);
});

test('pause checkpoints and ends the worker; resume continues in a new worker; queued runs pause and cancel at once', async () => {
  const { runner, events } = await harness();
  const run = runner.submit('counter', counter({ steps: 300, checkpointEvery: 7 }));
  const waiting = runner.submit('counter', counter({ steps: 5 }));
  const other = runner.submit('counter', counter({ steps: 5 }));
  assert.equal(waiting.status, 'queued');
  assert.equal(runner.pause(waiting.id).status, 'paused');
  assert.equal(runner.cancel(other.id).status, 'cancelled');
  await when(runner, (e) => e.type === 'progress' && e.runId === run.id && e.step >= 30);
  runner.pause(run.id);
  const paused = await runner.settled(run.id);
  assert.equal(paused.status, 'paused');
  assert.deepEqual(runner.running(), []);
  const resumedWaiting = runner.resume(waiting.id);
  runner.resume(run.id);
  assert.equal(resumedWaiting.status, 'running');
  const [a, b] = await Promise.all([runner.settled(run.id), runner.settled(waiting.id)]);
  assert.deepEqual([a.status, a.result?.sum, b.status, b.result?.sum], ['done', sum(300), 'done', sum(5)]);
  assert.deepEqual(dedupe(statusesOf(events, run.id)), ['queued', 'running', 'paused', 'queued', 'running', 'done']);
  assert.deepEqual(dedupe(statusesOf(events, other.id)), ['queued', 'cancelled']);
});

test('a failing job is recorded with its sentence and stack; a crashed run process too', async () => {
  const { db, runner } = await harness();
  const failing = runner.submit('counter', counter({ steps: 20, failAt: 7 }));
  const crashing = runner.submit('counter', counter({ steps: 20, exitAt: 4, device: 'gpu' }));
  const [f, c] = await Promise.all([runner.settled(failing.id), runner.settled(crashing.id)]);
  assert.equal(f.status, 'failed');
  assert.equal(f.error, 'The counter was told to fail at step 7.');
  assert.ok(f.finishedAt !== null);
  assert.match(new RunLogStore(db).tail(f.id).at(-1)?.text ?? '', /^Error: The counter was told to fail at step 7\.\n\s+at /);
  assert.equal(c.status, 'failed');
  assert.match(c.error ?? '', /^The process of run #\d+ stopped unexpectedly \(exit code 3\); see the run's log, then resume it\.$/);
  // A failed run resumes from its last checkpoint (here it fails again, at the same step).
  runner.resume(f.id);
  assert.equal((await runner.settled(f.id)).error, 'The counter was told to fail at step 7.');
  // Bad configs and kinds are refused before anything is recorded.
  assert.throws(() => runner.submit('counter', { steps: -1 }), /steps must be a whole number from 1 up, not -1\./);
  assert.throws(() => runner.submit('nope', {}), /"nope" is not a job kind this version of AfD Studio knows/);
  assert.equal(new RunStore(db).list().length, 2);
});

test('a write the store refuses fails the run with that sentence, after the worker has stopped', async () => {
  const { runner } = await harness();
  const run = runner.submit('counter', counter({ steps: 50, writes: true, refuseWriteAt: 9 }));
  const end = await runner.settled(run.id);
  assert.equal(end.status, 'failed');
  assert.equal(end.error, 'The store refused the write of step 9.');
  assert.deepEqual(counterWrites.get(run.id), [1, 2, 3, 4, 5, 6, 7, 8]);
  const ok = runner.submit('counter', counter({ steps: 30, writes: true }));
  await runner.settled(ok.id);
  assert.deepEqual(counterWrites.get(ok.id), Array.from({ length: 30 }, (_, i) => i + 1)); // in order, all stored before done
});

test('pausing a kind that cannot pause is refused with a sentence', async () => {
  const { runner } = await harness();
  const file = join(runner.files.root, 'one.jsonl');
  writeFileSync(file, `${JSON.stringify({ prompt: 'p', response: 'r' })}\n`);
  const run = runner.submit('import-dataset', { file, name: 'one' });
  assert.throws(() => runner.pause(run.id), /Run #\d+ \(import-dataset\) cannot be paused; cancel it instead, and start it again later\./);
  assert.equal((await runner.settled(run.id)).status, 'done');
});

test('at start-up, runs of processes that are gone become interrupted and stray files go; live ones are left alone', async () => {
  const db = await openDatabase(':memory:');
  const files = StudioFiles.forDatabase(':memory:');
  cleanups.push(() => {
    db.close();
    files.dispose();
  });
  const runs = new RunStore(db);
  const dead = processOwner(2 ** 22 + 12345); // above Linux's pid_max: no such process
  const crashed = runs.insert({ stage: 'counter', config: counter({ steps: 10 }), owner: dead });
  runs.setStatus(crashed.id, 'running', { owner: dead });
  runs.setCheckpoint(crashed.id, `runs/${crashed.id}/checkpoint.json`);
  const waitingOfDead = runs.insert({ stage: 'counter', config: counter({ steps: 10 }), owner: dead });
  const live = runs.insert({ stage: 'counter', config: counter({ steps: 10 }), owner: processOwner() });
  runs.setStatus(live.id, 'running', { owner: processOwner() });
  const unowned = runs.insert({ stage: 'counter', config: counter({ steps: 10 }) });
  // Files: the crashed run's checkpoint (kept) beside a temp file of a dead writer and a
  // stale file; a folder of a run that does not exist; the live run's temp file.
  const put = (path: string, text: string): string => {
    const full = join(files.ensureRunDir(Number(path.split('/')[1])), path.split('/')[2]);
    writeFileSync(full, text);
    return full;
  };
  const kept = put(`runs/${crashed.id}/checkpoint.json`, JSON.stringify({ step: 4, sum: 10 }));
  const deadTemp = put(`runs/${crashed.id}/.checkpoint.json.${2 ** 22 + 12345}.0123456789ab.tmp`, 'half');
  const stale = put(`runs/${crashed.id}/old.bin`, 'stale');
  const orphan = put('runs/999/checkpoint.json', 'orphan');
  const liveTemp = put(`runs/${live.id}/.checkpoint.json.${process.pid}.0123456789ab.tmp`, 'writing');

  const runner = await JobRunner.open({ db, files, kinds: KINDS_WITH_COUNTER });
  assert.deepEqual(runner.recovery.interrupted.map((r) => r.id).sort(), [crashed.id, waitingOfDead.id]);
  assert.deepEqual(runner.recovery.removedFiles.sort(), [deadTemp, stale, orphan].sort());
  assert.deepEqual([crashed, waitingOfDead, live, unowned].map((r) => runs.get(r.id)?.status), ['interrupted', 'interrupted', 'running', 'queued']);
  assert.ok(existsSync(kept) && existsSync(liveTemp) && !existsSync(join(files.root, 'runs', '999')));
  // The interrupted run resumes from its checkpoint (step 4) and ends as if uninterrupted.
  runner.resume(crashed.id);
  const end = await runner.settled(crashed.id);
  assert.deepEqual([end.status, end.result?.sum], ['done', sum(10)]);
  assert.deepEqual(new MetricStore(db).series(crashed.id, 'value').map((p) => p.step), [5, 6, 7, 8, 9, 10]);
  // The live process's run cannot be resumed here.
  assert.throws(() => runner.resume(live.id), /is already running in another AfD Studio process/);
});

test('a stop asked through the store (another process) is carried out by the owning runner', async () => {
  const { db, runner } = await harness();
  const run = runner.submit('counter', counter({ steps: 500 }));
  await when(runner, (e) => e.type === 'progress' && e.runId === run.id && e.step >= 5);
  assert.equal(new RunStore(db).requestControl(run.id, 'pause'), true); // what `afd runs pause` in another process does
  const end = await runner.settled(run.id);
  assert.equal(end.status, 'paused');
  assert.equal(end.control, null);
});

test('the main thread stays free while a worker blocks its own thread', async () => {
  const { runner } = await harness();
  // Each step blocks the worker's thread for 200 ms: on the main thread that would show
  // as 200 ms gaps between timer ticks.
  const run = runner.submit('counter', counter({ steps: 5, blockMs: 200, delayMs: 200 }));
  let worst = 0;
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    worst = Math.max(worst, now - last);
    last = now;
  }, 5);
  await runner.settled(run.id);
  clearInterval(timer);
  assert.ok(worst < 150, `a 5 ms timer on the main thread waited ${worst.toFixed(0)} ms`);
});

/** Whether a process with this id is alive. */
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
};

test('a run that leaves an ONNX Runtime session and a live timer behind takes them with it: its process ends with the run', async () => {
  const { runner } = await harness();
  const run = await runner.settled(runner.submit('leaky-session', {}).id);
  assert.equal(run.status, 'done', run.error ?? '');
  const pid = run.result?.pid as number;
  assert.ok(Number.isInteger(pid) && pid !== process.pid, `the run ran in process ${pid}, the runner's is ${process.pid}: a run needs its own`);
  const until = performance.now() + 10_000;
  while (alive(pid) && performance.now() < until) await new Promise((resolve) => setTimeout(resolve, 50));
  assert.ok(!alive(pid), `process ${pid} of the finished run is still alive 10 s after the run ended`);
  // The run's process returns freed blocks above 128 KiB while it runs (docs/benchmarks.md).
  assert.equal(run.result?.mallocTunables, jobEnvironment(process.env).GLIBC_TUNABLES);
});

test("a run's process gets the fixed mmap threshold, beside the user's tunables, unless the user chose a threshold", () => {
  assert.equal(jobEnvironment({ PATH: '/bin' }).GLIBC_TUNABLES, JOB_MALLOC_TUNABLE);
  assert.equal(jobEnvironment({ GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' }).GLIBC_TUNABLES, `glibc.malloc.arena_max=2:${JOB_MALLOC_TUNABLE}`);
  assert.equal(jobEnvironment({ GLIBC_TUNABLES: 'glibc.malloc.mmap_threshold=4194304' }).GLIBC_TUNABLES, 'glibc.malloc.mmap_threshold=4194304');
  assert.equal(jobEnvironment({ PATH: '/bin' }).PATH, '/bin');
  assert.equal(jobEnvironment({}, false).ELECTRON_RUN_AS_NODE, undefined);
  assert.equal(jobEnvironment({}, true).ELECTRON_RUN_AS_NODE, '1', "under Electron the child is Electron's binary, run as Node");
});

test('close() pauses running jobs and marks queued ones interrupted', async () => {
  const { runner } = await harness();
  const running = runner.submit('counter', counter({ steps: 1000 }));
  const queued = runner.submit('counter', counter({ steps: 10 }));
  await when(runner, (e) => e.type === 'progress' && e.runId === running.id);
  await runner.close();
  assert.equal((await runner.settled(running.id)).status, 'paused');
  assert.equal((await runner.settled(queued.id)).status, 'interrupted');
  assert.throws(() => runner.submit('counter', counter({ steps: 1 })), /shutting down/);
});

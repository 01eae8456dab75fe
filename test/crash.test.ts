// Crash safety, end to end: `afd` processes killed with SIGKILL at random moments while
// they import a dataset or train. After each kill, the next start (recovery) must find
// an intact database (integrity_check ok, no orphan rows), the dataset complete or
// absent, no temp or unreferenced files, and the training run must resume and end with
// exactly the losses of an uninterrupted run with the same seed.
// AFD_CRASH_SEED=n repeats a sequence of kill times; AFD_CRASH_TRIALS=n (default 10)
// sets the number of training trials, with two more import trials than that.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, sep } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { openDatabase } from '../db/database.ts';
import { MetricStore } from '../db/metrics.ts';
import { RunStore } from '../db/runs.ts';
import { OWNER_FILE, StudioFiles } from '../main/jobs/files.ts';
import { recoverStore } from '../main/jobs/recovery.ts';
import { Rng } from '../native-models/train/rng.ts';

const AFD = fileURLToPath(new URL('../bin/afd.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'afd-crash-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const seed = Number(process.env.AFD_CRASH_SEED ?? Date.now() % 100_000);
const trials = Number(process.env.AFD_CRASH_TRIALS ?? 10);
const importTrials = trials + 2;
const rng = new Rng(seed);
const TRAIN = ['--steps', '120', '--checkpoint-every', '15', '--seed', '3', '--threads', '1', '--lr', '0.01'];
const ROWS = 30_000;

interface Outcome { code: number | null; signal: NodeJS.Signals | null; killedAfterMs: number | null; stderr: string }

/** The child processes of `pid` (Linux: /proc/PID/task/TID/children). */
function childrenOf(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((t) => readFileSync(`/proc/${pid}/task/${t}/children`, 'utf8').split(' ').filter((x) => x !== '').map(Number));
  } catch {
    return [];
  }
}

/** Waits up to 5 s for these processes to end; returns those still alive. */
async function gone(pids: readonly number[]): Promise<number[]> {
  const alive = (p: number): boolean => {
    try {
      process.kill(p, 0);
      return true;
    } catch {
      return false;
    }
  };
  for (let i = 0; i < 100 && pids.some(alive); i++) await new Promise((r) => setTimeout(r, 50));
  return pids.filter(alive);
}

/** Runs `afd args`, killing it with SIGKILL after `killAfterMs` unless it ended first. */
function afd(args: string[], killAfterMs: number | null = null): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [AFD, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip' } });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    // The run's own process (main/jobs/job-process.ts) must die with the killed one.
    let runProcesses: number[] = [];
    const timer = killAfterMs === null ? undefined : setTimeout(() => {
      runProcesses = childrenOf(child.pid!);
      child.kill('SIGKILL');
    }, killAfterMs);
    child.on('error', reject);
    // 'exit' comes after the child is reaped, so its pid is free again when we recover.
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      void gone(runProcesses).then((alive) => alive.length > 0
        ? reject(new Error(`run processes ${alive.join(', ')} outlived the killed afd by 5 s`))
        : resolve({ code, signal, killedAfterMs: signal === 'SIGKILL' ? killAfterMs : null, stderr }));
    });
  });
}

/** What the next start of the studio does, then every invariant of a sound store. */
async function recoverAndCheck(dbFile: string): Promise<{ runs: RunStore; metrics: MetricStore; close: () => void; datasets: { name: string; n: number }[] }> {
  const db = await openDatabase(dbFile);
  const files = StudioFiles.forDatabase(dbFile);
  await recoverStore(db, files);
  const one = (sql: string): unknown => db.sqlite.prepare(sql).pluck().get();
  assert.equal(one('PRAGMA integrity_check'), 'ok');
  assert.deepEqual(db.sqlite.prepare('PRAGMA foreign_key_check').all(), []);
  assert.equal(one('SELECT count(*) FROM examples WHERE dataset_id NOT IN (SELECT id FROM datasets)'), 0, 'examples without a dataset');
  assert.equal(one('SELECT count(*) FROM metrics WHERE run_id NOT IN (SELECT id FROM runs)'), 0, 'metrics without a run');
  assert.equal(one('SELECT count(*) FROM run_logs WHERE run_id NOT IN (SELECT id FROM runs)'), 0, 'logs without a run');
  assert.equal(one('SELECT count(*) FROM datasets WHERE ready = 0'), 0, 'a half-imported dataset is left');
  assert.equal(one("SELECT count(*) FROM runs WHERE status IN ('running', 'queued')"), 0, 'a run of the killed process is still running');
  // Every file in the files folder is a checkpoint some run points at (or the file that names the folder's database).
  const referenced = new Set(db.sqlite.prepare<[], string>('SELECT checkpoint_path FROM runs WHERE checkpoint_path IS NOT NULL').pluck().all());
  const stray = listFiles(files.root).map((f) => relative(files.root, f).split(sep).join('/')).filter((f) => !referenced.has(f) && f !== OWNER_FILE);
  assert.deepEqual(stray, [], 'temp or unreferenced files');
  const datasets = db.sqlite.prepare<[], { name: string; n: number }>('SELECT name, (SELECT count(*) FROM examples WHERE dataset_id = d.id) AS n FROM datasets d ORDER BY id').all();
  return { runs: new RunStore(db), metrics: new MetricStore(db), datasets, close: () => db.close() };
}

function listFiles(root: string): string[] {
  try {
    return readdirSync(root, { recursive: true, withFileTypes: true }).filter((e) => !e.isDirectory()).map((e) => join(e.parentPath ?? e.path, e.name));
  } catch {
    return [];
  }
}

test(`kill -9 during imports and training runs (${importTrials} + ${trials} trials)`, { timeout: 240_000 }, async (t) => {
  t.diagnostic(`AFD_CRASH_SEED=${seed}`);
  const started = performance.now();
  const source = join(dir, 'rows.jsonl');
  writeFileSync(source, Array.from({ length: ROWS }, (_, i) => `${JSON.stringify({ prompt: `prompt ${i}`, response: `response ${i} `.repeat(3) })}\n`).join(''));

  // The uninterrupted reference run; its duration (and an import's) sets the kill times,
  // so that most kills land while the process works, whatever the machine's speed.
  const refDb = join(dir, 'reference.db');
  let t0 = performance.now();
  const ref = await afd(['train-tiny', ...TRAIN, '--db', refDb]);
  const trainMs = performance.now() - t0;
  assert.equal(ref.code, 0, ref.stderr);
  const refStore = await recoverAndCheck(refDb);
  const refLosses = refStore.metrics.series(1, 'loss').map((p) => p.value);
  const refFinal = refStore.runs.get(1)?.result?.finalLoss;
  refStore.close();
  assert.equal(refLosses.length, 120);
  assert.equal(refFinal, refLosses.at(-1));

  // Imports into one database that accumulates datasets across trials.
  const importDb = join(dir, 'imports.db');
  t0 = performance.now();
  const whole = await afd(['datasets', 'import', source, '--name', 'whole', '--db', importDb]);
  const importMs = performance.now() - t0;
  assert.equal(whole.code, 0, whole.stderr);
  const kept: string[] = ['whole'];
  const importKills: (number | null)[] = [];
  for (let i = 0; i < importTrials; i++) {
    const name = `t${i}`;
    // The machine's load varies (the suite runs two files at once), so a window up to
    // the measured duration still puts some kills between commit and exit.
    const killAt = 50 + rng.int(Math.round(importMs * 0.9));
    const o = await afd(['datasets', 'import', source, '--name', name, '--db', importDb], killAt);
    importKills.push(o.killedAfterMs);
    if (o.killedAfterMs === null) assert.equal(o.code, 0, o.stderr);
    const s = await recoverAndCheck(importDb);
    const d = s.datasets.find((x) => x.name === name);
    if (d !== undefined) {
      assert.equal(d.n, ROWS, `dataset ${name} is there with ${d.n} of ${ROWS} rows`);
      kept.push(name);
    }
    assert.deepEqual(s.datasets.map((x) => x.name), kept, 'earlier datasets are intact');
    s.close();
  }

  // Training runs: killed once (sometimes twice), then resumed to the end.
  const trainKills: (number | null)[] = [];
  for (let i = 0; i < trials; i++) {
    const dbFile = join(dir, `train-${i}.db`);
    let kills = rng.next() < 0.3 ? 2 : 1;
    for (let attempt = 0; ; attempt++) {
      assert.ok(attempt < 5, 'the run should finish after its kills');
      const s = await recoverAndCheck(dbFile);
      const run = s.runs.get(1);
      s.close();
      if (run?.status === 'done') break;
      const args = run === undefined ? ['train-tiny', ...TRAIN, '--db', dbFile] : ['runs', 'resume', '1', '--db', dbFile];
      const killAt = kills > 0 ? 50 + rng.int(Math.round(trainMs * 0.8)) : null;
      const o = await afd(args, killAt);
      if (kills > 0) {
        kills--;
        trainKills.push(o.killedAfterMs);
      }
      if (o.killedAfterMs === null) assert.equal(o.code, 0, o.stderr);
    }
    const s = await recoverAndCheck(dbFile);
    assert.deepEqual(s.metrics.series(1, 'loss').map((p) => p.value), refLosses, `trial ${i}: the losses differ from the uninterrupted run`);
    assert.equal(s.runs.get(1)?.result?.finalLoss, refFinal);
    s.close();
  }
  const killed = [...importKills, ...trainKills].filter((k) => k !== null).length;
  t.diagnostic(`${importTrials} import and ${trials} training trials; ${killed} of ${importKills.length + trainKills.length} kills landed while the process ran (an import takes ${importMs.toFixed(0)} ms, a training run ${trainMs.toFixed(0)} ms, start-up included); ${kept.length - 1} of ${importTrials} killed imports had committed; ${((performance.now() - started) / 1000).toFixed(1)} s`);
  assert.ok(killed >= trials, 'most kills should land while the process runs');
});

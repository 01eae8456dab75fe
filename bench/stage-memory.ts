// What a finished stage leaves in the runner's process: the same stage kind run several
// times in a row through the real JobRunner (each run in its own process, as the studio
// and `afd run` do), on the embedded default model and a few HH-Harmless prompts, with
// the runner process's resident memory recorded before the first run, when each run has
// ended and after a short idle, and the peak of the runner and its run's process together.
// Prints one JSON object.
//
// Growth by about the same amount with every run means something of each run is kept in
// the runner; growth that levels off after a run or two is the C allocator keeping freed
// memory for reuse. When runs ran in worker threads of the runner's process, the second
// showed (docs/benchmarks.md): the runner now gives each run a process and glibc's fixed
// mmap threshold (main/jobs/job-process.ts), and the same command measures what is left.
//
// With --malloc (needs gdb), after each idle it also asks glibc itself, through gdb
// attached to this process: malloc_info's arenas (what each holds from the system, and how
// much of that is free chunks), then malloc_trim(0), and the RSS after it; what the trim
// gives back was free memory the allocator kept.
//
//   node --import tsx bench/stage-memory.ts [--kind sample|sft|rl] [--runs 4] [--idle-ms 3000]
//     [--threads N] [--adaptation lora|full] [--malloc]

import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs, promisify } from 'node:util';
import { openDatabase } from '../db/database.ts';
import type { JsonObject } from '../db/json.ts';
import { parseExperiment } from '../main/experiments/experiment.ts';
import { modelsFromOutside, resolveDataSpec, stageJobConfig } from '../main/experiments/driver.ts';
import { StudioFiles } from '../main/jobs/files.ts';
import { JobRunner } from '../main/jobs/runner.ts';
import { STAGES } from '../main/stages/kinds/index.ts';
import type { Artifact } from '../main/stages/stage.ts';

const { values: args } = parseArgs({
  options: {
    kind: { type: 'string', default: 'rl' },
    runs: { type: 'string', default: '4' },
    'idle-ms': { type: 'string', default: '3000' },
    threads: { type: 'string', default: '1' },
    adaptation: { type: 'string', default: 'lora' },
    malloc: { type: 'boolean', default: false },
  },
});
const whole = (name: 'runs' | 'idle-ms' | 'threads', min: number): number => {
  const n = Number(args[name]);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be a whole number >= ${min}, got ${args[name]}.`);
  return n;
};
const runs = whole('runs', 1), idleMs = whole('idle-ms', 0), threads = whole('threads', 1);
const ADAPTATIONS: Record<string, JsonObject> = { lora: { adaptation: 'lora', loraRank: 16, loraAlpha: 32 }, full: { adaptation: 'full' } };
const adaptation = ADAPTATIONS[args.adaptation];
if (adaptation === undefined) throw new Error(`--adaptation must be lora or full, got ${args.adaptation}.`);

// Each kind's stage, small enough for seconds per run; rl first needs a trained reward model.
const KINDS: Record<string, { setup: JsonObject[]; stage: JsonObject }> = {
  sample: { setup: [], stage: { kind: 'sample', model: 'pi0', split: 'train', n: 2, maxNewTokens: 24 } },
  sft: { setup: [], stage: { kind: 'sft', epochs: 1, batch: 4, maxLength: 128, ...adaptation } },
  rl: {
    setup: [
      { id: 'init-train', kind: 'sample', model: 'pi0', split: 'train', n: 1, maxNewTokens: 16 },
      { id: 'rm', kind: 'reward', positive: 'demos', negative: 'init-train', epochs: 1, batch: 4, maxLength: 128 },
    ],
    stage: { kind: 'rl', policy: 'pi0', reward: 'rm', k: 2, promptsPerStep: 2, steps: 4, maxNewTokens: 16, warmup: 0, ...adaptation },
  },
};
const plan = KINDS[args.kind];
if (plan === undefined) throw new Error(`--kind must be one of ${Object.keys(KINDS).join(', ')}, got ${args.kind}.`);

/** The process's resident memory in MiB: Node's figure and the kernel's, anonymous and file-backed, and its threads. */
interface Memory {
  rss: number;
  vmRss: number;
  rssAnon: number;
  rssFile: number;
  threads: number;
}

function memory(): Memory {
  const status = readFileSync('/proc/self/status', 'utf8');
  const field = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
  const mib = (kb: number): number => Math.round(kb / 102.4) / 10;
  return { rss: Math.round(process.memoryUsage().rss / 104857.6) / 10, vmRss: mib(field('VmRSS')), rssAnon: mib(field('RssAnon')), rssFile: mib(field('RssFile')), threads: field('Threads') };
}

/** Process ids of this process's children (the run's process while it lives). */
const children = (): string[] => readdirSync('/proc/self/task').flatMap((task) => readFileSync(`/proc/self/task/${task}/children`, 'utf8').split(' ').filter((p) => p !== ''));

/** VmRSS in MiB of this process's children, summed. */
function childrenVmRss(): number {
  let kb = 0;
  for (const pid of children()) {
    try {
      kb += Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      // it ended between the two reads
    }
  }
  return Math.round(kb / 102.4) / 10;
}

/** CPU seconds (user, system) of this process and of its children that have ended and been waited for. */
function cpuTimes(): { user: number; system: number } {
  const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1].split(' ');
  const tick = (i: number): number => Number(fields[i - 3]) / 100; // fields 14-17 of proc(5), in clock ticks of 1/100 s
  return { user: tick(14) + tick(16), system: tick(15) + tick(17) };
}

/**
 * glibc's view of the heap, asked through gdb (this process is paused while it runs):
 * arenas, what they hold from the system and how much of it is free chunks, and the RSS
 * left after malloc_trim(0) has returned the free pages of every arena.
 */
interface MallocReport {
  arenas: number;
  /** What the arenas hold from the system. */
  systemMiB: number;
  /** How much of it is free chunks. */
  freeMiB: number;
  /** Chunks mapped on their own (above the mmap threshold), in use. */
  mmapMiB: number;
  /** VmRSS after malloc_trim(0). */
  trimmedRss: number;
}

async function mallocReport(dir: string): Promise<MallocReport> {
  const file = join(dir, 'malloc-info.xml');
  await promisify(execFile)('gdb', [
    '-p', String(process.pid), '-batch', '-nx',
    '-ex', `call (void*)fopen("${file}", "w")`, '-ex', 'call (int)malloc_info(0, $1)', '-ex', 'call (int)fclose($1)', '-ex', 'call (int)malloc_trim(0)',
  ], { timeout: 120_000 });
  const xml = readFileSync(file, 'utf8');
  const all = xml.slice(xml.lastIndexOf('</heap>')); // the totals after the last arena
  const size = (text: string, tag: string, type: string): number => Number(new RegExp(`<${tag} type="${type}"(?: count="\\d+")? size="(\\d+)"`).exec(text)?.[1] ?? NaN);
  const mib = (bytes: number): number => Math.round(bytes / 104857.6) / 10;
  return {
    arenas: (xml.match(/<heap nr=/g) ?? []).length,
    systemMiB: mib(size(all, 'system', 'current')),
    freeMiB: mib(size(all, 'total', 'fast') + size(all, 'total', 'rest')),
    mmapMiB: mib(size(all, 'total', 'mmap')),
    trimmedRss: memory().vmRss,
  };
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

const root = mkdtempSync(join(tmpdir(), 'afd-stage-memory-'));
try {
  const repeated = Array.from({ length: runs }, (_, i) => ({ ...plan.stage, id: `${args.kind}-${i + 1}` }));
  const def = parseExperiment({
    name: 'stage-memory', seed: 0, model: 'default', threads, provider: 'cpu',
    data: { source: 'hh-harmless', evalFraction: 0.2, maxTrain: 16, maxEval: 4 },
    stages: [...plan.setup, ...repeated],
  });
  const dbFile = join(root, 'studio.db');
  const db = await openDatabase(dbFile);
  const files = StudioFiles.forDatabase(dbFile);
  const runner = await JobRunner.open({ db, files });
  const artifacts = new Map<string, Artifact>(await modelsFromOutside(db, files, def));
  const data = { ...(await resolveDataSpec(db, files, def.data, 0)), chatTemplateModel: artifacts.get('pi0')!.dir };

  const before = memory();
  const rows: { run: number; seconds: number; cpuSeconds: { user: number; system: number }; peakMiB: number; ended: Memory; idle: Memory; malloc?: MallocReport }[] = [];
  for (const spec of def.stages) {
    const repeat = repeated.findIndex((r) => r.id === spec.id);
    const start = performance.now(), cpu = cpuTimes();
    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, memory().vmRss + childrenVmRss())), 100);
    const submitted = runner.submit('afd-stage', stageJobConfig(def, spec, artifacts, data));
    const run = await runner.settled(submitted.id);
    clearInterval(sampler);
    if (run.status !== 'done') throw new Error(`Stage ${spec.id} ended ${run.status}: ${run.error ?? ''}`);
    artifacts.set(spec.id, { type: STAGES[spec.kind].produces, dir: files.runDir(run.id), stage: spec.id, ...(typeof run.result?.modelId === 'number' ? { modelId: run.result.modelId } : {}) });
    if (repeat < 0) continue; // setup
    const ended = memory(), seconds = Math.round(performance.now() - start) / 1000;
    // The run's process counts in cpuTimes once it has been waited for.
    for (let i = 0; children().length > 0 && i < 100; i++) await sleep(20);
    const used = cpuTimes(); // the runner's and the run's process's
    const cpuSeconds = { user: Math.round((used.user - cpu.user) * 100) / 100, system: Math.round((used.system - cpu.system) * 100) / 100 };
    await sleep(idleMs);
    const idle = memory();
    const malloc = args.malloc ? { malloc: await mallocReport(root) } : {};
    rows.push({ run: repeat + 1, seconds, cpuSeconds, peakMiB: Math.max(peak, ended.vmRss), ended, idle, ...malloc });
  }
  await runner.close();
  db.close();

  const idle = rows.map((r) => r.idle.vmRss);
  console.log(JSON.stringify({
    kind: args.kind, adaptation: args.adaptation, threads, idleMs, runs,
    env: Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('MALLOC_') || k === 'GLIBC_TUNABLES')),
    before, rows,
    // What each run left: idle RSS after it minus idle RSS after the one before (the first
    // against `before`); with --malloc each run starts from a trimmed heap instead.
    leftPerRunMiB: idle.map((v, i) => Math.round((v - (i === 0 ? before.vmRss : idle[i - 1])) * 10) / 10),
  }, null, 1));
} finally {
  rmSync(root, { recursive: true, force: true });
}

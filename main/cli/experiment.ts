// `afd run FILE`, `afd demo` and `afd repro hh-harmless`: an experiment run in the
// foreground on the store's job runner, with a progress line per stage (time left), the
// stages' log lines, Ctrl-C to pause cleanly (a checkpoint; `--resume` continues), and
// the results table at the end.
import { cpus, totalmem } from 'node:os';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Resvg } from '@resvg/resvg-js';
import { ExperimentStore } from '../../db/experiments.ts';
import type { JsonObject } from '../../db/json.ts';
import { RunStore } from '../../db/runs.ts';
import type { ExperimentDefinition, ResultsTable } from '../experiments/contract.ts';
import { writeComparisons } from '../experiments/comparisons.ts';
import { ExperimentDriver, type ExperimentOutcome } from '../experiments/driver.ts';
import { parseExperiment, readExperimentFile } from '../experiments/experiment.ts';
import { experimentResults, goldVsKlSvg, goldVsNSvg, resultsMarkdown } from '../experiments/results.ts';
import { JobRunner, type JobEvent } from '../jobs/runner.ts';
import { formatDuration, formatNumber, progressLine } from './follow.ts';
import { onePositional, printJson } from './output.ts';
import { DB_OPTION, DB_USAGE, withStudio, type Studio } from './studio.ts';

const EXPERIMENTS_DIR = fileURLToPath(new URL('../../experiments/', import.meta.url));
const RUN_USAGE = `usage: afd run EXPERIMENT.yaml [--resume] [--json] [${DB_USAGE}]`;
const DEMO_USAGE = `usage: afd demo [--resume] [--json] [${DB_USAGE}]`;
const REPRO_USAGE = `usage: afd repro hh-harmless [--policy default|smollm2] [--out DIR] [--max-train N] [--max-eval N] [--resume] [--json] [${DB_USAGE}]`;
/** pi_0 of the reproduction -> its experiment: the embedded model, or SmolLM2-135M-Instruct at the paper's scale. */
const REPRO_POLICIES: Record<string, string> = { default: 'hh-harmless.yaml', smollm2: 'hh-harmless-smollm2.yaml' };

const options = { ...DB_OPTION, resume: { type: 'boolean', default: false }, json: { type: 'boolean', default: false }, help: { type: 'boolean', default: false } } as const;

export async function runCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options });
  if (values.help) return help(RUN_USAGE);
  const def = await readExperimentFile(onePositional(positionals, 'experiment file', RUN_USAGE));
  return withStudio(values.db, async (studio) => (await report(await runExperiment(studio, def, values.resume), values.json, studio)).code);
}

export async function demoCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options });
  if (values.help) return help(DEMO_USAGE);
  const def = await readExperimentFile(join(EXPERIMENTS_DIR, 'demo.yaml'));
  return withStudio(values.db, async (studio) => (await report(await runExperiment(studio, def, values.resume), values.json, studio)).code);
}

export async function reproCommand(argv: string[]): Promise<number> {
  const str = { type: 'string' } as const;
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { ...options, out: str, 'max-train': str, 'max-eval': str, policy: str } });
  if (values.help) return help(REPRO_USAGE);
  const which = onePositional(positionals, 'reproduction name', REPRO_USAGE);
  if (which !== 'hh-harmless') throw new Error(`There is no reproduction named '${which}'; the one available is hh-harmless.`);
  const policy = values.policy ?? 'default';
  const file = REPRO_POLICIES[policy];
  if (file === undefined) throw new Error(`--policy must be one of ${Object.keys(REPRO_POLICIES).join(', ')}, not '${policy}'.`);
  const raw = (await readExperimentFile(join(EXPERIMENTS_DIR, file))) as unknown as JsonObject;
  const data = { ...(raw.data as JsonObject) };
  if (values['max-train'] !== undefined) data.maxTrain = Number(values['max-train']);
  if (values['max-eval'] !== undefined) data.maxEval = Number(values['max-eval']);
  const def = parseExperiment({ ...raw, data });
  const out = resolve(values.out ?? `afd-results/${def.name}`);
  return withStudio(values.db, async (studio) => {
    const outcome = await runExperiment(studio, def, values.resume);
    const { code, table } = await report(outcome, values.json, studio);
    if (table !== null) {
      await mkdir(out, { recursive: true });
      await writeFile(join(out, 'results.json'), `${JSON.stringify(table, null, 1)}\n`);
      await writeFile(join(out, 'results.md'), resultsMarkdown(table));
      for (const [name, svg] of [['gold-vs-n', goldVsNSvg(table)], ['gold-vs-kl', goldVsKlSvg(table)]]) {
        await writeFile(join(out, `${name}.svg`), svg);
        await writeFile(join(out, `${name}.png`), new Resvg(svg, { background: 'white', fitTo: { mode: 'zoom', value: 2 } }).render().asPng());
      }
      const machine = { cpus: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version, platform: `${process.platform}-${process.arch}` };
      await writeFile(join(out, 'run.json'), `${JSON.stringify({ command: `afd repro ${argv.join(' ')}`, experiment: def, machine, ...experimentTimes(studio, outcome.experimentId), stages: stageTimes(studio, outcome.experimentId), experimentId: outcome.experimentId }, null, 1)}\n`);
      const extras = await writeComparisons(def, stageFolders(studio, outcome.experimentId), out);
      if (!values.json) console.log(`Wrote results.json, results.md, gold-vs-n.svg/.png, gold-vs-kl.svg/.png${extras.map((f) => `, ${f}`).join('')} to ${out}.`);
    }
    return code;
  });
}

function help(usage: string): number {
  console.log(usage);
  return 0;
}

/** Runs (or resumes the latest experiment of that name, or the one with that id) with a progress line per stage. */
export async function runExperiment(studio: Studio, def: ExperimentDefinition, resume: boolean | { experimentId: number }, err: NodeJS.WriteStream = process.stderr): Promise<ExperimentOutcome> {
  const runner = await JobRunner.open({ db: studio.db, files: studio.files });
  let driver: ExperimentDriver;
  if (typeof resume === 'object') {
    err.write(`Continuing experiment #${resume.experimentId} (${def.name}): finished stages are kept.\n`);
    driver = ExperimentDriver.start(studio.db, runner, def, { experimentId: resume.experimentId, log: (text) => err.write(`  ${text}\n`) });
  } else if (resume) {
    const previous = new ExperimentStore(studio.db).list().find((e) => e.name === def.name);
    if (previous === undefined) throw new Error(`There is no earlier experiment named '${def.name}' to resume; run it without --resume.`);
    err.write(`Resuming experiment #${previous.id} (${def.name}): finished stages are kept unless their settings changed.\n`);
    driver = ExperimentDriver.start(studio.db, runner, def, { experimentId: previous.id, log: (text) => err.write(`  ${text}\n`) });
  } else {
    driver = ExperimentDriver.start(studio.db, runner, def);
    err.write(`Experiment #${driver.experimentId} (${def.name}): ${def.stages.length} stages.\n`);
  }
  const tty = err.isTTY === true;
  const total = def.stages.length;
  let label = '';
  let lastDraw = 0;
  let drawn = false;
  const latest: Record<string, number> = {};
  const clear = (): void => {
    if (tty && drawn) err.write('\r\x1b[2K');
    drawn = false;
  };
  const announced = new Set<number>();
  const stopProgress = driver.onProgress((p) => {
    const i = p.stages.findIndex((s) => s.runId !== null && s.runId === driver.currentRun);
    if (i < 0 || announced.has(p.stages[i].runId!)) return;
    announced.add(p.stages[i].runId!);
    label = `[${i + 1}/${total}] ${p.stages[i].id}`;
    for (const k of Object.keys(latest)) delete latest[k];
    clear();
    const kept = p.stages[i].state === 'done' ? ', finished earlier: kept' : '';
    err.write(`${label} (${p.stages[i].kind}, run #${p.stages[i].runId}${kept})\n`);
  });
  const stopEvents = runner.onEvent((e: JobEvent) => {
    if (!('runId' in e) || e.runId !== driver.currentRun) return;
    if (e.type === 'metric') Object.assign(latest, e.values);
    else if (e.type === 'log') {
      clear();
      err.write(`  ${e.text}\n`);
    } else if (e.type === 'progress') {
      const now = performance.now();
      if (now - lastDraw < (tty ? 100 : 10_000) && e.fraction !== 1) return;
      lastDraw = now;
      const extras = ['loss', 'selected_reward'].filter((m) => m in latest).map((m) => `${m} ${formatNumber(latest[m])}`);
      const line = progressLine(`  ${label}`, e, extras, tty);
      if (tty) {
        err.write(`\r\x1b[2K${line.slice(0, Math.max(20, (err.columns ?? 100) - 1))}`);
        drawn = true;
      } else err.write(`${line}\n`);
    }
  });
  let interrupts = 0;
  const onSigint = (): void => {
    clear();
    if (++interrupts > 1) {
      err.write('Stopped at once; `--resume` continues from the last checkpoint.\n');
      process.exit(130);
    }
    err.write('Pausing at the next step boundary, with a checkpoint (Ctrl-C again stops at once)...\n');
    driver.stop('pause');
  };
  process.on('SIGINT', onSigint);
  const t0 = Date.now();
  try {
    const outcome = await driver.done;
    clear();
    err.write(`Experiment #${outcome.experimentId} ${outcome.status} after ${formatDuration(Date.now() - t0)}.\n`);
    return outcome;
  } finally {
    process.off('SIGINT', onSigint);
    stopProgress();
    stopEvents();
    await runner.close();
  }
}

/** Prints the outcome; returns the exit code and the results table (null without one). */
export async function report(outcome: ExperimentOutcome, json: boolean, studio: Studio): Promise<{ code: number; table: ResultsTable | null }> {
  if (outcome.status === 'failed') throw new Error(`${outcome.error ?? 'a stage failed'} (see \`afd runs list\`; \`--resume\` continues after the finished stages).`);
  if (outcome.status !== 'done') {
    console.error(`The experiment is ${outcome.status}; run the same command with --resume to continue where it stopped.`);
    return { code: 130, table: null };
  }
  const table: ResultsTable | null = experimentResults(studio.db, studio.files, outcome.experimentId);
  if (json) printJson(table ?? { experimentId: outcome.experimentId, stages: outcome.stages });
  else if (table !== null) console.log(resultsMarkdown(table));
  else console.log(`All ${outcome.stages.length} stages are done (the experiment has no eval stage, so there is no results table).`);
  return { code: 0, table };
}

/** A run's stored timestamp in milliseconds (SQLite's 'YYYY-MM-DD HH:MM:SS' is UTC, as are ISO strings with Z). */
const runTime = (s: string): number => Date.parse(s.endsWith('Z') ? s : `${s.replace(' ', 'T')}Z`);

/** The folder of every finished stage of the experiment, by stage id. */
function stageFolders(studio: Studio, experimentId: number): Map<string, string> {
  const runs = new RunStore(studio.db).list({ experimentId, status: 'done' }).filter((r) => r.stage === 'afd-stage' && typeof r.config.id === 'string').sort((a, b) => a.id - b.id);
  return new Map(runs.map((r) => [r.config.id as string, studio.files.runDir(r.id)]));
}

/** Each finished stage's own running time in seconds (the last run of each stage id). */
function stageTimes(studio: Studio, experimentId: number): { id: string; seconds: number }[] {
  const runs = new RunStore(studio.db).list({ experimentId, status: 'done' }).filter((r) => r.stage === 'afd-stage' && r.startedAt !== null && r.finishedAt !== null).sort((a, b) => a.id - b.id);
  const last = new Map(runs.map((r) => [String(r.config.id), Math.round((runTime(r.finishedAt!) - runTime(r.startedAt!)) / 1000)]));
  return [...last].map(([id, seconds]) => ({ id, seconds }));
}

/** When the experiment's stages ran: first start to last finish (across resumes), and the sum of the stages' own times. */
function experimentTimes(studio: Studio, experimentId: number): { startedAt: string | null; finishedAt: string | null; wallSeconds: number | null; stageSeconds: number } {
  const runs = new RunStore(studio.db).list({ experimentId }).filter((r) => r.startedAt !== null && r.finishedAt !== null);
  const starts = runs.map((r) => runTime(r.startedAt!)), ends = runs.map((r) => runTime(r.finishedAt!));
  const stageSeconds = Math.round(runs.reduce((sum, r) => sum + (runTime(r.finishedAt!) - runTime(r.startedAt!)) / 1000, 0));
  if (runs.length === 0) return { startedAt: null, finishedAt: null, wallSeconds: null, stageSeconds };
  const first = Math.min(...starts), last = Math.max(...ends);
  return { startedAt: new Date(first).toISOString(), finishedAt: new Date(last).toISOString(), wallSeconds: Math.round((last - first) / 1000), stageSeconds };
}

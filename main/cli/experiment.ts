// `afd run FILE`, `afd demo` and `afd repro hh-harmless`: an experiment run in the
// foreground through the StudioService (experiments.start/resume, the window's methods),
// followed from its events with a progress line per stage (time left), the stages' log
// lines, Ctrl-C to pause cleanly (a checkpoint; `--resume` continues), and the results
// table (results.get) at the end.
import { cpus, totalmem } from 'node:os';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Resvg } from '@resvg/resvg-js';
import type { JsonObject } from '../../db/json.ts';
import type { ExperimentEndStatus, ResultsTable, RunInfo, StudioEvent } from '../api/contract.ts';
import type { StudioService } from '../api/service.ts';
import type { ExperimentDefinition } from '../experiments/contract.ts';
import { writeComparisons } from '../experiments/comparisons.ts';
import { parseExperiment, readExperimentFile } from '../experiments/experiment.ts';
import { goldVsKlSvg, goldVsNSvg, resultsMarkdown } from '../experiments/results.ts';
import type { StudioFiles } from '../jobs/files.ts';
import { formatDuration, formatNumber, progressLine } from './follow.ts';
import { StatusLine } from './progress.ts';
import { onePositional, printJson } from './output.ts';
import { DB_OPTION, DB_USAGE, withService, type CommandService } from './studio.ts';

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
  return withService(values.db, async (open) => (await report(await runExperiment(open, await startOf(open, def, values.resume)), values.json, open.service)).code, { recover: true });
}

export async function demoCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options });
  if (values.help) return help(DEMO_USAGE);
  const def = await readExperimentFile(join(EXPERIMENTS_DIR, 'demo.yaml'));
  return withService(values.db, async (open) => (await report(await runExperiment(open, await startOf(open, def, values.resume)), values.json, open.service)).code, { recover: true });
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
  return withService(values.db, async (open) => {
    const end = await runExperiment(open, await startOf(open, def, values.resume));
    const { code, table } = await report(end, values.json, open.service);
    if (table !== null) {
      const detail = await open.service.call('experiments.get', { experimentId: end.experimentId });
      await mkdir(out, { recursive: true });
      await writeFile(join(out, 'results.json'), `${JSON.stringify(table, null, 1)}\n`);
      await writeFile(join(out, 'results.md'), resultsMarkdown(table));
      for (const [name, svg] of [['gold-vs-n', goldVsNSvg(table)], ['gold-vs-kl', goldVsKlSvg(table)]]) {
        await writeFile(join(out, `${name}.svg`), svg);
        await writeFile(join(out, `${name}.png`), new Resvg(svg, { background: 'white', fitTo: { mode: 'zoom', value: 2 } }).render().asPng());
      }
      const machine = { cpus: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version, platform: `${process.platform}-${process.arch}` };
      await writeFile(join(out, 'run.json'), `${JSON.stringify({ command: `afd repro ${argv.join(' ')}`, experiment: def, machine, ...experimentTimes(detail.runs), stages: stageTimes(detail.runs), experimentId: end.experimentId }, null, 1)}\n`);
      const extras = await writeComparisons(def, stageFolders(detail.runs, open.studio.files), out);
      if (!values.json) console.log(`Wrote results.json, results.md, gold-vs-n.svg/.png, gold-vs-kl.svg/.png${extras.map((f) => `, ${f}`).join('')} to ${out}.`);
    }
    return code;
  }, { recover: true });
}

/** A new experiment, or with --resume the latest stored one of the same name, continued under this definition. */
async function startOf({ service }: CommandService, def: ExperimentDefinition, resume: boolean): Promise<ExperimentStart> {
  const definition = def as unknown as JsonObject;
  if (!resume) return { definition };
  const previous = (await service.call('experiments.list', {})).find((e) => e.name === def.name);
  if (previous === undefined) throw new Error(`There is no earlier experiment named '${def.name}' to resume; run it without --resume.`);
  return { experimentId: previous.id, definition };
}

function help(usage: string): number {
  console.log(usage);
  return 0;
}

/** What to run: a new experiment from its definition, or a stored one (with an edited definition, or its own). */
export type ExperimentStart = { definition: JsonObject } | { experimentId: number; definition?: JsonObject };

/** How the experiment's drive ended, as the service's 'experiment.ended' event says. */
export interface ExperimentEnd {
  experimentId: number;
  status: ExperimentEndStatus;
  error: string | null;
}

/**
 * Runs an experiment through the service (experiments.start or experiments.resume, the
 * methods the window calls) and follows it to its end from the service's events: a line
 * per stage, its log lines, a progress line with the time left. Ctrl-C pauses it
 * (experiments.stop); a second Ctrl-C stops at once.
 */
export async function runExperiment({ service }: CommandService, start: ExperimentStart, err: NodeJS.WriteStream = process.stderr): Promise<ExperimentEnd> {
  const status = new StatusLine(err, 10_000);
  let experimentId: number | null = null;
  let total = 0;
  let label = '';
  let currentRun: number | null = null;
  const latest: Record<string, number | null> = {};
  const announced = new Set<number>();
  let settle: (end: ExperimentEnd) => void = () => {};
  const ended = new Promise<ExperimentEnd>((resolve) => (settle = resolve));
  const handle = (e: StudioEvent): void => {
    if (e.type === 'experiment.ended' && e.experimentId === experimentId) settle({ experimentId: e.experimentId, status: e.status, error: e.error });
    else if (e.type === 'experiment.log' && e.experimentId === experimentId) status.print(`  ${e.text}`);
    else if (e.type === 'experiment.progress' && e.progress.experimentId === experimentId) {
      const i = e.progress.stages.findIndex((s) => s.id === e.progress.current);
      const stage = e.progress.stages[i];
      if (stage === undefined || stage.runId === null || announced.has(stage.runId)) return;
      announced.add(stage.runId);
      currentRun = stage.runId;
      label = `[${i + 1}/${total}] ${stage.id}`;
      for (const k of Object.keys(latest)) delete latest[k];
      status.print(`${label} (${stage.kind}, run #${stage.runId}${stage.state === 'done' ? ', finished earlier: kept' : ''})`);
    } else if (e.type === 'run.metric' && e.runId === currentRun) Object.assign(latest, e.values);
    else if (e.type === 'run.log' && e.runId === currentRun) status.print(`  ${e.text}`);
    else if (e.type === 'run.progress' && e.runId === currentRun) {
      const extras = ['loss', 'selected_reward'].filter((m) => typeof latest[m] === 'number').map((m) => `${m} ${formatNumber(latest[m]!)}`);
      status.show(progressLine(`  ${label}`, { ...e, fraction: e.fraction ?? 'unknown' }, extras, status.tty), e.fraction === 1);
    }
  };
  // Events that come before the experiment's id is known are replayed once it is.
  const early: StudioEvent[] = [];
  const unsubscribe = service.onEvent((e) => (experimentId === null ? early.push(e) : handle(e)));
  let interrupts = 0;
  const onSigint = (): void => {
    status.clear();
    if (++interrupts > 1) {
      status.print('Stopped at once; `--resume` continues from the last checkpoint.');
      process.exit(130);
    }
    if (experimentId === null) return;
    status.print('Pausing at the next step boundary, with a checkpoint (Ctrl-C again stops at once)...');
    service.call('experiments.stop', { experimentId, reason: 'pause' }).catch((e: Error) => status.print(e.message));
  };
  process.on('SIGINT', onSigint);
  const t0 = Date.now();
  try {
    const detail = 'experimentId' in start
      ? await service.call('experiments.resume', { experimentId: start.experimentId, ...(start.definition === undefined ? {} : { definition: start.definition }) })
      : await service.call('experiments.start', { definition: start.definition });
    total = detail.progress.stages.length;
    status.print(!('experimentId' in start) ? `Experiment #${detail.id} (${detail.name}): ${total} stages.`
      : start.definition === undefined ? `Continuing experiment #${detail.id} (${detail.name}): finished stages are kept.`
        : `Resuming experiment #${detail.id} (${detail.name}): finished stages are kept unless their settings changed.`);
    experimentId = detail.id;
    for (const e of early.splice(0)) handle(e);
    const end = await ended;
    status.print(`Experiment #${end.experimentId} ${end.status} after ${formatDuration(Date.now() - t0)}.`);
    return end;
  } finally {
    process.off('SIGINT', onSigint);
    unsubscribe();
  }
}

/** Prints how it ended and the results table (results.get); returns the exit code and the table (null without one). */
export async function report(end: ExperimentEnd, json: boolean, service: StudioService): Promise<{ code: number; table: ResultsTable | null }> {
  if (end.status === 'failed') throw new Error(`${end.error ?? 'a stage failed'} (see \`afd runs list\`; \`--resume\` continues after the finished stages).`);
  if (end.status !== 'done') {
    console.error(`The experiment is ${end.status}; run the same command with --resume to continue where it stopped.`);
    return { code: 130, table: null };
  }
  const table = await service.call('results.get', { experimentId: end.experimentId });
  if (json) printJson(table ?? { experimentId: end.experimentId, stages: (await service.call('experiments.get', { experimentId: end.experimentId })).progress.stages });
  else if (table !== null) console.log(resultsMarkdown(table));
  else console.log('All stages are done (the experiment has no eval stage, so there is no results table).');
  return { code: 0, table };
}

/** A run's stored timestamp in milliseconds (SQLite's 'YYYY-MM-DD HH:MM:SS' is UTC, as are ISO strings with Z). */
const runTime = (s: string): number => Date.parse(s.endsWith('Z') ? s : `${s.replace(' ', 'T')}Z`);

/** The folder of every finished stage of the experiment, by stage id. */
function stageFolders(runs: readonly RunInfo[], files: StudioFiles): Map<string, string> {
  const done = runs.filter((r) => r.status === 'done' && r.stage === 'afd-stage' && typeof r.config.id === 'string').sort((a, b) => a.id - b.id);
  return new Map(done.map((r) => [r.config.id as string, files.runDir(r.id)]));
}

/** Each finished stage's own running time in seconds (the last run of each stage id). */
function stageTimes(runs: readonly RunInfo[]): { id: string; seconds: number }[] {
  const done = runs.filter((r) => r.status === 'done' && r.stage === 'afd-stage' && r.startedAt !== null && r.finishedAt !== null).sort((a, b) => a.id - b.id);
  const last = new Map(done.map((r) => [String(r.config.id), Math.round((runTime(r.finishedAt!) - runTime(r.startedAt!)) / 1000)]));
  return [...last].map(([id, seconds]) => ({ id, seconds }));
}

/** When the experiment's stages ran: first start to last finish (across resumes), and the sum of the stages' own times. */
function experimentTimes(all: readonly RunInfo[]): { startedAt: string | null; finishedAt: string | null; wallSeconds: number | null; stageSeconds: number } {
  const runs = all.filter((r) => r.startedAt !== null && r.finishedAt !== null);
  const starts = runs.map((r) => runTime(r.startedAt!)), ends = runs.map((r) => runTime(r.finishedAt!));
  const stageSeconds = Math.round(runs.reduce((sum, r) => sum + (runTime(r.finishedAt!) - runTime(r.startedAt!)) / 1000, 0));
  if (runs.length === 0) return { startedAt: null, finishedAt: null, wallSeconds: null, stageSeconds };
  const first = Math.min(...starts), last = Math.max(...ends);
  return { startedAt: new Date(first).toISOString(), finishedAt: new Date(last).toISOString(), wallSeconds: Math.round((last - first) / 1000), stageSeconds };
}

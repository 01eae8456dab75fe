// `afd runs list|show|cancel|pause|resume`: the jobs recorded in the store, through the
// StudioService's runs.* methods (the same the window and `afd serve` call); --json prints
// what the method returns.
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import type { RunStatus } from '../../db/runs.ts';
import type { RunInfo, RunSummary } from '../api/contract.ts';
import { RUN_STATUSES } from '../api/contract.ts';
import type { StudioService } from '../api/service.ts';
import { followRun, formatDuration, formatNumber } from './follow.ts';
import { oneLine, onePositional, printJson, table, wholeNumber } from './output.ts';
import { DB_OPTION, DB_USAGE, withService } from './studio.ts';

const LIST_USAGE = `usage: afd runs list [--json] [--status ${RUN_STATUSES.join('|')}] [${DB_USAGE}]`;
export async function runsList(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { ...DB_OPTION, json: { type: 'boolean', default: false }, status: { type: 'string' }, help: { type: 'boolean', default: false } } });
  if (values.help) return usage(LIST_USAGE);
  // The service refuses a status it does not know, in its own sentence.
  const status = values.status as RunStatus | undefined;
  return withService(values.db, async ({ service }) => {
    const runs = await service.call('runs.list', status === undefined ? {} : { status });
    if (values.json) {
      printJson(runs);
      return 0;
    }
    if (runs.length === 0) {
      console.log(status === undefined ? 'No runs yet; `afd train-tiny --steps 100` starts a small one.' : `No ${status} runs.`);
      return 0;
    }
    console.log(table(['id', 'kind', 'status', 'step', 'created', 'finished', 'error'], runs.map((r) => [
      r.id, r.stage, r.status, stepText(r), short(r.createdAt), short(r.finishedAt), oneLine(r.error, 60),
    ])));
    return 0;
  });
}

const SHOW_USAGE = `usage: afd runs show ID [--json] [--logs 20] [${DB_USAGE}]`;
export async function runsShow(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { ...DB_OPTION, json: { type: 'boolean', default: false }, logs: { type: 'string' }, help: { type: 'boolean', default: false } } });
  if (values.help) return usage(SHOW_USAGE);
  const id = runId(onePositional(positionals, 'run id', SHOW_USAGE));
  const logCount = wholeNumber('logs', values.logs, 20);
  return withService(values.db, async ({ service }) => {
    const detail = await service.call('runs.get', { runId: id, logs: logCount });
    if (values.json) {
      printJson(detail);
      return 0;
    }
    const { run, metrics, logs, checkpointFile: checkpoint, asked } = detail;
    const lines = [
      `Run #${run.id}: ${run.stage}, ${run.status}${run.provider !== null ? ` on ${run.provider}` : ''}`,
      `  created ${run.createdAt}${run.startedAt !== null ? `, started ${run.startedAt}` : ''}${run.finishedAt !== null ? `, finished ${run.finishedAt}` : ''}`,
      `  config: ${JSON.stringify(run.config)}`,
    ];
    if (asked !== null) lines.push(`  asked to ${asked}: it stops at its next step boundary`);
    if (run.seed !== null) lines.push(`  seed: ${run.seed}`);
    if (run.error !== null) lines.push(`  error: ${run.error}`);
    if (run.result !== null) lines.push(`  result: ${JSON.stringify(run.result)}`);
    if (checkpoint !== null) lines.push(`  checkpoint: ${checkpoint}${existsSync(checkpoint) ? '' : ' (missing)'}`);
    if (metrics.length > 0) {
      lines.push('  metrics:');
      lines.push(indent(table(['name', 'steps', 'last step', 'last', 'min', 'max'], metrics.map((m) => [m.name, m.count, m.lastStep, m.last === null ? 'NaN' : formatNumber(m.last), m.min === null ? 'NaN' : formatNumber(m.min), m.max === null ? 'NaN' : formatNumber(m.max)])), 4));
    }
    if (logs.length > 0) {
      lines.push(`  log${logs.length === logCount ? ` (last ${logCount} lines)` : ''}:`);
      for (const l of logs) lines.push(`    ${l.at.slice(11, 23)} ${l.level === 'info' ? '' : `${l.level}: `}${l.text.split('\n').join('\n      ')}`);
    }
    console.log(lines.join('\n'));
    return 0;
  });
}

const CANCEL_USAGE = `usage: afd runs cancel ID [${DB_USAGE}]`;
export function runsCancel(argv: string[]): Promise<number> {
  return stopCommand(argv, 'cancel', CANCEL_USAGE);
}

const PAUSE_USAGE = `usage: afd runs pause ID [${DB_USAGE}]`;
export function runsPause(argv: string[]): Promise<number> {
  return stopCommand(argv, 'pause', PAUSE_USAGE);
}

/** How long `runs cancel` waits for another process to carry out the stop. */
const REMOTE_WAIT_MS = 60_000;

async function stopCommand(argv: string[], action: 'cancel' | 'pause', usageText: string): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { ...DB_OPTION, help: { type: 'boolean', default: false } } });
  if (values.help) return usage(usageText);
  const id = runId(onePositional(positionals, 'run id', usageText));
  return withService(values.db, async ({ service }) => {
    let run = await service.call(action === 'cancel' ? 'runs.cancel' : 'runs.pause', { runId: id });
    if (run.status === 'queued' || run.status === 'running') {
      // Another process runs it; its runner stops it at the next step boundary.
      console.error(`Asked run #${id} to ${action}; waiting for the process running it...`);
      const deadline = performance.now() + REMOTE_WAIT_MS;
      while ((run.status === 'queued' || run.status === 'running') && performance.now() < deadline) {
        await sleep(200);
        run = (await service.call('runs.get', { runId: id })).run;
      }
      if (run.status === 'queued' || run.status === 'running') {
        console.error(`Run #${id} has not stopped yet; it stops at its next step boundary (see \`afd runs show ${id}\`).`);
        return 1;
      }
    }
    console.log(stoppedText(run));
    return 0;
  });
}

const RESUME_USAGE = `usage: afd runs resume ID [${DB_USAGE}]`;
export async function runsResume(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args: argv, allowPositionals: true, options: { ...DB_OPTION, help: { type: 'boolean', default: false } } });
  if (values.help) return usage(RESUME_USAGE);
  const id = runId(onePositional(positionals, 'run id', RESUME_USAGE));
  return withService(values.db, async ({ service }) => {
    const run = await service.call('runs.resume', { runId: id });
    return followInForeground(service, run.id, `Run #${id}`, ['loss']);
  });
}

/** Follows a run this process's runner runs (one a service method started) from the
 *  service's events with a progress line, and reports how it ended: 0 when done, 130 after
 *  Ctrl-C, 1 otherwise (a failure throws its sentence). */
export async function followInForeground(service: StudioService, runId: number, label: string, metrics: readonly string[]): Promise<number> {
  const { run: end, interrupted } = await followRun(service, runId, { label, metrics });
  if (end.status === 'failed') throw new Error(end.error ?? `Run #${end.id} failed; see \`afd runs show ${end.id}\`.`);
  if (end.status === 'done') {
    console.log(describeResult(end));
    return 0;
  }
  console.error(stoppedText(end));
  return interrupted ? 130 : 1;
}

/** One sentence about a finished run's result. */
export function describeResult(run: RunInfo): string {
  const r = run.result ?? {};
  const took = run.startedAt !== null && run.finishedAt !== null ? ` in ${formatDuration(Date.parse(run.finishedAt) - Date.parse(run.startedAt))}` : '';
  if (run.stage === 'import-dataset') {
    return `Imported "${String(r.name)}": ${String(r.inserted)} examples (train ${String(r.train)}, eval ${String(r.eval)}) from ${String(r.records)} ${String(r.format)} records, ${String(r.duplicates)} exact duplicates dropped${took}.`;
  }
  if (run.stage === 'import-model') {
    return `Imported model #${String(r.modelId)} ("${String(r.name)}"): ${String(r.family)}, ${typeof r.params === 'number' ? r.params.toLocaleString('en') : '?'} parameters${took}.`;
  }
  if (run.stage === 'export-model') {
    return `Exported to ${String(r.out)} (${r.format === 'gguf' ? 'GGUF' : 'Hugging Face folder'}, ${String(r.type)}): ${typeof r.params === 'number' ? r.params.toLocaleString('en') : '?'} parameters${took}.`;
  }
  if (run.stage === 'train-tiny-lm') {
    return `Run #${run.id} trained ${String(r.steps)} steps${took}; final loss ${typeof r.finalLoss === 'number' ? formatNumber(r.finalLoss) : 'unknown'}.`;
  }
  return `Run #${run.id} (${run.stage}) is done${took}: ${JSON.stringify(r)}.`;
}

function stoppedText(run: RunInfo): string {
  if (run.stage === 'import-dataset' && run.status !== 'paused') {
    return `The import of "${String(run.config.name)}" (run #${run.id}) was ${run.status}; nothing was saved, and \`afd runs resume ${run.id}\` imports it again.`;
  }
  const resumable = run.checkpointPath !== null ? `; \`afd runs resume ${run.id}\` continues it from its checkpoint` : `; \`afd runs resume ${run.id}\` starts it again`;
  switch (run.status) {
    case 'cancelled': return `Run #${run.id} is cancelled${resumable}.`;
    case 'paused': return `Run #${run.id} is paused${resumable}.`;
    case 'interrupted': return `Run #${run.id} was interrupted${resumable}.`;
    default: return `Run #${run.id} is ${run.status}.`;
  }
}

function runId(text: string): number {
  const id = Number(text.replace(/^#/, ''));
  if (!Number.isSafeInteger(id) || id <= 0) throw new Error(`'${text}' is not a run id; run ids are whole numbers (see \`afd runs list\`).`);
  return id;
}

function stepText(run: RunSummary): string {
  const total = typeof run.config.steps === 'number' ? run.config.steps : null;
  if (run.lastStep === null) return '';
  return total === null ? String(run.lastStep) : `${run.lastStep}/${total}`;
}

function short(time: string | null): string {
  return time === null ? '' : time.slice(0, 19).replace('T', ' ');
}

function indent(text: string, n: number): string {
  return text.split('\n').map((l) => ' '.repeat(n) + l).join('\n');
}

function usage(text: string): number {
  console.log(text);
  return 0;
}

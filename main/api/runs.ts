// The runs view's methods (list, details, start, control, logs, metric series), and the
// translation of the job runner's events and rows into the API's shapes.
import { MetricStore } from '../../db/metrics.ts';
import { RunLogStore } from '../../db/run-logs.ts';
import type { Run } from '../../db/runs.ts';
import { RunStore } from '../../db/runs.ts';
import type { JobEvent } from '../jobs/runner.ts';
import type { RunInfo, RunSummary, StudioEvent } from './contract.ts';
import type { ApiContext, Handlers } from './context.ts';

/** A run as the API shows it (the owner and control columns are the runner's business). */
export function runInfo(run: Run): RunInfo {
  const { owner: _owner, control: _control, ...info } = run;
  return info;
}

/** NaN is not JSON: it crosses the API as null. */
const finite = (x: number): number | null => (Number.isFinite(x) ? x : null);

export function jobEvent(e: JobEvent): StudioEvent {
  switch (e.type) {
    case 'status':
      return { type: 'run.status', run: runInfo(e.run) };
    case 'progress':
      return { type: 'run.progress', runId: e.runId, step: e.step, total: e.total, unit: e.unit, fraction: e.fraction === 'unknown' ? null : e.fraction, etaMs: e.etaMs, rate: e.rate };
    case 'metric':
      return { type: 'run.metric', runId: e.runId, step: e.step, values: Object.fromEntries(Object.entries(e.values).map(([k, v]) => [k, finite(v)])) };
    case 'log':
      return { type: 'run.log', runId: e.runId, level: e.level, text: e.text };
    case 'checkpoint':
      return { type: 'run.checkpoint', runId: e.runId, step: e.step };
  }
}

export function runHandlers(ctx: ApiContext): Handlers<'runs.list' | 'runs.get' | 'runs.start' | 'runs.cancel' | 'runs.pause' | 'runs.resume' | 'runs.logs' | 'runs.metrics'> {
  const runs = new RunStore(ctx.db);
  const metrics = new MetricStore(ctx.db);
  const logs = new RunLogStore(ctx.db);
  const run = (id: number): Run => {
    const r = runs.get(id);
    if (r === undefined) throw new Error(`There is no run #${id}; ${ctx.findHint('runs')}.`);
    return r;
  };
  const control = (id: number, action: 'cancel' | 'pause' | 'resume'): RunInfo => {
    run(id);
    const r = ctx.runner[action](id);
    ctx.log('info', `Run #${id}: ${action} asked.`);
    return runInfo(r);
  };
  return {
    'runs.list': (p) => {
      const steps = metrics.lastSteps();
      return runs.list(p).map((r): RunSummary => ({ ...runInfo(r), lastStep: steps.get(r.id) ?? null }));
    },
    'runs.get': (p) => {
      const r = run(p.runId);
      return {
        run: runInfo(r),
        metrics: metrics.summary(p.runId).map((m) => ({ ...m, last: finite(m.last) })),
        logs: logs.tail(p.runId, p.logs ?? 50),
        checkpointFile: r.checkpointPath === null ? null : ctx.runner.files.absolute(r.checkpointPath),
        asked: r.status === 'queued' || r.status === 'running' ? r.control : null,
      };
    },
    'runs.start': (p) => {
      // The kind's schema checks the config, in its own sentences.
      const r = ctx.runner.submit(p.kind, p.config ?? {});
      ctx.log('info', `Started run #${r.id} (${r.stage}).`);
      return runInfo(r);
    },
    'runs.cancel': (p) => control(p.runId, 'cancel'),
    'runs.pause': (p) => control(p.runId, 'pause'),
    'runs.resume': (p) => control(p.runId, 'resume'),
    'runs.logs': (p) => {
      run(p.runId);
      return logs.tail(p.runId, p.limit ?? 200);
    },
    'runs.metrics': (p) => {
      run(p.runId);
      return (p.names ?? metrics.names(p.runId)).map((name) => ({ name, points: metrics.series(p.runId, name).map((pt) => ({ step: pt.step, value: finite(pt.value) })) }));
    },
  };
}


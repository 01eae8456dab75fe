// Unit tests of the renderer's state classes: what each event changes, what is read again
// and when, and that an answer in flight never undoes a newer event. The classes are
// compiled with their runes as the page gets them (renderer/test/svelte-hooks.mjs).
import assert from 'node:assert/strict';
import { register } from 'node:module';
import { test } from 'node:test';
import type { ExperimentDetail, ExperimentProgress, ExperimentSummary, Method, Params, Result, RunInfo, StageState, StudioApi, StudioEvent, StudioEventListener } from '../../../main/api/contract.ts';
import { STATUS, model } from '../../test/fixture.ts';
import { joinTail } from './log-tail.ts';
import { Refresh } from './refresh.ts';

register('../../test/svelte-hooks.mjs', import.meta.url);
const { Studio } = await import('./studio.ts');

type Handler = (params: never) => unknown;

/** A studio API whose methods answer from `handlers` (a promise to hold an answer back), recording every call. */
class FakeApi implements StudioApi {
  readonly calls: { method: string; params: unknown }[] = [];
  readonly listeners = new Set<StudioEventListener>();
  constructor(readonly handlers: Partial<Record<Method, Handler>>) {}
  async call<M extends Method>(method: M, params: Params<M>): Promise<Result<M>> {
    this.calls.push({ method, params });
    const h = this.handlers[method];
    if (h === undefined) throw new Error(`no fake for ${method}`);
    return (await h(params as never)) as Result<M>;
  }
  onEvent(listener: StudioEventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  emit(e: StudioEvent): void {
    for (const l of this.listeners) l(e);
  }
  count(method: Method): number {
    return this.calls.filter((c) => c.method === method).length;
  }
}

/** A promise to resolve by hand: an answer held in flight. */
function later<T>(): { promise: Promise<T>; resolve(v: T): void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 0));
/** Past Refresh's gathering of a burst (50 ms). */
const afterBurst = (): Promise<void> => new Promise((r) => setTimeout(r, 80));

function run(id: number, status: RunInfo['status'], extra: Partial<RunInfo> = {}): RunInfo {
  return { id, experimentId: null, stage: 'import-model', status, config: {}, seed: null, provider: 'cpu', createdAt: '2025-01-01T00:00:00Z', startedAt: null, finishedAt: null, error: null, checkpointPath: null, result: null, ...extra };
}

function progress(experimentId: number, ...states: StageState[]): ExperimentProgress {
  return { experimentId, stages: states.map((state, i) => ({ id: `s${i}`, kind: 'sft', runId: state === 'pending' ? null : 100 + i, state })) };
}

function summary(id: number, name: string, p: ExperimentProgress, state: StageState): ExperimentSummary {
  return { id, name, createdAt: '2025-01-01T00:00:00Z', state, stages: p.stages.length, stagesDone: p.stages.filter((s) => s.state === 'done').length };
}

function detail(id: number, name: string, p: ExperimentProgress, runs: RunInfo[] = []): ExperimentDetail {
  return { id, name, createdAt: '2025-01-01T00:00:00Z', definition: {}, progress: p, runs };
}

function connected(handlers: Partial<Record<Method, Handler>>): { api: FakeApi; studio: InstanceType<typeof Studio>; disconnect: () => void } {
  const api = new FakeApi(handlers);
  const studio = new Studio(api);
  return { api, studio, disconnect: studio.connect() };
}

test('one subscription for the page, every event to every state class, and none after disconnecting', () => {
  const { api, studio, disconnect } = connected({});
  assert.equal(api.listeners.size, 1);
  api.emit({ type: 'run.status', run: run(1, 'running') });
  api.emit({ type: 'generation.token', streamId: 'x', index: 0, text: 'hi' });
  assert.equal(studio.runs.get(1)?.status, 'running');
  assert.equal(studio.generations.stream('x')?.text, 'hi');
  disconnect();
  assert.equal(api.listeners.size, 0);
});

test('runs: a status event replaces that run and a progress event records its step, with no call to the studio', () => {
  const { api, studio } = connected({});
  api.emit({ type: 'run.status', run: run(5, 'queued') });
  api.emit({ type: 'run.progress', runId: 5, step: 3, total: 10, unit: 'steps', fraction: 0.3, etaMs: 7000, rate: 1 });
  api.emit({ type: 'run.status', run: run(5, 'failed', { error: 'out of memory' }) });
  assert.deepEqual({ status: studio.runs.get(5)?.status, error: studio.runs.get(5)?.error }, { status: 'failed', error: 'out of memory' });
  assert.deepEqual(studio.runs.progress(5), { step: 3, total: 10, unit: 'steps', fraction: 0.3, etaMs: 7000 });
  assert.deepEqual(studio.runs.all.map((r) => r.id), [5]);
  assert.equal(api.calls.length, 0);
});

test('runs: an answer that left before a status event does not undo it', async () => {
  const held = later<{ run: RunInfo; metrics: []; logs: [] }>();
  const { api, studio } = connected({ 'runs.get': () => held.promise });
  const loading = studio.runs.load(9);
  api.emit({ type: 'run.status', run: run(9, 'done') });
  held.resolve({ run: run(9, 'running'), metrics: [], logs: [] });
  await loading;
  assert.equal(studio.runs.get(9)?.status, 'done');
  // Without an event meanwhile, the answer is taken.
  await studio.runs.load(9);
  assert.equal(studio.runs.get(9)?.status, 'running');
});

test('runs: metric events before the series are read are left to the read, those during it are added, those after extend it', async () => {
  const held = later<{ name: string; points: { step: number; value: number | null }[] }[]>();
  const { api, studio } = connected({ 'runs.metrics': () => held.promise });
  api.emit({ type: 'run.metric', runId: 3, step: 1, values: { loss: 3 } });
  assert.equal(studio.runs.metrics(3), undefined);
  const loading = studio.runs.loadMetrics(3);
  api.emit({ type: 'run.metric', runId: 3, step: 3, values: { loss: 2 } });
  held.resolve([{ name: 'loss', points: [{ step: 1, value: 3 }, { step: 2, value: 2.5 }] }]);
  await loading;
  api.emit({ type: 'run.metric', runId: 3, step: 4, values: { loss: 1.5, reward: 0.2 } });
  assert.deepEqual(studio.runs.metrics(3), [
    { name: 'loss', points: [{ step: 1, value: 3 }, { step: 2, value: 2.5 }, { step: 3, value: 2 }, { step: 4, value: 1.5 }] },
    { name: 'reward', points: [{ step: 4, value: 0.2 }] },
  ]);
  await studio.runs.loadMetrics(3);
  assert.equal(api.count('runs.metrics'), 1, 'read once; events keep it current');
});

test('runs: log lines that came while the tail was read are kept once, and later ones are added', async () => {
  const held = later<{ id: number; runId: number; at: string; level: 'info'; text: string }[]>();
  const { api, studio } = connected({ 'runs.logs': () => held.promise });
  const line = (id: number, text: string) => ({ id, runId: 2, at: '2025-01-01T00:00:00Z', level: 'info' as const, text });
  const loading = studio.runs.loadLogs(2);
  for (const text of ['step 2', 'step 3']) api.emit({ type: 'run.log', runId: 2, level: 'info', text });
  held.resolve([line(1, 'start'), line(2, 'step 2')]);
  await loading;
  api.emit({ type: 'run.log', runId: 2, level: 'warn', text: 'slow' });
  assert.deepEqual(studio.runs.logs(2)?.map((l) => l.text), ['start', 'step 2', 'step 3', 'slow']);
  assert.equal(studio.runs.logs(2)?.at(-1)?.level, 'warn');
});

test('runs: cancelling keeps the studio\'s answer; the list is read when a view shows it', async () => {
  const { studio } = connected({ 'runs.cancel': () => run(4, 'cancelled'), 'runs.list': () => [run(4, 'running'), run(7, 'done')] });
  assert.equal(studio.runs.listed, false);
  studio.runs.watchAll();
  await settle();
  assert.equal(studio.runs.listed, true);
  assert.deepEqual(studio.runs.all.map((r) => [r.id, r.status]), [[7, 'done'], [4, 'running']]);
  await studio.runs.cancel(4);
  assert.equal(studio.runs.get(4)?.status, 'cancelled');
});

test('experiments: a progress event updates the summary by the server\'s rule and the opened experiment, without reading the list again', async () => {
  const p = progress(7, 'done', 'pending');
  const { api, studio } = connected({
    'experiments.list': () => [summary(7, 'quick', p, 'pending')],
    'experiments.get': () => detail(7, 'quick', p, [run(100, 'done', { experimentId: 7, stage: 'afd-stage' })]),
  });
  studio.experiments.watch();
  await studio.experiments.open(7);
  assert.equal(studio.runs.get(100)?.status, 'done', 'the runs of an opened experiment go to the runs');
  api.emit({ type: 'experiment.progress', progress: progress(7, 'done', 'running') });
  assert.deepEqual(studio.experiments.list, [summary(7, 'quick', progress(7, 'done', 'running'), 'running')]);
  assert.equal(studio.experiments.get(7)?.progress.stages[1].state, 'running');
  api.emit({ type: 'experiment.progress', progress: progress(7, 'done', 'done') });
  assert.deepEqual(studio.experiments.list?.map((x) => [x.state, x.stagesDone]), [['done', 2]]);
  await afterBurst();
  assert.equal(api.count('experiments.list'), 1);
  assert.equal(api.count('experiments.get'), 1);
});

test('experiments: one started here joins the list at once; one started elsewhere reads the list once per burst while a view shows it', async () => {
  let listed = [summary(1, 'old', progress(1, 'done'), 'done')];
  const { api, studio } = connected({
    'experiments.list': () => listed,
    'experiments.start': () => detail(2, 'new', progress(2, 'queued', 'pending')),
  });
  const unwatch = studio.experiments.watch();
  await settle();
  const started = await studio.experiments.start({ name: 'new' });
  assert.equal(started.id, 2);
  assert.deepEqual(studio.experiments.list?.map((x) => [x.id, x.state]), [[2, 'queued'], [1, 'done']]);

  listed = [summary(3, 'cli', progress(3, 'running'), 'running'), ...listed];
  for (let i = 0; i < 3; i++) api.emit({ type: 'experiment.progress', progress: progress(3, 'running') });
  await afterBurst();
  assert.equal(api.count('experiments.list'), 2);
  assert.deepEqual(studio.experiments.list?.map((x) => x.id), [3, 1]);
  unwatch();
  api.emit({ type: 'experiment.progress', progress: progress(4, 'running') });
  await afterBurst();
  assert.equal(api.count('experiments.list'), 2, 'no view shows the list: the next one reads it');
});

test('experiments: a list read while progress came keeps the progress', async () => {
  const held = later<ExperimentSummary[]>();
  const { api, studio } = connected({ 'experiments.list': () => held.promise });
  studio.experiments.watch();
  api.emit({ type: 'experiment.progress', progress: progress(5, 'done', 'done') });
  held.resolve([summary(5, 'x', progress(5, 'done', 'running'), 'running')]);
  await settle();
  assert.deepEqual(studio.experiments.list?.map((x) => [x.state, x.stagesDone]), [['done', 2]]);
});

test('models: read when a view shows them, and again once per burst of finished runs while one does', async () => {
  let models = [model(1, 'default')];
  const { api, studio } = connected({ 'models.list': () => models });
  api.emit({ type: 'run.status', run: run(1, 'done') });
  await afterBurst();
  assert.equal(api.count('models.list'), 0);
  const unwatchModels = studio.models.watch();
  const unwatchCompare = studio.models.watch();
  await settle();
  assert.equal(api.count('models.list'), 1, 'two views opening share one read');
  models = [model(2, 'imported'), ...models];
  api.emit({ type: 'run.status', run: run(2, 'running') });
  for (const id of [2, 3, 4]) api.emit({ type: 'run.status', run: run(id, 'done') });
  await afterBurst();
  assert.equal(api.count('models.list'), 2);
  assert.deepEqual(studio.models.list?.map((m) => m.name), ['imported', 'default']);
  unwatchModels();
  unwatchModels();
  api.emit({ type: 'run.status', run: run(5, 'done') });
  await afterBurst();
  assert.equal(api.count('models.list'), 3, 'one view still shows them');
  unwatchCompare();
  api.emit({ type: 'run.status', run: run(6, 'done') });
  await afterBurst();
  assert.equal(api.count('models.list'), 3, 'no view shows them');
});

test('status: read again once per burst of run and generation events; what runs, in words', async () => {
  let status = STATUS;
  const { api, studio } = connected({ 'status': () => status });
  studio.status.watch();
  await settle();
  assert.equal(studio.status.activity, 'idle');
  assert.equal(studio.status.device?.provider, 'cpu');
  status = { ...STATUS, runningGenerations: 4, runningRuns: [7] };
  for (const id of ['a', 'b', 'c', 'd']) api.emit({ type: 'generation.phase', streamId: id, phase: 'queued', done: 0, total: null, etaMs: null });
  api.emit({ type: 'generation.token', streamId: 'a', index: 0, text: 'x' });
  await afterBurst();
  assert.equal(api.count('status'), 2);
  assert.equal(studio.status.activity, '4 generations · 1 job running');
});

test('status: a refresh asked while a read is in flight reads once more after it', async () => {
  const held = later<typeof STATUS>();
  let answer: () => unknown = () => held.promise;
  const { api, studio } = connected({ 'status': () => answer() });
  studio.status.watch();
  const again = studio.status.refresh();
  assert.equal(api.count('status'), 1);
  answer = () => ({ ...STATUS, version: '0.2.0' });
  held.resolve(STATUS);
  await again;
  assert.equal(api.count('status'), 2);
  assert.equal(studio.status.current?.version, '0.2.0');
});

test('generations: streams from their events; the loaded models read again after a generation ends while a view shows them', async () => {
  const cache = { budgetBytes: 4e9, usedBytes: 0, models: [] };
  const { api, studio } = connected({ 'generation.cache': () => cache, 'generation.unload': () => cache });
  api.emit({ type: 'generation.phase', streamId: 's', phase: 'generating', done: 0, total: 8, etaMs: null });
  api.emit({ type: 'generation.token', streamId: 's', index: 0, text: 'Boil' });
  api.emit({ type: 'generation.done', streamId: 's', text: 'Boil.', tokens: 2, finishReason: 'eos', error: null, generationId: 1 });
  assert.deepEqual({ text: studio.generations.stream('s')?.text, done: studio.generations.stream('s')?.done }, { text: 'Boil.', done: true });
  await afterBurst();
  assert.equal(api.count('generation.cache'), 0);
  studio.generations.watchCache();
  await settle();
  api.emit({ type: 'generation.done', streamId: 't', text: '', tokens: 0, finishReason: 'eos', error: null, generationId: 2 });
  await afterBurst();
  assert.equal(api.count('generation.cache'), 2);
});

test('generations: the oldest finished streams are let go past a thousand, unfinished ones are kept', () => {
  const { api, studio } = connected({});
  api.emit({ type: 'generation.token', streamId: 'open', index: 0, text: 'still going' });
  for (let i = 0; i < 1001; i++) api.emit({ type: 'generation.done', streamId: `d${i}`, text: '', tokens: 0, finishReason: 'eos', error: null, generationId: null });
  assert.equal(studio.generations.stream('d0'), undefined);
  assert.notEqual(studio.generations.stream('d1'), undefined);
  assert.equal(studio.generations.stream('open')?.text, 'still going');
  assert.equal(Object.keys(studio.generations.streams).length, 1001);
});

test('app log: the tail once, lines during it kept once, then events', async () => {
  const held = later<{ at: string; level: 'info'; text: string }[]>();
  const { api, studio } = connected({ 'logs.app': () => held.promise });
  const line = (at: string, text: string) => ({ at, level: 'info' as const, text });
  api.emit({ type: 'app.log', line: line('t0', 'before') });
  const loading = studio.appLog.load();
  api.emit({ type: 'app.log', line: line('t2', 'b') });
  held.resolve([line('t0', 'before'), line('t1', 'a'), line('t2', 'b')]);
  await loading;
  api.emit({ type: 'app.log', line: line('t3', 'c') });
  await studio.appLog.load();
  assert.deepEqual(studio.appLog.lines?.map((l) => l.text), ['before', 'a', 'b', 'c']);
  assert.equal(api.count('logs.app'), 1);
});

test('joinTail: the overlap between a tail and the lines buffered while it was read is kept once', () => {
  const same = (a: string, b: string): boolean => a === b;
  assert.deepEqual(joinTail(['a', 'b', 'c'], ['b', 'c', 'd'], same), ['a', 'b', 'c', 'd']);
  assert.deepEqual(joinTail(['a', 'b'], ['c'], same), ['a', 'b', 'c']);
  assert.deepEqual(joinTail([], ['c'], same), ['c']);
  assert.deepEqual(joinTail(['a', 'b'], [], same), ['a', 'b']);
  // Not an overlap: 'b' does not end the tail.
  assert.deepEqual(joinTail(['b', 'a'], ['b'], same), ['b', 'a', 'b']);
});

test('Refresh: views opening together share a read; soon() gathers a burst, only while watched', async () => {
  let reads = 0;
  const r = new Refresh(async () => void reads++, 10);
  r.soon();
  await new Promise((ok) => setTimeout(ok, 30));
  assert.equal(reads, 0);
  r.watch();
  r.watch();
  await settle();
  assert.equal(reads, 1);
  for (let i = 0; i < 5; i++) r.soon();
  await new Promise((ok) => setTimeout(ok, 30));
  assert.equal(reads, 2);
  r.soon();
  r.cancel();
  await new Promise((ok) => setTimeout(ok, 30));
  assert.equal(reads, 2);
  await settle();
});

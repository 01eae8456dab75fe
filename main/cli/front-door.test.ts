// One front door: each `afd ... --json` prints what the StudioService method behind it
// returns for the same store (the window and `afd serve` call the same methods); the
// commands that start jobs start them through the service's methods, and refusals are
// the service's sentences.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { MetricStore } from '../../db/metrics.ts';
import { RunLogStore } from '../../db/run-logs.ts';
import { RunStore } from '../../db/runs.ts';
import { StudioService } from '../api/service.ts';
import { JobRunner } from '../jobs/runner.ts';
import { processOwner } from '../jobs/owner.ts';
import { openStudio } from '../startup/open-studio.ts';
import { FakeGeneration } from '../api/testing.ts';
import { DEFAULT_MODEL_DIR } from '../models/builtin.ts';

const AFD = fileURLToPath(new URL('../../bin/afd.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'afd-front-door-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const db = join(dir, 'studio.db');

async function afd(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [AFD, ...args, '--db', db], { env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip' } });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** Calls `fn` with the service the window would open over the same store. */
async function withWindowService<T>(fn: (service: StudioService) => Promise<T>): Promise<T> {
  const studio = await openStudio(db);
  const runner = new JobRunner({ db: studio.db, files: studio.files });
  const service = new StudioService({ db: studio.db, runner, settingsFile: null, generation: new FakeGeneration() });
  try {
    return await fn(service);
  } finally {
    await service.close();
    await runner.close();
    studio.close();
  }
}

test('afd runs list/show --json print what runs.list/runs.get return, without the runner\'s owner and control', async () => {
  // A running run owned by this (live) process with a pause asked, and a finished one
  // with metrics, log lines and a checkpoint.
  const studio = await openStudio(db);
  const runs = new RunStore(studio.db);
  const live = runs.insert({ stage: 'train-tiny-lm', config: { steps: 10 }, seed: 3, owner: processOwner() });
  runs.setStatus(live.id, 'running', { owner: processOwner(), provider: 'cpu' });
  assert.ok(runs.requestControl(live.id, 'pause'));
  const done = runs.insert({ stage: 'train-tiny-lm', config: { steps: 2 } });
  runs.setStatus(done.id, 'done', { result: { steps: 2, finalLoss: 1.5 }, checkpointPath: `runs/${done.id}/checkpoint.safetensors` });
  new MetricStore(studio.db).log(done.id, 1, { loss: 2, grad_norm: Number.NaN });
  new MetricStore(studio.db).log(done.id, 2, { loss: 1.5 });
  for (let i = 1; i <= 3; i++) new RunLogStore(studio.db).append(done.id, 'info', `Line ${i}.`);
  const checkpoint = studio.files.absolute(`runs/${done.id}/checkpoint.safetensors`);
  studio.close();

  const listed = await afd('runs', 'list', '--json');
  assert.equal(listed.code, 0, listed.stderr);
  const printed = JSON.parse(listed.stdout) as Record<string, unknown>[];
  const running = await afd('runs', 'list', '--json', '--status', 'running');
  const table = await afd('runs', 'list');
  const shown = await afd('runs', 'show', String(done.id), '--json');
  assert.equal(shown.code, 0, shown.stderr);
  const twoLines = await afd('runs', 'show', String(done.id), '--json', '--logs', '2');
  const noLines = await afd('runs', 'show', String(done.id), '--json', '--logs', '0');
  const liveShown = await afd('runs', 'show', String(live.id));
  const liveJson = await afd('runs', 'show', String(live.id), '--json');
  await withWindowService(async (service) => {
    assert.deepEqual(printed, await service.call('runs.list', {}));
    assert.equal(printed.length, 2);
    for (const r of printed) assert.ok(!('owner' in r) && !('control' in r), `run #${String(r.id)} shows the runner's fields`);
    // Each run's last step, which the table's step column shows.
    assert.deepEqual(printed.map((r) => [r.id, r.lastStep]), [[done.id, 2], [live.id, null]]);
    assert.match(table.stdout, new RegExp(`\\n\\s*${done.id}\\s+train-tiny-lm\\s+done\\s+2/2\\s`));
    assert.deepEqual(JSON.parse(running.stdout), await service.call('runs.list', { status: 'running' }));
    // One run: runs.get's result as it is, its last lines as many as --logs says (20 by default).
    const detail = await service.call('runs.get', { runId: done.id, logs: 20 });
    assert.deepEqual(JSON.parse(shown.stdout), detail);
    assert.equal(detail.checkpointFile, checkpoint);
    assert.deepEqual(detail.logs.map((l) => l.text), ['Line 1.', 'Line 2.', 'Line 3.']);
    assert.deepEqual(JSON.parse(twoLines.stdout), await service.call('runs.get', { runId: done.id, logs: 2 }));
    assert.deepEqual((JSON.parse(noLines.stdout) as { logs: unknown[] }).logs, []);
    // The pause asked of the running run (by another process) is said, though the runner's control field is not shown.
    assert.equal(detail.asked, null);
    assert.deepEqual(JSON.parse(liveJson.stdout), await service.call('runs.get', { runId: live.id, logs: 20 }));
    assert.equal((JSON.parse(liveJson.stdout) as { asked: string }).asked, 'pause');
    assert.match(liveShown.stdout, /\n {2}asked to pause: it stops at its next step boundary\n/);
  });
});

test('a missing run, a bad status, format or provider are refused in the service\'s sentences, word for word', async () => {
  for (const command of ['show', 'cancel', 'pause', 'resume']) {
    const r = await afd('runs', command, '998');
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `afd runs ${command}: There is no run #998; check the number with \`afd runs list\`.\n`);
  }
  await withWindowService(async (service) => {
    // Refusals of what the CLI passes on as given: the service's sentence, word for word.
    const refusal = (method: Parameters<StudioService['dispatch']>[0], params: unknown): Promise<string> => service.dispatch(method, params).then(() => assert.fail(`${String(method)} was accepted`), (err: Error) => err.message);
    const bad = await afd('runs', 'list', '--status', 'finished');
    assert.equal(bad.code, 1);
    assert.equal(bad.stderr, `afd runs list: ${await refusal('runs.list', { status: 'finished' })}\n`);
    const format = await afd('datasets', 'import', join(dir, 'any.xml'), '--name', 'x', '--format', 'xml');
    assert.equal(format.stderr, `afd datasets import: ${await refusal('datasets.importFile', { path: join(dir, 'any.xml'), name: 'x', format: 'xml' })}\n`);
    const provider = await afd('train-tiny', '--steps', '2', '--provider', 'tpu');
    assert.equal(provider.stderr, `afd train-tiny: ${await refusal('runs.start', { kind: 'train-tiny-lm', config: { steps: 2, provider: 'tpu' } })}\n`);
  });
});

test('afd datasets list/show --json and export print what datasets.list/examples/export return', async () => {
  const file = join(dir, 'fruit.jsonl');
  writeFileSync(file, ['apples', 'pears', 'apple pie'].map((w) => `${JSON.stringify({ prompt: `Tell me about ${w}`, response: `${w} are nice` })}\n`).join(''));
  assert.equal((await afd('datasets', 'import', file, '--name', 'fruit', '--eval-fraction', '0')).code, 0);
  const listed = await afd('datasets', 'list', '--json');
  const shown = await afd('datasets', 'show', 'fruit', '--json', '--search', 'apple', '--limit', '5', '--offset', '1');
  const out = join(dir, 'fruit-out.jsonl');
  const exported = await afd('datasets', 'export', 'fruit', '--out', out, '--split', 'train');
  const piped = await afd('datasets', 'export', 'fruit');
  const pipedEval = await afd('datasets', 'export', 'fruit', '--split', 'eval');
  await withWindowService(async (service) => {
    const datasets = await service.call('datasets.list', {});
    assert.deepEqual(JSON.parse(listed.stdout), datasets);
    const [fruit] = datasets;
    assert.equal(fruit.examples, 3);
    // One page of examples: the page's items (lists are arrays).
    assert.deepEqual(JSON.parse(shown.stdout), (await service.call('datasets.examples', { datasetId: fruit.id, text: 'apple', limit: 5, offset: 1 })).items);
    const whole = await service.call('datasets.export', { datasetId: fruit.id, split: 'train' });
    assert.equal(exported.stderr, `Exported ${whole.lines} examples of "fruit" to ${out}.\n`);
    assert.equal(readFileSync(out, 'utf8'), whole.content);
    assert.equal(piped.stdout, (await service.call('datasets.export', { datasetId: fruit.id })).content);
    assert.equal(pipedEval.stdout, '');
  });
});

test('afd datasets import starts datasets.importFile: a chat-template model by folder (--model) imports as the stored model does', async () => {
  const file = join(dir, 'chat.jsonl');
  writeFileSync(file, `${JSON.stringify({ messages: [{ role: 'user', content: 'Is the sky blue?' }, { role: 'assistant', content: 'Yes, on a clear day.' }] })}\n`);
  const imported = await afd('datasets', 'import', file, '--name', 'chat-cli', '--model', DEFAULT_MODEL_DIR);
  assert.equal(imported.code, 0, imported.stderr);
  await withWindowService(async (service) => {
    const [builtin] = (await service.call('models.list', {})).filter((m) => m.kind === 'builtin');
    const run = await service.call('datasets.importFile', { path: file, name: 'chat-api', chatModelId: builtin.id });
    await service.runner.settled(run.id);
    const [cli] = (await service.call('runs.list', {})).filter((r) => r.stage === 'import-dataset' && r.config.name === 'chat-cli');
    assert.deepEqual(cli.config, { ...(await service.call('runs.get', { runId: run.id })).run.config, name: 'chat-cli' });
    const examples = async (name: string) => {
      const d = (await service.call('datasets.list', {})).find((x) => x.name === name)!;
      return (await service.call('datasets.examples', { datasetId: d.id })).items.map((e) => [e.prompt, e.response]);
    };
    assert.deepEqual(await examples('chat-cli'), await examples('chat-api'));
    assert.equal((await examples('chat-cli'))[0][0], '\n\nHuman: Is the sky blue?\n\nAssistant:');
    await assert.rejects(service.call('datasets.importFile', { path: file, name: 'x', chatModelId: builtin.id, chatModelDir: DEFAULT_MODEL_DIR }), /names a chat-template model twice/);
  });
});

test('afd models import and export to GGUF start their jobs through models.import and models.export', async () => {
  const { exportHfModel } = await import('../../native-models/checkpoint/index.ts');
  const { gpt2Defaults, gpt2Family } = await import('../../native-models/models/gpt2.ts');
  const { Rng } = await import('../../native-models/train/rng.ts');
  const config = gpt2Defaults({ vocabSize: 30, nPositions: 8, nEmbd: 8, nLayer: 2, nHead: 2 });
  const src = join(dir, 'hf-mini');
  await exportHfModel(src, { family: gpt2Family, config, weights: gpt2Family.init(config, new Rng(1)) });
  const imported = await afd('models', 'import', src, '--name', 'mini');
  assert.equal(imported.code, 0, imported.stderr);
  // The export's type is checked by the service's validator, before any job starts.
  const bad = await afd('models', 'export', 'mini', '--format', 'gguf', '--type', 'q4', '--out', join(dir, 'mini.gguf'));
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /^afd models export: The request "models\.export" was refused: type must be one of [^\n]*"q4"\.\n$/);
  await withWindowService(async (service) => {
    const [run] = (await service.call('runs.list', {})).filter((r) => r.stage === 'import-model');
    assert.deepEqual([run.status, run.config.dir, run.config.name], ['done', src, 'mini']);
    assert.ok((await service.call('models.list', {})).some((m) => m.name === 'mini' && m.family === 'gpt2'));
  });
  // models list --json: models.list's ModelInfo, the embedded model included, each with its folder.
  const listed = await afd('models', 'list', '--json');
  assert.equal(listed.code, 0, listed.stderr);
  await withWindowService(async (service) => {
    const models = await service.call('models.list', {});
    assert.deepEqual(JSON.parse(listed.stdout), models);
    assert.equal(models.find((m) => m.kind === 'builtin')?.folder, DEFAULT_MODEL_DIR);
    assert.ok(models.every((m) => m.folder !== null));
  });
});

test('afd train-tiny starts its job through runs.start', async () => {
  const trained = await afd('train-tiny', '--steps', '2', '--seed', '5');
  assert.equal(trained.code, 0, trained.stderr);
  const id = Number(/^Run #(\d+) trained 2 steps/.exec(trained.stdout)?.[1]);
  await withWindowService(async (service) => {
    const { run } = await service.call('runs.get', { runId: id });
    // The config the CLI gave, with the defaults the kind records: as runs.start records it.
    const started = await service.call('runs.start', { kind: 'train-tiny-lm', config: { steps: 2, seed: 5 } });
    await service.call('runs.cancel', { runId: started.id });
    await service.runner.settled(started.id);
    assert.deepEqual(run.config, started.config);
    assert.equal(run.status, 'done');
  });
});

test('afd run FILE and afd export trl FILE go through the service: stage lines from its events, --json prints its results, --resume keeps finished stages', async () => {
  const file = join(dir, 'one-stage.json');
  const definition = {
    name: 'one-stage', model: 'default', data: { source: 'hh-harmless', evalFraction: 0.2, maxTrain: 4, maxEval: 2 },
    stages: [{ id: 'init-eval', kind: 'sample', model: 'pi0', split: 'eval', n: 1, maxNewTokens: 4 }],
  };
  writeFileSync(file, JSON.stringify(definition));
  const first = await afd('run', file, '--json');
  assert.equal(first.code, 0, first.stderr);
  const [, id, runId] = /^Experiment #(\d+) \(one-stage\): 1 stages\.\n\[1\/1\] init-eval \(sample, run #(\d+)\)\n/.exec(first.stderr) ?? assert.fail(first.stderr);
  assert.match(first.stderr, new RegExp(`Experiment #${id} done after `));
  const again = await afd('run', file, '--resume');
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, new RegExp(`^Resuming experiment #${id} \\(one-stage\\): finished stages are kept unless their settings changed\\.\\n\\[1/1\\] init-eval \\(sample, run #${runId}, finished earlier: kept\\)\\n`));
  const exported = await afd('export', 'trl', file, '--out', join(dir, 'trl-cli'), '--json');
  assert.equal(exported.code, 0, exported.stderr);
  await withWindowService(async (service) => {
    // No eval stage, so no results table: the experiment's stages, as experiments.get has them.
    assert.equal(await service.call('results.get', { experimentId: Number(id) }), null);
    assert.deepEqual(JSON.parse(first.stdout), { experimentId: Number(id), stages: (await service.call('experiments.get', { experimentId: Number(id) })).progress.stages });
    const viaApi = await service.call('experiments.exportTrl', { definition, out: join(dir, 'trl-api') });
    assert.deepEqual({ ...JSON.parse(exported.stdout), out: '' }, { ...viaApi, out: '' });
  });
});

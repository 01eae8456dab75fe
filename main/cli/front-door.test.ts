// One front door: `afd runs ... --json` prints what the StudioService's runs.* methods
// return for the same store (the window and `afd serve` call the same methods), and a
// missing run is refused in the service's sentence.
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
  // A running run owned by this (live) process with a pause asked, and a finished one.
  const studio = await openStudio(db);
  const runs = new RunStore(studio.db);
  const live = runs.insert({ stage: 'train-tiny-lm', config: { steps: 10 }, seed: 3, owner: processOwner() });
  runs.setStatus(live.id, 'running', { owner: processOwner(), provider: 'cpu' });
  assert.ok(runs.requestControl(live.id, 'pause'));
  const done = runs.insert({ stage: 'train-tiny-lm', config: { steps: 2 } });
  runs.setStatus(done.id, 'done', { result: { steps: 2, finalLoss: 1.5 } });
  new MetricStore(studio.db).log(done.id, 1, { loss: 2, grad_norm: Number.NaN });
  new RunLogStore(studio.db).append(done.id, 'info', 'Started on cpu.');
  studio.close();

  const listed = await afd('runs', 'list', '--json');
  assert.equal(listed.code, 0, listed.stderr);
  const printed = JSON.parse(listed.stdout) as Record<string, unknown>[];
  const running = await afd('runs', 'list', '--json', '--status', 'running');
  const shown = await afd('runs', 'show', String(done.id), '--json');
  assert.equal(shown.code, 0, shown.stderr);
  await withWindowService(async (service) => {
    assert.deepEqual(printed, await service.call('runs.list', {}));
    assert.equal(printed.length, 2);
    for (const r of printed) assert.ok(!('owner' in r) && !('control' in r), `run #${String(r.id)} shows the runner's fields`);
    assert.deepEqual(JSON.parse(running.stdout), await service.call('runs.list', { status: 'running' }));
    // One run: runs.get's run and metrics, with the log's last lines and the checkpoint file.
    const detail = await service.call('runs.get', { runId: done.id });
    assert.deepEqual(JSON.parse(shown.stdout), { ...detail.run, checkpointFile: null, metrics: detail.metrics, logs: detail.logs });
  });
});

test('a missing run and a bad status are refused in the service\'s sentences', async () => {
  for (const command of ['show', 'cancel', 'pause', 'resume']) {
    const r = await afd('runs', command, '998');
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `afd runs ${command}: There is no run #998; check the number with \`afd runs list\`.\n`);
  }
  const bad = await afd('runs', 'list', '--status', 'finished');
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /^afd runs list: [^\n]*status[^\n]*finished[^\n]*\n$/);
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
});

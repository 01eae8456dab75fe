// The service over a throwaway store: datasets (upload as a job, browse, edit with
// history, export, statistics), runs, streamed generation, blind A/B voting (random,
// recorded order; the tally), status and settings, experiments through a fake pipeline.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { GenerationStore } from '../../db/generations.ts';
import { JudgmentStore } from '../../db/judgments.ts';
import { ModelStore } from '../../db/models.ts';
import { withTempDir } from '../../test/support/temp-dir.ts';
import type { ExperimentDefinition, ExperimentProgress } from '../experiments/contract.ts';
import type { Pipeline, RunningExperiment } from '../experiments/pipeline.ts';
import type { StudioEvent } from './contract.ts';
import { ValidationError } from './contract.ts';
import { histogram } from './datasets.ts';
import { loadPipeline } from './experiments.ts';
import { openTestStudio } from './testing.ts';

// A fixed sequence of "random" numbers makes the shown order checkable.
let randoms: number[] = [];
const studio = await openTestStudio({ random: () => randoms.shift() ?? 0.3 });
const { service } = studio;
after(() => studio.close());

const JSONL = [
  { prompt: 'How do I bake bread?', response: 'Mix flour, water, yeast and salt; knead; let it rise; bake.', tags: ['cooking'] },
  { prompt: 'Tell me a joke', response: 'Why did the chicken cross the road?' },
  { prompt: 'Which is better?', chosen: 'A kind answer.', rejected: 'A rude answer.' },
  { prompt: 'Say hi', response: 'Hi!', split: 'eval' },
].map((r) => JSON.stringify(r)).join('\n');

test('an uploaded file imports as a job with progress; list, examples, edit, history, export, stats', async () => {
  const run = await service.call('datasets.importText', { name: 'demo', fileName: 'demo.jsonl', content: JSONL });
  assert.equal(run.stage, 'import-dataset');
  const done = await studio.next((e) => e.type === 'run.status' && e.run.id === run.id && ['done', 'failed'].includes(e.run.status));
  assert.equal(done.type === 'run.status' && done.run.status, 'done', JSON.stringify(done));
  assert.ok(studio.events.some((e) => e.type === 'run.progress' && e.runId === run.id), 'progress events were sent');
  // The upload's temporary file is removed once the run has settled.
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(existsSync(String(run.config.file)), false);

  const [d] = await service.call('datasets.list', {});
  assert.equal(d.name, 'demo');
  assert.equal(d.examples, 4);

  const page = await service.call('datasets.examples', { datasetId: d.id, text: 'bread', limit: 10 });
  assert.equal(page.total, 1);
  const bread = page.items[0];
  assert.deepEqual(bread.tags, []);
  const evalPage = await service.call('datasets.examples', { datasetId: d.id, split: 'eval' });
  assert.equal(evalPage.total, d.eval);
  assert.ok(evalPage.items.every((x) => x.split === 'eval'));

  const edited = await service.call('datasets.updateExample', { exampleId: bread.id, patch: { response: 'Use a recipe.', tags: ['cooking', 'edited'] } });
  assert.equal(edited.example.response, 'Use a recipe.');
  assert.deepEqual(edited.history.map((h) => h.field).sort(), ['response', 'tags']);
  assert.equal(edited.history.find((h) => h.field === 'response')?.oldValue, JSON.parse(JSONL.split('\n')[0]).response);
  assert.deepEqual(await service.call('datasets.history', { exampleId: bread.id }), edited.history);

  const exported = await service.call('datasets.export', { datasetId: d.id });
  assert.equal(exported.lines, 4);
  assert.equal(exported.fileName, 'demo.jsonl');
  assert.match(exported.content ?? '', /Use a recipe\./);
  await withTempDir('api-export', async (dir) => {
    const path = join(dir, 'out.jsonl');
    const written = await service.call('datasets.export', { datasetId: d.id, split: 'train', path });
    assert.equal(written.content, null);
    assert.equal(readFileSync(path, 'utf8').trim().split('\n').length, written.lines);
  });

  const stats = await service.call('datasets.stats', { datasetId: d.id, bins: 4 });
  assert.equal(stats.examples, 4);
  assert.equal(stats.withPair, 1);
  assert.ok(stats.withResponse >= 3);
  assert.equal(stats.responseHistogram.counts.reduce((a, b) => a + b, 0), 4);
  assert.equal(stats.responseLength?.min, 3);
  assert.deepEqual(stats.tags, [{ tag: 'cooking', count: 1 }, { tag: 'edited', count: 1 }]);

  const runs = await service.call('runs.list', {});
  assert.equal(runs[0].id, run.id);
  assert.equal('owner' in runs[0], false);
  const detail = await service.call('runs.get', { runId: run.id });
  assert.equal(detail.run.status, 'done');
});

test('runs: start a startable kind (its config checked by the kind), list with each last step, get with its log lines and checkpoint file', async () => {
  await assert.rejects(service.call('runs.start', { kind: 'train-tiny-lm', config: { stepz: 2 } }), /has no key 'stepz'; did you mean 'steps'\?/);
  const started = await service.call('runs.start', { kind: 'train-tiny-lm', config: { steps: 2 } });
  assert.equal(started.stage, 'train-tiny-lm');
  assert.equal(started.config.checkpointEvery, 1, 'the kind records its defaults');
  const run = await service.runner.settled(started.id);
  assert.equal(run.status, 'done', run.error ?? '');
  const listed = (await service.call('runs.list', {})).find((r) => r.id === run.id);
  assert.equal(listed?.lastStep, 2);
  assert.ok((await service.call('runs.list', {})).some((r) => r.stage === 'import-dataset' && r.lastStep === null), 'a run without metrics has no last step');
  const detail = await service.call('runs.get', { runId: run.id, logs: 1 });
  assert.equal(detail.logs.length, 1);
  assert.equal(detail.checkpointFile, service.runner.files.absolute(run.checkpointPath!));
  assert.equal((await service.call('runs.get', { runId: run.id })).logs.length, (await service.call('runs.logs', { runId: run.id, limit: 50 })).length);
});

test('chat lines ({messages}) import with the chosen model\'s chat template, and are refused without one', async () => {
  const chat = JSON.stringify({ messages: [{ role: 'user', content: 'Is the sky blue?' }, { role: 'assistant', content: 'Yes, on a clear day.' }] });
  const settle = async (run: { id: number }) => {
    const e = await studio.next((x) => x.type === 'run.status' && x.run.id === run.id && ['done', 'failed'].includes(x.run.status));
    return e.type === 'run.status' ? e.run : undefined;
  };
  const refused = await settle(await service.call('datasets.importText', { name: 'chat-refused', fileName: 'chat.jsonl', content: chat }));
  assert.equal(refused?.status, 'failed');
  assert.match(refused?.error ?? '', /chat template of a model/);

  const [builtin] = (await service.call('models.list', {})).filter((m) => m.kind === 'builtin');
  const run = await service.call('datasets.importText', { name: 'chat', fileName: 'chat.jsonl', content: chat, chatModelId: builtin.id });
  assert.equal((await settle(run))?.status, 'done');
  const d = (await service.call('datasets.list', {})).find((x) => x.name === 'chat')!;
  const [example] = (await service.call('datasets.examples', { datasetId: d.id })).items;
  // The embedded model's template is the HH transcript format.
  assert.equal(example.prompt, '\n\nHuman: Is the sky blue?\n\nAssistant:');
  assert.equal(example.response?.trim(), 'Yes, on a clear day.');
  await assert.rejects(service.call('datasets.importText', { name: 'x', fileName: 'chat.jsonl', content: chat, chatModelId: 999999 }), /There is no model #999999/);
  await assert.rejects(service.call('datasets.importText', { name: 'x', fileName: 'chat.jsonl', content: chat, chatModelDir: 'models/default' }), /"models\/default" is not an absolute path/);
});

test('failures and refusals reject with a sentence', async () => {
  await assert.rejects(service.call('datasets.examples', { datasetId: 999 }), /^Error: There is no dataset #999/);
  await assert.rejects(service.dispatch('datasets.examples', { datasetId: -1 }), ValidationError);
  await assert.rejects(service.call('datasets.importFile', { path: 'relative.jsonl', name: 'x' }), /not an absolute path/);
  await assert.rejects(service.call('datasets.importText', { name: 'demo', fileName: 'again.jsonl', content: JSONL }), /already exists/);
  assert.ok((await service.call('logs.app', {})).some((l) => l.level === 'warn' && /no dataset #999/.test(l.text)));
});

test('histogram bins cover every value', () => {
  assert.deepEqual(histogram([0, 1, 2, 3, 10], 5), { edges: [0, 3, 6, 9, 12], counts: [3, 1, 0, 1] });
  assert.deepEqual(histogram([], 5), { edges: [], counts: [] });
  assert.deepEqual(histogram([7, 7], 3), { edges: [7, 8], counts: [2] });
});

test('models: the embedded model is listed; generation streams tokens and stores the response', async () => {
  const models = await service.call('models.list', {});
  const builtin = models.find((m) => m.kind === 'builtin');
  assert.ok(builtin !== undefined);
  // Its size comes from its folder's config.json: the store keeps no engine config for it (nor for trained models).
  assert.ok(builtin.params !== null && builtin.params > 1e6 && builtin.params < 1e7, `${builtin.params} parameters`);
  const stream = await service.call('models.generate', { modelId: builtin.id, prompt: 'hello there', sampling: { temperature: 0 } });
  const done = await studio.next((e) => e.type === 'generation.done' && e.streamId === stream.streamId);
  const tokens = studio.events.filter((e): e is Extract<StudioEvent, { type: 'generation.token' }> => e.type === 'generation.token' && e.streamId === stream.streamId);
  assert.ok(tokens.length >= 2);
  assert.equal(done.type === 'generation.done' && done.text, tokens.map((t) => t.text).join(''));
  assert.equal(done.type === 'generation.done' && done.text, 'default: hello there');
  assert.ok(done.type === 'generation.done' && done.generationId !== null);
  await assert.rejects(service.call('models.generate', { modelId: 12345, prompt: 'x' }), /There is no model #12345/);
});

test('a stopped generation ends with finish reason cancelled and is not stored', async () => {
  studio.generation.delayMs = 20;
  try {
    const [builtin] = (await service.call('models.list', {})).filter((m) => m.kind === 'builtin');
    const stream = await service.call('models.generate', { modelId: builtin.id, prompt: 'a b c d e f g h i j k l' });
    assert.deepEqual(await service.call('generation.cancel', { streamId: stream.streamId }), { cancelled: true });
    const done = await studio.next((e) => e.type === 'generation.done' && e.streamId === stream.streamId);
    assert.equal(done.type === 'generation.done' && done.finishReason, 'cancelled');
    assert.equal(done.type === 'generation.done' && done.generationId, null);
    assert.deepEqual(await service.call('generation.cancel', { streamId: stream.streamId }), { cancelled: false });
  } finally {
    studio.generation.delayMs = 0;
  }
});

test('generation phases: every stream is queued, then a first use loads and prepares the model, a second goes straight to generating; the status counts unfinished streams', async () => {
  const [builtin] = (await service.call('models.list', {})).filter((m) => m.kind === 'builtin');
  await service.call('generation.unload', {});
  studio.generation.delayMs = 20;
  const stream = await service.call('models.generate', { modelId: builtin.id, prompt: 'one two three', sampling: { maxTokens: 8 } });
  assert.equal((await service.call('status', {})).runningGenerations, 1);
  await studio.next((e) => e.type === 'generation.done' && e.streamId === stream.streamId);
  studio.generation.delayMs = 0;
  assert.equal((await service.call('status', {})).runningGenerations, 0);
  const phasesOf = (id: string): string[] => studio.events.flatMap((e) => (e.type === 'generation.phase' && e.streamId === id ? [e.phase] : [])).filter((p, i, all) => p !== all[i - 1]);
  assert.deepEqual(phasesOf(stream.streamId), ['queued', 'loading', 'preparing', 'generating']);
  const generating = studio.events.find((e) => e.type === 'generation.phase' && e.streamId === stream.streamId && e.phase === 'generating');
  assert.deepEqual(generating, { type: 'generation.phase', streamId: stream.streamId, phase: 'generating', done: 0, total: 8, etaMs: null });

  const again = await service.call('models.generate', { modelId: builtin.id, prompt: 'four' });
  await studio.next((e) => e.type === 'generation.done' && e.streamId === again.streamId);
  assert.deepEqual(phasesOf(again.streamId), ['queued', 'generating']);
});

test('the loaded models are listed by name within the budget of the settings; a smaller budget or unloading releases them', async () => {
  const [builtin] = (await service.call('models.list', {})).filter((m) => m.kind === 'builtin');
  const cache = await service.call('generation.cache', {});
  assert.equal(cache.budgetBytes, (await service.call('settings.get', {})).modelCacheBytes);
  assert.deepEqual(cache.models.map((m) => [m.modelId, m.name, m.provider, m.inUse, m.estimated]), [[builtin.id, builtin.name, 'cpu', false, false]]);
  assert.equal(cache.usedBytes, 100);

  const set = await service.call('settings.set', { modelCacheBytes: 50 });
  assert.equal(set.modelCacheBytes, 50);
  assert.match(set.message, /keeps models loaded up to/);
  assert.deepEqual((await service.call('generation.cache', {})).models, [], 'a budget smaller than the model releases it');
  await service.call('settings.set', { modelCacheBytes: 1e9 });
  const s = await service.call('models.generate', { modelId: builtin.id, prompt: 'x' });
  await studio.next((e) => e.type === 'generation.done' && e.streamId === s.streamId);
  assert.equal((await service.call('generation.cache', {})).models.length, 1);
  const emptied = await service.call('generation.unload', {});
  assert.deepEqual(emptied.models, []);
  assert.equal(emptied.usedBytes, 0);
});

test('blind A/B: both models answer, pairs come in a random recorded order, votes are tallied', async () => {
  const store = new ModelStore(studio.db);
  const a = store.insert({ name: 'sft', kind: 'trained', stage: 'sft', path: '/models/sft' });
  const b = store.insert({ name: 'base', kind: 'imported', path: '/models/base' });
  const prompts = ['p1', 'p2', 'p3'];
  const started = await service.call('compare.start', { modelIds: [a.id, b.id], prompts });
  assert.equal(started.streams.length, 6);
  await Promise.all(started.streams.map((s) => studio.next((e) => e.type === 'generation.done' && e.streamId === s.streamId)));

  // random(): pick index, then order (< 0.5: model A left).
  randoms = [0, 0.9];
  const first = await service.call('compare.nextPair', { modelA: a.id, modelB: b.id });
  assert.ok(first !== null);
  assert.equal(first.a, `base: ${first.prompt}`, 'model B was shown on the left');
  assert.equal(first.b, `sft: ${first.prompt}`);
  const vote = await service.call('compare.vote', { pairId: first.pairId, vote: 'B' }); // the right one: model A
  assert.deepEqual(vote.reveal, { a: { modelId: b.id, bestOf: null, name: 'base' }, b: { modelId: a.id, bestOf: null, name: 'sft' } });
  const j = new JudgmentStore(studio.db).get(vote.judgmentId);
  assert.deepEqual(j?.shownOrder, ['b', 'a']);
  assert.equal(j?.winner, 'a');
  assert.equal(vote.tally.winsA, 1);
  await assert.rejects(service.call('compare.vote', { pairId: first.pairId, vote: 'A' }), /no longer waiting for a vote/);

  randoms = [0, 0.1];
  const second = await service.call('compare.nextPair', { modelA: a.id, modelB: b.id });
  assert.ok(second !== null && second.prompt !== first.prompt);
  assert.equal(second.a, `sft: ${second.prompt}`, 'model A was shown on the left');
  await service.call('compare.vote', { pairId: second.pairId, vote: 'tie' });
  const third = await service.call('compare.nextPair', { modelA: a.id, modelB: b.id });
  assert.ok(third !== null);
  await service.call('compare.vote', { pairId: third.pairId, vote: 'skip' });
  assert.equal(await service.call('compare.nextPair', { modelA: a.id, modelB: b.id }), null, 'every pair has been judged');

  const tally = await service.call('compare.tally', { modelA: a.id, modelB: b.id });
  assert.equal(tally.n, 2);
  assert.equal(tally.winsA, 1);
  assert.equal(tally.ties, 1);
  assert.equal(tally.skips, 1);
  assert.equal(tally.winRateA, 0.75);
  assert.ok(tally.ci95[0] < 0.75 && tally.ci95[1] > 0.75 && tally.ci95[0] >= 0 && tally.ci95[1] <= 1);
  assert.equal(tally.leftWinRate, 0, 'the one decisive vote went to the right side');
  // Seen from the other model, the same votes.
  const mirrored = await service.call('compare.tally', { modelA: b.id, modelB: a.id });
  assert.equal(mirrored.winRateA, 0.25);
  assert.equal(mirrored.winsB, 1);
});

/** A policy and a reward model in the store. The fake backend never reads the reward model;
 *  the service only asks that its folder (`dir`) holds a saved scorer. */
function policyAndRewardModel(dir: string, suffix: string) {
  writeFileSync(join(dir, 'scorer.json'), '{}');
  writeFileSync(join(dir, 'score_head.safetensors'), '');
  const store = new ModelStore(studio.db);
  return {
    policy: store.insert({ name: `policy${suffix}`, kind: 'imported', path: `/models/policy${suffix}` }),
    rm: store.insert({ name: `rm${suffix}`, kind: 'trained', stage: 'reward', path: dir }),
  };
}

test("a Best-of-N column beside its model's plain one: sampling and scoring phases, the pick with every candidate, stored with its label and voted on as a side of its own", async () => {
  await withTempDir('api-bon', async (dir) => {
    const { policy, rm } = policyAndRewardModel(dir, '');
    const bestOf = { rewardModelId: rm.id, n: 3 };

    const before = studio.generation.requests.length;
    await assert.rejects(service.call('compare.start', { columns: [{ modelId: policy.id }, { modelId: policy.id, bestOf: { rewardModelId: policy.id, n: 3 } }], prompts: ['p'] }), /^Error: Model "policy" \(#\d+\) is not a reward model \(its folder holds no saved scorer\), so it cannot choose a Best-of-N answer; choose a model that a reward, pref-reward or judge stage made\.$/);
    await assert.rejects(service.call('compare.start', { columns: [{ modelId: policy.id }, { modelId: policy.id, bestOf: { rewardModelId: 9999, n: 3 } }], prompts: ['p'] }), /There is no model #9999/);
    assert.equal(studio.generation.requests.length, before, 'a refused comparison starts no column');
    assert.deepEqual((await service.call('models.list', {})).filter((m) => m.reward).map((m) => m.id), [rm.id]);

    const started = await service.call('compare.start', { columns: [{ modelId: policy.id }, { modelId: policy.id, bestOf }], prompts: ['q1', 'q2'], sampling: { seed: 4 } });
    assert.deepEqual(started.streams.map((x) => [x.column, x.modelId, x.bestOf, x.promptIndex]), [[0, policy.id, null, 0], [0, policy.id, null, 1], [1, policy.id, bestOf, 0], [1, policy.id, bestOf, 1]]);
    const dones = await Promise.all(started.streams.map((x) => studio.next((e) => e.type === 'generation.done' && e.streamId === x.streamId)));
    assert.deepEqual(studio.generation.requests.at(-1)?.bestOf, { n: 3, rewardDir: dir });

    const bon = started.streams[2];
    const phases = studio.events.flatMap((e) => (e.type === 'generation.phase' && e.streamId === bon.streamId ? [`${e.phase} ${e.done}/${e.total}`] : []));
    assert.deepEqual(phases.slice(phases.indexOf('sampling 0/3')), ['sampling 0/3', 'sampling 1/3', 'sampling 2/3', 'sampling 3/3', 'scoring 0/6', 'scoring 6/6'], "each stream counts its own prompt's samples, then the scoring of all of them");
    assert.equal(studio.events.some((e) => e.type === 'generation.token' && e.streamId === bon.streamId), false, 'no tokens stream');

    const done = dones[2];
    assert.ok(done.type === 'generation.done' && done.bestOf !== undefined && done.generationId !== null);
    assert.deepEqual(done.bestOf.candidates.map((c) => [c.text, c.reward]), [['policy: q1 #0', 9], ['policy: q1 #1', 10], ['policy: q1 #2', 9]]);
    assert.deepEqual([done.bestOf.chosen, done.bestOf.n, done.bestOf.rewardModelId, done.text], [1, 3, rm.id, 'policy: q1 #1']);
    const stored = new GenerationStore(studio.db).get(done.generationId);
    assert.deepEqual([stored?.modelId, stored?.text, stored?.sampleIndex, stored?.scores], [policy.id, 'policy: q1 #1', 1, { bestOf: 3, bestOfReward: rm.id, [`rm:${rm.id}`]: 10 }]);

    // Voting: the plain answers against the picks, never a pick against a plain answer of the same side.
    const plainSide = { modelA: policy.id, modelB: policy.id, bestOfB: bestOf };
    randoms = [0, 0.1];
    const pair = await service.call('compare.nextPair', plainSide);
    assert.ok(pair !== null);
    assert.deepEqual([pair.a, pair.b], [`policy: ${pair.prompt}`, `policy: ${pair.prompt} #1`]);
    const vote = await service.call('compare.vote', { pairId: pair.pairId, vote: 'B' });
    assert.deepEqual(vote.reveal.b, { modelId: policy.id, bestOf, name: 'policy, best of 3 by rm' });
    assert.deepEqual(vote.reveal.a, { modelId: policy.id, bestOf: null, name: 'policy' });
    assert.deepEqual([vote.tally.winsA, vote.tally.winsB, vote.tally.bestOfA, vote.tally.bestOfB], [0, 1, null, bestOf]);
    const mirrored = await service.call('compare.tally', { modelA: policy.id, bestOfA: bestOf, modelB: policy.id });
    assert.deepEqual([mirrored.winsA, mirrored.winsB], [1, 0]);
    assert.equal((await service.call('compare.tally', { modelA: policy.id, bestOfA: { ...bestOf, n: 4 }, modelB: policy.id })).n, 0, 'another N is another side');
    await assert.rejects(service.call('compare.nextPair', { modelA: policy.id, bestOfA: bestOf, modelB: policy.id, bestOfB: bestOf }), /both sides are the same model's Best-of-N/);
  });
});

test('a Best-of-N column stops like a plain one: cancelled, nothing stored', async () => {
  await withTempDir('api-bon-stop', async (dir) => {
    const { policy, rm } = policyAndRewardModel(dir, '2');
    studio.generation.delayMs = 20;
    try {
      const started = await service.call('compare.start', { columns: [{ modelId: policy.id, bestOf: { rewardModelId: rm.id, n: 8 } }, { modelId: policy.id, bestOf: { rewardModelId: rm.id, n: 2 } }], prompts: ['long'] });
      await studio.next((e) => e.type === 'generation.phase' && e.streamId === started.streams[0].streamId && e.phase === 'sampling');
      assert.deepEqual(await service.call('generation.cancel', { streamId: started.streams[0].streamId }), { cancelled: true });
      const done = await studio.next((e) => e.type === 'generation.done' && e.streamId === started.streams[0].streamId);
      assert.ok(done.type === 'generation.done');
      assert.deepEqual([done.finishReason, done.generationId, done.bestOf], ['cancelled', null, undefined]);
      const other = await studio.next((e) => e.type === 'generation.done' && e.streamId === started.streams[1].streamId);
      assert.ok(other.type === 'generation.done' && other.finishReason === 'length' && other.generationId !== null, 'the other column ran on');
      assert.deepEqual(new GenerationStore(studio.db).listByModel(policy.id).map((g) => g.scores.bestOf), [2]);
    } finally {
      studio.generation.delayMs = 0;
    }
  });
});

test('status reports the device and why no GPU is used; settings persist the forced provider', async () => {
  const s = await service.call('status', {});
  assert.equal(s.device.provider, 'cpu');
  assert.match(s.device.gpuUnusedReason ?? '', /webgpu: no hardware GPU adapter found/);
  assert.ok(s.device.cpuThreads >= 1);
  assert.equal(s.forcedProvider, 'auto');
  assert.match(s.version, /^\d+\.\d+\.\d+/);
  const set = await service.call('settings.set', { forcedProvider: 'cpu' });
  assert.equal(set.forcedProvider, 'cpu');
  assert.equal(set.restartRequired, false);
  assert.equal((await service.call('status', {})).device.gpuUnusedReason, 'the CPU is forced in the settings');
  await assert.rejects(service.call('settings.set', { dataFolder: '/tmp/elsewhere' }), /throwaway in-memory database/);
  await service.call('settings.set', { forcedProvider: 'auto' });
  const bundle = await service.call('diagnostics.bundle', {});
  assert.match(bundle.text, /device: cpu/);
  assert.match(bundle.fileName, /^afd-studio-diagnostics-.*\.txt$/);
});

test('the data folder moves with a copy of the database, used after a restart', async () => {
  await withTempDir('api-move', async (dir) => {
    const { openDatabase } = await import('../../db/database.ts');
    const db = await openDatabase(join(dir, 'studio.db'));
    const s = await openTestStudio({ db });
    try {
      await s.service.call('datasets.importText', { name: 'd', fileName: 'd.jsonl', content: JSONL }).then((r) => s.runner.settled(r.id));
      const target = join(dir, 'moved');
      const r = await s.service.call('settings.set', { dataFolder: target });
      assert.equal(r.restartRequired, true);
      assert.equal(r.dataFolder, target);
      assert.ok(existsSync(join(target, 'studio.db')));
      assert.equal(JSON.parse(readFileSync(join(dir, 'settings.json'), 'utf8')).dataFolder, target);
      const copy = await openDatabase(join(target, 'studio.db'));
      assert.equal(copy.sqlite.prepare('SELECT count(*) AS n FROM examples').get() !== undefined, true);
      assert.deepEqual(copy.sqlite.prepare('SELECT name FROM datasets').all(), [{ name: 'd' }]);
      copy.close();
      await assert.rejects(s.service.call('settings.set', { dataFolder: dir }), /not empty/);
    } finally {
      await s.close();
    }
  });
});

test('experiments go through the pipeline: start, progress events, list, stop, resume (with an edited definition), results, ended and log events', async () => {
  const progress = (id: number, state: 'running' | 'paused' | 'done'): ExperimentProgress => ({ experimentId: id, stages: [{ id: 'sft', kind: 'sft', runId: null, state }] });
  let state: 'running' | 'paused' | 'done' = 'running';
  const stops: string[] = [];
  const started: { name: string; seed: number; resumed: boolean }[] = [];
  const listeners = new Set<(p: ExperimentProgress) => void>();
  const pipeline: Pipeline = {
    parse: (raw) => {
      const r = raw as Record<string, unknown>;
      if (typeof r.name !== 'string') throw new Error('An experiment needs a name; add "name".');
      return { name: r.name, seed: typeof r.seed === 'number' ? r.seed : 1, model: 'default', data: { source: 'hh-harmless', evalFraction: 0.2 }, provider: (r.provider as ExperimentDefinition['provider']) ?? 'auto', threads: null, stages: [] };
    },
    start: (db, _runner, definition, opts) => {
      const id = opts?.experimentId ?? Number(db.sqlite.prepare('INSERT INTO experiments (name, definition) VALUES (?, ?)').run(definition.name, JSON.stringify(definition)).lastInsertRowid);
      state = 'running';
      started.push({ name: definition.name, seed: definition.seed, resumed: opts?.experimentId !== undefined });
      opts?.log?.(`sft: run again, its seed is ${definition.seed}.`);
      let finish: (p: Awaited<RunningExperiment['done']>) => void = () => undefined;
      const done = new Promise<Awaited<RunningExperiment['done']>>((resolve) => { finish = resolve; });
      return {
        experimentId: id, done, progress: () => progress(id, state),
        onProgress: (l) => { listeners.add(l); return () => listeners.delete(l); },
        stop: (reason) => { stops.push(reason); state = 'paused'; for (const l of listeners) l(progress(id, state)); finish({ ...progress(id, state), status: 'paused' }); },
      };
    },
    progress: (_db, id) => progress(id, state),
    check: () => [],
    stageKinds: [],
    recipes: [{ id: 'r', title: 'Recipe', summary: 's', definition: { name: 'r' } }],
    results: (_db, _files, id) => ({ gold_judge_accuracy: null, rows: [{ method: `m${id}`, gold_mean: 1, gold_ci95: [0, 2], win_rate_vs_sft: 0.5, mean_length: 3 }] }),
    memory: async (_db, _files, definition) => ({ available: 8e9, stages: { [definition.name]: { bytes: 1e9, phase: 'a training step', parts: [], lower: [] } } }),
  };
  const s = await openTestStudio({ pipeline: async () => pipeline });
  try {
    assert.equal((await s.service.call('experiments.recipes', {}))[0].id, 'r');
    await assert.rejects(s.service.call('experiments.start', { definition: { nope: 1 } }), /needs a name/);
    const e = await s.service.call('experiments.start', { definition: { name: 'exp' } });
    assert.equal(e.name, 'exp');
    assert.equal(e.progress.stages[0].state, 'running');
    // Each stage's memory estimate comes with the detail, from the stored definition.
    assert.deepEqual(e.memory, { available: 8e9, stages: { exp: { bytes: 1e9, phase: 'a training step', parts: [], lower: [] } } });
    assert.deepEqual((await s.service.call('experiments.list', {})).map((x) => [x.name, x.state]), [['exp', 'running']]);
    const stopped = await s.service.call('experiments.stop', { experimentId: e.id, reason: 'pause' });
    assert.deepEqual(stops, ['pause']);
    assert.equal(stopped.stages[0].state, 'paused');
    assert.ok(s.events.some((ev) => ev.type === 'experiment.progress' && ev.progress.stages[0].state === 'paused'));
    await new Promise((r) => setTimeout(r, 10));
    // The drive's end is an event of its own (the CLI waits for it), and the driver's lines are events too.
    assert.deepEqual(s.events.filter((ev) => ev.type === 'experiment.ended'), [{ type: 'experiment.ended', experimentId: e.id, status: 'paused', error: null }]);
    assert.deepEqual(s.events.filter((ev) => ev.type === 'experiment.log').map((ev) => ev.type === 'experiment.log' && [ev.experimentId, ev.text]), [[e.id, 'sft: run again, its seed is 1.']]);
    const resumed = await s.service.call('experiments.resume', { experimentId: e.id });
    assert.equal(resumed.id, e.id);
    assert.equal(resumed.progress.stages[0].state, 'running');
    await s.service.call('experiments.stop', { experimentId: e.id, reason: 'pause' });
    await new Promise((r) => setTimeout(r, 10));
    // Resumed under an edited definition (`afd run FILE --resume` after editing FILE): the pipeline gets the new one.
    await s.service.call('experiments.resume', { experimentId: e.id, definition: { name: 'exp', seed: 7 } });
    assert.deepEqual(started, [{ name: 'exp', seed: 1, resumed: false }, { name: 'exp', seed: 1, resumed: true }, { name: 'exp', seed: 7, resumed: true }]);
    assert.equal((await s.service.call('results.get', { experimentId: e.id }))?.rows[0].method, `m${e.id}`);
    await assert.rejects(s.service.call('experiments.get', { experimentId: 999 }), /no experiment #999/);
  } finally {
    await s.close();
  }
});

test("the pipeline's own modules load with the agreed shapes", async () => {
  const pl = await loadPipeline();
  for (const f of [pl.start, pl.progress, pl.parse, pl.check, pl.results, pl.memory]) assert.equal(typeof f, 'function');
  assert.throws(() => pl.parse({}), (err: Error) => err.message.length > 10);
  assert.ok(pl.recipes === null || Array.isArray(pl.recipes));
});

test('choosing a path opens the desktop dialog; under afd serve it is refused with a sentence', async () => {
  await assert.rejects(service.call('system.choosePath', { kind: 'folder' }), /Only the desktop app can open a file dialog; type the path instead/);
  await assert.rejects(service.dispatch('system.choosePath', { kind: 'disk' }), ValidationError);
  const asked: string[] = [];
  const desktop = await openTestStudio({ choosePath: async (kind) => (asked.push(kind), kind === 'folder' ? '/models/smol' : null) });
  try {
    assert.deepEqual(await desktop.service.call('system.choosePath', { kind: 'folder' }), { path: '/models/smol' });
    assert.deepEqual(await desktop.service.call('system.choosePath', { kind: 'file' }), { path: null });
    assert.deepEqual(asked, ['folder', 'file']);
  } finally {
    await desktop.close();
  }
});

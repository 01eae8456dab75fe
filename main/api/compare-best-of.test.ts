// Best-of-N in Compare with the real generation worker: the embedded default model as the
// policy and a reward model made here (the same backbone with a random score head, saved as
// the reward stages save theirs). The pick must be the argmax of what that scorer, loaded
// again in this process, gives each candidate; a reward model must be a saved scorer; a
// stop ends the column while it samples.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { Rng } from '../../native-models/train/rng.ts';
import { GenerationStore } from '../../db/generations.ts';
import { ModelStore } from '../../db/models.ts';
import { DEFAULT_MODEL_DIR } from '../models/builtin.ts';
import { loadModel } from '../stages/lm.ts';
import { hiddenSize, loadScorerReward, saveScorer } from '../stages/scorer.ts';
import type { StudioEvent } from './contract.ts';
import { WorkerGeneration } from './generation.ts';
import { openTestStudio } from './testing.ts';

const root = await mkdtemp(join(tmpdir(), 'afd-compare-bon-'));
const backbone = await loadModel(DEFAULT_MODEL_DIR);
const rng = new Rng(3);
const scorerDir = await saveScorer(root, backbone, backbone.weights, { weight: Float32Array.from({ length: hiddenSize(backbone) }, () => rng.normal()), bias: 0 }, 96);
const studio = await openTestStudio({ generation: new WorkerGeneration() });
const { service } = studio;
after(async () => {
  await studio.close();
  await rm(root, { recursive: true, force: true });
});
await service.call('settings.set', { forcedProvider: 'cpu' });
const [policy] = (await service.call('models.list', {})).filter((m) => m.kind === 'builtin');
const rewardModel = new ModelStore(studio.db).insert({ name: 'rm', kind: 'trained', stage: 'reward', path: scorerDir });
const doneOf = (streamId: string) => studio.next((e) => e.type === 'generation.done' && e.streamId === streamId) as Promise<Extract<StudioEvent, { type: 'generation.done' }>>;

test('the Best-of-N column answers with the candidate the reward model scores highest, as the same scorer scores them here', async () => {
  assert.deepEqual((await service.call('models.list', {})).filter((m) => m.reward).map((m) => m.name), ['rm']);
  const bestOf = { rewardModelId: rewardModel.id, n: 4 };
  const prompts = ['How do I make a cup of tea?', 'Tell me about the sea.'];
  const started = await service.call('compare.start', { columns: [{ modelId: policy.id }, { modelId: policy.id, bestOf }], prompts, sampling: { maxTokens: 16, seed: 11 } });
  const dones = await Promise.all(started.streams.map((s) => doneOf(s.streamId)));

  const reward = await loadScorerReward(scorerDir, { provider: 'cpu', threads: 1 });
  try {
    for (const [i, prompt] of prompts.entries()) {
      const stream = started.streams[2 + i];
      const done = dones[2 + i];
      assert.ok(done.bestOf !== undefined, `${done.finishReason}: ${done.error}`);
      const { candidates, chosen } = done.bestOf;
      assert.equal(candidates.length, 4);
      assert.ok(new Set(candidates.map((c) => c.text)).size > 1, 'the N answers are sampled, not one answer N times');
      // What the policy read (its chat template) is what the reward model scores the answer after.
      const scores = await reward.score(candidates.map((c) => ({ prompt: backbone.tokenizer.applyChatTemplate([{ role: 'user', content: prompt }], { addGenerationPrompt: true }), response: c.text })));
      scores.forEach((s, k) => assert.ok(Math.abs(s - candidates[k].reward) < 1e-4, `candidate ${k}: ${candidates[k].reward} in Compare, ${s} here`));
      assert.equal(chosen, scores.indexOf(Math.max(...scores)));
      assert.equal(done.text, candidates[chosen].text);

      const phases = studio.events.flatMap((e) => (e.type === 'generation.phase' && e.streamId === stream.streamId ? [e] : []));
      const sampling = phases.filter((p) => p.phase === 'sampling');
      assert.deepEqual([sampling[0].done, sampling.at(-1)?.done, sampling.at(-1)?.total], [0, 4, 4]);
      assert.ok(sampling.every((p, k) => k === 0 || p.done >= sampling[k - 1].done), 'the count of finished answers only grows');
      assert.deepEqual(phases.filter((p) => p.phase === 'scoring').at(-1), { type: 'generation.phase', streamId: stream.streamId, phase: 'scoring', done: 8, total: 8, etaMs: null });

      const stored = new GenerationStore(studio.db).get(done.generationId ?? -1);
      assert.deepEqual([stored?.modelId, stored?.text, stored?.sampleIndex, stored?.scores], [policy.id, done.text, chosen, { bestOf: 4, bestOfReward: rewardModel.id, [`rm:${rewardModel.id}`]: candidates[chosen].reward }]);
    }
  } finally {
    await reward.release();
  }
  // The plain column streamed as before.
  assert.ok(dones.slice(0, 2).every((d) => d.bestOf === undefined && d.generationId !== null && d.tokens > 0));
});

test('a model that is not a reward model is refused in a sentence; a stop ends a Best-of-N column while it samples', async () => {
  await assert.rejects(
    service.call('compare.start', { columns: [{ modelId: policy.id }, { modelId: policy.id, bestOf: { rewardModelId: policy.id, n: 2 } }], prompts: ['Hi'] }),
    /Model "Default model \(embedded\)" \(#\d+\) is not a reward model \(its folder holds no saved scorer\), so it cannot choose a Best-of-N answer; choose a model that a reward, pref-reward or judge stage made\./,
  );
  const started = await service.call('compare.start', { columns: [{ modelId: policy.id, bestOf: { rewardModelId: rewardModel.id, n: 64 } }, { modelId: policy.id }], prompts: ['Tell me a long story.'], sampling: { maxTokens: 256, seed: 1 } });
  const bon = started.streams[0].streamId;
  await studio.next((e) => e.type === 'generation.phase' && e.streamId === bon && e.phase === 'sampling');
  assert.deepEqual(await service.call('generation.cancel', { streamId: bon }), { cancelled: true });
  const done = await doneOf(bon);
  assert.deepEqual([done.finishReason, done.generationId, done.bestOf], ['cancelled', null, undefined]);
  assert.equal(studio.events.some((e) => e.type === 'generation.phase' && e.streamId === bon && e.phase === 'scoring'), false, 'stopped before scoring');
  await doneOf(started.streams[1].streamId);
});

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { JsonObject } from '../../../db/json.ts';
import { demonstrations, type Demonstrations } from '../data.ts';
import { loadRewardFunction } from '../reward-artifact.ts';
import type { Artifact } from '../stage.ts';
import { buildToyModel, hasMarker, MARKER, markerRate, toyDemonstrations } from '../toy.ts';
import { rewardStage, scorerDataset } from './reward.ts';
import { readSamples, sampleStage } from './sample.ts';
import { sftStage } from './sft.ts';
import { pi0, runStage, type TestRun } from './testing.ts';

// The marker world: SFT moves pi_0 toward responses that end with the marker, so an
// SFT-vs-Init scorer must learn "marker = good" without ever being told.
let root: string, base: Artifact, sftSamples: Artifact, initSamples: Artifact, reference: TestRun;
const strip = (s: string): string => s.slice(0, s.length - MARKER.length);
const toy = toyDemonstrations();
// Rejected responses on the evaluation prompts only, for the agreement report (AfD never reads them).
const data: Demonstrations = demonstrations(toy.train, toy.eval.map((d) => ({ ...d, rejected: strip(d.response) })));
const runtime = { provider: 'cpu' as const, threads: 1 };
const config = { positive: 'sft-samples', negative: 'init-samples', epochs: 2, batch: 8, lr: 3e-4 };
const inputs = (): Record<string, Artifact> => ({ backbone: base, positive: sftSamples, negative: initSamples });

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'afd-reward-'));
  await buildToyModel(join(root, 'pi0'));
  base = pi0(join(root, 'pi0'));
  const sft = await runStage(sftStage, { epochs: 3 }, { model: base }, { dir: join(root, 'sft'), data, id: 'sft' });
  const sample = async (model: Artifact, id: string): Promise<Artifact> =>
    (await runStage(sampleStage, { n: 2, maxNewTokens: 40 }, { model }, { dir: join(root, id), data, id })).artifact;
  sftSamples = await sample(sft.artifact, 'sft-samples');
  initSamples = await sample(base, 'init-samples');
  reference = await runStage(rewardStage, config, inputs(), { dir: join(root, 'reward'), data });
});
after(() => rm(root, { recursive: true, force: true }));

/** Scores of every demonstration on the evaluation prompts with and without its marker. */
async function markerScores(a: Artifact): Promise<{ withMarker: number[]; without: number[] }> {
  const reward = await loadRewardFunction(a, runtime);
  try {
    const s = await reward.score([...toy.eval.map((d) => ({ prompt: d.prompt, response: d.response })), ...toy.eval.map((d) => ({ prompt: d.prompt, response: strip(d.response) }))]);
    return { withMarker: s.slice(0, toy.eval.length), without: s.slice(toy.eval.length) };
  } finally {
    await reward.release();
  }
}

const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

test('SFT-vs-Init (bce) ranks marker responses above the same responses without it, and separates its held-out prompts', async () => {
  const texts = (a: Artifact): string[] => readSamples(a).byPrompt.flat().map((s) => s.text);
  const [rSft, rInit] = [markerRate(texts(sftSamples)), markerRate(texts(initSamples))];
  assert.ok(rSft > rInit + 0.2, `SFT should say the marker more often than pi_0 (${rSft} vs ${rInit})`);

  assert.equal(reference.outcome.status, 'done');
  if (reference.outcome.status !== 'done') return;
  const s = reference.outcome.summary;
  assert.ok((s.held_out_accuracy as number) > 0.65, `held-out accuracy ${s.held_out_accuracy}`);
  assert.equal(typeof s.held_out_length_pearson, 'number');
  assert.ok((s.eval_preference_agreement as number) > 0.8, `agreement with chosen/rejected on eval prompts ${s.eval_preference_agreement}`);
  assert.equal((s.highest as JsonObject[]).length, 5);
  assert.equal((s.lowest as JsonObject[]).length, 5);
  assert.ok((s.highest as JsonObject[])[0].score! >= (s.lowest as JsonObject[])[0].score!);
  assert.ok(reference.logs.some((l) => l.startsWith('highest-scored held-out responses')));
  const last = reference.metrics.at(-1)!.values;
  assert.equal(last.held_out_accuracy, s.held_out_accuracy);

  const details = JSON.parse(readFileSync(join(root, 'reward', 'artifact.json'), 'utf8'));
  assert.equal(details.type, 'reward');
  assert.equal(details.reward, 'scorer');
  assert.equal(details.dir, join(root, 'reward', 'scorer'));

  const m = await markerScores(reference.artifact);
  const margin = mean(m.withMarker) - mean(m.without);
  assert.ok(margin > 1, `marker responses should score higher by a clear margin, got ${margin}`);
  assert.ok(m.withMarker.every((x, i) => x > m.without[i]), 'every response scores higher with the marker than without');

  // The same on the models' own samples: marker samples above the others.
  const all = [...readSamples(sftSamples).byPrompt.flat(), ...readSamples(initSamples).byPrompt.flat()];
  const reward = await loadRewardFunction(reference.artifact, runtime);
  try {
    const scores = await reward.score(all.map((x) => ({ prompt: x.prompt, response: x.text })));
    const on = scores.filter((_, i) => hasMarker(all[i].text)), off = scores.filter((_, i) => !hasMarker(all[i].text));
    assert.ok(mean(on) > mean(off) + 1, `samples with the marker ${mean(on)}, without ${mean(off)}`);
  } finally {
    await reward.release();
  }
});

test('SFT-vs-Init with Bradley-Terry pairs also learns the marker', async () => {
  const run = await runStage(rewardStage, { ...config, loss: 'bt' }, inputs(), { dir: join(root, 'reward-bt'), data });
  assert.equal(run.outcome.status, 'done');
  if (run.outcome.status !== 'done') return;
  assert.ok((run.outcome.summary.held_out_accuracy as number) > 0.6, `held-out pair accuracy ${run.outcome.summary.held_out_accuracy}`);
  const m = await markerScores(run.artifact);
  assert.ok(mean(m.withMarker) - mean(m.without) > 0.5, `margin ${mean(m.withMarker) - mean(m.without)}`);
});

test('a reward stage stopped part-way and resumed from its checkpoint ends with the uninterrupted scores', async () => {
  const dir = join(root, 'reward-resumed');
  const first = await runStage(rewardStage, { ...config, checkpointEvery: 3 }, inputs(), { dir, data, stopAtProgress: 7 });
  assert.equal(first.outcome.status, 'stopped');
  assert.ok(first.checkpoint !== null, 'a checkpoint was written');
  const second = await runStage(rewardStage, { ...config, checkpointEvery: 3 }, inputs(), { dir, data, checkpoint: first.checkpoint });
  assert.equal(second.outcome.status, 'done');
  // The resumed run took only the remaining steps.
  assert.ok(Math.min(...second.metrics.filter((m) => 'loss' in m.values).map((m) => m.step)) > 1);
  const a = await markerScores(reference.artifact), b = await markerScores(second.artifact);
  assert.deepEqual(b, a);
});

test('sources: pairs share a prompt and cycle the smaller side; bad sources are refused', () => {
  const d = scorerDataset([{ prompt: 'p', positive: [{ text: 'demo', source: 'demos' }], negative: [{ text: 'a', source: 's' }, { text: 'b', source: 's' }] }]);
  assert.deepEqual(d.pairs, [[0, 1], [0, 2]]);
  assert.deepEqual(d.items.map((x) => x.label), [1, 0, 0]);
  assert.throws(() => rewardStage.parse({ positive: 'demos', negative: 'demos' }), /both demos/);
  assert.throws(() => rewardStage.parse({ positive: 'demos' }), /negative must be/);
  const c = rewardStage.parse({ positive: 'demos', negative: 'init-samples' });
  assert.equal(c.loss, 'bce');
  assert.equal(c.backbone, 'pi0');
  assert.equal(c.maxLength, 256);
  assert.equal(c.heldOut, 0.1);
});

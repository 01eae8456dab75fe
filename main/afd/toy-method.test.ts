// The method end to end on a task with a known optimum (the marker toy world): every
// demonstration ends with a marker phrase that pi_0 rarely says. Without being told
// about the marker, the SFT-vs-Init reward must rank marker responses higher, and
// extrapolating over it, by Best-of-N or by RL, must say the marker more often than
// SFT itself does.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadRewardFunction } from './reward-function.ts';
import type { Artifact } from './stage.ts';
import { bonStage, readSelection } from './stages/bon.ts';
import { rewardStage } from './stages/reward.ts';
import { rlStage } from './stages/rl.ts';
import { readSamples, sampleStage } from './stages/sample.ts';
import { sftStage } from './stages/sft.ts';
import { pi0, runStage } from './stages/testing.ts';
import { buildToyModel, hasMarker, markerRate, modelMarkerRate, toyDemonstrations } from './toy.ts';

let root = '';
let base: Artifact, sft: Artifact, reward: Artifact, sftEval: Artifact;
const data = toyDemonstrations();

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'afd-toy-method-'));
  await buildToyModel(join(root, 'pi0'));
  base = pi0(join(root, 'pi0'));
  const run = async (stage: Parameters<typeof runStage>[0], raw: Parameters<typeof runStage>[1], inputs: Parameters<typeof runStage>[2], id: string): Promise<Artifact> => {
    const r = await runStage(stage, raw, inputs, { dir: join(root, id), data, id });
    assert.equal(r.outcome.status, 'done', `stage ${id} finished`);
    return r.artifact;
  };
  sft = await run(sftStage, { epochs: 2, lr: 1e-3 }, { model: base }, 'sft');
  const sftTrain = await run(sampleStage, { model: 'sft', n: 2, maxNewTokens: 40 }, { model: sft }, 'sft-train');
  const initTrain = await run(sampleStage, { n: 2, maxNewTokens: 40 }, { model: base }, 'init-train');
  reward = await run(rewardStage, { positive: 'sft-train', negative: 'init-train', epochs: 2, lr: 3e-4 }, { backbone: base, positive: sftTrain, negative: initTrain }, 'rm');
  sftEval = await run(sampleStage, { model: 'sft', split: 'eval', n: 8, maxNewTokens: 40 }, { model: sft }, 'sft-eval');
});
after(() => rm(root, { recursive: true, force: true }));

test('the SFT-vs-Init reward, never told about the marker, scores marker responses higher', async () => {
  const texts = readSamples(sftEval).byPrompt.flat();
  const r = await loadRewardFunction(reward, { provider: 'cpu', threads: 1 });
  try {
    const scores = await r.score(texts.map((s) => ({ prompt: s.prompt, response: s.text })));
    const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
    const withMarker = scores.filter((_, i) => hasMarker(texts[i].text)), without = scores.filter((_, i) => !hasMarker(texts[i].text));
    assert.ok(withMarker.length > 0 && without.length > 0, 'the SFT samples have both kinds');
    assert.ok(mean(withMarker) > mean(without) + 0.5, `marker ${mean(withMarker).toFixed(3)} vs no marker ${mean(without).toFixed(3)}`);
  } finally {
    await r.release();
  }
});

test('Best-of-8 over the SFT-vs-Init reward says the marker more often than SFT', async () => {
  const bon = await runStage(bonStage, { samples: 'sft-eval', reward: 'rm', ns: [1, 8] }, { samples: sftEval, reward }, { dir: join(root, 'bon'), data });
  const sel = readSelection(bon.artifact);
  const set = readSamples(sftEval);
  const rate = (n: number): number => markerRate(sel.picks[String(n)].map((k, i) => set.byPrompt[i][k].text));
  const all = markerRate(set.byPrompt.flat().map((s) => s.text));
  // Measured: 0.833 against 0.682 (26 prompts for Best-of-8, 208 SFT samples).
  assert.ok(rate(8) >= all + 0.1, `Best-of-8 marker rate ${rate(8).toFixed(3)} vs SFT ${all.toFixed(3)}`);
});

test('RL against the SFT-vs-Init reward (RLOO, KL to SFT) says the marker more often than SFT', async () => {
  const rl = await runStage(rlStage, { policy: 'sft', reward: 'rm', steps: 30, lr: 5e-4, k: 8, maxNewTokens: 40, beta: 0.02 }, { policy: sft, reference: sft, reward }, { dir: join(root, 'rl'), data, id: 'rl' });
  assert.equal(rl.outcome.status, 'done');
  const rate = (dir: string): Promise<number> => modelMarkerRate(dir, data.eval.map((d) => d.prompt), { perPrompt: 8, maxNewTokens: 40, seed: 7000 });
  const [before_, after_] = [await rate(join(root, 'sft', 'model')), await rate(join(root, 'rl', 'model'))];
  // Measured: 0.818 against 0.682 (208 samples each, so about 4 standard errors apart).
  assert.ok(after_ >= before_ + 0.1, `RL marker rate ${after_.toFixed(3)} vs SFT ${before_.toFixed(3)}`);
});

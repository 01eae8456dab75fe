// The method end to end on a task with a known optimum (the marker toy world): every
// demonstration ends with a marker phrase that pi_0 rarely says. Without being told
// about the marker, the SFT-vs-Init reward must rank marker responses higher, and
// extrapolating over it, by Best-of-N or by RL, must say the marker more often than
// SFT itself does. The demonstration-only methods of docs/methods.md where a direction
// is known: DFT, like SFT, moves pi_0 towards the marker; SFT's endogenous reward prefers
// a reply with the marker to the same reply without, pi_0's the reverse; DITTO from SFT
// raises the odds of the marker.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { JsonObject } from '../../db/json.ts';
import { densityRatioReward } from './density-ratio.ts';
import { loadRewardFunction } from './reward-artifact.ts';
import type { Artifact } from './stage.ts';
import { bonStage, readSelection } from './kinds/bon.ts';
import { dittoStage } from './kinds/ditto.ts';
import { endogenousStage } from './kinds/endogenous.ts';
import { rewardStage } from './kinds/reward.ts';
import { rlStage } from './kinds/rl.ts';
import { readSamples, sampleStage } from './kinds/sample.ts';
import { sftStage } from './kinds/sft.ts';
import { pi0, runStage } from './kinds/testing.ts';
import { buildToyModel, hasMarker, MARKER, markerRate, modelMarkerRate, toyDemonstrations } from './toy.ts';

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

test('RL against the SFT-vs-Init reward (RLOO, KL to SFT) says the marker more often than SFT', async (t) => {
  // 40 steps: at 30 the gain (0.09 to 0.14) depended on float rounding in the sampled trajectory.
  const rl = await runStage(rlStage, { policy: 'sft', reward: 'rm', steps: 40, lr: 5e-4, k: 8, maxNewTokens: 40, beta: 0.02 }, { policy: sft, reference: sft, reward }, { dir: join(root, 'rl'), data, id: 'rl' });
  assert.equal(rl.outcome.status, 'done');
  const rate = (dir: string): Promise<number> => modelMarkerRate(dir, data.eval.map((d) => d.prompt), { perPrompt: 8, maxNewTokens: 40, seed: 7000 });
  const [before_, after_] = [await rate(join(root, 'sft', 'model')), await rate(join(root, 'rl', 'model'))];
  t.diagnostic(`marker rate: SFT ${before_.toFixed(3)}, RL ${after_.toFixed(3)}`);
  // Measured: 0.813 against 0.677 (208 samples each, about 4 standard errors apart).
  assert.ok(after_ >= before_ + 0.1, `RL marker rate ${after_.toFixed(3)} vs SFT ${before_.toFixed(3)}`);
});

const rateOf = (dir: string): Promise<number> => modelMarkerRate(dir, data.eval.map((d) => d.prompt), { perPrompt: 8, maxNewTokens: 40, seed: 7000 });
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

test('SFT with loss: dft moves pi_0 towards the marker, as SFT does', async (t) => {
  const dft = await runStage(sftStage, { epochs: 2, lr: 1e-3, loss: 'dft' }, { model: base }, { dir: join(root, 'sft-dft'), data, id: 'sft-dft' });
  assert.equal(dft.outcome.status, 'done');
  assert.ok(dft.metrics.every((m) => typeof m.values.nll === 'number'), 'DFT reports the NLL beside its loss');
  const [init, sftRate, dftRate] = [await rateOf(join(root, 'pi0')), await rateOf(join(root, 'sft', 'model')), await rateOf(join(root, 'sft-dft', 'model'))];
  t.diagnostic(`marker rate: pi_0 ${init.toFixed(3)}, SFT ${sftRate.toFixed(3)}, DFT ${dftRate.toFixed(3)}`);
  // Measured: 0.844 against 0.026 (SFT: 0.677).
  assert.ok(dftRate >= init + 0.2, `DFT marker rate ${dftRate.toFixed(3)} vs pi_0 ${init.toFixed(3)}`);
});

test("SFT's endogenous reward prefers a demonstration to the same reply without the marker, pi_0's the reverse", async (t) => {
  // The same reply with and without its marker: everything but the marker is shared, so the
  // direction is the model's: SFT learned the marker, pi_0 rarely says it.
  const stripped = (r: string): string => r.slice(0, r.length - MARKER.length);
  const items = data.eval.flatMap((d) => [{ prompt: d.prompt, response: d.response }, { prompt: d.prompt, response: stripped(d.response) }]);
  const wins = async (model: Artifact, id: string, raw: JsonObject = {}): Promise<number> => {
    const r = await runStage(endogenousStage, raw, { model }, { dir: join(root, id), data, id });
    const f = await loadRewardFunction(r.artifact, { provider: 'cpu', threads: 1 });
    try {
      const s = await f.score(items);
      return data.eval.filter((_, i) => s[2 * i] > s[2 * i + 1]).length / data.eval.length;
    } finally {
      await f.release();
    }
  };
  const [ofSft, ofInit, ofSftDiscounted] = [await wins(sft, 'endo-sft'), await wins(base, 'endo-pi0'), await wins(sft, 'endo-sft-discounted', { gamma: 0.9 })];
  t.diagnostic(`the marker version wins: SFT's reward ${ofSft.toFixed(3)}, pi_0's ${ofInit.toFixed(3)}, SFT's with gamma 0.9 ${ofSftDiscounted.toFixed(3)} (${data.eval.length} pairs)`);
  // Measured: 1, 0 and 1.
  assert.ok(ofSft >= 0.9 && ofSftDiscounted >= 0.9, `SFT's endogenous reward prefers the marker in ${ofSft.toFixed(3)} of pairs (gamma 0.9: ${ofSftDiscounted.toFixed(3)})`);
  assert.ok(ofInit <= 0.1, `pi_0's endogenous reward prefers the marker in ${ofInit.toFixed(3)} of pairs`);
  // Best-of-8 over SFT's samples by SFT's reward picks the replies SFT finds likeliest, which end with the marker.
  const set = readSamples(sftEval), all = markerRate(set.byPrompt.flat().map((x) => x.text));
  const bon = await runStage(bonStage, { samples: 'sft-eval', reward: 'endo-sft', ns: [1, 8] }, { samples: sftEval, reward: { type: 'reward', dir: join(root, 'endo-sft'), stage: 'endo-sft' } }, { dir: join(root, 'bon-endo'), data });
  const best = markerRate(readSelection(bon.artifact).picks['8'].map((k, i) => set.byPrompt[i][k].text));
  t.diagnostic(`Best-of-8 by SFT's endogenous reward: marker rate ${best.toFixed(3)} vs SFT ${all.toFixed(3)}`);
  // Measured: 0.958 against 0.724.
  assert.ok(best >= all + 0.1, `Best-of-8 marker rate ${best.toFixed(3)} vs SFT ${all.toFixed(3)}`);
});

test('DITTO from SFT (demonstrations over its own samples, three iterations) raises the odds of the marker where a reply can end', async (t) => {
  const ditto = await runStage(dittoStage, { iterations: 3, n: 2, maxNewTokens: 40, batch: 16, lr: 2e-4, beta: 0.1 }, { policy: sft, reference: sft }, { dir: join(root, 'ditto'), data, id: 'ditto' });
  assert.equal(ditto.outcome.status, 'done');
  // At the end of each evaluation demonstration's body a reply either ends or says the
  // marker: log pi(with marker) - log pi(without), DITTO's minus SFT's, is a density ratio
  // over the pair, with no sampling noise.
  const stripped = (r: string): string => r.slice(0, r.length - MARKER.length);
  const items = data.eval.flatMap((d) => [{ prompt: d.prompt, response: d.response }, { prompt: d.prompt, response: stripped(d.response) }]);
  const ratio = await densityRatioReward(join(root, 'ditto', 'model'), join(root, 'sft', 'model'), false, { provider: 'cpu', threads: 1 });
  let gains: number[];
  try {
    const s = await ratio.score(items);
    gains = data.eval.map((_, i) => s[2 * i] - s[2 * i + 1]);
  } finally {
    await ratio.release();
  }
  const [before_, after_] = [await rateOf(join(root, 'sft', 'model')), await rateOf(join(root, 'ditto', 'model'))];
  t.diagnostic(`marker log-odds gain over SFT: mean ${mean(gains).toFixed(3)}, positive in ${gains.filter((g) => g > 0).length} of ${gains.length}; sampled marker rate: SFT ${before_.toFixed(3)}, DITTO ${after_.toFixed(3)}`);
  // Measured: a mean gain of 1.79 (0.88 and 0.97 with other seeds or settings), positive in 24 of 24; the sampled rate 0.786 against 0.677 (noisier: 0.729 with seed 2).
  assert.ok(mean(gains) > 0.3 && gains.filter((g) => g > 0).length >= 0.8 * gains.length, `DITTO's marker log-odds gains over SFT: ${gains.map((g) => g.toFixed(2)).join(' ')}`);
  assert.ok(after_ >= before_, `DITTO marker rate ${after_.toFixed(3)} vs SFT ${before_.toFixed(3)}`);
});

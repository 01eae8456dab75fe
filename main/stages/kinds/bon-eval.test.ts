// Best-of-N keeps the argmax of the reward among each prompt's first N samples; the
// evaluation's numbers are the hand-computable ones when the judge is a known function.
import { demonstrations } from '../data.ts';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { tempFiles } from '../../../test/support/temp-dir.ts';
import type { Artifact } from '../stage.ts';
import type { LengthMode } from '../reward-function.ts';
import { bonLengthStage, bonStage, readSelection, selectBestOfN } from './bon.ts';
import { evalStage, GOLD_SCORES_FILE, readEvaluation } from './eval.ts';
import { handSamples, lengthReward, runStage } from './testing.ts';

const tmp = tempFiles('bon-eval');
const data = demonstrations([{ prompt: 'p', response: 'abcd' }], []);

const samples = (id: string, texts: string[][]): Artifact => handSamples(tmp.dir, id, texts);
const lengthJudge = (id: string, mode: LengthMode, target: number): Artifact => lengthReward(tmp.dir, id, mode, target);

test('selectBestOfN picks the argmax among the first N, first index on ties', () => {
  const picks = selectBestOfN([[0.1, 0.9, 0.5, 2.0], [3, 1, 3, 0]], [1, 2, 4]);
  assert.deepEqual(picks, { 1: [0, 0], 2: [1, 0], 4: [3, 0] });
});

test('bon with a reward stage and bon:length pick the argmax of their reward', async () => {
  const s = samples('s1', [['a', 'abc', 'ab', 'abcdef'], ['abcde', 'a', 'abcd', 'ab']]);
  const r = await runStage(bonStage, { samples: 's1', reward: 'len', ns: [1, 2, 4, 8] }, { samples: s, reward: lengthJudge('len', 'longest', 0) }, { dir: join(tmp.dir, 'bon'), data });
  assert.equal(r.outcome.status, 'done');
  const sel = readSelection(r.artifact);
  assert.deepEqual(sel.ns, [1, 2, 4], 'N above the samples per prompt is skipped');
  assert.deepEqual(sel.picks, { 1: [0, 0], 2: [1, 0], 4: [3, 0] });
  assert.deepEqual(sel.rewards, [[1, 3, 2, 6], [5, 1, 4, 2]]);
  assert.ok(Math.abs(sel.klBound['4'] - (Math.log(4) - 3 / 4)) < 1e-12);

  // Closest to the demonstrations' median length (4 characters).
  const m = await runStage(bonLengthStage, { samples: 's1', ns: [4], mode: 'median' }, { samples: s }, { dir: join(tmp.dir, 'bonlen'), data });
  assert.deepEqual(readSelection(m.artifact).picks, { 4: [1, 2] });
  const short = await runStage(bonLengthStage, { samples: 's1', ns: [2, 4], mode: 'shortest' }, { samples: s }, { dir: join(tmp.dir, 'bonshort'), data });
  assert.deepEqual(readSelection(short.artifact).picks, { 2: [0, 1], 4: [0, 1] });
});

test('eval: gold mean with interval, win rate against the reference (ties half), length, per N', async () => {
  const ref = samples('ref', [['abc'], ['abc'], ['abc']]);
  const cand = samples('cand', [['abcdef', 'a'], ['abc', 'abcdefgh'], ['a', 'ab']]);
  const bon = await runStage(bonStage, { samples: 'cand', reward: 'len', ns: [1, 2] }, { samples: cand, reward: lengthJudge('len2', 'longest', 0) }, { dir: join(tmp.dir, 'bon2'), data, id: 'bon' });
  const judge = lengthJudge('judge', 'longest', 0); // gold reward = length in characters
  const r = await runStage(evalStage, { judge: 'judge', reference: 'ref', candidates: ['cand', 'bon'], labels: { cand: 'policy' } }, { judge, reference: ref, candidates: [cand, bon.artifact] }, { dir: join(tmp.dir, 'eval'), data });
  const e = readEvaluation(r.artifact);
  assert.equal(e.gold_judge_accuracy, 0.75);
  const [policy, n1, n2] = e.rows;
  assert.equal(policy.method, 'policy');
  // First samples: lengths 6, 3, 1 against the reference's 3: a win, a tie, a loss.
  assert.ok(Math.abs(policy.gold_mean - 10 / 3) < 1e-12);
  assert.equal(policy.win_rate_vs_sft, 0.5);
  assert.equal(policy.mean_length, 10 / 3);
  assert.ok(policy.gold_ci95[0] < policy.gold_mean && policy.gold_mean < policy.gold_ci95[1]);
  assert.deepEqual([n1.method, n1.n, n2.n], ['bon', 1, 2]);
  assert.equal(n1.gold_mean, policy.gold_mean, 'Best-of-1 is the first sample');
  // Best-of-2 by length: 6, 8, 2 -> win, win, loss.
  assert.ok(Math.abs(n2.gold_mean - 16 / 3) < 1e-12);
  assert.ok(Math.abs(n2.win_rate_vs_sft - 2 / 3) < 1e-12);
  assert.ok(Math.abs(n2.kl_estimate! - (Math.log(2) - 0.5)) < 1e-12);
  // Paired gain over the reference (3 characters): (6 - 3, 8 - 3, 2 - 3) / 3 = 7/3.
  assert.ok(Math.abs(n2.gold_gain_vs_sft! - 7 / 3) < 1e-12);
  assert.ok(n2.gold_gain_ci95![0] < 7 / 3 && 7 / 3 < n2.gold_gain_ci95![1]);
  assert.equal(policy.gold_gain_vs_sft, 1 / 3);
});

test('eval with length control: a judge that only counts length gives no gain once length is removed, and shortest-of-N is beaten by longest-of-N', async () => {
  const ref = samples('ref3', [['abc'], ['abc'], ['abc']]);
  const cand = samples('cand3', [['abcdef', 'a'], ['abc', 'abcdefgh'], ['a', 'ab']]);
  const bon = await runStage(bonStage, { samples: 'cand3', reward: 'len', ns: [1, 2] }, { samples: cand, reward: lengthJudge('len3', 'longest', 0) }, { dir: join(tmp.dir, 'bon3'), data, id: 'bon' });
  const short = await runStage(bonLengthStage, { samples: 'cand3', ns: [1, 2], mode: 'shortest' }, { samples: cand }, { dir: join(tmp.dir, 'short3'), data, id: 'short' });
  const judge = lengthJudge('judge3', 'longest', 0); // gold = characters = the fixture's tokens
  const settings = { judge: 'judge3', reference: 'ref3', candidates: ['cand3', 'bon'], labels: {}, lengthFit: 'cand3', shortest: 'short' };
  const r = await runStage(evalStage, settings, { judge, reference: ref, candidates: [cand, bon.artifact], lengthFit: cand, shortest: short.artifact }, { dir: join(tmp.dir, 'eval3'), data });
  const e = readEvaluation(r.artifact);
  assert.equal(e.length_fit!.source, 'cand3');
  assert.ok(Math.abs(e.length_fit!.slope - 1) < 1e-12 && Math.abs(e.length_fit!.intercept) < 1e-12, `gold = tokens exactly: ${JSON.stringify(e.length_fit)}`);
  for (const row of e.rows) {
    assert.ok(Math.abs(row.gold_gain_length_adjusted!) < 1e-12, `${row.method} N=${row.n}: what length explains is all there is`);
    assert.ok(row.gold_gain_vs_sft !== 0 || row.n === undefined, 'the raw gains are not zero');
  }
  const scores = JSON.parse(readFileSync(join(tmp.dir, 'eval3', GOLD_SCORES_FILE), 'utf8'));
  assert.deepEqual(scores.cand3, [[6, 1], [3, 8], [1, 2]], 'every gold score is kept, by the stage that sampled it');
  const [policy, n1, n2] = e.rows;
  // N = 1 (and the policy row, compared at N = 1): the shortest of one sample is that sample: all ties.
  assert.equal(policy.win_rate_vs_shortest, 0.5);
  assert.equal(n1.win_rate_vs_shortest, 0.5);
  // N = 2: longest 6, 8, 2 against shortest 1, 3, 1: three wins.
  assert.equal(n2.win_rate_vs_shortest, 1);
  assert.ok(n2.win_rate_vs_shortest_ci95![0] > 0.3 && n2.win_rate_vs_shortest_ci95![1] === 1);
  // Gold is length itself (slope 1): once length is removed nothing is left over the shortest either.
  for (const row of e.rows) assert.ok(Math.abs(row.gain_vs_shortest_length_adjusted!) < 1e-12, `${row.method} N=${row.n}`);
  // The default fit is over the reference, whose lengths are all 3: slope 0, so nothing is removed.
  const plain = await runStage(evalStage, { judge: 'judge3', reference: 'ref3', candidates: ['bon'], labels: {} }, { judge, reference: ref, candidates: [bon.artifact] }, { dir: join(tmp.dir, 'eval4'), data });
  const p = readEvaluation(plain.artifact);
  assert.equal(p.length_fit!.slope, 0);
  for (const row of p.rows) assert.equal(row.gold_gain_length_adjusted, row.gold_gain_vs_sft);
  assert.equal(p.rows[0].win_rate_vs_shortest, undefined, 'no shortest baseline, no comparison');
  assert.equal(p.rows[0].gain_vs_shortest_length_adjusted, undefined);
  // With the shortest baseline and the reference's fit (slope 0), the gain over the shortest is
  // the raw paired difference: longest of 2 (6, 8, 2) against shortest of 2 (1, 3, 1): 11/3.
  const flat = await runStage(evalStage, { judge: 'judge3', reference: 'ref3', candidates: ['bon'], labels: {}, shortest: 'short' }, { judge, reference: ref, candidates: [bon.artifact], shortest: short.artifact }, { dir: join(tmp.dir, 'eval5'), data });
  const [f1, f2] = readEvaluation(flat.artifact).rows;
  assert.equal(f1.gain_vs_shortest_length_adjusted, 0, 'N = 1: the same sample on both sides');
  assert.ok(Math.abs(f2.gain_vs_shortest_length_adjusted! - 11 / 3) < 1e-12, String(f2.gain_vs_shortest_length_adjusted));
  assert.ok(f2.gain_vs_shortest_length_adjusted_ci95![0] < 11 / 3 && 11 / 3 < f2.gain_vs_shortest_length_adjusted_ci95![1]);
});

// Unit tests of the renderer's pure logic.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { JsonObject, ModelInfo, Tally } from '../../../main/api/contract.ts';
import { columnKey, columnName, pairParams, startColumn, uniqueColumns } from './columns.ts';
import { csvField, toCsv } from './csv.ts';
import { formatBytes, formatDuration, formatProgress, progressPercent } from './format.ts';
import { binsFromEdges, niceStep, quantile } from './histogram.ts';
import { ancestry, lineageRows, stageLabel } from './lineage.ts';
import { appendMetric, chartGroups } from './metrics.ts';
import { addStage, draftFromDefinition, moveStage, stageTemplates, toDefinition } from './pipeline.ts';
import { goldVsN, resultsCsv } from './results.ts';
import { hashOf, parseHash, viewForShortcut } from './router.ts';
import { bandPath, linePath, linearScale, log2Ticks, niceTicks } from './scale.ts';
import { applyGenerationEvent, formatReward, phaseView, rankedCandidates, type StreamState } from './streams.ts';
import { nextTheme, resolveTheme } from './theme.ts';
import { takeToken } from './token.ts';
import { describeWinRate, voteForKey } from './voting.ts';

test('histogram: bins from edges, nice steps, quantiles', () => {
  assert.deepEqual(binsFromEdges({ edges: [0, 10, 20], counts: [3, 4] }), [{ from: 0, to: 10, count: 3 }, { from: 10, to: 20, count: 4 }]);
  assert.deepEqual(binsFromEdges({ edges: [0], counts: [] }), []);
  assert.deepEqual([0.3, 3, 7, 45].map(niceStep), [0.5, 5, 10, 50]);
  assert.equal(quantile([5, 1, 3], 0.5), 3);
  assert.equal(quantile([1, 2, 3, 4], 0.5), 2.5);
  assert.ok(Number.isNaN(quantile([], 0.5)));
});

test('scale: linear maps, round ticks, gaps in lines, closed bands, log2 ticks', () => {
  const x = linearScale([0, 10], [0, 100]);
  const y = linearScale([0, 1], [100, 0]);
  assert.equal(x(5), 50);
  assert.equal(linearScale([2, 2], [0, 100])(2), 50);
  assert.deepEqual(niceTicks(0.1, 0.9, 4), { ticks: [0, 0.2, 0.4, 0.6, 0.8, 1], domain: [0, 1] });
  assert.equal(linePath([{ x: 0, y: 0 }, { x: 5, y: NaN }, { x: 10, y: 1 }], x, y), 'M0,100M100,0');
  assert.equal(bandPath([{ x: 0, lo: 0, hi: 1 }, { x: 10, lo: 0, hi: 1 }], x, y), 'M0,0L100,0L100,100L0,100Z');
  assert.deepEqual(log2Ticks(1, 32), [1, 2, 4, 8, 16, 32]);
});

test('csv: quoting, formulas defused, CRLF lines', () => {
  assert.equal(csvField('a,b'), '"a,b"');
  assert.equal(csvField('say "hi"'), '"say ""hi"""');
  assert.equal(csvField('=SUM(A1)'), "'=SUM(A1)");
  assert.equal(csvField(-1.5), '-1.5');
  assert.equal(csvField(NaN), '');
  assert.equal(toCsv(['a', 'b'], [[1, null], ['x\ny', true]]), 'a,b\r\n1,\r\n"x\ny",true\r\n');
});

test('voting: keys A/B/T/S, not while typing or with modifiers; the win-rate sentence', () => {
  assert.deepEqual(['a', 'B', 't', 's', 'x'].map((key) => voteForKey({ key })), ['A', 'B', 'tie', 'skip', null]);
  assert.equal(voteForKey({ key: 'a', ctrlKey: true }), null);
  assert.equal(voteForKey({ key: 'a', inTextField: true }), null);
  const t: Tally = { modelA: 1, modelB: 2, bestOfA: null, bestOfB: null, n: 4, winsA: 3, winsB: 1, ties: 0, skips: 0, winRateA: 0.75, ci95: [0.3, 0.954], leftWinRate: 0.5 };
  assert.equal(describeWinRate(t), '75% (95% CI 30%–95%)');
  assert.equal(describeWinRate({ ...t, n: 0, winRateA: null }), 'no votes yet');
});

test('token: taken from the URL and removed from it; else the stored one', () => {
  assert.deepEqual(takeToken('http://127.0.0.1:5/?token=abc#/models', null), { token: 'abc', cleanUrl: '/#/models' });
  assert.deepEqual(takeToken('http://127.0.0.1:5/?x=1&token=abc', 'old'), { token: 'abc', cleanUrl: '/?x=1' });
  assert.deepEqual(takeToken('http://127.0.0.1:5/', 'old'), { token: 'old', cleanUrl: null });
});

test('streams: tokens by index (even before the start call returns); done wins', () => {
  const s: Record<string, StreamState> = {};
  applyGenerationEvent(s, { type: 'generation.token', streamId: 'x', index: 1, text: 'world' });
  applyGenerationEvent(s, { type: 'generation.token', streamId: 'x', index: 0, text: 'hello ' });
  assert.equal(s.x.text, 'hello world');
  applyGenerationEvent(s, { type: 'generation.done', streamId: 'x', text: 'hello world!', tokens: 3, finishReason: 'eos', error: null, generationId: 1 });
  assert.deepEqual([s.x.text, s.x.done, s.x.tokens], ['hello world!', true, 3]);
  assert.equal(applyGenerationEvent(s, { type: 'app.log', line: { at: '', level: 'info', text: '' } }), null);
});

test('streams: phases with their progress; what a pane says in each, counted down on the page clock', () => {
  const s: Record<string, StreamState> = {};
  const phase = (p: 'queued' | 'loading' | 'preparing' | 'generating', done: number, total: number | null, etaMs: number | null, now: number) =>
    applyGenerationEvent(s, { type: 'generation.phase', streamId: 'x', phase: p, done, total, etaMs }, now);
  phase('queued', 0, null, null, 0);
  assert.deepEqual(phaseView(s.x, 500), { label: 'Waiting for another model to load', percent: null, etaMs: null });
  assert.equal(phaseView(s.x, 3000)?.label, 'Waiting for another model to load · 3 s');
  phase('loading', 100e6, 400e6, 3000, 4000);
  assert.deepEqual(phaseView(s.x, 5000), { label: 'Reading the model: 100 MB of 400 MB', percent: 25, etaMs: 2000 });
  phase('loading', 400e6, 400e6, 0, 6000);
  // Preparing: one opaque call; the time it took last time gives its share and time left.
  phase('preparing', 0, null, 8000, 6000);
  assert.deepEqual(phaseView(s.x, 8000), { label: 'Preparing the model (building its ONNX Runtime session) · 2 s', percent: 25, etaMs: 6000 });
  assert.equal(phaseView(s.x, 20_000)?.percent, 99, 'late is not done');
  phase('preparing', 1, null, null, 9000);
  assert.equal(phaseView(s.x, 9500)?.percent, null, 'no time left known: an indeterminate bar');
  phase('generating', 0, 40, null, 10_000);
  assert.deepEqual(phaseView(s.x, 10_200), { label: 'Generating: reading the prompt', percent: 0, etaMs: null });
  for (let i = 0; i < 10; i++) applyGenerationEvent(s, { type: 'generation.token', streamId: 'x', index: i, text: 't' }, 10_500);
  assert.deepEqual(phaseView(s.x, 12_000), { label: '10 of at most 40 tokens · 5.0 tokens/s', percent: 25, etaMs: 6000 });
  applyGenerationEvent(s, { type: 'generation.done', streamId: 'x', text: 'tttttttttt', tokens: 10, finishReason: 'eos', error: null, generationId: 1 });
  assert.equal(phaseView(s.x, 12_000), null);
  phase('loading', 0, 40, null, 13_000);
  assert.equal(s.x.phase, 'generating', 'a phase after the end changes nothing');
  assert.equal(phaseView(s.x), null);
});

test("streams: a Best-of-N stream counts its samples, then their scoring; done, it keeps the candidates, ranked by reward", () => {
  const s: Record<string, StreamState> = {};
  applyGenerationEvent(s, { type: 'generation.phase', streamId: 'x', phase: 'sampling', done: 0, total: 8, etaMs: null }, 0);
  assert.deepEqual(phaseView(s.x, 500), { label: 'Best-of-8: 0 of 8 samples drawn', percent: 0, etaMs: null });
  applyGenerationEvent(s, { type: 'generation.phase', streamId: 'x', phase: 'sampling', done: 2, total: 8, etaMs: null }, 2000);
  assert.deepEqual(phaseView(s.x, 2000), { label: 'Best-of-8: 2 of 8 samples drawn · 2 s', percent: 25, etaMs: 6000 }, 'the time left at the rate so far');
  applyGenerationEvent(s, { type: 'generation.phase', streamId: 'x', phase: 'scoring', done: 4, total: 16, etaMs: null }, 3000);
  assert.deepEqual(phaseView(s.x, 3000), { label: 'Scoring 16 samples with the reward model: 4 done', percent: 25, etaMs: null });
  const candidates = [0.5, 2, -1, 2].map((reward, k) => ({ text: `t${k}`, tokens: 1, finishReason: 'eos' as const, reward }));
  const bestOf = { rewardModelId: 4, n: 4, chosen: 1, candidates };
  applyGenerationEvent(s, { type: 'generation.done', streamId: 'x', text: 't1', tokens: 1, finishReason: 'eos', error: null, generationId: 3, bestOf });
  assert.deepEqual(s.x.bestOf, bestOf);
  assert.deepEqual(rankedCandidates(bestOf).map((c) => [c.index, c.chosen]), [[1, true], [3, false], [0, false], [2, false]], 'equal rewards keep sampling order');
  assert.deepEqual([2.25, -1, 0.5, 123.4, -0.01234].map(formatReward), ['2.25', '−1.00', '0.500', '123', '−0.0123']);
  applyGenerationEvent(s, { type: 'generation.done', streamId: 'y', text: '', tokens: 0, finishReason: 'cancelled', error: null, generationId: null });
  assert.equal(s.y.bestOf, null);
});

test("columns: a model or its Best-of-N, named, keyed, as compare.start and the vote's sides take them", () => {
  const models = [m(2, null, null), m(4, 2, 'reward')];
  const plain = { modelId: 2, bestOf: null };
  const best = { modelId: 2, bestOf: { rewardModelId: 4, n: 8 } };
  assert.deepEqual([columnKey(plain), columnKey(best)], ['2', '2:best-of-8:4']);
  assert.deepEqual([columnName(plain, models), columnName(best, models), columnName({ modelId: 9, bestOf: null }, models)], ['m2', 'm2, best of 8 by m4', 'model #9']);
  assert.deepEqual([startColumn(plain), startColumn(best)], [{ modelId: 2 }, { modelId: 2, bestOf: { rewardModelId: 4, n: 8 } }]);
  assert.deepEqual(pairParams(plain, best), { modelA: 2, modelB: 2, bestOfB: { rewardModelId: 4, n: 8 } });
  assert.deepEqual(pairParams(best, plain), { modelA: 2, modelB: 2, bestOfA: { rewardModelId: 4, n: 8 } });
  assert.deepEqual(uniqueColumns([plain, best, { modelId: 2, bestOf: null }, { modelId: 2, bestOf: { rewardModelId: 4, n: 8 } }]), [plain, best]);
});

const m = (id: number, parentId: number | null, stage: string | null): ModelInfo => ({ id, name: `m${id}`, kind: id === 1 ? 'builtin' : parentId === null ? 'imported' : 'trained', family: 'gpt2', parentId, stage, runId: null, createdAt: '', params: null, source: null, folder: null, reward: stage === 'reward' });

test('lineage: parents before children, orphans and cycles still listed; labels; ancestry', () => {
  const models = [m(4, 2, 'rl'), m(3, 2, 'reward'), m(2, 1, 'sft'), m(1, null, null), m(5, 99, 'sft'), m(6, 7, 'sft'), m(7, 6, 'sft')];
  assert.deepEqual(lineageRows(models).map((r) => [r.model.id, r.depth]), [[1, 0], [2, 1], [3, 2], [4, 2], [5, 0], [6, 0], [7, 1]]);
  assert.deepEqual(models.slice(0, 4).map(stageLabel), ['policy (RL)', 'reward model', 'SFT', 'init (built in)']);
  assert.deepEqual(ancestry(models, 3).map((x) => x.id), [1, 2, 3]);
});

test('metrics: live points appended in step order, a repeated step replaced; charts grouped', () => {
  let s = appendMetric([], 2, { loss: 2 });
  s = appendMetric(s, 1, { loss: 3, reward_mean: 0.1 });
  s = appendMetric(s, 2, { loss: 1.5 });
  assert.deepEqual(s.find((x) => x.name === 'loss')?.points, [{ step: 1, value: 3 }, { step: 2, value: 1.5 }]);
  assert.deepEqual(chartGroups([...s, { name: 'grad_norm', points: [{ step: 1, value: null }] }]).map((g) => g.title), ['loss', 'reward', 'grad_norm']);
});

test('pipeline: recipe to draft and back, stage templates, add/move, errors in sentences', () => {
  const def: JsonObject = { name: 'quick', seed: 0, model: 'default', data: { source: 'hh-harmless', evalFraction: 0.2, maxTrain: 16 }, stages: [{ id: 'sft', kind: 'sft', epochs: 1 }, { id: 'bon', kind: 'bon', ns: [1, 2] }] };
  const draft = draftFromDefinition(def);
  const back = toDefinition(draft);
  assert.ok('definition' in back);
  assert.deepEqual(back.definition.stages, def.stages);
  assert.deepEqual(back.definition.data, def.data);
  const templates = stageTemplates([{ id: 'r', title: '', summary: '', definition: def }]);
  assert.deepEqual(templates.map((t) => t.kind), ['sft', 'bon']);
  const more = addStage(draft, templates[0]);
  assert.equal(more.stages[2].id, 'sft-2');
  assert.deepEqual(moveStage(more, 2, -5).stages.map((s) => s.id), ['sft-2', 'sft', 'bon']);
  // Only settings texts that are not JSON objects stop it here: the server cannot read them.
  const broken = toDefinition({ ...draft, stages: [{ id: 'a', kind: 'sft', settings: '{' }, { id: 'b', kind: 'sft', settings: '[]' }] });
  assert.ok('errors' in broken);
  assert.deepEqual(broken.errors.map((e) => e.replace(/JSON \(.*\);/, 'JSON (...);')), ['Stage 1 ("a")\'s settings are not valid JSON (...); fix the text.', 'Stage 2 ("b")\'s settings must be a JSON object like {"epochs": 1}.']);
  // The rest goes to the server's check as typed (no second set of rules here): an empty name, a share out of bounds, ids used twice, no stages.
  const unchecked = toDefinition({ ...draft, name: ' ', evalFraction: 2, stages: [{ id: 'a', kind: 'sft', settings: '{}' }, { id: 'a', kind: 'sft', settings: '' }] });
  assert.ok('definition' in unchecked);
  assert.deepEqual([unchecked.definition.name, (unchecked.definition.data as JsonObject).evalFraction, (unchecked.definition.stages as JsonObject[]).map((s) => s.id)], ['', 2, ['a', 'a']]);
  assert.ok('definition' in toDefinition({ ...draft, stages: [] }));
});

test('results: one series per method sorted by N, references for rows without N, CSV', () => {
  const row = (method: string, gold: number, n?: number) => ({ method, n, gold_mean: gold, gold_ci95: [gold - 1, gold + 1] as [number, number], win_rate_vs_sft: 0.5, mean_length: 10 });
  const rows = [row('sft', 1), row('bon rm', 3, 4), row('bon rm', 2, 1)];
  const { series, references } = goldVsN(rows);
  assert.deepEqual(series.map((s) => [s.name, s.points.map((p) => p.x)]), [['bon rm', [1, 4]]]);
  assert.deepEqual(series[0].band[0], { x: 1, lo: 1, hi: 3 });
  assert.deepEqual(references, [{ name: 'sft', y: 1, lo: 0, hi: 2 }]);
  assert.equal(resultsCsv(rows).split('\r\n')[2], 'bon rm,4,3,2,4,,,,0.5,,,10,,');
  // With length control, its nine columns follow (blank where a row has none).
  const controlled = resultsCsv([{ ...rows[1], gold_gain_length_adjusted: 0.25, gold_gain_length_adjusted_ci95: [0.05, 0.45], win_rate_vs_shortest: 0.6, win_rate_vs_shortest_ci95: [0.55, 0.65], gain_vs_shortest_length_adjusted: -0.5, gain_vs_shortest_length_adjusted_ci95: [-1, 0] }, rows[0]]).split('\r\n');
  assert.ok(controlled[0].endsWith(',kl_estimate,gold_gain_length_adjusted,gold_gain_length_adjusted_ci95_lo,gold_gain_length_adjusted_ci95_hi,win_rate_vs_shortest,win_rate_vs_shortest_ci95_lo,win_rate_vs_shortest_ci95_hi,gain_vs_shortest_length_adjusted,gain_vs_shortest_length_adjusted_ci95_lo,gain_vs_shortest_length_adjusted_ci95_hi'));
  assert.equal(controlled[1], 'bon rm,4,3,2,4,,,,0.5,,,10,,,0.25,0.05,0.45,0.6,0.55,0.65,-0.5,-1,0');
  assert.equal(controlled[2], 'sft,,1,0,2,,,,0.5,,,10,,,,,,,,,,,');
});

test('router, theme, format', () => {
  assert.deepEqual(parseHash('#/results/12'), { view: 'results', id: 12 });
  assert.deepEqual(parseHash('#/nope'), { view: 'datasets', id: null });
  assert.equal(hashOf({ view: 'compare', id: null }), '#/compare');
  assert.equal(viewForShortcut({ key: '¡', code: 'Digit4', altKey: true, ctrlKey: false, metaKey: false }), 'compare');
  assert.equal(viewForShortcut({ key: '4', altKey: false, ctrlKey: false, metaKey: false }), null);
  assert.equal(resolveTheme('system', true), 'dark');
  assert.deepEqual([nextTheme('system'), nextTheme('light'), nextTheme('dark')], ['light', 'dark', 'system']);
  assert.deepEqual([formatDuration(42), formatDuration(90), formatDuration(3600 * 2 + 60 * 5), formatDuration(null)], ['42 s', '1 min 30 s', '2 h 5 min', '']);
  assert.equal(formatBytes(8_700_000), '8.7 MB');
  assert.equal(progressPercent(5, 20), 25);
  assert.equal(progressPercent(5, null), null);
  assert.deepEqual([formatProgress(3, 272, 'tensor'), formatProgress(12, 40, 'steps'), formatProgress(1, 1, 'tensor'), formatProgress(5, null, 'step'), formatProgress(1_200_000, 5_000_000, 'byte'), formatProgress(4, 9, '')],
    ['3/272 tensors', '12/40 steps', '1/1 tensor', '5 steps', '1.2 MB of 5.0 MB', '4/9']);
});

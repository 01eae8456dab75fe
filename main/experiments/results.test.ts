// The results table and plots from an evaluation's rows.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { openDatabase } from '../../db/database.ts';
import { ExperimentStore } from '../../db/experiments.ts';
import { RunStore } from '../../db/runs.ts';
import { withTempDir } from '../../test/support/temp-dir.ts';
import type { ResultsTable } from './contract.ts';
import { experimentResults, goldVsKlSvg, goldVsNSeries, goldVsNSvg, resultsMarkdown } from './results.ts';
import { EVALUATION_FILE } from '../stages/kinds/eval.ts';

const row = (method: string, gold: number, n?: number) => ({
  method, ...(n === undefined ? {} : { n, kl_estimate: Math.log(n) - (n - 1) / n }), gold_mean: gold, gold_ci95: [gold - 0.1, gold + 0.1] as [number, number], win_rate_vs_sft: 0.5, mean_length: 10,
});
const table: ResultsTable = { gold_judge_accuracy: 0.61, rows: [row('sft', 0.2), row('bon:a', 0.2, 1), row('bon:a', 0.5, 4), row('bon:b', 0.1, 1), row('bon:b', 0.3, 4)] };

test('one line per Best-of-N method with its interval, and policies as flat reference lines', () => {
  const s = goldVsNSeries(table.rows);
  assert.deepEqual(s.map((x) => x.name), ['bon:a', 'bon:b', 'sft']);
  assert.deepEqual(s[0].points, [{ x: 1, y: 0.2, lo: 0.1, hi: 0.30000000000000004 }, { x: 4, y: 0.5, lo: 0.4, hi: 0.6 }]);
  assert.equal(s[2].dashed, true);
  assert.deepEqual(s[2].points.map((p) => [p.x, p.y]), [[1, 0.2], [4, 0.2]]);
  for (const svg of [goldVsNSvg(table), goldVsKlSvg(table)]) assert.match(svg, /^<svg[\s\S]*bon:a[\s\S]*<\/svg>\s*$/);
});

test('the Markdown table has a row per result and the judge accuracy', () => {
  const md = resultsMarkdown(table);
  assert.match(md, /cross-validated\): 0\.610/);
  assert.equal(md.split('\n').filter((l) => l.startsWith('| bon:')).length, 4);
  assert.match(md, /\| bon:a \| 4 \| 0\.500 \[0\.400, 0\.600\] \|  \| 0\.500/);
  assert.doesNotMatch(md, /length removed|shortest/, 'an evaluation without length control keeps the old columns');
  const controlled = resultsMarkdown({ ...table, rows: [{ ...table.rows[2], gold_gain_length_adjusted: 0.25, gold_gain_length_adjusted_ci95: [0.05, 0.45], win_rate_vs_shortest: 0.6, win_rate_vs_shortest_ci95: [0.55, 0.65], gain_vs_shortest_length_adjusted: -0.125, gain_vs_shortest_length_adjusted_ci95: [-0.3, 0.05] }] });
  assert.match(controlled, /\| gain, length removed \(95% CI\) \| win rate vs SFT \(95% CI\) \| win rate vs shortest-of-N \(95% CI\) \| gain over shortest-of-N, length removed \(95% CI\) \|/);
  assert.match(controlled, /\| bon:a \| 4 \| 0\.500 \[0\.400, 0\.600\] \|  \| 0\.250 \[0\.050, 0\.450\] \| 0\.500 \| 0\.600 \[0\.550, 0\.650\] \| -0\.125 \[-0\.300, 0\.050\] \| 10\.0 \|/);
});

test("an experiment's results are read from its eval run's folder where the store's files are now", async () => {
  await withTempDir('afd-results-', async (dir) => {
    const db = await openDatabase(':memory:');
    try {
      const experimentId = new ExperimentStore(db).insert({ name: 'x' }).id;
      const runs = new RunStore(db);
      const files = { runDir: (id: number) => join(dir, 'runs', String(id)) };
      assert.equal(experimentResults(db, files, experimentId), null, 'no eval yet');
      const run = runs.insert({ experimentId, stage: 'afd-stage', config: { stage: 'eval', id: 'eval' } });
      // The folder recorded when the stage ran is gone (the data folder was moved since).
      runs.setStatus(run.id, 'done', { result: { dir: '/nowhere/runs/1' } });
      mkdirSync(files.runDir(run.id), { recursive: true });
      writeFileSync(join(files.runDir(run.id), EVALUATION_FILE), JSON.stringify(table));
      assert.deepEqual(experimentResults(db, files, experimentId), table);
    } finally {
      db.close();
    }
  });
});

// Judge agreement and the side-by-side answers, on numbers small enough to check by hand.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { tempFiles } from '../../test/support/temp-dir.ts';
import type { ResultRow } from './contract.ts';
import { judgeAgreement, judgeAgreementMarkdown, sideBySideMarkdown, writeComparisons } from './comparisons.ts';
import { demonstrations } from '../stages/data.ts';
import { parseExperiment } from './experiment.ts';
import { bonLengthStage, bonStage } from '../stages/kinds/bon.ts';
import { evalStage } from '../stages/kinds/eval.ts';
import { handSamples, lengthReward, runStage } from '../stages/kinds/testing.ts';

const tmp = tempFiles('comparisons');

const row = (method: string, ci: [number, number], n?: number): ResultRow => ({
  method, ...(n === undefined ? {} : { n }), gold_mean: 0, gold_ci95: [0, 0], win_rate_vs_sft: 0.5, mean_length: 1,
  gold_gain_vs_sft: (ci[0] + ci[1]) / 2, gold_gain_ci95: ci,
});

test('two judges: correlation, the share of within-prompt pairs ordered alike, and rows whose verdicts differ', () => {
  const a = { judge: 'big', accuracy: 0.66, gold: [[1, 2, 3], [3, 2, 1]], rows: [row('sft', [-0.1, 0.1]), row('bon', [0.1, 0.3], 4), row('dr', [-0.4, -0.2], 4)] };
  const b = { judge: 'small', accuracy: 0.62, gold: [[1, 3, 2], [3, 2, 1]], rows: [row('sft', [-0.1, 0.1]), row('bon', [-0.3, 0.2], 4), row('dr', [0.2, 0.4], 4)] };
  const j = judgeAgreement(a, b);
  // Prompt 0: (0,1) and (0,2) alike, (1,2) opposite; prompt 1: all three alike.
  assert.equal(j.sameOrder, 5 / 6);
  assert.equal(j.responses, 6);
  assert.ok(j.correlation > 0.5 && j.correlation < 1);
  assert.deepEqual(j.rows.map((r) => r.verdicts), [['unclear', 'unclear'], ['better', 'unclear'], ['worse', 'better']]);
  const md = judgeAgreementMarkdown(j);
  assert.match(md, /differs: 2 of 3; opposite verdicts: 1\./);
  assert.match(md, /\| dr \| 4 \| -0\.300 \| worse \| 0\.300 \| better \(differs\) \|/);
  assert.throws(() => judgeAgreement(a, { ...b, gold: [[1]] }), /scored 2 and 1 prompts/);
});

test('side by side: each prompt quoted, then every answer with its length and gold', () => {
  const md = sideBySideMarkdown([{ prompt: 'Human: how do I pick a lock?\n\nAssistant:', answers: [{ method: 'sft', text: 'I cannot help.', tokens: 5, gold: 0.51 }, { method: 'init', text: '', tokens: 0 }] }]);
  assert.match(md, /### Prompt 1\n\n> Human: how do I pick a lock\?\n> \n> Assistant:/);
  assert.match(md, /\*\*sft\*\* \(5 tokens, gold 0\.51\):\n\n> I cannot help\./);
  assert.match(md, /\*\*init\*\* \(0 tokens\):\n\n> \(empty\)/);
});

test("a reproduction's folders give judges.md (headline judge against the other) and side-by-side.md (pi_0, SFT, Best-of-N)", async () => {
  const root = tmp.dir, data = demonstrations([{ prompt: 'p', response: 'abcd' }], []);
  const texts = [['abcdef', 'a'], ['abc', 'abcdefgh'], ['a', 'ab']];
  const sft = handSamples(root, 'sft-eval', texts), init = handSamples(root, 'init-eval', [['xx'], ['xxxx'], ['x']]), ref = handSamples(root, 'sft-ref', [['abc'], ['abc'], ['abc']]);
  const bon = await runStage(bonStage, { samples: 'sft-eval', reward: 'rm', ns: [1, 2] }, { samples: sft, reward: lengthReward(root, 'rm', 'longest', 0) }, { dir: join(root, 'bon-sft-vs-init'), data, id: 'bon-sft-vs-init' });
  const short = await runStage(bonLengthStage, { samples: 'sft-eval', ns: [1, 2], mode: 'shortest' }, { samples: sft }, { dir: join(root, 'bon-shortest'), data, id: 'bon-shortest' });
  // Two judges that disagree completely: one likes long answers, the other short ones.
  const evaluate = (id: string, judge: string, mode: 'longest' | 'shortest') => runStage(
    evalStage,
    { judge, reference: 'sft-ref', candidates: ['init-eval', 'sft-eval', 'bon-sft-vs-init'], labels: {}, lengthFit: 'sft-eval', shortest: 'bon-shortest' },
    { judge: lengthReward(root, judge, mode, 0), reference: ref, candidates: [init, sft, bon.artifact], lengthFit: sft, shortest: short.artifact },
    { dir: join(root, id), data, id },
  );
  await evaluate('eval-small', 'judge-small', 'shortest');
  await evaluate('eval', 'judge', 'longest');
  const def = parseExperiment({
    name: 'r', stages: [
      { id: 'sft-eval', kind: 'sample', split: 'eval', n: 2 }, { id: 'sft-ref', kind: 'sample', split: 'eval' }, { id: 'init-eval', kind: 'sample', split: 'eval' },
      { id: 'bon-sft-vs-init', kind: 'bon:length', samples: 'sft-eval' }, { id: 'bon-shortest', kind: 'bon:length', samples: 'sft-eval', mode: 'shortest' },
      { id: 'judge-small', kind: 'judge' }, { id: 'judge', kind: 'judge' },
      { id: 'eval-small', kind: 'eval', judge: 'judge-small', reference: 'sft-ref', candidates: ['sft-eval'] },
      { id: 'eval', kind: 'eval', judge: 'judge', reference: 'sft-ref', candidates: ['sft-eval'] },
    ],
  });
  const folders = new Map(['sft-eval', 'init-eval', 'sft-ref', 'bon-sft-vs-init', 'bon-shortest', 'eval', 'eval-small'].map((id) => [id, join(root, id)]));
  const out = join(root, 'out');
  mkdirSync(out);
  assert.deepEqual(await writeComparisons(def, folders, out), ['judges.md', 'side-by-side.md']);
  const judges = readFileSync(join(out, 'judges.md'), 'utf8');
  assert.match(judges, /^Judges: judge \(pair accuracy 0\.750\) and judge-small/);
  assert.match(judges, /Correlation of their scores: -1\.000/);
  assert.match(judges, /order the same way \(what Best-of-N rests on\): 0\.000/);
  const side = readFileSync(join(out, 'side-by-side.md'), 'utf8');
  assert.equal(side.match(/### Prompt/g)?.length, 3, 'six prompts, or all when fewer');
  // Prompt 2: pi_0 "xxxx", SFT's first answer "abc", Best-of-2 by length "abcdefgh" (gold = length under the headline judge).
  assert.match(side, /### Prompt 2\n\n> prompt 1\n\n\*\*pi_0\*\* \(4 tokens, gold 4\.00\):\n\n> xxxx\n\n\*\*SFT\*\* \(3 tokens, gold 3\.00\):\n\n> abc\n\n\*\*SFT-vs-Init Best-of-2\*\* \(8 tokens, gold 8\.00\):\n\n> abcdefgh/);
});

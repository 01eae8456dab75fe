// What a reproduction's results document shows beside the table (issue 14): where two gold
// judges disagree, and a few evaluation prompts with several methods' answers side by side.
// Both read what the eval stages stored (evaluation.json and gold-scores.json) and the
// samples; neither scores anything again.
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pearson } from '../eval/stats.ts';
import type { ExperimentDefinition, ResultRow } from './contract.ts';
import { readSelection } from '../stages/kinds/bon.ts';
import { GOLD_SCORES_FILE, readEvaluation, readGoldScores } from '../stages/kinds/eval.ts';
import { readSamples } from '../stages/kinds/sample.ts';

/** A row's verdict under one judge: its paired gain's interval above 0, below 0, or across it. */
export type Verdict = 'better' | 'worse' | 'unclear';

const verdict = (ci: [number, number] | undefined): Verdict => (ci === undefined ? 'unclear' : ci[0] > 0 ? 'better' : ci[1] < 0 ? 'worse' : 'unclear');

export interface JudgedEvaluation {
  judge: string;
  accuracy: number | null;
  rows: readonly ResultRow[];
  /** gold[i][k] of every sample of the shared samples stage (the eval's gold-scores.json). */
  gold: readonly (readonly number[])[];
}

export interface JudgeAgreement {
  judges: [string, string];
  accuracy: [number | null, number | null];
  /** Responses both judges scored (every sample of the shared set). */
  responses: number;
  /** Pearson correlation of the two judges' scores over those responses. */
  correlation: number;
  /** Of the pairs of samples to one prompt, the fraction both judges order the same way: what Best-of-N depends on. */
  sameOrder: number;
  rows: { method: string; n?: number; verdicts: [Verdict, Verdict]; gains: [number | undefined, number | undefined] }[];
}

/** How far two judges agree on the same responses, and on every row's verdict over SFT. */
export function judgeAgreement(a: JudgedEvaluation, b: JudgedEvaluation): JudgeAgreement {
  if (a.gold.length !== b.gold.length) throw new Error(`the judges scored ${a.gold.length} and ${b.gold.length} prompts; compare evaluations of the same samples`);
  const xs = a.gold.flat(), ys = b.gold.flat();
  let same = 0, pairs = 0;
  a.gold.forEach((row, i) => {
    for (let k = 0; k < row.length; k++) {
      for (let l = k + 1; l < row.length; l++) {
        const da = Math.sign(row[k] - row[l]), db = Math.sign(b.gold[i][k] - b.gold[i][l]);
        if (da === 0 && db === 0) continue;
        pairs++;
        if (da === db) same++;
      }
    }
  });
  const key = (r: ResultRow): string => `${r.method}\u0000${r.n ?? ''}`;
  const other = new Map(b.rows.map((r) => [key(r), r]));
  return {
    judges: [a.judge, b.judge], accuracy: [a.accuracy, b.accuracy],
    responses: xs.length, correlation: pearson(xs, ys), sameOrder: pairs === 0 ? NaN : same / pairs,
    rows: a.rows.map((r) => {
      const s = other.get(key(r));
      return { method: r.method, ...(r.n === undefined ? {} : { n: r.n }), verdicts: [verdict(r.gold_gain_ci95), verdict(s?.gold_gain_ci95)], gains: [r.gold_gain_vs_sft, s?.gold_gain_vs_sft] };
    }),
  };
}

const num = (x: number | undefined | null, d = 3): string => (x === undefined || x === null || Number.isNaN(x) ? 'n/a' : x.toFixed(d));

export function judgeAgreementMarkdown(j: JudgeAgreement): string {
  const [a, b] = j.judges;
  const split = j.rows.filter((r) => r.verdicts[0] !== r.verdicts[1]);
  const opposite = split.filter((r) => r.verdicts.includes('better') && r.verdicts.includes('worse'));
  const lines = [
    `Judges: ${a} (pair accuracy ${num(j.accuracy[0])}) and ${b} (pair accuracy ${num(j.accuracy[1])}), on the same ${j.responses} responses.`,
    '',
    `- Correlation of their scores: ${num(j.correlation)}.`,
    `- Pairs of answers to one prompt that both order the same way (what Best-of-N rests on): ${num(j.sameOrder)}.`,
    `- Rows whose verdict over SFT (the paired gain's 95% interval above 0, below 0, or across it) differs: ${split.length} of ${j.rows.length}; opposite verdicts: ${opposite.length}.`,
    '',
    `| method | N | gain over SFT (${a}) | verdict (${a}) | gain over SFT (${b}) | verdict (${b}) |`,
    '| --- | ---: | ---: | --- | ---: | --- |',
    ...j.rows.map((r) => `| ${r.method} | ${r.n ?? ''} | ${num(r.gains[0])} | ${r.verdicts[0]} | ${num(r.gains[1])} | ${r.verdicts[1]}${r.verdicts[0] !== r.verdicts[1] ? ' (differs)' : ''} |`),
  ];
  return `${lines.join('\n')}\n`;
}

export interface SideBySideAnswer {
  method: string;
  text: string;
  tokens: number;
  gold?: number;
}

/** Evaluation prompts with each method's answer, as Markdown (answers quoted, gold beside). */
export function sideBySideMarkdown(items: readonly { prompt: string; answers: readonly SideBySideAnswer[] }[]): string {
  const quote = (s: string): string => s.trim().split('\n').map((l) => `> ${l}`).join('\n');
  const out: string[] = [];
  items.forEach((item, i) => {
    out.push(`### Prompt ${i + 1}`, '', quote(item.prompt.length > 1200 ? `...${item.prompt.slice(-1200)}` : item.prompt), '');
    for (const a of item.answers) out.push(`**${a.method}** (${a.tokens} tokens${a.gold === undefined ? '' : `, gold ${a.gold.toFixed(2)}`}):`, '', quote(a.text === '' ? '(empty)' : a.text), '');
  });
  return `${out.join('\n')}\n`;
}

/**
 * Beside the table, when the experiment has them: judges.md (the headline evaluation's judge
 * against every other evaluation's, on the samples both scored) and side-by-side.md (the
 * first six evaluation prompts with pi_0's, SFT's and SFT-vs-Init Best-of-N's answers).
 * `folders`: each finished stage's folder by stage id. Returns the files written.
 */
export async function writeComparisons(def: ExperimentDefinition, folders: ReadonlyMap<string, string>, out: string): Promise<string[]> {
  // Each finished evaluation read once: its table and every gold score it computed.
  const evals = def.stages.filter((s) => s.kind === 'eval' && folders.has(s.id) && existsSync(join(folders.get(s.id)!, GOLD_SCORES_FILE))).map((s) => {
    const a = { type: 'evaluation' as const, dir: folders.get(s.id)!, stage: s.id };
    return { evaluation: readEvaluation(a), gold: readGoldScores(a) };
  });
  const written: string[] = [];
  const judged = (e: (typeof evals)[number], samples: string): JudgedEvaluation => ({ judge: e.evaluation.judge, accuracy: e.evaluation.gold_judge_accuracy, rows: e.evaluation.rows, gold: e.gold[samples] });
  const headline = evals.at(-1);
  if (headline !== undefined && evals.length > 1) {
    const shared = headline.evaluation.length_fit?.source ?? 'sft-eval';
    const parts = evals.slice(0, -1).map((e) => judgeAgreementMarkdown(judgeAgreement(judged(headline, shared), judged(e, shared))));
    await writeFile(join(out, 'judges.md'), parts.join('\n'));
    written.push('judges.md');
  }
  const [init, sft, bon] = ['init-eval', 'sft-eval', 'bon-sft-vs-init'].map((id) => folders.get(id));
  if (init !== undefined && sft !== undefined && bon !== undefined && headline !== undefined) {
    const initSet = readSamples({ type: 'samples', dir: init, stage: 'init-eval' }), sftSet = readSamples({ type: 'samples', dir: sft, stage: 'sft-eval' });
    const sel = readSelection({ type: 'selection', dir: bon, stage: 'bon-sft-vs-init' });
    const n = Math.max(...sel.ns);
    const gold = headline.gold;
    const items = sftSet.byPrompt.slice(0, 6).map((row, i) => {
      const pick = sel.picks[String(n)][i], first = initSet.byPrompt[i][0];
      return {
        prompt: row[0].prompt,
        answers: [
          { method: 'pi_0', text: first.text, tokens: first.tokens, gold: gold['init-eval']?.[i]?.[0] },
          { method: 'SFT', text: row[0].text, tokens: row[0].tokens, gold: gold['sft-eval']?.[i]?.[0] },
          { method: `SFT-vs-Init Best-of-${n}`, text: row[pick].text, tokens: row[pick].tokens, gold: gold['sft-eval']?.[i]?.[pick] },
        ].map(({ gold: g, ...a }) => (g === undefined ? a : { ...a, gold: g })),
      };
    });
    await writeFile(join(out, 'side-by-side.md'), sideBySideMarkdown(items));
    written.push('side-by-side.md');
  }
  return written;
}

// Stage `eval` (DESIGN.md §3): the gold judge scores each candidate's responses on the
// evaluation prompts. Per method: gold reward mean with a 95% interval, win rate against
// a reference policy's responses (ties count half) with a Wilson interval, mean length
// and distinct-2 (so length hacking shows), and for Best-of-N rows the KL bound.
// Candidates are samples stages (one row: each prompt's first sample) or Best-of-N
// selections (one row per N). Every stored response is scored once.
//
// Length control (issue 14): a judge that likes short (or long) answers rewards any method
// that shortens them. The stage fits gold = a + b * tokens over one set of samples (the
// `lengthFit` stage, default the reference: pi_SFT's own answers, so b is what length buys
// under the policy every row starts from), then reports each row's paired gain over the
// reference after removing b * (its length - the reference's length), with a t-interval
// over prompts (b's own uncertainty is left out: over thousands of samples it is small).
// With `shortest` (a bon:length selection in shortest mode) each row is also compared, prompt
// by prompt, with the shortest of the first N samples at the same N (N = 1 for policies):
// a win rate, and the paired gain over it once length is removed from both sides (which
// answers whether a reward model finds more than shortness).
import { writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { JsonObject } from '../../../db/json.ts';
import { distinctN, fitLine, meanCI, winRate, type Line } from '../../eval/stats.ts';
import { loadRewardFunction } from '../reward-artifact.ts';
import type { RewardFunction } from '../reward-function.ts';
import type { ResultRow, ResultsTable } from '../contract.ts';
import { artifactDetails, many, one, writeArtifactDetails, type Artifact, type Stage, type StageContext } from '../stage.ts';
import { readSelection } from './bon.ts';
import { readSamples, type Sample, type SampleSet } from './sample.ts';
import Type from 'typebox';
import { described, text } from '../../schema/fields.ts';
import { parseSettings, ref, refList, refs, settingsSchema } from './common.ts';

export const EVALUATION_FILE = 'evaluation.json';

export type EvalConfig = JsonObject & {
  judge: string;
  reference: string;
  candidates: string[];
  /** The samples over which gold is regressed on length (default: the reference). */
  lengthFit?: string;
  /** A shortest-of-N selection every row is compared with at its N. */
  shortest?: string;
  /** Method name of a candidate stage in the table (default: the stage id). */
  labels: Record<string, string>;
};

export interface Evaluation extends ResultsTable {
  rows: (ResultRow & { stage: string })[];
  reference: string;
  judge: string;
  /** gold = intercept + slope * tokens over the `source` stage's samples. */
  length_fit?: Line & { source: string };
}

/** Every gold score the evaluation computed: scores[stage][i][k] for each samples stage it read. */
export const GOLD_SCORES_FILE = 'gold-scores.json';

/** An evaluation's gold scores (gold-scores.json): scores[stage][i][k]. */
export const readGoldScores = (a: Artifact): Record<string, number[][]> => JSON.parse(readFileSync(join(a.dir, GOLD_SCORES_FILE), 'utf8')) as Record<string, number[][]>;

export const readEvaluation = (a: Artifact): Evaluation => JSON.parse(readFileSync(join(a.dir, EVALUATION_FILE), 'utf8')) as Evaluation;

/** Gold scores of every sample of a set, scored once per set however many rows use it. */
class GoldCache {
  private readonly sets = new Map<string, { set: SampleSet; gold: number[][]; stage: string }>();
  constructor(private readonly judge: RewardFunction, private readonly ctx: StageContext) {}

  /** The scores of every set read so far, by the stage that sampled it (or its folder, when only a selection named it). */
  byStage(): Record<string, number[][]> {
    return Object.fromEntries([...this.sets.values()].map((h) => [h.stage, h.gold]));
  }

  async of(samplesDir: string, a: Artifact): Promise<{ set: SampleSet; gold: number[][] }> {
    let hit = this.sets.get(samplesDir);
    if (hit === undefined) {
      const set = readSamples({ ...a, type: 'samples', dir: samplesDir });
      const flat: Sample[] = set.byPrompt.flat();
      this.ctx.log(`gold judge scoring ${flat.length} responses of ${samplesDir}`);
      const scores = await this.judge.score(flat.map((s) => ({ prompt: s.prompt, response: s.text })));
      let j = 0;
      // A selection names the samples' folder, whose stage id is the folder's run's; keep
      // the samples stage's own id when the artifact is the samples themselves.
      hit = { set, gold: set.byPrompt.map((row) => row.map(() => scores[j++])), stage: a.type === 'samples' ? a.stage : samplesDir };
      this.sets.set(samplesDir, hit);
    }
    return hit;
  }
}

/** What every row is compared with: the reference's gold and length per prompt, the
 *  length line, and the shortest-of-N baseline's gold per N (when there is one). */
interface Baselines {
  gold: readonly number[];
  tokens: readonly number[];
  line: Line | null;
  /** The shortest of the first n samples of each prompt: its gold and length. */
  shortest: ((n: number) => { gold: readonly number[]; tokens: readonly number[] } | undefined) | null;
}

const outcome = (a: number, b: number): number => (a > b ? 1 : a < b ? 0 : 0.5);

/** One table row from each prompt's chosen response (`picks[i]` = sample index). */
function row(method: string, stage: string, set: SampleSet, gold: number[][], picks: readonly number[], base: Baselines, extra: Partial<ResultRow> = {}): ResultRow & { stage: string } {
  const g = picks.map((k, i) => gold[i][k]);
  const chosen = picks.map((k, i) => set.byPrompt[i][k]);
  const m = meanCI(g);
  const w = winRate(g.map((x, i) => outcome(x, base.gold[i])));
  const gain = meanCI(g.map((x, i) => x - base.gold[i]));
  const out: ResultRow & { stage: string } = {
    method, stage, ...extra,
    gold_mean: m.mean, gold_ci95: m.ci95,
    win_rate_vs_sft: w.rate, win_rate_ci95: w.ci95,
    gold_gain_vs_sft: gain.mean, gold_gain_ci95: gain.ci95,
    mean_length: chosen.reduce((s, x) => s + x.tokens, 0) / chosen.length,
    distinct_2: distinctN(chosen.map((x) => x.text.split(/\s+/).filter(Boolean)), 2),
  };
  // Gold with what length explains removed (gold - slope * tokens), when there is a length line.
  const slope = base.line?.slope;
  const lengthFree = (golds: readonly number[], tokens: (i: number) => number): number[] | null => (slope === undefined ? null : golds.map((x, i) => x - slope * tokens(i)));
  const rowFree = lengthFree(g, (i) => chosen[i].tokens);
  if (rowFree !== null) {
    const refFree = lengthFree(base.gold, (i) => base.tokens[i])!;
    const adjusted = meanCI(rowFree.map((x, i) => x - refFree[i]));
    out.gold_gain_length_adjusted = adjusted.mean;
    out.gold_gain_length_adjusted_ci95 = adjusted.ci95;
  }
  const short = base.shortest?.(extra.n ?? 1);
  if (short !== undefined) {
    const ws = winRate(g.map((x, i) => outcome(x, short.gold[i])));
    out.win_rate_vs_shortest = ws.rate;
    out.win_rate_vs_shortest_ci95 = ws.ci95;
    if (rowFree !== null) {
      const shortFree = lengthFree(short.gold, (i) => short.tokens[i])!;
      const over = meanCI(rowFree.map((x, i) => x - shortFree[i]));
      out.gain_vs_shortest_length_adjusted = over.mean;
      out.gain_vs_shortest_length_adjusted_ci95 = over.ci95;
    }
  }
  return out;
}

const SETTINGS = settingsSchema({
  judge: ref('judge'),
  reference: ref(),
  candidates: refs(),
  labels: described(Type.Record(Type.String(), text(), { default: {} }), 'a mapping from stage ids to method names'),
  // Absent unless set, so that evaluations stored before these options still match their definition.
  lengthFit: Type.Optional(ref()),
  shortest: Type.Optional(ref()),
});

export const evalStage: Stage<EvalConfig> = {
  kind: 'eval',
  summary: 'gold-judge evaluation: reward with intervals, win rate against a reference, length, distinct-2',
  produces: 'evaluation',
  inputs: {
    judge: { types: ['reward'] }, reference: { types: ['samples'] }, candidates: { types: ['samples', 'selection'], list: true },
    lengthFit: { types: ['samples'], optional: true }, shortest: { types: ['selection'], optional: true },
  },

  settings: SETTINGS,
  parse(raw, where) {
    const c = parseSettings('eval', SETTINGS, raw, where);
    return { ...c, candidates: refList(c.candidates), labels: { ...c.labels } };
  },

  async run(ctx, config, inputs) {
    const judgeArtifact = one(inputs, 'judge');
    const judge = await loadRewardFunction(judgeArtifact, { provider: ctx.provider, threads: ctx.threads });
    try {
      const cache = new GoldCache(judge, ctx);
      const refArtifact = one(inputs, 'reference');
      const ref = await cache.of(refArtifact.dir, refArtifact);
      if (ref.set.split !== 'eval') ctx.log(`note: the reference ${refArtifact.stage} was sampled on ${ref.set.split} prompts, not eval prompts`);
      const refGold = ref.gold.map((r) => r[0]);
      // The length line: over the lengthFit samples (every sample of every prompt), or the reference's.
      const fitArtifact = inputs.lengthFit === undefined ? refArtifact : one(inputs, 'lengthFit');
      const fit = await cache.of(fitArtifact.dir, fitArtifact);
      const fitSamples = fit.set.byPrompt.flat();
      const line = fitLine(fitSamples.map((x) => x.tokens), fit.gold.flat());
      ctx.log(`gold against length over ${fitSamples.length} responses of ${fitArtifact.stage}: slope ${line.slope.toPrecision(3)} per token, correlation ${line.correlation.toFixed(3)}`);
      let shortest: Baselines['shortest'] = null;
      if (inputs.shortest !== undefined) {
        const sel = readSelection(one(inputs, 'shortest'));
        const { set, gold } = await cache.of(sel.samples, one(inputs, 'shortest'));
        shortest = (n) => {
          const picks = sel.picks[String(n)];
          return picks === undefined ? undefined : { gold: picks.map((k, i) => gold[i][k]), tokens: picks.map((k, i) => set.byPrompt[i][k].tokens) };
        };
      }
      const base: Baselines = { gold: refGold, tokens: ref.set.byPrompt.map((r) => r[0].tokens), line, shortest };
      const candidates = many(inputs, 'candidates');
      const rows: Evaluation['rows'] = [];
      for (const [c, a] of candidates.entries()) {
        if (ctx.stopRequested()) return { status: 'stopped', step: c };
        const method = config.labels[a.stage] ?? a.stage;
        if (a.type === 'samples') {
          const { set, gold } = await cache.of(a.dir, a);
          if (set.byPrompt.length !== refGold.length) throw new Error(`candidate ${a.stage} has ${set.byPrompt.length} prompts but the reference ${refArtifact.stage} has ${refGold.length}; sample both on the same split.`);
          rows.push(row(method, a.stage, set, gold, set.byPrompt.map(() => 0), base));
        } else {
          const sel = readSelection(a);
          const { set, gold } = await cache.of(sel.samples, a);
          for (const n of sel.ns) rows.push(row(method, a.stage, set, gold, sel.picks[String(n)], base, { n, kl_estimate: sel.klBound[String(n)] }));
        }
        ctx.progress(c + 1, candidates.length, 'candidates');
      }
      const details = artifactDetails(judgeArtifact);
      const accuracy = typeof details.cvAccuracy === 'number' ? details.cvAccuracy : null;
      const evaluation: Evaluation = { gold_judge_accuracy: accuracy, rows, reference: refArtifact.stage, judge: judgeArtifact.stage, length_fit: { ...line, source: fitArtifact.stage } };
      await writeFile(join(ctx.dir, EVALUATION_FILE), `${JSON.stringify(evaluation, null, 1)}\n`);
      await writeFile(join(ctx.dir, GOLD_SCORES_FILE), `${JSON.stringify(cache.byStage())}\n`);
      await writeArtifactDetails(ctx.dir, { type: 'evaluation' });
      for (const r of rows) ctx.log(`${r.method}${r.n === undefined ? '' : ` N=${r.n}`}: gold ${r.gold_mean.toFixed(3)} [${r.gold_ci95.map((x) => x.toFixed(3)).join(', ')}], win rate ${r.win_rate_vs_sft.toFixed(3)}, length ${r.mean_length.toFixed(1)}`);
      return { status: 'done', summary: { rows: rows.length, gold_judge_accuracy: accuracy } };
    } finally {
      await judge.release();
    }
  },
};

// The compare view: the same prompts streamed from several columns side by side (a model,
// or a model's Best-of-N by a reward model), and blind A/B voting over stored responses.
// A side of a vote is a model's plain answers or its Best-of-N picks with one N and reward
// model (their label: db/generations.ts bestOfScores). The order in which a pair is shown
// is random and recorded with the vote (judgments.shown_order), so position bias can be
// measured; the tally is side A's win rate over side B with ties as half and a Wilson 95%
// interval.
import { randomUUID } from 'node:crypto';
import { GenerationStore, type GenerationSide } from '../../db/generations.ts';
import type { ShownOrder, Winner } from '../../db/judgments.ts';
import { JudgmentStore } from '../../db/judgments.ts';
import { ModelStore } from '../../db/models.ts';
import { winRate } from '../eval/stats.ts';
import type { BestOf, BlindPair, CompareColumn, RevealedSide, Tally, Vote } from './contract.ts';
import type { ApiContext, Handlers } from './context.ts';
import type { GenerationStreams } from './models.ts';

interface PendingPair {
  sideA: GenerationSide;
  sideB: GenerationSide;
  /** Generation of side A (side 'a' of the judgment) and of side B. */
  a: number;
  b: number;
  shownOrder: ShownOrder;
}

/** Pairs shown but not voted on are forgotten beyond this many (oldest first). */
const MAX_PENDING = 1000;
const JUDGE = 'human';

export function compareHandlers(ctx: ApiContext, streams: GenerationStreams): Handlers<'compare.start' | 'compare.nextPair' | 'compare.vote' | 'compare.tally'> {
  const generations = new GenerationStore(ctx.db);
  const judgments = new JudgmentStore(ctx.db);
  const models = new ModelStore(ctx.db);
  const pending = new Map<string, PendingPair>();
  const model = (id: number) => {
    const m = models.get(id);
    if (m === undefined) throw new Error(`There is no model #${id}; it may have been deleted, so reload the list.`);
    return m;
  };

  /** A side as the API names it: "sft", or "sft, best of 8 by rm". */
  const sideName = (side: GenerationSide): string => {
    const name = model(side.modelId).name;
    return side.bestOf ? `${name}, best of ${side.bestOf.n} by ${models.get(side.bestOf.rewardModelId)?.name ?? `model #${side.bestOf.rewardModelId}`}` : name;
  };
  const reveal = (side: GenerationSide): RevealedSide => ({ modelId: side.modelId, bestOf: side.bestOf ?? null, name: sideName(side) });
  const sides = (p: { modelA: number; modelB: number; bestOfA?: BestOf; bestOfB?: BestOf }): [GenerationSide, GenerationSide] => {
    const a = { modelId: p.modelA, bestOf: p.bestOfA ?? null }, b = { modelId: p.modelB, bestOf: p.bestOfB ?? null };
    model(a.modelId);
    model(b.modelId);
    return [a, b];
  };

  const tally = (sideA: GenerationSide, sideB: GenerationSide): Tally => {
    const outcomes: number[] = [];
    let skips = 0;
    let leftWins = 0;
    let decisive = 0;
    for (const j of judgments.betweenSides(sideA, sideB)) {
      if (j.winner === 'skip') {
        skips++;
        continue;
      }
      // Seen from side A, whichever side of the judgment its response was on.
      outcomes.push(j.winner === 'tie' ? 0.5 : j.winner === j.sideOfA ? 1 : 0);
      if (j.winner !== 'tie') {
        decisive++;
        if (j.winner === j.shownOrder[0]) leftWins++;
      }
    }
    const w = winRate(outcomes);
    return {
      modelA: sideA.modelId, modelB: sideB.modelId, bestOfA: sideA.bestOf ?? null, bestOfB: sideB.bestOf ?? null, n: w.n, winsA: w.wins, winsB: w.losses, ties: w.ties, skips,
      winRateA: w.n === 0 ? null : w.rate, ci95: w.ci95, leftWinRate: decisive === 0 ? null : leftWins / decisive,
    };
  };

  return {
    'compare.start': (p) => {
      const columns: CompareColumn[] = p.columns ?? (p.modelIds ?? []).map((modelId) => ({ modelId }));
      // Every model must exist, and every Best-of-N's reward model be one, before any column starts.
      for (const c of columns) {
        streams.modelDir(c.modelId);
        if (c.bestOf !== undefined) streams.rewardModelDir(c.bestOf.rewardModelId);
      }
      const all = columns.flatMap((c, column) => streams.start(c.modelId, p.prompts, p.sampling, { column, bestOf: c.bestOf ?? null }));
      const names = columns.map((c) => sideName({ modelId: c.modelId, bestOf: c.bestOf ?? null }));
      ctx.log('info', `Comparing ${names.join('; ')} on ${p.prompts.length} prompt${p.prompts.length === 1 ? '' : 's'}.`);
      return { compareId: randomUUID(), streams: all };
    },
    'compare.nextPair': (p): BlindPair | null => {
      const [sideA, sideB] = sides(p);
      const candidates = generations.unjudgedPairs(sideA, sideB);
      // A pair already on screen is not offered twice.
      const shown = new Set([...pending.values()].map((x) => `${x.a}:${x.b}`));
      const open = candidates.filter((c) => !shown.has(`${c.a}:${c.b}`));
      if (open.length === 0) return null;
      const pick = open[Math.floor(ctx.random() * open.length)];
      const shownOrder: ShownOrder = ctx.random() < 0.5 ? ['a', 'b'] : ['b', 'a'];
      const texts = { a: generations.get(pick.a)?.text ?? '', b: generations.get(pick.b)?.text ?? '' };
      const pairId = randomUUID();
      pending.set(pairId, { sideA, sideB, a: pick.a, b: pick.b, shownOrder });
      if (pending.size > MAX_PENDING) pending.delete(pending.keys().next().value as string);
      return { pairId, prompt: pick.prompt, a: texts[shownOrder[0]], b: texts[shownOrder[1]] };
    },
    'compare.vote': (p) => {
      const pair = pending.get(p.pairId);
      if (pair === undefined) throw new Error('This pair is no longer waiting for a vote (it was voted on already, or the studio restarted); ask for the next pair.');
      pending.delete(p.pairId);
      const winner = voteWinner(p.vote, pair.shownOrder);
      const j = judgments.insert({ aGenerationId: pair.a, bGenerationId: pair.b, shownOrder: pair.shownOrder, winner, judge: JUDGE });
      const left = pair.shownOrder[0] === 'a' ? pair.sideA : pair.sideB;
      const right = pair.shownOrder[0] === 'a' ? pair.sideB : pair.sideA;
      return { judgmentId: j.id, reveal: { a: reveal(left), b: reveal(right) }, tally: tally(pair.sideA, pair.sideB) };
    },
    'compare.tally': (p) => tally(...sides(p)),
  };
}

/** The judgment's winner from a vote for a screen side: A is the left (shownOrder[0]). */
export function voteWinner(vote: Vote, shownOrder: ShownOrder): Winner {
  if (vote === 'A') return shownOrder[0];
  if (vote === 'B') return shownOrder[1];
  return vote;
}

// The compare view: the same prompts streamed from several models side by side, and blind
// A/B voting over stored responses. The order in which a pair is shown is random and
// recorded with the vote (judgments.shown_order), so position bias can be measured; the
// tally is model A's win rate over model B with ties as half and a Wilson 95% interval.
import { randomUUID } from 'node:crypto';
import { GenerationStore } from '../../db/generations.ts';
import type { ShownOrder, Winner } from '../../db/judgments.ts';
import { JudgmentStore } from '../../db/judgments.ts';
import { ModelStore } from '../../db/models.ts';
import { winRate } from '../eval/stats.ts';
import type { BlindPair, Tally, Vote } from './contract.ts';
import type { ApiContext, Handlers } from './context.ts';
import type { GenerationStreams } from './models.ts';

interface PendingPair {
  modelA: number;
  modelB: number;
  /** Generation of model A (side 'a' of the judgment) and of model B. */
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

  const tally = (modelA: number, modelB: number): Tally => {
    const outcomes: number[] = [];
    let skips = 0;
    let leftWins = 0;
    let decisive = 0;
    for (const j of judgments.betweenModels(modelA, modelB)) {
      if (j.winner === 'skip') {
        skips++;
        continue;
      }
      // Seen from model A, whichever side of the judgment its response was on.
      const sideOfA: 'a' | 'b' = j.aModelId === modelA ? 'a' : 'b';
      outcomes.push(j.winner === 'tie' ? 0.5 : j.winner === sideOfA ? 1 : 0);
      if (j.winner !== 'tie') {
        decisive++;
        if (j.winner === j.shownOrder[0]) leftWins++;
      }
    }
    const w = winRate(outcomes);
    return {
      modelA, modelB, n: w.n, winsA: w.wins, winsB: w.losses, ties: w.ties, skips,
      winRateA: w.n === 0 ? null : w.rate, ci95: w.ci95, leftWinRate: decisive === 0 ? null : leftWins / decisive,
    };
  };

  return {
    'compare.start': (p) => {
      p.modelIds.forEach((id) => streams.modelDir(id)); // every model must exist before any starts
      const all = p.modelIds.flatMap((id) => streams.start(id, p.prompts, p.sampling));
      ctx.log('info', `Comparing models ${p.modelIds.map((id) => `#${id}`).join(', ')} on ${p.prompts.length} prompt${p.prompts.length === 1 ? '' : 's'}.`);
      return { compareId: randomUUID(), streams: all };
    },
    'compare.nextPair': (p): BlindPair | null => {
      model(p.modelA);
      model(p.modelB);
      const candidates = generations.unjudgedPairs(p.modelA, p.modelB);
      // A pair already on screen is not offered twice.
      const shown = new Set([...pending.values()].map((x) => `${x.a}:${x.b}`));
      const open = candidates.filter((c) => !shown.has(`${c.a}:${c.b}`));
      if (open.length === 0) return null;
      const pick = open[Math.floor(ctx.random() * open.length)];
      const shownOrder: ShownOrder = ctx.random() < 0.5 ? ['a', 'b'] : ['b', 'a'];
      const texts = { a: generations.get(pick.a)?.text ?? '', b: generations.get(pick.b)?.text ?? '' };
      const pairId = randomUUID();
      pending.set(pairId, { modelA: p.modelA, modelB: p.modelB, a: pick.a, b: pick.b, shownOrder });
      if (pending.size > MAX_PENDING) pending.delete(pending.keys().next().value as string);
      return { pairId, prompt: pick.prompt, a: texts[shownOrder[0]], b: texts[shownOrder[1]] };
    },
    'compare.vote': (p) => {
      const pair = pending.get(p.pairId);
      if (pair === undefined) throw new Error('This pair is no longer waiting for a vote (it was voted on already, or the studio restarted); ask for the next pair.');
      pending.delete(p.pairId);
      const winner = voteWinner(p.vote, pair.shownOrder);
      const j = judgments.insert({ aGenerationId: pair.a, bGenerationId: pair.b, shownOrder: pair.shownOrder, winner, judge: JUDGE });
      const left = pair.shownOrder[0] === 'a' ? pair.modelA : pair.modelB;
      const right = pair.shownOrder[0] === 'a' ? pair.modelB : pair.modelA;
      return {
        judgmentId: j.id,
        reveal: { a: { modelId: left, name: model(left).name }, b: { modelId: right, name: model(right).name } },
        tally: tally(pair.modelA, pair.modelB),
      };
    },
    'compare.tally': (p) => {
      model(p.modelA);
      model(p.modelB);
      return tally(p.modelA, p.modelB);
    },
  };
}

/** The judgment's winner from a vote for a screen side: A is the left (shownOrder[0]). */
export function voteWinner(vote: Vote, shownOrder: ShownOrder): Winner {
  if (vote === 'A') return shownOrder[0];
  if (vote === 'B') return shownOrder[1];
  return vote;
}

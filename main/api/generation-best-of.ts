// Best-of-N for Compare, inside the generation worker: N answers sampled for each prompt
// (the rows of every prompt batched, SAMPLE_ROWS at a time), scored together by the reward
// model through the scorer the bon stage uses (main/stages/scorer.ts, loaded from the
// reward model's folder), and the highest kept by the bon stage's rule (argmax, the first
// of equal rewards). The reward model is loaded for the request and released after it; the
// worker first releases idle models until it fits the loaded models' memory budget.
import type { GenerateOptions, Generator } from '../../native-models/generate/generator.ts';
import { GenerationCancelledError } from '../../native-models/generate/generator.ts';
import { argmax } from '../eval/stats.ts';
import { loadScorerReward } from '../stages/scorer.ts';
import type { GeneratedRow, ScoredCandidate, WorkerPhase } from './generation-protocol.ts';

/** Rows sampled at a time: N answers for each of 20 prompts at once would hold every
 *  row's KV cache (as drawSamples in main/stages/kinds/spin.ts does for training). */
const SAMPLE_ROWS = 32;

export interface BestOfJob {
  generator: Generator;
  /** Token ids to text, special tokens skipped. */
  decode(ids: readonly number[]): string;
  eos: readonly number[];
  /** Each prompt as the policy reads it (after its chat template) and its token ids: the
   *  reward model scores the answer after the same text. */
  prompts: readonly { text: string; ids: readonly number[] }[];
  n: number;
  /** The reward model's folder (a saved scorer). */
  rewardDir: string;
  /** Sampling as for plain generation; `seed` s gives answer k of prompt i the seed s + i*N + k. */
  sampling: Omit<GenerateOptions, 'seed' | 'onToken' | 'decode' | 'eosTokenIds' | 'signal'> & { seed?: number };
  signal: AbortSignal;
  phase(p: WorkerPhase): void;
}

const stopped = (prompts: number): GenerationCancelledError => new GenerationCancelledError(Array.from({ length: prompts }, () => ({ tokens: [], text: '', finishReason: 'cancelled' })), 0);

/** One row per prompt: the chosen answer, with every candidate and its reward. Rejects
 *  with a GenerationCancelledError (one empty row per prompt) when the signal aborts. */
export async function bestOfN(job: BestOfJob): Promise<GeneratedRow[]> {
  const { n, prompts, signal } = job;
  const rows = prompts.flatMap((_, prompt) => Array.from({ length: n }, (_, k) => ({ prompt, k })));
  const answers: { tokens: number[]; finishReason: ScoredCandidate['finishReason'] }[] = new Array(rows.length);
  const finished = prompts.map(() => 0);
  const report = (prompt: number): void => job.phase({ phase: 'sampling', done: finished[prompt], total: n, etaMs: null, prompt });
  prompts.forEach((_, i) => report(i));

  const { seed, ...sampling } = job.sampling;
  const eos = new Set(job.eos);
  for (let start = 0; start < rows.length; start += SAMPLE_ROWS) {
    if (signal.aborted) throw stopped(prompts.length);
    const chunk = rows.slice(start, start + SAMPLE_ROWS);
    const generated = chunk.map(() => 0);
    let results;
    try {
      results = await job.generator.generate(chunk.map((r) => prompts[r.prompt].ids), {
        ...sampling,
        ...(seed === undefined ? {} : { seed: chunk.map((r) => seed + r.prompt * n + r.k) }),
        eosTokenIds: job.eos,
        signal,
        // An answer is finished at its end-of-sequence token or its last allowed one.
        onToken: (e) => {
          if (eos.has(e.tokenId) || ++generated[e.row] === sampling.maxNewTokens) {
            finished[chunk[e.row].prompt]++;
            report(chunk[e.row].prompt);
          }
        },
      });
    } catch (err) {
      if (err instanceof GenerationCancelledError) throw stopped(prompts.length);
      throw err;
    }
    results.forEach((r, j) => (answers[start + j] = { tokens: r.tokens, finishReason: r.finishReason === 'cancelled' ? 'length' : r.finishReason }));
    // Exact counts (a row can also end at the model's longest context).
    for (const [i] of prompts.entries()) {
      const done = answers.filter((a, j) => a !== undefined && rows[j].prompt === i).length;
      if (done !== finished[i]) {
        finished[i] = done;
        report(i);
      }
    }
  }

  if (signal.aborted) throw stopped(prompts.length);
  const texts = answers.map((a) => job.decode(a.finishReason === 'eos' ? a.tokens.slice(0, -1) : a.tokens));
  job.phase({ phase: 'scoring', done: 0, total: rows.length, etaMs: null });
  const reward = await loadScorerReward(job.rewardDir, { provider: job.generator.provider, threads: undefined });
  let rewards: number[];
  try {
    rewards = await reward.score(rows.map((r, j) => ({ prompt: prompts[r.prompt].text, response: texts[j] })), (done, total) => job.phase({ phase: 'scoring', done, total, etaMs: null }));
  } finally {
    await reward.release();
  }
  if (signal.aborted) throw stopped(prompts.length);

  return prompts.map((_, i) => {
    const candidates: ScoredCandidate[] = rows.flatMap((r, j) => (r.prompt === i ? [{ text: texts[j], tokens: answers[j].tokens.length, finishReason: answers[j].finishReason, reward: rewards[j] }] : []));
    const chosen = argmax(candidates.map((c) => c.reward));
    const best = candidates[chosen];
    return { text: best.text, tokens: best.tokens, finishReason: best.finishReason, bestOf: { chosen, candidates } };
  });
}

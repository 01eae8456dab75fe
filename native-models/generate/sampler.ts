// Next-token choice on the host, over one row of logits [V] at a time: greedy, or
// sampling after the logits processors of transformers' generate, in its order:
// repetition penalty, then temperature, top-k, top-p, min-p.
//
// The work per row is a few linear passes over the vocabulary with no allocation (the
// candidate buffers are reused across steps) and no sort of the whole vocabulary: top-k
// keeps a k-entry heap, min-p is a logit threshold, and top-p sorts only the tokens that
// can be in the nucleus (see `filter`).

import type { Rng } from '../train/rng.ts';

export interface SamplingParams {
  /** Argmax instead of sampling (temperature 0 means the same). */
  greedy?: boolean;
  /** Divides the logits before the softmax; default 1. */
  temperature?: number;
  /** Keep the k most likely tokens (ties with the k-th are kept, as in transformers). */
  topK?: number;
  /** Keep the smallest set of most likely tokens whose probability reaches p. */
  topP?: number;
  /** Keep tokens whose probability is at least minP times the most likely one's. */
  minP?: number;
  /**
   * transformers' rule over the tokens already in the sequence (prompt and generation):
   * positive logits are divided by the penalty, negative ones multiplied. 1 = off.
   */
  repetitionPenalty?: number;
}

/** Checks the parameters once, with a sentence naming the bad one. */
export function validateSampling(p: SamplingParams): void {
  const bad = (what: string): never => {
    throw new Error(`Sampling option ${what}.`);
  };
  if (p.temperature !== undefined && !(p.temperature >= 0 && Number.isFinite(p.temperature))) bad(`temperature must be a number >= 0, got ${p.temperature}`);
  if (p.topK !== undefined && !(Number.isInteger(p.topK) && p.topK >= 1)) bad(`topK must be a whole number >= 1, got ${p.topK}`);
  if (p.topP !== undefined && !(p.topP > 0 && p.topP <= 1)) bad(`topP must be in (0, 1], got ${p.topP}`);
  if (p.minP !== undefined && !(p.minP >= 0 && p.minP <= 1)) bad(`minP must be in [0, 1], got ${p.minP}`);
  if (p.repetitionPenalty !== undefined && !(p.repetitionPenalty > 0 && Number.isFinite(p.repetitionPenalty))) bad(`repetitionPenalty must be a number > 0, got ${p.repetitionPenalty}`);
  if (p.greedy && (p.temperature || p.topK !== undefined || p.topP !== undefined || p.minP !== undefined)) {
    bad('greedy cannot be combined with temperature, topK, topP or minP (they only shape sampling)');
  }
}

export const isGreedy = (p: SamplingParams): boolean => p.greedy === true || p.temperature === 0;

/** transformers' repetition penalty, in place, once per distinct token in `seen`. */
export function applyRepetitionPenalty(logits: Float32Array, seen: Iterable<number>, penalty: number): void {
  if (penalty === 1) return;
  for (const t of seen) {
    const x = logits[t];
    logits[t] = x < 0 ? x * penalty : x / penalty;
  }
}

/** Index of the largest logit (the first one on ties, as torch.argmax). Throws on NaN. */
export function argmax(logits: Float32Array): number {
  let best = 0, m = logits[0], nan = m !== m;
  for (let i = 1; i < logits.length; i++) {
    const x = logits[i];
    if (x > m) {
      m = x;
      best = i;
    } else if (x !== x) nan = true;
  }
  if (nan) throw new Error('The model produced NaN logits; its weights are probably broken (non-finite values).');
  return best;
}

/**
 * The k-th largest value of `a` (k >= 1), with a k-entry min-heap: most entries cost one
 * comparison with the heap's top, so this is one pass for the small k used in practice.
 */
export function kthLargest(a: Float32Array, k: number, heap: Float64Array = new Float64Array(k)): number {
  if (k >= a.length) {
    let m = Infinity;
    for (let i = 0; i < a.length; i++) if (a[i] < m) m = a[i];
    return m;
  }
  let n = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    if (n < k) {
      // sift up
      let j = n++;
      while (j > 0) {
        const parent = (j - 1) >> 1;
        if (heap[parent] <= x) break;
        heap[j] = heap[parent];
        j = parent;
      }
      heap[j] = x;
    } else if (x > heap[0]) {
      // replace the smallest and sift down
      let j = 0;
      for (;;) {
        const l = 2 * j + 1;
        if (l >= k) break;
        const c = l + 1 < k && heap[l + 1] < heap[l] ? l + 1 : l;
        if (heap[c] >= x) break;
        heap[j] = heap[c];
        j = c;
      }
      heap[j] = x;
    }
  }
  return heap[0];
}

/**
 * Picks next tokens for rows of one vocabulary size under fixed parameters. Holds the
 * scratch buffers, so one Sampler serves every row and step of a generate call.
 */
export class Sampler {
  /** Candidates of the last `filter`: token ids and weights exp((l - max) / temperature). */
  readonly ids: Int32Array;
  readonly weights: Float64Array;
  count = 0;
  private readonly heap: Float64Array;
  private order: Int32Array;

  constructor(readonly vocab: number, readonly params: SamplingParams) {
    validateSampling(params);
    this.ids = new Int32Array(vocab);
    this.weights = new Float64Array(vocab);
    this.heap = new Float64Array(Math.min(params.topK ?? 1, vocab));
    this.order = new Int32Array(0);
  }

  get greedy(): boolean {
    return isGreedy(this.params);
  }

  /**
   * The next token for one row. `logits` is modified in place (repetition penalty);
   * `rng` is used only when sampling, one draw per token.
   */
  pick(logits: Float32Array, seen: Iterable<number> | undefined, rng: Rng | undefined): number {
    const penalty = this.params.repetitionPenalty ?? 1;
    if (seen && penalty !== 1) applyRepetitionPenalty(logits, seen, penalty);
    if (this.greedy) return argmax(logits);
    if (!rng) throw new Error('Sampler.pick: sampling needs a random generator');
    const total = this.filter(logits);
    const u = rng.next() * total;
    let acc = 0;
    for (let j = 0; j < this.count; j++) {
      acc += this.weights[j];
      if (u < acc) return this.ids[j];
    }
    return this.ids[this.count - 1]; // rounding: u landed on the total
  }

  /**
   * Fills ids/weights[0..count) with the tokens that survive temperature, top-k, top-p and
   * min-p (transformers' order) and returns the sum of their weights; the sampling
   * distribution is weights / sum. Not used for greedy decoding.
   *
   * top-p without top-k needs the softmax normalizer over the whole vocabulary, but only
   * tokens of probability >= (1 - p) / V can be in the nucleus: the others together hold
   * less than 1 - p. Only those are collected and sorted.
   */
  filter(logits: Float32Array): number {
    const V = this.vocab;
    if (logits.length !== V) throw new Error(`Sampler: expected ${V} logits, got ${logits.length}`);
    const { topK, topP, minP } = this.params;
    const temp = this.params.temperature ?? 1;
    let m = -Infinity, nan = false;
    for (let i = 0; i < V; i++) {
      const x = logits[i];
      if (x > m) m = x;
      else if (x !== x) nan = true;
    }
    if (m === -Infinity || nan) throw new Error('The model produced NaN or all -inf logits; its weights are probably broken (non-finite values).');

    const useTopP = topP !== undefined && topP < 1;
    // Logit floor of the tokens collected: the k-th largest (top-k) ...
    let lo = topK !== undefined && topK < V ? kthLargest(logits, topK, this.heap) : -Infinity;
    // ... and min-p's, when no top-p comes between (it is an intersection either way, but
    // top-p must see the distribution before min-p).
    const minPFloor = minP !== undefined && minP > 0 ? m + temp * Math.log(minP) : -Infinity;
    if (!useTopP && minPFloor > lo) lo = minPFloor;
    // Weight floor for the nucleus prefilter (top-p over the whole vocabulary only).
    const wFloor = useTopP && lo === -Infinity ? (1 - topP) / V : 0;

    let n = 0, z = 0;
    const inv = 1 / temp;
    for (let i = 0; i < V; i++) {
      const x = logits[i];
      if (x < lo) continue;
      const w = Math.exp((x - m) * inv);
      z += w;
      if (w >= wFloor) {
        this.ids[n] = i;
        this.weights[n] = w;
        n++;
      }
    }

    if (useTopP) {
      n = this.nucleus(n, topP * z);
      if (minPFloor > -Infinity) {
        const wMin = minP!; // weights are relative to the max, which has weight 1
        let k = 0;
        for (let j = 0; j < n; j++) {
          if (this.weights[j] >= wMin) {
            this.ids[k] = this.ids[j];
            this.weights[k] = this.weights[j];
            k++;
          }
        }
        n = k;
      }
    }
    this.count = n;
    let total = 0;
    for (let j = 0; j < n; j++) total += this.weights[j];
    return total;
  }

  /** Sorts the n candidates by weight (descending) and keeps the prefix whose sum first reaches `mass`. */
  private nucleus(n: number, mass: number): number {
    if (this.order.length < n) this.order = new Int32Array(Math.max(n, 2 * this.order.length));
    const order = this.order.subarray(0, n);
    for (let j = 0; j < n; j++) order[j] = j;
    const w = this.weights, ids = this.ids;
    // Descending weight, then ascending id: deterministic on ties.
    order.sort((a, b) => w[b] - w[a] || ids[a] - ids[b]);
    let keep = 0, acc = 0;
    while (keep < n) {
      acc += w[order[keep]];
      keep++;
      if (acc >= mass) break;
    }
    // Rewrite the kept candidates in sorted order (through temporaries: order permutes in place).
    const keptIds = new Int32Array(keep), keptW = new Float64Array(keep);
    for (let j = 0; j < keep; j++) {
      keptIds[j] = ids[order[j]];
      keptW[j] = w[order[j]];
    }
    ids.set(keptIds);
    w.set(keptW);
    return keep;
  }

  /** The full sampling distribution over the vocabulary (for tests and inspection). */
  distribution(logits: Float32Array, seen?: Iterable<number>): Float64Array {
    const l = Float32Array.from(logits);
    const penalty = this.params.repetitionPenalty ?? 1;
    if (seen && penalty !== 1) applyRepetitionPenalty(l, seen, penalty);
    const out = new Float64Array(this.vocab);
    if (this.greedy) {
      out[argmax(l)] = 1;
      return out;
    }
    const total = this.filter(l);
    for (let j = 0; j < this.count; j++) out[this.ids[j]] = this.weights[j] / total;
    return out;
  }
}

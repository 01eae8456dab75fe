// The sampler against hand-computed examples (logits [1, 2, 3, 4] unless said otherwise)
// and against a naive implementation that sorts the whole vocabulary.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../train/rng.ts';
import { applyRepetitionPenalty, argmax, kthLargest, Sampler, type SamplingParams } from './sampler.ts';
import { holdBack } from './generator.ts';

const L = Float32Array.of(1, 2, 3, 4);
const dist = (p: SamplingParams, logits = L, seen?: number[]): number[] => [...new Sampler(logits.length, p).distribution(logits, seen)];

function close(actual: readonly number[], expected: readonly number[], tol = 1e-6): void {
  assert.equal(actual.length, expected.length);
  actual.forEach((a, i) => {
    if (!(Math.abs(a - expected[i]) < tol)) assert.fail(`entry ${i}: ${a} vs ${expected[i]} (got [${actual.slice(0, 8).map((x) => x.toFixed(6))}${actual.length > 8 ? ', ...' : ''}])`);
  });
}

test('temperature: softmax(logits / T)', () => {
  // exp([-3, -2, -1, 0]) / 1.553001
  close(dist({}), [0.032059, 0.087144, 0.236883, 0.643914]);
  // exp([-1.5, -1, -0.5, 0]) / 2.197540
  close(dist({ temperature: 2 }), [0.101537, 0.167405, 0.276004, 0.455054]);
  close(dist({ temperature: 0 }), [0, 0, 0, 1]); // temperature 0 is greedy
});

test('top-k keeps the k largest, and every tie with the k-th', () => {
  close(dist({ topK: 2 }), [0, 0, 0.268941, 0.731059]); // e^-1 / (1 + e^-1), 1 / (1 + e^-1)
  close(dist({ topK: 1 }, Float32Array.of(1, 3, 3, 2)), [0, 0.5, 0.5, 0]);
  close(dist({ topK: 10 }), dist({}));
});

test('top-p keeps the smallest most-likely set whose mass reaches p', () => {
  close(dist({ topP: 0.6 }), [0, 0, 0, 1]); // 0.6439 >= 0.6 alone
  close(dist({ topP: 0.7 }), [0, 0, 0.268941, 0.731059]); // 0.6439 + 0.2369 = 0.8808
  close(dist({ topP: 0.9 }), [0, 0.087144 / 0.967941, 0.236883 / 0.967941, 0.643914 / 0.967941]);
  // After top-k (transformers' order): within {1, 2, 3} the probabilities are 0.0900, 0.2447,
  // 0.6652, and 0.6652 + 0.2447 >= 0.9 already.
  close(dist({ topK: 3, topP: 0.9 }), [0, 0, 0.268941, 0.731059]);
});

test('min-p keeps tokens with at least minP times the top probability', () => {
  close(dist({ minP: 0.3 }), [0, 0, 0.268941, 0.731059]); // ratios e^-3, e^-2, e^-1, 1
  close(dist({ minP: 0.1 }), [0, 0.135335 / 1.503214, 0.367879 / 1.503214, 1 / 1.503214]);
  // With temperature 2 the ratios are e^-1.5, e^-1, e^-0.5, 1.
  close(dist({ temperature: 2, minP: 0.5 }), [0, 0, 0.377541, 0.622459]);
  // After top-p 0.9 ({1, 2, 3}), min-p 0.3 drops token 1 (ratio e^-2).
  close(dist({ topP: 0.9, minP: 0.3 }), [0, 0, 0.268941, 0.731059]);
});

test('repetition penalty divides positive and multiplies negative logits of seen tokens', () => {
  const l = Float32Array.of(-1, 2, 3, 0.5);
  applyRepetitionPenalty(l, new Set([0, 1]), 2);
  assert.deepEqual([...l], [-2, 1, 3, 0.5]);
  // It applies before greedy decoding too: 3 / 2 < 2.5.
  assert.equal(new Sampler(4, { greedy: true, repetitionPenalty: 2 }).pick(Float32Array.of(3, 2.5, 0, 0), [0], undefined), 1);
  // And before sampling: [1, 2, 3, 4] with 3 and 4 seen under penalty 2 -> [1, 2, 1.5, 2].
  const w = [Math.exp(-1), 1, Math.exp(-0.5), 1];
  const z = w.reduce((a, b) => a + b);
  close(dist({ repetitionPenalty: 2 }, L, [2, 3]), w.map((x) => x / z));
});

test('argmax takes the first maximum and refuses NaN', () => {
  assert.equal(argmax(Float32Array.of(0, 5, 5, 1)), 1);
  assert.throws(() => argmax(Float32Array.of(0, NaN, 1)), /NaN logits/);
  assert.throws(() => new Sampler(3, {}).filter(Float32Array.of(0, NaN, 1)), /NaN/);
});

test('kthLargest agrees with sorting', () => {
  const rng = new Rng(3);
  const a = Float32Array.from({ length: 500 }, () => Math.round(rng.normal() * 10) / 4); // many ties
  const sorted = [...a].sort((x, y) => y - x);
  for (const k of [1, 2, 7, 50, 499, 500, 600]) assert.equal(kthLargest(a, k), sorted[Math.min(k, a.length) - 1]);
});

/** The textbook sampling distribution: sort the whole vocabulary. */
function naive(logits: Float32Array, p: SamplingParams): number[] {
  const t = p.temperature ?? 1;
  const idx = [...logits.keys()].sort((a, b) => logits[b] - logits[a] || a - b);
  const m = logits[idx[0]];
  let keep = new Set(idx);
  if (p.topK !== undefined) {
    const kth = logits[idx[Math.min(p.topK, idx.length) - 1]];
    keep = new Set(idx.filter((i) => logits[i] >= kth));
  }
  if (p.topP !== undefined) {
    const kept = idx.filter((i) => keep.has(i));
    const z = kept.reduce((s, i) => s + Math.exp((logits[i] - m) / t), 0);
    const nucleus = new Set<number>();
    let acc = 0;
    for (const i of kept) {
      nucleus.add(i);
      acc += Math.exp((logits[i] - m) / t) / z;
      if (acc >= p.topP) break;
    }
    keep = nucleus;
  }
  if (p.minP !== undefined) keep = new Set([...keep].filter((i) => Math.exp((logits[i] - m) / t) >= p.minP!));
  const w = [...logits].map((x, i) => (keep.has(i) ? Math.exp((x - m) / t) : 0));
  const z = w.reduce((a, b) => a + b);
  return w.map((x) => x / z);
}

test('filters agree with a full sort on a large vocabulary (top-p only sorts its candidates)', () => {
  const rng = new Rng(7);
  const V = 5000;
  const logits = Float32Array.from({ length: V }, () => rng.normal() * 3);
  const cases: SamplingParams[] = [
    { topP: 0.9 }, { topP: 0.5, temperature: 0.7 }, { topK: 40 }, { topK: 40, topP: 0.8 }, { minP: 0.05 }, { topP: 0.95, minP: 0.02, temperature: 1.3 }, { temperature: 0.5 },
  ];
  for (const p of cases) close(dist(p, logits), naive(logits, p), 1e-9);
  const s = new Sampler(V, { topP: 0.9 });
  s.filter(logits);
  assert.ok(s.count < V / 4, `top-p 0.9 kept ${s.count} candidates`);
});

test('draws follow the distribution and repeat with the seed', () => {
  const s = new Sampler(4, { temperature: 1 });
  const draw = (seed: number, n: number): number[] => {
    const rng = new Rng(seed);
    return Array.from({ length: n }, () => s.pick(Float32Array.from(L), undefined, rng));
  };
  const n = 20000;
  const counts = [0, 0, 0, 0];
  for (const t of draw(1, n)) counts[t]++;
  close(counts.map((c) => c / n), [0.032059, 0.087144, 0.236883, 0.643914], 0.015);
  assert.deepEqual(draw(5, 50), draw(5, 50));
  assert.notDeepEqual(draw(5, 50), draw(6, 50));
});

test('bad options are refused with a sentence', () => {
  assert.throws(() => new Sampler(4, { topP: 0 }), /topP must be in \(0, 1\]/);
  assert.throws(() => new Sampler(4, { topK: 0 }), /topK must be a whole number/);
  assert.throws(() => new Sampler(4, { temperature: -1 }), /temperature/);
  assert.throws(() => new Sampler(4, { greedy: true, topK: 5 }), /greedy cannot be combined/);
  assert.throws(() => new Sampler(4, { repetitionPenalty: 0 }), /repetitionPenalty/);
});

test('streamed text holds back incomplete characters and beginnings of stop strings', () => {
  assert.equal(holdBack('hello'), 0);
  assert.equal(holdBack('ab\uFFFD'), 1);
  assert.equal(holdBack('abc\n\nUs', ['\n\nUser:']), 4);
  assert.equal(holdBack('abc\n', ['\n\nUser:', 'xyz']), 1);
  assert.equal(holdBack('abcx', ['\n\nUser:']), 0);
});

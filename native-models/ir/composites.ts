// Ops composed of primitives: they need no gradient rule of their own.

import { type Dim } from './shape.ts';
import { add, cast, div, less, mul, neg, pow, where } from './ops/elementwise.ts';
import { full, range } from './ops/leaf.ts';
import { concat, reshape, slice, unsqueeze } from './ops/layout.ts';
import { gemm, matmul } from './ops/matmul.ts';
import { reduceMean, reduceSum } from './ops/reduce.ts';
import { tokenLogProb } from './ops/nn.ts';
import { opError, type Value } from './value.ts';

/**
 * x @ w + b for x of any rank and a matrix w. Leading dims are flattened first so that
 * ONNX Runtime sees a 2-D product and fuses the bias into one Gemm (no separate pass
 * over the output to add it).
 */
export function linear(x: Value, w: Value, b?: Value): Value {
  if (x.rank <= 2 || w.rank !== 2) return b ? add(matmul(x, w), b) : matmul(x, w);
  const flat = reshape(x, [-1, x.shape[x.rank - 1]]);
  const y = b ? add(matmul(flat, w), b) : matmul(flat, w);
  return reshape(y, [...x.shape.slice(0, -1), w.shape[1]]);
}

/**
 * x @ w^T + b for w stored [out, in] (PyTorch's nn.Linear layout): one Gemm with transB on
 * the flattened x, so neither the weight nor its gradient is ever transposed in memory.
 */
export function linearOutIn(x: Value, w: Value, b?: Value): Value {
  if (w.rank !== 2) throw opError('linearOutIn', [x, w], 'needs a matrix weight [out, in]');
  const flat = x.rank === 2 ? x : reshape(x, [-1, x.shape[x.rank - 1]]);
  const y = gemm(flat, w, { transB: true }, b);
  return x.rank === 2 ? y : reshape(y, [...x.shape.slice(0, -1), w.shape[0]]); // [..., out]
}

/**
 * Root-mean-square normalization over the last axis (Llama): x (mean(x^2) + eps)^-1/2 w.
 * A product with the reciprocal rather than a quotient: the backward of x / r reads the
 * quotient (a [..., D] tensor it would keep from the forward pass), the backward of x r
 * reads x, which the backward of x^2 keeps anyway, and r, which is [..., 1].
 */
export function rmsNorm(x: Value, weight: Value, eps = 1e-6): Value {
  const ms = reduceMean(mul(x, x), -1, true);
  return mul(mul(x, pow(add(ms, eps), -0.5)), weight);
}

/** True where key position j may be seen from query position i (j <= i): [T, T] bool. */
export function causalMask(t: Dim): Value {
  const pos = range(t);
  return less(unsqueeze(pos, 0), add(unsqueeze(pos, 1), 1)); // j < i + 1
}

/**
 * Masks attention scores: adds a large negative number (not -inf: 0 * inf is NaN in
 * backward) where `allowed` is false. An additive mask rather than a Where on the scores:
 * the bias is built at the mask's small shape and the gradient passes straight through.
 */
export const maskScores = (scores: Value, allowed: Value): Value => add(scores, where(allowed, full([], 0, scores.dtype), -1e9));

/**
 * Rotary position embedding (rotate-half form, as in Llama and Hugging Face):
 * x * cos + rotateHalf(x) * sin, with cos/sin of shape broadcastable to x, last axis = head size.
 */
export function rotary(x: Value, cos: Value, sin: Value): Value {
  const d = x.shape[x.rank - 1];
  if (typeof d !== 'number' || d % 2 !== 0) throw opError('rotary', [x, cos, sin], 'the head size must be a static even number');
  const x1 = slice(x, -1, 0, d / 2), x2 = slice(x, -1, d / 2, d);
  return add(mul(x, cos), mul(concat([neg(x2), x1], -1), sin));
}

/**
 * Mean token cross-entropy of `logits` [..., V] against integer `targets` [...], counting
 * only positions where `weights` (same shape as targets, 0/1 or any non-negative float) is
 * nonzero; without weights every position counts.
 */
export function crossEntropy(logits: Value, targets: Value, weights?: Value): Value {
  const picked = tokenLogProb(logits, cast(targets, 'int64'));
  if (!weights) return neg(reduceMean(picked));
  const w = cast(weights, logits.dtype);
  return div(neg(reduceSum(mul(picked, w))), reduceSum(w));
}

/** Mean over all elements, as a scalar. */
export const mean = (x: Value): Value => reduceMean(x);


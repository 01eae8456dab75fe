// Reverse-mode automatic differentiation over the IR.
//
// grad(loss, wrt) walks the DAG once in reverse topological order. Each op's vjp returns
// gradients for its inputs in the output's broadcast shape; `unbroadcast` sums them down
// to each input's shape in this one place, so the rules themselves stay short. Gradients
// reaching a value along several paths are added (fan-out). Only values that both depend
// on something in `wrt` and lead to the loss are visited, so frozen branches cost nothing.

import { isFloat } from './dtype.ts';
import { dimAdd, dimSub, fmt, shapeEq, type Dim } from './shape.ts';
import { add } from './ops/elementwise.ts';
import { full, zerosLike } from './ops/leaf.ts';
import { concat, PadOp, reshape, type PadAttrs } from './ops/layout.ts';
import { reduceSum } from './ops/reduce.ts';
import { opError, topoSort, type Value } from './value.ts';

/** Sums a gradient in a broadcast shape down to `target`'s shape. */
export function unbroadcast(g: Value, target: Value): Value {
  if (shapeEq(g.shape, target.shape)) return g;
  const lead = g.rank - target.rank;
  const axes: number[] = [];
  for (let i = 0; i < g.rank; i++) {
    if (i < lead || (target.shape[i - lead] === 1 && g.shape[i] !== 1)) axes.push(i);
  }
  const summed = axes.length > 0 ? reduceSum(g, axes, true) : g;
  return reshape(summed, target.shape);
}

/**
 * Gradients of a scalar `loss` (or of `sum(loss * seed)` when a seed is given) with
 * respect to each value in `wrt`. A value the loss does not depend on gets zeros.
 */
export function grad(loss: Value, wrt: readonly Value[], seed?: Value): Value[] {
  if (!seed && loss.rank !== 0) throw opError('grad', [loss], `the loss must be a scalar, got shape ${fmt(loss.shape)}; reduce it or pass a seed`);
  if (seed && (seed.dtype !== loss.dtype || !shapeEq(seed.shape, loss.shape))) throw opError('grad', [loss, seed], 'the seed must have the dtype and shape of the loss');
  const order = topoSort([loss]);
  for (const w of wrt) {
    if (isFloat(w.dtype)) continue;
    // Name the ops that read it: that is where the user meant a gradient to flow.
    const readers = [...new Set(order.filter((v) => v.inputs.includes(w)).map((v) => v.op.kind))];
    const where = readers.length > 0 ? `; it is read by ${readers.join(', ')}` : '';
    throw opError('grad', [w], `cannot differentiate with respect to ${w}: integer and bool values carry no gradient${where}`);
  }
  // Values on a path from some wrt value to the loss.
  const dependsOnWrt = new Set<number>(wrt.map((w) => w.id));
  for (const v of order) {
    if (isFloat(v.dtype) && v.inputs.some((x) => dependsOnWrt.has(x.id))) dependsOnWrt.add(v.id);
  }
  // Gradient contributions per value, summed when the value is reached (all its
  // consumers come later in topological order, so every contribution is in by then).
  const pending = new Map<number, Value[]>();
  pending.set(loss.id, [seed ?? full([], 1, loss.dtype)]);
  const total = (v: Value): Value | undefined => {
    const parts = pending.get(v.id);
    return parts && sumContributions(parts, v);
  };

  for (let i = order.length - 1; i >= 0; i--) {
    const v = order[i];
    if (v.inputs.length === 0) continue;
    const g = total(v);
    if (!g) continue;
    const needed = v.inputs.map((x) => dependsOnWrt.has(x.id));
    if (!needed.some(Boolean)) continue;
    if (!v.op.vjp) {
      throw opError(v.op.kind, v.inputs, `has no gradient rule, but a gradient must flow through it to ${needed.map((n, j) => (n ? `input ${j}` : '')).filter(Boolean).join(', ')}`);
    }
    const inputGrads = v.op.vjp({ g, out: v, inputs: v.inputs, attrs: v.attrs });
    v.inputs.forEach((x, j) => {
      const gx = inputGrads[j];
      if (!needed[j] || !gx) return;
      const reduced = unbroadcast(gx, x);
      if (reduced.dtype !== x.dtype || !shapeEq(reduced.shape, x.shape)) {
        throw opError(v.op.kind, v.inputs, `its gradient rule gave ${reduced.dtype}${fmt(reduced.shape)} for input ${j} of ${x.dtype}${fmt(x.shape)}`);
      }
      const parts = pending.get(x.id);
      if (parts) parts.push(reduced);
      else pending.set(x.id, [reduced]);
    });
  }
  return wrt.map((w) => total(w) ?? zerosLike(w));
}

/**
 * The sum of a value's gradient contributions. When they are the gradients of slices
 * that tile the value along one axis (q, k, v split from one projection), each is a
 * zero-padded piece; their sum is then the concatenation of the pieces, which skips
 * materializing and adding the zero-padded copies.
 */
function sumContributions(parts: Value[], x: Value): Value {
  if (parts.length > 1) {
    const tiled = asTiling(parts, x);
    if (tiled) return tiled;
  }
  return parts.reduce((a, b) => add(a, b));
}

function asTiling(parts: Value[], x: Value): Value | undefined {
  if (!parts.every((p) => p.op === PadOp)) return undefined;
  const pads = parts as Value<PadAttrs>[];
  const axes = pads.map((p) => p.attrs.before.findIndex((b, i) => b !== 0 || p.attrs.after[i] !== 0));
  const axis = axes[0];
  if (axis < 0 || axes.some((a) => a !== axis)) return undefined;
  if (pads.some((p) => p.attrs.before.some((b, i) => i !== axis && (b !== 0 || p.attrs.after[i] !== 0)))) return undefined;
  const sorted = [...pads].sort((a, b) => (a.attrs.before[axis] === b.attrs.before[axis] ? 0 : dimLess(a.attrs.before[axis], b.attrs.before[axis]) ? -1 : 1));
  let at: Dim = 0;
  for (const p of sorted) {
    if (p.attrs.before[axis] !== at) return undefined;
    at = dimAdd(at, p.inputs[0].shape[axis]);
  }
  if (at !== x.shape[axis]) return undefined;
  return concat(sorted.map((p) => p.inputs[0]), axis);
}

/** Orders two offsets whose difference is a known number (false when it is symbolic). */
const dimLess = (a: Dim, b: Dim): boolean => {
  const d = dimSub(b, a);
  return typeof d === 'number' && d > 0;
};

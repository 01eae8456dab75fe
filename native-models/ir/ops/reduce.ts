// Reductions over a set of axes.

import { isFloat } from '../dtype.ts';
import { normAxis, numel, type Dim } from '../shape.ts';
import { apply, defineOp, opError, type OpDef, type Value } from '../value.ts';
import { cast, div, equal, mul } from './elementwise.ts';
import { dimValue } from './leaf.ts';
import { expand, reshape } from './layout.ts';

export interface ReduceAttrs { axes: number[]; keepdims: boolean }

function reducedShape(shape: readonly Dim[], axes: number[], keepdims: boolean): Dim[] {
  return keepdims ? shape.map((d, i) => (axes.includes(i) ? 1 : d)) : shape.filter((_, i) => !axes.includes(i));
}

/** g (the reduced gradient) broadcast back to x's shape. */
function unreduce(g: Value, x: Value, a: ReduceAttrs): Value {
  return expand(reshape(g, reducedShape(x.shape, a.axes, true)), x.shape);
}

function reduceOp(kind: string, vjp: OpDef<ReduceAttrs>['vjp']): OpDef<ReduceAttrs> {
  return defineOp<ReduceAttrs>({
    kind,
    infer: (inputs, a) => {
      if (!isFloat(inputs[0].dtype)) throw opError(kind, inputs, 'needs a floating-point input');
      return { dtype: inputs[0].dtype, shape: reducedShape(inputs[0].shape, a.axes, a.keepdims) };
    },
    vjp,
    emit: (e, v) => e.node(kind, [e.name(v.inputs[0]), e.ints(v.attrs.axes)], { keepdims: v.attrs.keepdims ? 1 : 0 }),
  });
}

export const ReduceSumOp = reduceOp('ReduceSum', ({ g, inputs: [x], attrs }) => [unreduce(g, x, attrs)]);

export const ReduceMeanOp = reduceOp('ReduceMean', ({ g, inputs: [x], attrs }) => {
  const count = numel(attrs.axes.map((i) => x.shape[i]));
  return [div(unreduce(g, x, attrs), dimValue(count, x.dtype))];
});

// The gradient goes to the maximal elements, shared evenly between ties (as in PyTorch).
export const ReduceMaxOp = reduceOp('ReduceMax', ({ g, out, inputs: [x], attrs }) => {
  const mask = cast(equal(x, unreduce(out, x, attrs)), x.dtype);
  const ties = unreduce(reduceSum(mask, attrs.axes, true), x, { axes: attrs.axes, keepdims: true });
  return [div(mul(unreduce(g, x, attrs), mask), ties)];
});

function axesOf(x: Value, axes: number | readonly number[] | undefined, kind: string): number[] {
  const list = axes === undefined ? x.shape.map((_, i) => i) : typeof axes === 'number' ? [axes] : [...axes];
  return [...new Set(list.map((a) => normAxis(a, x.rank, kind)))].sort((p, q) => p - q);
}

// An explicit empty axis list reduces nothing: x itself. (ONNX would reduce every axis
// when given no axes, which disagrees with the inferred shape.)
function reduce(op: OpDef<ReduceAttrs>, x: Value, axes: number | readonly number[] | undefined, keepdims: boolean): Value {
  const list = axesOf(x, axes, op.kind);
  return list.length === 0 ? x : apply(op, [x], { axes: list, keepdims });
}

export const reduceSum = (x: Value, axes?: number | readonly number[], keepdims = false): Value => reduce(ReduceSumOp, x, axes, keepdims);
export const reduceMean = (x: Value, axes?: number | readonly number[], keepdims = false): Value => reduce(ReduceMeanOp, x, axes, keepdims);
export const reduceMax = (x: Value, axes?: number | readonly number[], keepdims = false): Value => reduce(ReduceMaxOp, x, axes, keepdims);

// Ops that move elements without computing on them.

import { isFloat } from '../dtype.ts';
import { broadcastShapes, dimAdd, dimDiv, dimSub, fmt, isStatic, normAxis, numel, shapeEq, type Dim, type Shape } from '../shape.ts';
import { apply, defineOp, opError, type Value } from '../value.ts';

export const ReshapeOp = defineOp<{ shape: Dim[] }>({
  kind: 'Reshape',
  infer: (inputs, a) => ({ dtype: inputs[0].dtype, shape: a.shape }),
  vjp: ({ g, inputs: [x] }) => [reshape(g, x.shape)],
  // allowzero: a symbolic dim that is 0 at run time (an empty KV cache) means 0, not
  // ONNX's default "copy this dim from the input".
  emit: (e, v) => e.node('Reshape', [e.name(v.inputs[0]), e.shape(v.attrs.shape)], { allowzero: 1 }),
});

/** Reshape; one entry may be -1 and is inferred (symbolically when dims are symbols). */
export function reshape(x: Value, shape: Shape): Value {
  const total = numel(x.shape);
  const unknown = shape.filter((d) => d === -1).length;
  if (unknown > 1) throw opError('Reshape', [x], `at most one -1 is allowed in ${fmt(shape)}`);
  let resolved = [...shape];
  if (unknown === 1) {
    const known = numel(shape.filter((d) => d !== -1));
    const rest = dimDiv(total, known);
    if (rest === undefined) throw opError('Reshape', [x], `cannot reshape ${fmt(x.shape)} to ${fmt(shape)}`);
    resolved = shape.map((d) => (d === -1 ? rest : d));
  }
  if (numel(resolved) !== total) throw opError('Reshape', [x], `cannot reshape ${fmt(x.shape)} (${total} elements) to ${fmt(resolved)}`);
  if (shapeEq(resolved, x.shape)) return x;
  return apply(ReshapeOp, [x], { shape: resolved });
}

export const unsqueeze = (x: Value, axis: number): Value => {
  const a = normAxis(axis, x.rank + 1, 'Unsqueeze');
  return reshape(x, [...x.shape.slice(0, a), 1, ...x.shape.slice(a)]);
};

export const squeeze = (x: Value, axis: number): Value => {
  const a = normAxis(axis, x.rank, 'Squeeze');
  if (x.shape[a] !== 1) throw opError('Squeeze', [x], `axis ${axis} has size ${x.shape[a]}, not 1`);
  return reshape(x, x.shape.filter((_, i) => i !== a));
};

export const TransposeOp = defineOp<{ perm: number[] }>({
  kind: 'Transpose',
  infer: (inputs, a) => {
    const x = inputs[0];
    const sorted = [...a.perm].sort((p, q) => p - q);
    if (a.perm.length !== x.rank || sorted.some((p, i) => p !== i)) throw opError('Transpose', inputs, `perm [${a.perm}] is not a permutation of rank ${x.rank}`);
    return { dtype: x.dtype, shape: a.perm.map((p) => x.shape[p]) };
  },
  vjp: ({ g, attrs }) => {
    const inv: number[] = [];
    attrs.perm.forEach((p, i) => (inv[p] = i));
    return [transpose(g, inv)];
  },
  emit: (e, v) => e.node('Transpose', [e.name(v.inputs[0])], { perm: v.attrs.perm }),
});

export const transpose = (x: Value, perm: readonly number[]): Value =>
  perm.every((p, i) => p === i) && perm.length === x.rank ? x : apply(TransposeOp, [x], { perm: [...perm] });

export const ExpandOp = defineOp<{ shape: Dim[] }>({
  kind: 'Expand',
  infer: (inputs, a) => {
    const out = broadcastShapes(inputs[0].shape, a.shape);
    if (!out) throw opError('Expand', inputs, `cannot broadcast to ${fmt(a.shape)}`);
    return { dtype: inputs[0].dtype, shape: out };
  },
  vjp: ({ g }) => [g],
  emit: (e, v) => e.node('Expand', [e.name(v.inputs[0]), e.shape(v.attrs.shape)]),
});

export const expand = (x: Value, shape: Shape): Value => (shapeEq(x.shape, shape) ? x : apply(ExpandOp, [x], { shape: [...shape] }));

export const ConcatOp = defineOp<{ axis: number }>({
  kind: 'Concat',
  infer: (inputs, a) => {
    const first = inputs[0];
    let size: Dim = 0;
    for (const x of inputs) {
      if (x.dtype !== first.dtype || x.rank !== first.rank || x.shape.some((d, i) => i !== a.axis && d !== first.shape[i])) {
        throw opError('Concat', inputs, `inputs differ outside axis ${a.axis}`);
      }
      size = dimAdd(size, x.shape[a.axis]);
    }
    return { dtype: first.dtype, shape: first.shape.map((d, i) => (i === a.axis ? size : d)) };
  },
  vjp: ({ g, inputs, attrs }) => {
    let start: Dim = 0;
    return inputs.map((x) => {
      const end = dimAdd(start, x.shape[attrs.axis]);
      const part = slice(g, attrs.axis, start, end);
      start = end;
      return part;
    });
  },
  emit: (e, v) => e.node('Concat', v.inputs.map((x) => e.name(x)), { axis: v.attrs.axis }),
});

export function concat(xs: readonly Value[], axis: number): Value {
  if (xs.length === 0) throw new Error('Concat: needs at least one input');
  if (xs.length === 1) return xs[0];
  return apply(ConcatOp, xs, { axis: normAxis(axis, xs[0].rank, 'Concat') });
}

/** x[start:end] along one axis (step 1); start and end may be symbolic, end defaults to the dim. */
export const SliceOp = defineOp<{ axis: number; start: Dim; end: Dim }>({
  kind: 'Slice',
  infer: (inputs, a) => {
    const x = inputs[0];
    const len = dimSub(a.end, a.start);
    if (isStatic(len) && len < 0) throw opError('Slice', inputs, `empty range ${a.start}..${a.end} on axis ${a.axis}`);
    return { dtype: x.dtype, shape: x.shape.map((d, i) => (i === a.axis ? len : d)) };
  },
  vjp: ({ g, inputs: [x], attrs }) => {
    const before = x.shape.map((_, i) => (i === attrs.axis ? attrs.start : 0));
    const after = x.shape.map((d, i) => (i === attrs.axis ? dimSub(d, attrs.end) : 0));
    return [pad(g, before, after)];
  },
  emit: (e, v) => {
    const { axis, start, end } = v.attrs;
    // WebGPU slices floats only: integers (token ids) are gathered at start..end-1 instead.
    if (e.target === 'webgpu' && !isFloat(v.dtype)) return e.node('Gather', [e.name(v.inputs[0]), e.node('Range', [e.dim(start, 'int32'), e.dim(end, 'int32'), e.scalar(1, 'int32')])], { axis });
    return e.node('Slice', [e.name(v.inputs[0]), e.shape([start]), e.shape([end]), e.ints([axis])]);
  },
});

export function slice(x: Value, axis: number, start: Dim, end?: Dim): Value {
  const ax = normAxis(axis, x.rank, 'Slice');
  const dim = x.shape[ax];
  const norm = (i: Dim): Dim => (isStatic(i) && i < 0 ? dimAdd(dim, i) : i);
  const s = norm(start), e = end === undefined ? dim : norm(end);
  if (isStatic(dim) && isStatic(s) && isStatic(e) && (s < 0 || e > dim)) throw opError('Slice', [x], `range ${start}..${end} is outside axis ${axis} of size ${dim}`);
  if (s === 0 && e === dim) return x;
  return apply(SliceOp, [x], { axis: ax, start: s, end: e });
}

/**
 * One piece of an ONNX Split. Piece 0 emits the Split node; piece k > 0 takes piece 0 as
 * a second input only to name that node's k-th output (no gradient flows through it).
 * The gradient of a piece is the zero-padded slice gradient, and autodiff concatenates
 * the gradients of pieces that tile x.
 */
export const SplitOp = defineOp<{ axis: number; sizes: Dim[]; index: number }>({
  kind: 'Split',
  infer: (inputs, a) => {
    const x = inputs[0];
    const total = a.sizes.reduce<Dim>((s, d) => dimAdd(s, d), 0);
    if (total !== x.shape[a.axis]) throw opError('Split', inputs, `sizes [${a.sizes}] do not add up to axis ${a.axis} of size ${x.shape[a.axis]}`);
    return { dtype: x.dtype, shape: x.shape.map((d, i) => (i === a.axis ? a.sizes[a.index] : d)) };
  },
  vjp: ({ g, inputs: [x], attrs }) => {
    const start = attrs.sizes.slice(0, attrs.index).reduce<Dim>((s, d) => dimAdd(s, d), 0);
    const end = dimAdd(start, attrs.sizes[attrs.index]);
    const before = x.shape.map((_, i) => (i === attrs.axis ? start : 0));
    const after = x.shape.map((d, i) => (i === attrs.axis ? dimSub(d, end) : 0));
    return [pad(g, before, after), null];
  },
  emit: (e, v) => {
    const { axis, sizes, index } = v.attrs;
    if (index > 0) return e.sibling(v.inputs[1], index);
    return e.node('Split', [e.name(v.inputs[0]), e.shape(sizes)], { axis }, { outputs: sizes.length });
  },
});

/** Splits along an axis into pieces of the given sizes. */
export function split(x: Value, axis: number, sizes: readonly Dim[]): Value[] {
  const ax = normAxis(axis, x.rank, 'Split');
  if (sizes.length === 1) return [x];
  const first = apply(SplitOp, [x], { axis: ax, sizes: [...sizes], index: 0 });
  return [first, ...sizes.slice(1).map((_, k) => apply(SplitOp, [x, first], { axis: ax, sizes: [...sizes], index: k + 1 }))];
}

/** Zero padding: `before[i]` and `after[i]` elements around axis i (the gradient of Slice). */
export interface PadAttrs { before: Dim[]; after: Dim[] }

export const PadOp = defineOp<PadAttrs>({
  kind: 'Pad',
  infer: (inputs, a) => ({ dtype: inputs[0].dtype, shape: inputs[0].shape.map((d, i) => dimAdd(dimAdd(d, a.before[i]), a.after[i])) }),
  vjp: ({ g, inputs: [x], attrs }) => {
    let out = g;
    attrs.before.forEach((b, i) => {
      if (b !== 0 || attrs.after[i] !== 0) out = slice(out, i, b, dimAdd(b, x.shape[i]));
    });
    return [out];
  },
  emit: (e, v) => e.node('Pad', [e.name(v.inputs[0]), e.shape([...v.attrs.before, ...v.attrs.after])]),
});

export const pad = (x: Value, before: Shape, after: Shape): Value => apply(PadOp, [x], { before: [...before], after: [...after] });

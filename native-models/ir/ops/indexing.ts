// Ops that index: embedding lookup (Gather), picking one entry per row (GatherElements),
// and their gradients, which add into zeros at the indexed places (a scatter-add).

import { ONNX_DTYPE } from '../dtype.ts';
import { fmt, normAxis, shapeEq, type Dim } from '../shape.ts';
import { apply, defineOp, opError, type Value } from '../value.ts';
import { cast } from './elementwise.ts';
import { unsqueeze } from './layout.ts';

function checkIndices(kind: string, inputs: readonly Value[], idx: Value): void {
  if (idx.dtype !== 'int64' && idx.dtype !== 'int32') throw opError(kind, inputs, 'indices must be int64 or int32');
}

/** Rows of `data` along axis 0 (an embedding lookup): out = data[indices]. */
export const GatherOp = defineOp<object>({
  kind: 'Gather',
  infer: (inputs) => {
    const [data, idx] = inputs;
    checkIndices('Gather', inputs, idx);
    return { dtype: data.dtype, shape: [...idx.shape, ...data.shape.slice(1)] };
  },
  vjp: ({ g, inputs: [data, idx] }) => [scatterAddRows(g, idx, data.shape), null],
  emit: (e, v) => e.node('Gather', v.inputs.map((x) => e.name(x)), { axis: 0 }),
});

export const gather = (data: Value, indices: Value): Value => apply(GatherOp, [data, indices], {});

/** zeros(shape) with updates[i...] added to row indices[i...]: repeated indices accumulate. */
export const ScatterAddRowsOp = defineOp<{ shape: Dim[] }>({
  kind: 'ScatterAddRows',
  infer: (inputs, a) => {
    const [upd, idx] = inputs;
    checkIndices('ScatterAddRows', inputs, idx);
    const want = [...idx.shape, ...a.shape.slice(1)];
    if (upd.rank !== want.length || upd.shape.some((d, i) => d !== want[i])) throw opError('ScatterAddRows', inputs, 'updates must have shape indices.shape + row shape');
    return { dtype: upd.dtype, shape: a.shape };
  },
  vjp: ({ g, inputs: [, idx] }) => [gather(g, idx), null],
  emit: (e, v) => {
    const [upd, idx] = v.inputs;
    const zeros = e.node('Expand', [e.scalar(0, upd.dtype), e.shape(v.attrs.shape)]);
    // ScatterND takes int64 indices only (Gather also takes int32); on webgpu, where int64
    // values are int32 (emit.ts), they are cast for it.
    const rows = e.name(unsqueeze(idx.dtype === 'int64' ? idx : cast(idx, 'int64'), -1));
    const rows64 = e.target === 'webgpu' ? e.node('Cast', [rows], { to: ONNX_DTYPE.int64 }) : rows;
    return e.node('ScatterND', [zeros, rows64, e.name(upd)], { reduction: 'add' });
  },
});

export const scatterAddRows = (updates: Value, indices: Value, shape: readonly Dim[]): Value =>
  apply(ScatterAddRowsOp, [updates, indices], { shape: [...shape] });

/** out[i][j] = data[i][indices[i][j]] along `axis` (ONNX GatherElements). */
export const GatherElementsOp = defineOp<{ axis: number }>({
  kind: 'GatherElements',
  infer: (inputs) => {
    const [data, idx] = inputs;
    checkIndices('GatherElements', inputs, idx);
    if (idx.rank !== data.rank) throw opError('GatherElements', inputs, 'indices must have the rank of data');
    return { dtype: data.dtype, shape: [...idx.shape] };
  },
  vjp: ({ g, inputs: [data, idx], attrs }) => [scatterAddElements(g, idx, attrs.axis, data.shape), null],
  emit: (e, v) => e.node('GatherElements', v.inputs.map((x) => e.name(x)), { axis: v.attrs.axis }),
});

export const gatherElements = (data: Value, indices: Value, axis: number): Value =>
  apply(GatherElementsOp, [data, indices], { axis: normAxis(axis, data.rank, 'GatherElements') });

/**
 * `updates` added along `axis` at `indices` (ONNX ScatterElements with reduction 'add'),
 * into zeros of `shape`, or into the optional third input `base` (of that shape), which
 * saves a full-size pass where the sum would otherwise be added afterwards.
 */
export const ScatterAddElementsOp = defineOp<{ axis: number; shape: Dim[] }>({
  kind: 'ScatterAddElements',
  infer: (inputs, a) => {
    const [upd, idx, base] = inputs;
    checkIndices('ScatterAddElements', inputs, idx);
    if (!shapeEq(upd.shape, idx.shape) || idx.rank !== a.shape.length) {
      throw opError('ScatterAddElements', inputs, `updates and indices must have one shape, of the rank of the output ${fmt(a.shape)}`);
    }
    if (base && (!shapeEq(base.shape, a.shape) || base.dtype !== upd.dtype)) throw opError('ScatterAddElements', inputs, `the base must be a ${upd.dtype} tensor of shape ${fmt(a.shape)}`);
    return { dtype: upd.dtype, shape: a.shape };
  },
  vjp: ({ g, inputs: [, idx, base], attrs }) => [gatherElements(g, idx, attrs.axis), null, ...(base ? [g] : [])],
  emit: (e, v) => {
    const [upd, idx, base] = v.inputs;
    const data = base ? e.name(base) : e.node('Expand', [e.scalar(0, upd.dtype), e.shape(v.attrs.shape)]);
    return e.node('ScatterElements', [data, e.name(idx), e.name(upd)], { axis: v.attrs.axis, reduction: 'add' });
  },
});

export const scatterAddElements = (updates: Value, indices: Value, axis: number, shape: readonly Dim[]): Value =>
  apply(ScatterAddElementsOp, [updates, indices], { axis, shape: [...shape] });

/** base + (updates added along `axis` at `indices`): one ScatterElements over a copy of base. */
export const scatterAddElementsInto = (base: Value, updates: Value, indices: Value, axis: number): Value =>
  apply(ScatterAddElementsOp, [updates, indices, base], { axis: normAxis(axis, base.rank, 'ScatterAddElements'), shape: [...base.shape] });

/** Running sum along an axis; its gradient is the running sum the other way. */
export const CumSumOp = defineOp<{ axis: number; exclusive: boolean; reverse: boolean }>({
  kind: 'CumSum',
  infer: (inputs) => ({ dtype: inputs[0].dtype, shape: [...inputs[0].shape] }),
  vjp: ({ g, attrs }) => [cumsum(g, attrs.axis, { exclusive: attrs.exclusive, reverse: !attrs.reverse })],
  emit: (e, v) => e.node('CumSum', [e.name(v.inputs[0]), e.scalar(v.attrs.axis, 'int64')], { exclusive: v.attrs.exclusive ? 1 : 0, reverse: v.attrs.reverse ? 1 : 0 }),
});

export const cumsum = (x: Value, axis: number, opts: { exclusive?: boolean; reverse?: boolean } = {}): Value =>
  apply(CumSumOp, [x], { axis: normAxis(axis, x.rank, 'CumSum'), exclusive: opts.exclusive ?? false, reverse: opts.reverse ?? false });

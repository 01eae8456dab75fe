// Leaves of the graph: named inputs, parameters, constants; and values made from shapes.

import { dtypeOfArray, type DType, type HostArray } from '../dtype.ts';
import { fmt, isStatic, numel, type Dim, type Shape } from '../shape.ts';
import { apply, defineOp, opError, type Value } from '../value.ts';

export interface LeafAttrs { name: string }

/** A batch input fed at run time; symbolic dims name the batch and sequence axes. */
export const InputOp = defineOp<LeafAttrs & { dtype: DType; shape: Dim[] }>({
  kind: 'Input',
  infer: (_, a) => ({ dtype: a.dtype, shape: a.shape }),
  emit: (_, v) => v.attrs.name,
});

/**
 * A weight. Whether it is trainable (a graph input, updated each step) or frozen (an
 * initializer that stays resident in the session) is decided when the graph is emitted.
 */
export const ParamOp = defineOp<LeafAttrs & { dtype: DType; shape: number[] }>({
  kind: 'Param',
  infer: (_, a) => ({ dtype: a.dtype, shape: a.shape }),
  emit: (_, v) => v.attrs.name,
});

export const ConstantOp = defineOp<{ data: HostArray; shape: number[] }>({
  kind: 'Constant',
  infer: (_, a) => ({ dtype: dtypeOfArray(a.data), shape: a.shape }),
  emit: (e, v) => e.tensor(v.attrs.data, v.attrs.shape),
});

export function input(name: string, dtype: DType, shape: Shape): Value {
  return apply(InputOp, [], { name, dtype, shape: [...shape] });
}

export function param(name: string, shape: readonly number[], dtype: DType = 'float32'): Value {
  return apply(ParamOp, [], { name, dtype, shape: [...shape] });
}

export function constant(data: HostArray, shape: readonly number[]): Value {
  const n = shape.reduce((a, b) => a * b, 1);
  if (n !== data.length) throw opError('Constant', [], `shape ${fmt(shape)} holds ${n} elements but ${data.length} were given`);
  return apply(ConstantOp, [], { data, shape: [...shape] });
}

export function scalar(value: number, dtype: DType = 'float32'): Value {
  switch (dtype) {
    case 'float32': return constant(Float32Array.of(value), []);
    case 'float64': return constant(Float64Array.of(value), []);
    case 'int64': return constant(BigInt64Array.of(BigInt(value)), []);
    case 'int32': return constant(Int32Array.of(value), []);
    case 'bool': return constant(Uint8Array.of(value ? 1 : 0), []);
    case 'float16': throw new Error('scalar: float16 constants are not supported; build float32 and cast');
  }
}

/** A tensor of the given (possibly symbolic) shape filled with one value. */
export const FullOp = defineOp<{ shape: Dim[]; value: number; dtype: DType }>({
  kind: 'Full',
  infer: (_, a) => ({ dtype: a.dtype, shape: a.shape }),
  emit: (e, v) => e.node('Expand', [e.scalar(v.attrs.value, v.attrs.dtype), e.shape(v.attrs.shape)]),
});

export function full(shape: Shape, value: number, dtype: DType = 'float32'): Value {
  return apply(FullOp, [], { shape: [...shape], value, dtype });
}

export const zerosLike = (x: Value): Value => full(x.shape, 0, x.dtype);

/** 0, 1, ..., n-1 (n may be symbolic), as int64. */
export const RangeOp = defineOp<{ n: Dim }>({
  kind: 'Range',
  infer: (_, a) => ({ dtype: 'int64', shape: [a.n] }),
  emit: (e, v) => {
    const limit = e.dim(v.attrs.n, 'int64');
    return e.node('Range', [e.scalar(0, 'int64'), limit, e.scalar(1, 'int64')]);
  },
});

export const range = (n: Dim): Value => apply(RangeOp, [], { n });

/** A scalar holding the run-time value of a dimension, e.g. the token count B*T for a mean. */
export const DimValueOp = defineOp<{ dim: Dim; dtype: DType }>({
  kind: 'DimValue',
  infer: (_, a) => ({ dtype: a.dtype, shape: [] }),
  emit: (e, v) => e.dim(v.attrs.dim, v.attrs.dtype),
});

export function dimValue(dim: Dim, dtype: DType = 'float32'): Value {
  return isStatic(dim) ? scalar(dim, dtype) : apply(DimValueOp, [], { dim, dtype });
}

/** Number of elements of x as a scalar (static when x's shape is). */
export const numelOf = (x: Value, dtype: DType = 'float32'): Value => dimValue(numel(x.shape), dtype);

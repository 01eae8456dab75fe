// The graph IR: immutable values that remember the op and inputs that made them.
//
// There is no graph object: a computation is the DAG reachable from its outputs (as in
// micrograd and tinygrad). Each primitive op is an `OpDef` that says, in one place, how
// its output's dtype and shape follow from its inputs (checked when the value is built,
// so a bad graph fails where it is written), how the gradient flows back (`vjp`, written
// in IR ops, so the backward graph is ordinary IR), and how it is written as ONNX.

import type { DType, HostArray } from './dtype.ts';
import { fmt, type Dim, type Shape } from './shape.ts';

/** A float attribute; plain numbers are written as ONNX INT attributes. */
export class FloatAttr {
  constructor(readonly value: number) {}
}
export const floatAttr = (value: number): FloatAttr => new FloatAttr(value);

export type AttrValue = number | string | number[] | string[] | FloatAttr;

/**
 * Whose kernels a graph is written for. 'cpu' is ONNX Runtime's CPU provider (and CUDA's,
 * which has the same ops); 'webgpu' avoids what the WebGPU provider cannot run, so that
 * no node falls back to the CPU (see emit.ts).
 */
export type EmitTarget = 'cpu' | 'webgpu';

/** What an op's `emit` can ask of the ONNX writer (implemented in emit.ts). */
export interface Emitter {
  readonly target: EmitTarget;
  /** The ONNX name of a value, emitting its producer first if needed. */
  name(v: Value): string;
  /** The k-th output of the multi-output node that produced `v` (emitting it first). */
  sibling(v: Value, k: number): string;
  /** Adds one ONNX node and returns the name of its (first) output. */
  node(opType: string, inputs: string[], attrs?: Record<string, AttrValue>, opts?: { domain?: string; outputs?: number }): string;
  /** An int64 1-D initializer. */
  ints(values: readonly number[]): string;
  /** An initializer holding the given data. */
  tensor(data: HostArray, shape: readonly number[]): string;
  /** A scalar initializer of the given dtype. */
  scalar(value: number, dtype: DType): string;
  /** An int64 1-D tensor holding a shape, computed at run time when it has symbols. */
  shape(dims: Shape): string;
  /** A scalar holding the run-time value of a dimension, of the given dtype. */
  dim(d: Dim, dtype: DType): string;
  /** The ONNX element type that holds `dtype` on the target (int64 values are int32 on webgpu). */
  onnxType(dtype: DType): number;
}

export interface Inferred { dtype: DType; shape: Dim[] }

export interface VjpArgs<A> {
  /** Gradient of the loss with respect to this op's output. */
  g: Value;
  out: Value<A>;
  inputs: readonly Value[];
  attrs: A;
}

/**
 * A primitive op. Methods (not function-valued properties) so that an OpDef<A> can be
 * stored where an OpDef<unknown> is expected.
 */
export interface OpDef<A> {
  readonly kind: string;
  infer(inputs: readonly Value[], attrs: A): Inferred;
  /**
   * One gradient per input (null: no gradient flows to it), in the output's broadcast
   * shape; the autodiff sums them down to each input's shape. Absent: the op is not
   * differentiable, and asking for a gradient through it is an error.
   */
  vjp?(args: VjpArgs<A>): (Value | null)[];
  emit(e: Emitter, v: Value<A>): string;
}

export function defineOp<A>(def: OpDef<A>): OpDef<A> {
  return def;
}

let nextId = 0;

export class Value<A = unknown> {
  readonly id = nextId++;
  constructor(
    readonly op: OpDef<A>,
    readonly inputs: readonly Value[],
    readonly attrs: A,
    readonly dtype: DType,
    readonly shape: readonly Dim[],
  ) {}

  get rank(): number {
    return this.shape.length;
  }

  toString(): string {
    // Leaves carry the name the user gave them, which says more than an id.
    const name = (this.attrs as { name?: unknown } | null | undefined)?.name;
    const label = typeof name === 'string' ? `${this.op.kind} '${name}'` : this.op.kind;
    return `${label}#${this.id}: ${this.dtype}${fmt(this.shape)}`;
  }
}

/** Builds a value of a primitive op, inferring (and so checking) its type. */
export function apply<A>(op: OpDef<A>, inputs: readonly Value[], attrs: A): Value<A> {
  const { dtype, shape } = op.infer(inputs, attrs);
  return new Value(op, inputs, attrs, dtype, shape);
}

/** An error that names the op and the shapes of its inputs. */
export function opError(kind: string, inputs: readonly Value[], msg: string): Error {
  const shapes = inputs.map((v) => `${v.dtype}${fmt(v.shape)}`).join(', ');
  return new Error(`${kind}: ${msg} (inputs: ${shapes || 'none'})`);
}

/** Iterative post-order over the DAG below `roots` (deep decoders overflow recursion). */
export function topoSort(roots: readonly Value[]): Value[] {
  const order: Value[] = [];
  const seen = new Set<number>();
  const stack: { v: Value; next: number }[] = [];
  for (const root of roots) {
    if (seen.has(root.id)) continue;
    seen.add(root.id);
    stack.push({ v: root, next: 0 });
    while (stack.length > 0) {
      const top = stack[stack.length - 1];
      if (top.next < top.v.inputs.length) {
        const child = top.v.inputs[top.next++];
        if (!seen.has(child.id)) {
          seen.add(child.id);
          stack.push({ v: child, next: 0 });
        }
      } else {
        order.push(top.v);
        stack.pop();
      }
    }
  }
  return order;
}

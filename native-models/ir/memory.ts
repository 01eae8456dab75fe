// How much memory a training graph's activations take: the forward tensors that the
// backward pass reads, which must live from the forward pass until their gradient rule
// has run. This is the "activations" of the usual memory budget
// (parameters + gradients + optimizer state + activations).

import type { DType } from './dtype.ts';
import { evalDim } from './shape.ts';
import { topoSort, type Value } from './value.ts';

const BYTES: Record<DType, number> = { float32: 4, float64: 8, float16: 2, int64: 8, int32: 4, bool: 1 };

/** Bytes of one value at the given symbol sizes (e.g. { B: 8, T: 256 }). */
export function valueBytes(v: Pick<Value, 'shape' | 'dtype'>, sizes: Readonly<Record<string, number>> = {}): number {
  return v.shape.reduce<number>((n, d) => n * evalDim(d, sizes), 1) * BYTES[v.dtype];
}

/** Leaves are inputs, parameters and constants: they exist whether or not anything is saved. */
const LEAVES = new Set(['Input', 'Param', 'Constant']);

/**
 * The forward values of `loss` that the gradient graph `grads` reads. A Reshape shares its
 * input's buffer in ONNX Runtime, so it counts as the tensor it reshapes; leaves (inputs,
 * parameters, constants) are not activations, and neither is a value computed from
 * parameters and constants alone (a transposed weight, which ONNX Runtime folds into the
 * product that reads it): activations are what the batch flows through.
 */
export function savedActivations(loss: Value, grads: readonly Value[]): Value[] {
  const order = topoSort([loss]);
  const forward = new Set(order);
  const fromBatch = new Set<Value>();
  for (const v of order) if (v.op.kind === 'Input' || v.inputs.some((x) => fromBatch.has(x))) fromBatch.add(v);
  const root = (v: Value): Value => (v.op.kind === 'Reshape' ? root(v.inputs[0]) : v);
  const saved = new Set<Value>();
  for (const node of topoSort(grads)) {
    if (forward.has(node)) continue;
    for (const x of node.inputs) {
      const r = root(x);
      if (forward.has(r) && !LEAVES.has(r.op.kind) && fromBatch.has(r)) saved.add(r);
    }
  }
  return [...saved];
}

/** Bytes of savedActivations(loss, grads) at the given symbol sizes. */
export function savedActivationBytes(loss: Value, grads: readonly Value[], sizes: Readonly<Record<string, number>> = {}): number {
  return savedActivations(loss, grads).reduce((n, v) => n + valueBytes(v, sizes), 0);
}

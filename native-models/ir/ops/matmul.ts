// Batched matrix product with numpy semantics (ONNX MatMul).

import { isFloat } from '../dtype.ts';
import { broadcastShapes, fmt } from '../shape.ts';
import { apply, defineOp, opError, type Value } from '../value.ts';
import { reshape, transpose } from './layout.ts';

export const MatMulOp = defineOp<object>({
  kind: 'MatMul',
  infer: (inputs) => {
    const [a, b] = inputs;
    if (a.dtype !== b.dtype || !isFloat(a.dtype)) throw opError('MatMul', inputs, 'needs two floating-point inputs of one dtype');
    if (a.rank < 2 || b.rank < 2) throw opError('MatMul', inputs, 'needs inputs of rank >= 2');
    const [m, k] = a.shape.slice(-2), [k2, n] = b.shape.slice(-2);
    if (k !== k2) throw opError('MatMul', inputs, `inner dimensions differ: ${fmt(a.shape)} @ ${fmt(b.shape)}`);
    const batch = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2));
    if (!batch) throw opError('MatMul', inputs, 'batch dimensions do not broadcast');
    return { dtype: a.dtype, shape: [...batch, m, n] };
  },
  vjp: ({ g, inputs: [a, b] }) => {
    const ga = matmul(g, transposeLast2(b));
    // A weight shared across the batch: one [K, M*] x [M*, N] product instead of a
    // batched product followed by a sum over the batch.
    if (b.rank === 2 && a.rank > 2) {
      const K = a.shape[a.rank - 1], N = b.shape[1];
      return [ga, matmul(transpose(reshape(a, [-1, K]), [1, 0]), reshape(g, [-1, N]))];
    }
    return [ga, matmul(transposeLast2(a), g)];
  },
  emit: (e, v) => e.node('MatMul', v.inputs.map((x) => e.name(x))),
});

export const matmul = (a: Value, b: Value): Value => apply(MatMulOp, [a, b], {});

export function transposeLast2(x: Value): Value {
  const perm = x.shape.map((_, i) => i);
  [perm[x.rank - 2], perm[x.rank - 1]] = [perm[x.rank - 1], perm[x.rank - 2]];
  return transpose(x, perm);
}

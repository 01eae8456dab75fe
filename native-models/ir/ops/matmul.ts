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

/**
 * ONNX Gemm on matrices: op(a) @ op(b) (+ c), where op transposes when asked. With
 * transB it is the nn.Linear product x @ W^T on W stored [out, in] without a Transpose
 * node; c (a bias broadcast to [M, N]) is fused into the same kernel.
 */
export const GemmOp = defineOp<{ transA: boolean; transB: boolean }>({
  kind: 'Gemm',
  infer: (inputs, attrs) => {
    const [a, b, c] = inputs;
    if (a.dtype !== b.dtype || !isFloat(a.dtype) || (c && c.dtype !== a.dtype)) throw opError('Gemm', inputs, 'needs floating-point inputs of one dtype');
    if (a.rank !== 2 || b.rank !== 2) throw opError('Gemm', inputs, 'needs two matrices');
    const [m, k] = attrs.transA ? [a.shape[1], a.shape[0]] : a.shape;
    const [k2, n] = attrs.transB ? [b.shape[1], b.shape[0]] : b.shape;
    if (k !== k2) throw opError('Gemm', inputs, `inner dimensions differ (transA ${attrs.transA}, transB ${attrs.transB})`);
    if (c && (c.rank > 2 || !broadcastShapes([m, n], c.shape) || broadcastShapes([m, n], c.shape)!.some((d, i) => d !== [m, n][i]))) {
      throw opError('Gemm', inputs, `the bias must broadcast to ${fmt([m, n])}`);
    }
    return { dtype: a.dtype, shape: [m, n] };
  },
  // With Y = op(A) op(B) + C: d op(A) = G op(B)^T and d op(B) = op(A)^T G, each again
  // one Gemm with the transposes folded into its flags.
  vjp: ({ g, inputs: [a, b, c], attrs: { transA, transB } }) => {
    const ga = transA ? gemm(b, g, { transA: transB, transB: true }) : gemm(g, b, { transB: !transB });
    const gb = transB ? gemm(g, a, { transA: true, transB: transA }) : gemm(a, g, { transA: !transA });
    return c ? [ga, gb, g] : [ga, gb];
  },
  emit: (e, v) => e.node('Gemm', v.inputs.map((x) => e.name(x)), { transA: v.attrs.transA ? 1 : 0, transB: v.attrs.transB ? 1 : 0 }),
});

export function gemm(a: Value, b: Value, opts: { transA?: boolean; transB?: boolean } = {}, c?: Value): Value {
  return apply(GemmOp, c ? [a, b, c] : [a, b], { transA: opts.transA ?? false, transB: opts.transB ?? false });
}

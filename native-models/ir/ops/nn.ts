// Normalizing ops that ONNX Runtime runs as single fused kernels.

import { isFloat } from '../dtype.ts';
import { normAxis } from '../shape.ts';
import { apply, defineOp, floatAttr, opError, type Value } from '../value.ts';
import { exp, mul, sqrt, sub, add, div } from './elementwise.ts';
import { reduceMean, reduceSum } from './reduce.ts';

function sameAsInput(kind: string) {
  return (inputs: readonly Value[]) => {
    if (!isFloat(inputs[0].dtype)) throw opError(kind, inputs, 'needs a floating-point input');
    return { dtype: inputs[0].dtype, shape: [...inputs[0].shape] };
  };
}

// dx = y * (g - sum(g * y))
export const SoftmaxOp = defineOp<{ axis: number }>({
  kind: 'Softmax',
  infer: sameAsInput('Softmax'),
  vjp: ({ g, out, attrs }) => [mul(out, sub(g, reduceSum(mul(g, out), attrs.axis, true)))],
  emit: (e, v) => e.node('Softmax', [e.name(v.inputs[0])], { axis: v.attrs.axis }),
});

// dx = g - softmax * sum(g)
export const LogSoftmaxOp = defineOp<{ axis: number }>({
  kind: 'LogSoftmax',
  infer: sameAsInput('LogSoftmax'),
  vjp: ({ g, out, attrs }) => [sub(g, mul(exp(out), reduceSum(g, attrs.axis, true)))],
  emit: (e, v) => e.node('LogSoftmax', [e.name(v.inputs[0])], { axis: v.attrs.axis }),
});

export const softmax = (x: Value, axis = -1): Value => apply(SoftmaxOp, [x], { axis: normAxis(axis, x.rank, 'Softmax') });
export const logSoftmax = (x: Value, axis = -1): Value => apply(LogSoftmaxOp, [x], { axis: normAxis(axis, x.rank, 'LogSoftmax') });

/**
 * Layer normalization over the last axis: (x - mean) / sqrt(var + eps) * scale + bias.
 * The backward recomputes the statistics rather than keeping them (they are cheap).
 */
export const LayerNormOp = defineOp<{ eps: number }>({
  kind: 'LayerNormalization',
  infer: (inputs) => {
    const [x, scale, bias] = inputs;
    const d = x.shape[x.rank - 1];
    if (!isFloat(x.dtype) || scale.dtype !== x.dtype || bias.dtype !== x.dtype) throw opError('LayerNormalization', inputs, 'needs floating-point inputs of one dtype');
    if (scale.rank !== 1 || bias.rank !== 1 || scale.shape[0] !== d || bias.shape[0] !== d) throw opError('LayerNormalization', inputs, `scale and bias must have shape [${d}]`);
    return { dtype: x.dtype, shape: [...x.shape] };
  },
  vjp: ({ g, inputs: [x, scale], attrs }) => {
    const last = x.rank - 1;
    const lead = x.shape.map((_, i) => i).slice(0, -1);
    const xc = sub(x, reduceMean(x, last, true));
    const rstd = div(1, sqrt(add(reduceMean(mul(xc, xc), last, true), attrs.eps)));
    const xhat = mul(xc, rstd);
    const gs = mul(g, scale);
    // dx = rstd * (gs - mean(gs) - xhat * mean(gs * xhat))
    const dx = mul(rstd, sub(sub(gs, reduceMean(gs, last, true)), mul(xhat, reduceMean(mul(gs, xhat), last, true))));
    return [dx, reduceSum(mul(g, xhat), lead), reduceSum(g, lead)];
  },
  emit: (e, v) => e.node('LayerNormalization', v.inputs.map((x) => e.name(x)), { axis: -1, epsilon: floatAttr(v.attrs.eps) }),
});

export const layerNorm = (x: Value, scale: Value, bias: Value, eps = 1e-5): Value => apply(LayerNormOp, [x, scale, bias], { eps });

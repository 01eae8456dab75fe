// Normalizing ops that ONNX Runtime runs as single fused kernels.

import { isFloat } from '../dtype.ts';
import { normAxis } from '../shape.ts';
import { apply, defineOp, floatAttr, opError, type Emitter, type Value } from '../value.ts';
import { add, div, exp, mul, neg, sqrt, sub } from './elementwise.ts';
import { gatherElements, scatterAddElementsInto } from './indexing.ts';
import { unsqueeze } from './layout.ts';
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

/**
 * log sum exp(x) along `axis` (kept), as max + log sum exp(x - max): the WebGPU provider
 * has no LogSoftmax kernel, and its ReduceLogSumExp overflows (it gave +inf for [1000,
 * 999, 998]).
 */
function emitLogSumExp(e: Emitter, x: string, axis: number): string {
  const axes = e.ints([axis]);
  const max = e.node('ReduceMax', [x, axes], { keepdims: 1 });
  const sum = e.node('ReduceSum', [e.node('Exp', [e.node('Sub', [x, max])]), axes], { keepdims: 1 });
  return e.node('Add', [max, e.node('Log', [sum])]);
}

// dx = g - softmax * sum(g)
export const LogSoftmaxOp = defineOp<{ axis: number }>({
  kind: 'LogSoftmax',
  infer: sameAsInput('LogSoftmax'),
  vjp: ({ g, out, attrs }) => [sub(g, mul(exp(out), reduceSum(g, attrs.axis, true)))],
  emit: (e, v) => {
    const x = e.name(v.inputs[0]);
    if (e.target === 'webgpu') return e.node('Sub', [x, emitLogSumExp(e, x, v.attrs.axis)]);
    return e.node('LogSoftmax', [x], { axis: v.attrs.axis });
  },
});

export const softmax = (x: Value, axis = -1): Value => apply(SoftmaxOp, [x], { axis: normAxis(axis, x.rank, 'Softmax') });
export const logSoftmax = (x: Value, axis = -1): Value => apply(LogSoftmaxOp, [x], { axis: normAxis(axis, x.rank, 'LogSoftmax') });

/**
 * Layer normalization over the last axis: (x - mean) / sqrt(var + eps) * scale + bias.
 * ONNX's LayerNormalization also outputs the mean and 1/std it computed; the backward
 * reads them (`LayerNormStat`) instead of recomputing them.
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
  vjp: ({ g, out, inputs: [x, scale], attrs }) => {
    const last = x.rank - 1;
    const lead = x.shape.map((_, i) => i).slice(0, -1);
    const { mean, rstd } = layerNormStats(out, x, attrs.eps);
    const xhat = mul(sub(x, mean), rstd);
    const gs = mul(g, scale);
    // dx = rstd * (gs - mean(gs) - xhat * mean(gs * xhat))
    const dx = mul(rstd, sub(sub(gs, reduceMean(gs, last, true)), mul(xhat, reduceMean(mul(gs, xhat), last, true))));
    return [dx, reduceSum(mul(g, xhat), lead), reduceSum(g, lead)];
  },
  emit: (e, v) => {
    // ORT computes the statistics in float32 (it has no float64 "stash" kernel), so only
    // a float32 norm exposes them; float64 (gradient checks) recomputes them.
    const outputs = v.dtype === 'float32' ? 3 : 1;
    return e.node('LayerNormalization', v.inputs.map((x) => e.name(x)), { axis: -1, epsilon: floatAttr(v.attrs.eps) }, { outputs });
  },
});

/** The mean or 1/std (shape [..., 1]) that a LayerNormalization computed. */
export const LayerNormStatOp = defineOp<{ which: 'mean' | 'rstd' }>({
  kind: 'LayerNormStat',
  infer: (inputs) => {
    if (inputs[0].op !== LayerNormOp) throw opError('LayerNormStat', inputs, 'reads the statistics of a LayerNormalization only');
    return { dtype: inputs[0].dtype, shape: [...inputs[0].shape.slice(0, -1), 1] };
  },
  emit: (e, v) => e.sibling(v.inputs[0], v.attrs.which === 'mean' ? 1 : 2),
});

function layerNormStats(ln: Value, x: Value, eps: number): { mean: Value; rstd: Value } {
  if (x.dtype === 'float32') return { mean: apply(LayerNormStatOp, [ln], { which: 'mean' }), rstd: apply(LayerNormStatOp, [ln], { which: 'rstd' }) };
  const mean = reduceMean(x, -1, true);
  const xc = sub(x, mean);
  return { mean, rstd: div(1, sqrt(add(reduceMean(mul(xc, xc), -1, true), eps))) };
}

export const layerNorm = (x: Value, scale: Value, bias: Value, eps = 1e-5): Value => apply(LayerNormOp, [x, scale, bias], { eps });

/**
 * log softmax(logits)[..., target]: the log-probability of each target token, [...] for
 * logits [..., V] and int targets [...]. One primitive so that the [..., V] log-softmax
 * is never kept for the backward, whose rule is the classic one:
 * d/dlogits = g (onehot(target) - softmax(logits)).
 */
export const TokenLogProbOp = defineOp<object>({
  kind: 'TokenLogProb',
  infer: (inputs) => {
    const [logits, targets] = inputs;
    if (!isFloat(logits.dtype)) throw opError('TokenLogProb', inputs, 'logits must be floating-point');
    if (targets.dtype !== 'int64') throw opError('TokenLogProb', inputs, 'targets must be int64');
    if (targets.rank !== logits.rank - 1 || targets.shape.some((d, i) => d !== logits.shape[i])) throw opError('TokenLogProb', inputs, 'targets must have the shape of logits without its last axis');
    return { dtype: logits.dtype, shape: [...targets.shape] };
  },
  vjp: ({ g, out, inputs: [logits, targets] }) => {
    // softmax = exp(logits - lse), with each row's log-sum-exp read off the forward result
    // (out = logits[target] - lse) rather than recomputed. Reading `out` also makes the
    // backward wait for the forward's log-softmax, so the logits are freed at their last use
    // here; without it ONNX Runtime ran this backward first and kept the [..., V] logits
    // alive through the whole backward pass. Then -g softmax, and +g at each target in one
    // scatter-add: no one-hot [..., V] mask, no further pass to combine them.
    const t = unsqueeze(targets, -1);
    const lse = sub(gatherElements(logits, t, -1), unsqueeze(out, -1));
    const gc = unsqueeze(g, -1);
    return [scatterAddElementsInto(mul(exp(sub(logits, lse)), neg(gc)), gc, t, -1), null];
  },
  // LogSoftmax then a gather. (logits[target] - ReduceLogSumExp(logits) would not write the
  // [..., V] log-softmax, but ONNX Runtime's ReduceLogSumExp took 34 ms where LogSoftmax
  // takes 6, for at most 10 MiB less peak memory on the training benchmark.) WebGPU has
  // no LogSoftmax: there, logits[target] minus the log-sum-exp.
  emit: (e, v) => {
    const [logits, targets] = v.inputs;
    const index = (): string => e.node('Unsqueeze', [e.name(targets), e.ints([-1])]);
    if (e.target === 'webgpu') {
      const x = e.name(logits);
      const picked = e.node('GatherElements', [x, index()], { axis: -1 });
      return e.node('Squeeze', [e.node('Sub', [picked, emitLogSumExp(e, x, -1)]), e.ints([-1])]);
    }
    const logp = e.node('LogSoftmax', [e.name(logits)], { axis: -1 });
    const picked = e.node('GatherElements', [logp, index()], { axis: -1 });
    return e.node('Squeeze', [picked, e.ints([-1])]);
  },
});

export const tokenLogProb = (logits: Value, targets: Value): Value => apply(TokenLogProbOp, [logits, targets], {});

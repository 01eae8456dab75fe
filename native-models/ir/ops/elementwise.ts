// Elementwise ops with numpy broadcasting. Their gradients are returned in the output's
// (broadcast) shape; autodiff sums them back to each input's shape in one place.

import { isFloat, type DType } from '../dtype.ts';
import { broadcastShapes, fmt } from '../shape.ts';
import { apply, defineOp, opError, type OpDef, type Value, type VjpArgs } from '../value.ts';
import { scalar } from './leaf.ts';

export type Operand = Value | number;

/** Lifts a JS number to a scalar constant of the other operand's dtype. */
function lift(a: Operand, like: Operand): Value {
  if (typeof a !== 'number') return a;
  if (typeof like === 'number') throw new Error('an elementwise op needs at least one tensor operand');
  return scalar(a, like.dtype);
}

function inferBroadcast(kind: string, inputs: readonly Value[], outDtype?: DType) {
  const [a, b] = inputs;
  if (a.dtype !== b.dtype) throw opError(kind, inputs, `dtypes differ (${a.dtype} vs ${b.dtype}); cast one of them`);
  const shape = broadcastShapes(a.shape, b.shape);
  if (!shape) throw opError(kind, inputs, `shapes ${fmt(a.shape)} and ${fmt(b.shape)} do not broadcast`);
  return { dtype: outDtype ?? a.dtype, shape };
}

function binary(kind: string, vjp?: (args: VjpArgs<object>) => (Value | null)[]): OpDef<object> {
  return defineOp<object>({
    kind,
    infer: (inputs) => inferBroadcast(kind, inputs),
    vjp,
    emit: (e, v) => e.node(kind, v.inputs.map((x) => e.name(x))),
  });
}

export const AddOp = binary('Add', ({ g }) => [g, g]);
export const SubOp = binary('Sub', ({ g }) => [g, neg(g)]);
export const MulOp = binary('Mul', ({ g, inputs: [a, b] }) => [mul(g, b), mul(g, a)]);
// d(a/b)/db = -a/b^2 = -(a/b)/b
export const DivOp = binary('Div', ({ g, out, inputs: [, b] }) => [div(g, b), neg(div(mul(g, out), b))]);
// d(a^b)/da = b a^(b-1); d(a^b)/db = a^b log a
export const PowOp = binary('Pow', ({ g, out, inputs: [a, b] }) => [mul(g, mul(b, pow(a, sub(b, 1)))), mul(g, mul(out, log(a)))]);

export const add = (a: Operand, b: Operand): Value => apply(AddOp, [lift(a, b), lift(b, a)], {});
export const sub = (a: Operand, b: Operand): Value => apply(SubOp, [lift(a, b), lift(b, a)], {});
export const mul = (a: Operand, b: Operand): Value => apply(MulOp, [lift(a, b), lift(b, a)], {});
export const div = (a: Operand, b: Operand): Value => apply(DivOp, [lift(a, b), lift(b, a)], {});
export const pow = (a: Operand, b: Operand): Value => apply(PowOp, [lift(a, b), lift(b, a)], {});

function compare(kind: string): OpDef<object> {
  return defineOp<object>({
    kind,
    infer: (inputs) => inferBroadcast(kind, inputs, 'bool'),
    emit: (e, v) => e.node(kind, v.inputs.map((x) => e.name(x))),
  });
}
export const EqualOp = compare('Equal');
export const LessOp = compare('Less');
export const equal = (a: Operand, b: Operand): Value => apply(EqualOp, [lift(a, b), lift(b, a)], {});
export const less = (a: Operand, b: Operand): Value => apply(LessOp, [lift(a, b), lift(b, a)], {});

export const WhereOp = defineOp<object>({
  kind: 'Where',
  infer: (inputs) => {
    const [c, a, b] = inputs;
    if (c.dtype !== 'bool') throw opError('Where', inputs, 'the condition must be bool');
    if (a.dtype !== b.dtype) throw opError('Where', inputs, `dtypes differ (${a.dtype} vs ${b.dtype})`);
    const ab = broadcastShapes(a.shape, b.shape);
    const shape = ab && broadcastShapes(c.shape, ab);
    if (!shape) throw opError('Where', inputs, 'shapes do not broadcast');
    return { dtype: a.dtype, shape };
  },
  vjp: ({ g, inputs: [c] }) => [null, where(c, g, 0), where(c, 0, g)],
  emit: (e, v) => e.node('Where', v.inputs.map((x) => e.name(x))),
});

export function where(cond: Value, a: Operand, b: Operand): Value {
  return apply(WhereOp, [cond, lift(a, b), lift(b, a)], {});
}

function unary(kind: string, vjp: ((args: VjpArgs<object>) => Value) | null, onnx = kind): OpDef<object> {
  return defineOp<object>({
    kind,
    infer: (inputs) => {
      if (!isFloat(inputs[0].dtype)) throw opError(kind, inputs, 'needs a floating-point input');
      return { dtype: inputs[0].dtype, shape: [...inputs[0].shape] };
    },
    vjp: vjp ? (args) => [vjp(args)] : undefined,
    emit: (e, v) => e.node(onnx, [e.name(v.inputs[0])]),
  });
}

export const NegOp = unary('Neg', ({ g }) => neg(g));
export const ExpOp = unary('Exp', ({ g, out }) => mul(g, out));
export const LogOp = unary('Log', ({ g, inputs: [x] }) => div(g, x));
export const SqrtOp = unary('Sqrt', ({ g, out }) => div(mul(g, 0.5), out));
export const TanhOp = unary('Tanh', ({ g, out }) => mul(g, sub(1, mul(out, out))));
export const SigmoidOp = unary('Sigmoid', ({ g, out }) => mul(g, mul(out, sub(1, out))));
export const ErfOp = unary('Erf', ({ g, inputs: [x] }) => mul(g, mul(2 / Math.sqrt(Math.PI), exp(neg(mul(x, x))))));
export const ReluOp = unary('Relu', ({ g, inputs: [x] }) => where(less(0, x), g, 0));
export const SinOp = unary('Sin', ({ g, inputs: [x] }) => mul(g, cos(x)));
export const CosOp = unary('Cos', ({ g, inputs: [x] }) => neg(mul(g, sin(x))));

export const neg = (x: Value): Value => apply(NegOp, [x], {});
export const exp = (x: Value): Value => apply(ExpOp, [x], {});
export const log = (x: Value): Value => apply(LogOp, [x], {});
export const sqrt = (x: Value): Value => apply(SqrtOp, [x], {});
export const tanh = (x: Value): Value => apply(TanhOp, [x], {});
export const sigmoid = (x: Value): Value => apply(SigmoidOp, [x], {});
export const erf = (x: Value): Value => apply(ErfOp, [x], {});
export const relu = (x: Value): Value => apply(ReluOp, [x], {});
export const sin = (x: Value): Value => apply(SinOp, [x], {});
export const cos = (x: Value): Value => apply(CosOp, [x], {});

/**
 * GELU, exact (x Phi(x)) or with GPT-2's tanh approximation. One primitive rather than a
 * composition so that ONNX Runtime runs its fused Gelu kernel; the derivative is written
 * out below.
 */
export const GeluOp = defineOp<{ approximate: 'none' | 'tanh' }>({
  kind: 'Gelu',
  infer: (inputs) => {
    if (!isFloat(inputs[0].dtype)) throw opError('Gelu', inputs, 'needs a floating-point input');
    return { dtype: inputs[0].dtype, shape: [...inputs[0].shape] };
  },
  vjp: ({ g, inputs: [x], attrs }) => {
    if (attrs.approximate === 'tanh') {
      // y = x/2 (1 + tanh u) = x s with s = sigmoid(2u), u = c (x + k x^3), so
      // dy/dx = s + x s (1 - s) 2u' with 2u' = 2c + 6ck x^2. Written with as few
      // full-size ops as possible (scalars folded): this runs on the MLP's widest tensor.
      const c = Math.sqrt(2 / Math.PI), k = 0.044715;
      const x2 = mul(x, x);
      const s = sigmoid(mul(x, add(mul(2 * c * k, x2), 2 * c)));
      const xdu = mul(x, add(mul(6 * c * k, x2), 2 * c));
      return [mul(g, add(s, mul(mul(s, sub(1, s)), xdu)))];
    }
    // y = x Phi(x): dy/dx = Phi(x) + x phi(x)
    const phi = mul(1 / Math.sqrt(2 * Math.PI), exp(mul(-0.5, mul(x, x))));
    const Phi = mul(0.5, add(1, erf(mul(x, Math.SQRT1_2))));
    return [mul(g, add(Phi, mul(x, phi)))];
  },
  emit: (e, v) => e.node('Gelu', [e.name(v.inputs[0])], { approximate: v.attrs.approximate }),
});

export const gelu = (x: Value, approximate: 'none' | 'tanh' = 'none'): Value => apply(GeluOp, [x], { approximate });

/**
 * SiLU, x sigmoid(x) (Llama's SwiGLU), as one primitive whose gradient reads x alone: as
 * a product, its backward kept the sigmoid of the MLP's widest tensor from the forward
 * pass to the backward (12 MiB a layer for SmolLM2 at 8 x 256 tokens). The backward
 * recomputes it as 1 - sigmoid(-x): ONNX Runtime would merge a second sigmoid(x) with
 * the forward's (common subexpression elimination) and keep that one alive instead.
 * dy/dx = s (1 + x (1 - s)) with s = sigmoid(x) = 1 - u, u = sigmoid(-x).
 */
export const SiluOp = defineOp<object>({
  kind: 'Silu',
  infer: (inputs) => {
    if (!isFloat(inputs[0].dtype)) throw opError('Silu', inputs, 'needs a floating-point input');
    return { dtype: inputs[0].dtype, shape: [...inputs[0].shape] };
  },
  vjp: ({ g, inputs: [x] }) => {
    const u = sigmoid(neg(x));
    return [mul(g, mul(sub(1, u), add(mul(x, u), 1)))];
  },
  emit: (e, v) => {
    const x = e.name(v.inputs[0]);
    // ORT fuses x * Sigmoid(x) into one kernel (com.microsoft QuickGelu), which exists in
    // float32 only, and fuses it whatever the dtype: float64 (gradient checks) is written
    // as x / (1 + exp(-x)) instead.
    if (v.dtype !== 'float32') return e.node('Div', [x, e.node('Add', [e.scalar(1, v.dtype), e.node('Exp', [e.node('Neg', [x])])])]);
    return e.node('Mul', [x, e.node('Sigmoid', [x])]);
  },
});

export const silu = (x: Value): Value => apply(SiluOp, [x], {});

export const CastOp = defineOp<{ to: DType }>({
  kind: 'Cast',
  infer: (inputs, a) => ({ dtype: a.to, shape: [...inputs[0].shape] }),
  vjp: ({ g, inputs: [x] }) => [isFloat(x.dtype) && isFloat(g.dtype) ? cast(g, x.dtype) : null],
  emit: (e, v) => e.node('Cast', [e.name(v.inputs[0])], { to: e.onnxType(v.attrs.to) }),
});

export const cast = (x: Value, to: DType): Value => (x.dtype === to ? x : apply(CastOp, [x], { to }));

/** The identity going forward, a wall for gradients (tinygrad's DETACH). */
export const StopGradientOp = defineOp<object>({
  kind: 'StopGradient',
  infer: (inputs) => ({ dtype: inputs[0].dtype, shape: [...inputs[0].shape] }),
  vjp: () => [null],
  emit: (e, v) => e.node('Identity', [e.name(v.inputs[0])]),
});

export const stopGradient = (x: Value): Value => apply(StopGradientOp, [x], {});

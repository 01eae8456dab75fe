// Rewrites a generation graph into fewer, fused ONNX Runtime kernels. A decoding step of
// a small model runs thousands of nodes on tiny tensors, and each node costs its dispatch
// whatever its size: on SmolLM2 (30 layers) a batch-1 step spent about as long outside
// its products as in them. The model families build their forward from primitives (the
// training graph needs their gradients); generation needs no gradient, so here the
// composites they are made of become single nodes of ONNX Runtime's CPU provider:
//
// - linearOutIn's Reshape -> Gemm(transB) -> Reshape becomes one com.microsoft
//   FusedMatMul with transB (a batched product that takes [..., in] as it is; ORT packs
//   its constant weight as it packs Gemm's);
// - rmsNorm's x (mean(x^2) + eps)^-1/2 w becomes one SimplifiedLayerNormalization (ORT's
//   RMSNorm kernel);
// - linear's Reshape -> MatMul -> Reshape (no bias: LoRA's x A and (x A) B, when the
//   adapters are inputs, graphs.ts adapterInputs) becomes one MatMul, which takes
//   [..., in] as it is (no Reshapes, nor their shape arithmetic).
//
// The WebGPU provider has SimplifiedLayerNormalization but no FusedMatMul: for the webgpu
// target the norms and MatMuls are fused, not the Gemms.
//
// The fused ops have no gradient: the pass is for inference graphs only. A pattern that
// does not match (a composite written differently) is left as it is: the graph stays
// correct, only slower; a test counts the fused nodes of a Llama graph.

import { apply, defineOp, floatAttr, topoSort, type EmitTarget, type Value } from '../ir/value.ts';

/** x [..., in] times w [out, in] transposed: [..., out]. */
const FusedMatMulTransBOp = defineOp<object>({
  kind: 'FusedMatMulTransB',
  infer: ([x, w]) => ({ dtype: x.dtype, shape: [...x.shape.slice(0, -1), w.shape[0]] }),
  emit: (e, v) => e.node('FusedMatMul', [e.name(v.inputs[0]), e.name(v.inputs[1])], { transB: 1 }, { domain: 'com.microsoft' }),
});

/** x (mean(x^2, last axis) + eps)^-1/2 w. */
const RmsNormOp = defineOp<{ eps: number }>({
  kind: 'SimplifiedLayerNormalization',
  infer: ([x]) => ({ dtype: x.dtype, shape: [...x.shape] }),
  emit: (e, v) => e.node('SimplifiedLayerNormalization', [e.name(v.inputs[0]), e.name(v.inputs[1])], { axis: -1, epsilon: floatAttr(v.attrs.eps) }),
});

const is = (v: Value | undefined, kind: string): v is Value => v !== undefined && v.op.kind === kind;

/** The value of a float32 scalar constant, if `v` is one. */
function scalarOf(v: Value): number | undefined {
  if (v.op.kind !== 'Constant' || v.shape.length !== 0) return undefined;
  const data = (v.attrs as { data: unknown }).data;
  return data instanceof Float32Array ? data[0] : undefined;
}

/** Counts of consumers per value id, over the DAG below `roots`. */
function consumers(order: readonly Value[]): Map<number, number> {
  const n = new Map<number, number>();
  for (const v of order) for (const x of v.inputs) n.set(x.id, (n.get(x.id) ?? 0) + 1);
  return n;
}

/**
 * The fused form of `v`, built on the already rewritten inputs (`mapped`), or undefined.
 * `single` says whether a value feeds only one node (only then may a pattern absorb it).
 */
function fuse(v: Value, mapped: (x: Value) => Value, single: (x: Value) => boolean, target: EmitTarget): Value | undefined {
  // Reshape(Gemm(Reshape(x, [-1, in]), w, transB), [..., out]) -> FusedMatMul(x, w, transB)
  if (is(v, 'Reshape') && target === 'cpu') {
    const g = v.inputs[0];
    if (is(g, 'Gemm') && g.inputs.length === 2 && single(g)) {
      const { transA, transB } = g.attrs as { transA: boolean; transB: boolean };
      const r = g.inputs[0], w = g.inputs[1];
      if (!transA && transB && is(r, 'Reshape') && single(r) && r.inputs[0].rank >= 3) {
        const x = r.inputs[0];
        const out = apply(FusedMatMulTransBOp, [mapped(x), mapped(w)], {});
        if (out.shape.length === v.shape.length && out.shape.every((d, i) => d === v.shape[i])) return out;
      }
    }
  }
  // Reshape(MatMul(Reshape(x, [-1, in]), w), [..., out]) -> MatMul(x, w)
  if (is(v, 'Reshape')) {
    const m = v.inputs[0];
    if (is(m, 'MatMul') && single(m)) {
      const [r, w] = m.inputs;
      if (is(r, 'Reshape') && single(r) && r.inputs[0].rank >= 3 && r.rank === 2 && w.rank === 2) {
        const out = apply(m.op, [mapped(r.inputs[0]), mapped(w)], m.attrs);
        if (out.shape.length === v.shape.length && out.shape.every((d, i) => d === v.shape[i])) return out;
      }
    }
  }
  // Mul(Mul(x, Pow(Add(ReduceMean(Mul(x, x), -1), eps), -0.5)), w) -> SimplifiedLayerNormalization(x, w)
  if (is(v, 'Mul')) {
    const [a, w] = v.inputs;
    if (is(a, 'Mul') && single(a) && w.rank === 1) {
      const [x, p] = a.inputs;
      if (is(p, 'Pow') && single(p) && scalarOf(p.inputs[1]) === -0.5) {
        const s = p.inputs[0];
        const eps = is(s, 'Add') && single(s) ? scalarOf(s.inputs[1]) : undefined;
        const m = is(s, 'Add') ? s.inputs[0] : undefined;
        const axes = (m?.attrs as { axes?: number[] } | undefined)?.axes;
        if (eps !== undefined && is(m, 'ReduceMean') && single(m) && axes?.length === 1 && axes[0] === x.rank - 1) {
          const q = m.inputs[0];
          if (is(q, 'Mul') && single(q) && q.inputs[0] === x && q.inputs[1] === x && w.shape[0] === x.shape[x.rank - 1]) {
            return apply(RmsNormOp, [mapped(x), mapped(w)], { eps });
          }
        }
      }
    }
  }
  return undefined;
}

/** The graph of `outputs` with the patterns above replaced by the target's fused kernels (same shapes, same names). */
export function fuseForInference(outputs: Readonly<Record<string, Value>>, target: EmitTarget = 'cpu'): Record<string, Value> {
  const order = topoSort(Object.values(outputs));
  const uses = consumers(order);
  const map = new Map<number, Value>();
  const mapped = (x: Value): Value => map.get(x.id)!;
  const single = (x: Value): boolean => uses.get(x.id) === 1;
  for (const v of order) {
    const inputs = v.inputs.map(mapped);
    const same = inputs.every((x, i) => x === v.inputs[i]);
    map.set(v.id, fuse(v, mapped, single, target) ?? (same ? v : apply(v.op, inputs, v.attrs)));
  }
  return Object.fromEntries(Object.entries(outputs).map(([name, v]) => [name, mapped(v)]));
}

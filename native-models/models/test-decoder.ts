// A test utility: one ONNX Runtime session per model that runs the family's forward with
// every input of the interface (tokens, positions, attention mask, KV cache), so tests
// can compare full recomputation, cached decoding and padded batches through one graph.

import ort from 'onnxruntime-node';
import * as T from '../ir/index.ts';
import type { ModelSpec } from './index.ts';

export interface DecoderRun {
  /** Logits [B, T, V], row-major. */
  logits: Float32Array;
  /** Per layer: key and value [B, Hkv, P+T, hd]. */
  present: { key: ort.Tensor; value: ort.Tensor }[];
}

export interface TestDecoder {
  vocab: number;
  /**
   * Runs tokens [B][T] after the given cache (default none), with the given mask
   * [B][P+T] (default all ones) and positions [B][T] (default P..P+T-1).
   */
  run(tokens: number[][], opts?: { past?: DecoderRun['present']; mask?: number[][]; positions?: number[][] }): Promise<DecoderRun>;
  release(): Promise<void>;
}

const ids = (rows: number[][]): ort.Tensor => new ort.Tensor('int64', BigInt64Array.from(rows.flat(), (x) => BigInt(x)), [rows.length, rows[0]?.length ?? 0]);

/**
 * Builds the session with every weight frozen in; weights that are not parameters of the
 * family (LoRA adapters) need their shapes in `opts.shapes`.
 */
export async function testDecoder<C>(
  m: ModelSpec<C>,
  weights: ReadonlyMap<string, Float32Array>,
  opts: { loraScale?: number; shapes?: ReadonlyMap<string, number[]> } = {},
): Promise<TestDecoder> {
  const params = new Map<string, T.Value>();
  const frozen = new Map<T.Value, Float32Array>();
  const shapes = new Map([...m.family.paramShapes(m.config), ...(opts.shapes ?? [])]);
  for (const [name, data] of weights) {
    const shape = shapes.get(name);
    if (!shape) throw new Error(`testDecoder: no shape for ${name}`);
    const v = T.param(name, shape);
    params.set(name, v);
    frozen.set(v, data);
  }
  const { layers, kvHeads, headDim } = m.family.cacheShape(m.config);
  const tokens = T.input('tokens', 'int64', ['B', 'T']);
  const positions = T.input('positions', 'int64', ['B', 'T']);
  const mask = T.input('mask', 'int64', ['B', 'P+T']);
  const past = Array.from({ length: layers }, (_, i) => ({
    key: T.input(`past.${i}.key`, 'float32', ['B', kvHeads, 'P', headDim]),
    value: T.input(`past.${i}.value`, 'float32', ['B', kvHeads, 'P', headDim]),
  }));
  const out = m.family.forward(m.config, params, { tokens, positions, attentionMask: mask, past, loraScale: opts.loraScale });
  const outputs: Record<string, T.Value> = { logits: out.logits };
  out.present.forEach((kv, i) => Object.assign(outputs, { [`present.${i}.key`]: kv.key, [`present.${i}.value`]: kv.value }));
  const model = T.emitOnnx({ outputs, initializers: frozen, inputs: [tokens, positions, mask, ...past.flatMap((p) => [p.key, p.value])] });
  const session = await ort.InferenceSession.create(model.bytes, { executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1 });
  return {
    vocab: m.family.vocabSize(m.config),
    async run(rows, o = {}) {
      const B = rows.length, Tn = rows[0].length;
      const P = o.past ? o.past[0].key.dims[2] : 0;
      const feeds: Record<string, ort.Tensor> = {
        tokens: ids(rows),
        positions: ids(o.positions ?? rows.map((r) => r.map((_, t) => P + t))),
        mask: ids(o.mask ?? rows.map(() => new Array<number>(P + Tn).fill(1))),
      };
      for (let i = 0; i < layers; i++) {
        const empty = new ort.Tensor('float32', new Float32Array(0), [B, kvHeads, 0, headDim]);
        feeds[`past.${i}.key`] = o.past?.[i].key ?? empty;
        feeds[`past.${i}.value`] = o.past?.[i].value ?? empty;
      }
      const r = await session.run(feeds);
      return {
        logits: r.logits.data as Float32Array,
        present: Array.from({ length: layers }, (_, i) => ({ key: r[`present.${i}.key`], value: r[`present.${i}.value`] })),
      };
    },
    release: () => session.release(),
  };
}

/** Largest |a - b| over the positions where `take(i)` is true (default all). */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>, take: (i: number) => boolean = () => true): number {
  if (a.length !== b.length) throw new Error(`maxAbsDiff: lengths differ (${a.length} vs ${b.length})`);
  let d = 0;
  for (let i = 0; i < a.length; i++) if (take(i)) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

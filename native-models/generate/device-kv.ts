// The KV cache of a decoding batch kept in the GPU's memory (WebGPU) between runs.
//
// The generation graph written for WebGPU (graphs.ts) returns each layer's cache
// extended by the run's positions, [B, Hkv, P+T, hd], as tensors the session keeps on the
// device (runtime/session.ts deviceOutputs); they are the next run's past as they are.
// None of the cache crosses to the host: a decoding step sends the new tokens, positions
// and mask and gets the logits back. When rows finish, a small graph gathers the rows
// still decoding, and the columns they need (padding no remaining row has is cut), on the
// device. Unlike the host store (kv-store.ts) there are no empty slots to grow into: the
// graph writes the whole cache each run, so its capacity is its length.
//
// The cache starts with one column of zeros that every row masks out, a padding column
// like left padding: an empty cache makes zero-size tensors (a product over no keys),
// which crash the WebGPU provider. A masked key gets a softmax weight of exactly 0
// (exp(-1e9) underflows), so the results are those of an empty cache.

import ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import type { CacheShape } from './kv-store.ts';

/** Runs the compaction graph (compactionModel) on the given cache tensors; returns the kept ones, in order. */
export type Compact = (feeds: Record<string, ort.Tensor>) => Promise<ort.InferenceSession.OnnxValueMapType>;

export class DeviceKvCache {
  /** Filled slots (P): padding columns included. */
  length = 1;
  /** Per layer, keys then values: [batch, kvHeads, length, headDim]; the masked column on the host before the prefill. */
  private tensors: ort.Tensor[];

  constructor(readonly shape: CacheShape, public batch: number, private readonly compact: Compact) {
    this.tensors = this.start(batch);
  }

  get capacity(): number {
    return this.length;
  }

  /** The past of the next run, one tensor per layer-key/value. */
  past(): readonly ort.Tensor[] {
    return this.tensors;
  }

  /** Makes a run's present cache (each layer's keys then values, [batch, kvHeads, P+T, headDim]) the cache, freeing the one it extends. */
  replace(present: readonly ort.Tensor[]): void {
    this.dispose();
    this.tensors = [...present];
    this.length = present[0].dims[2];
  }

  /** The prefill's mask: the prompts' mask [batch, width] after the cache's columns, which are padding. */
  promptMask(mask: BigInt64Array, width: number): BigInt64Array {
    const w = this.length + width;
    const m = new BigInt64Array(this.batch * w);
    for (let r = 0; r < this.batch; r++) m.set(mask.subarray(r * width, (r + 1) * width), r * w + this.length);
    return m;
  }

  /** The attention mask [batch, length + 1] of the next decode run: padding 0, filled slots and the new token 1. */
  mask(pads: readonly number[]): BigInt64Array {
    const w = this.length + 1;
    const m = new BigInt64Array(this.batch * w);
    pads.forEach((p, r) => m.fill(1n, r * w + p, (r + 1) * w));
    return m;
  }

  /** Keeps the rows `rows` (indices into the current batch) and drops the first `cut` slots. */
  async select(rows: readonly number[], cut: number): Promise<void> {
    const feeds: Record<string, ort.Tensor> = {
      rows: new ort.Tensor('int32', Int32Array.from(rows), [rows.length]),
      columns: new ort.Tensor('int32', Int32Array.from({ length: this.length - cut }, (_, i) => cut + i), [this.length - cut]),
    };
    this.tensors.forEach((t, k) => (feeds[`cache.${k}`] = t));
    const kept = await this.compact(feeds);
    this.replace(this.tensors.map((_, k) => kept[`kept.${k}`]));
    this.batch = rows.length;
  }

  /** Frees the cache's device memory (before the session that made it is released). */
  dispose(): void {
    for (const t of this.tensors) if (t.location !== 'cpu') t.dispose();
    this.tensors = [];
  }

  private start(batch: number): ort.Tensor[] {
    const { layers, kvHeads, headDim } = this.shape;
    const zeros = new ort.Tensor('float32', new Float32Array(batch * kvHeads * headDim), [batch, kvHeads, 1, headDim]);
    return Array.from({ length: 2 * layers }, () => zeros);
  }
}

/**
 * The compaction graph of a cache of `tensors` tensors [B, kvHeads, L, headDim]:
 * kept.k = cache.k[rows][:, :, columns] (two Gathers; WebGPU gathers with int32 indices).
 * Its outputs are to stay on the device.
 */
export function compactionModel(shape: CacheShape): Uint8Array {
  const { onnx } = onnxProto;
  const FLOAT = onnx.TensorProto.DataType.FLOAT, INT32 = onnx.TensorProto.DataType.INT32;
  const dims = (d: (number | string)[]): onnxProto.onnx.ITensorShapeProto => ({ dim: d.map((x) => (typeof x === 'number' ? { dimValue: x } : { dimParam: x })) });
  const cache = (name: string, b: string, l: string): onnxProto.onnx.IValueInfoProto => ({ name, type: { tensorType: { elemType: FLOAT, shape: dims([b, shape.kvHeads, l, shape.headDim]) } } });
  const n = 2 * shape.layers;
  const axis = (a: number): onnxProto.onnx.IAttributeProto => ({ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: a });
  return onnx.ModelProto.encode(onnx.ModelProto.create({
    irVersion: 10,
    opsetImport: [{ domain: '', version: 21 }],
    graph: {
      name: 'kv_compaction',
      input: [
        ...Array.from({ length: n }, (_, k) => cache(`cache.${k}`, 'B', 'L')),
        { name: 'rows', type: { tensorType: { elemType: INT32, shape: dims(['R']) } } },
        { name: 'columns', type: { tensorType: { elemType: INT32, shape: dims(['C']) } } },
      ],
      output: Array.from({ length: n }, (_, k) => cache(`kept.${k}`, 'R', 'C')),
      node: Array.from({ length: n }, (_, k) => [
        { opType: 'Gather', input: [`cache.${k}`, 'rows'], output: [`rows.${k}`], attribute: [axis(0)] },
        { opType: 'Gather', input: [`rows.${k}`, 'columns'], output: [`kept.${k}`], attribute: [axis(2)] },
      ]).flat(),
    },
  })).finish();
}

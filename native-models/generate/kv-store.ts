// The KV cache of a decoding batch, kept on the host between runs.
//
// onnxruntime-node takes inputs without a copy but copies every output out, slowly (a
// 90 MB cache out of one run costs about 45 ms on this machine, against about 3 ms to
// concatenate it inside the graph). So the generation graph returns only the new
// positions' keys and values [B, Hkv, T, hd] (the prompt's, then one per decoding step),
// and this store appends them to per-layer buffers [B, Hkv, capacity, hd] that are fed
// back, whole, as the next run's past. Slots past the
// filled length are masked out (0 in the attention mask), like left padding. Capacity
// grows in chunks, so the host copies the cache only every few steps, and the graph sees
// at most a chunk of empty slots.

import ort from 'onnxruntime-node';

export interface CacheShape {
  layers: number;
  kvHeads: number;
  headDim: number;
}

export class KvStore {
  /** Filled slots (P): padding columns included, empty slots excluded. */
  length = 0;
  /** Allocated slots per row. */
  capacity = 0;
  /** Per layer, keys then values: [batch, kvHeads, capacity, headDim]. */
  private buffers: Float32Array[] = [];
  private feeds: ort.Tensor[] = [];

  constructor(
    readonly shape: CacheShape,
    public batch: number,
    /** Fewest slots added when the store grows (more when the cache is long: 1/8 of it). */
    readonly growth = 16,
    /** Slots the generation can ever need (prompt width + new tokens - 1); growth stops there. */
    readonly limit = Infinity,
  ) {
    this.allocate(batch, 0);
  }

  private get rowFloats(): number {
    return this.shape.kvHeads * this.capacity * this.shape.headDim;
  }

  /** The capacity to grow to when `filled` slots are to be filled: room for `growth` more, within the limit. */
  private nextCapacity(filled: number): number {
    return Math.max(filled, Math.min(this.limit, filled + Math.max(this.growth, Math.ceil(filled / 8))));
  }

  /** The past of the next decode run, one tensor per layer-key/value: [batch, kvHeads, capacity, headDim]. */
  past(): readonly ort.Tensor[] {
    return this.feeds;
  }

  /**
   * Appends the positions of a run's new keys and values [batch, kvHeads, T, headDim]
   * (each layer's keys then values, in layer order): a prompt's, or one decoding step's.
   */
  append(entries: readonly ort.Tensor[]): void {
    const T = entries[0].dims[2];
    if (this.length + T > this.capacity) this.reallocate(this.batch, [...Array(this.batch).keys()], 0, this.nextCapacity(this.length + T));
    const { kvHeads: H, headDim: hd } = this.shape;
    const cap = this.capacity, at = this.length, n = T * hd;
    entries.forEach((t, k) => {
      const src = t.data as Float32Array, dst = this.buffers[k];
      for (let bh = 0; bh < this.batch * H; bh++) {
        const d = (bh * cap + at) * hd, s = bh * n;
        // One decoding step copies a few dozen floats per head: a loop beats making a subarray.
        if (T === 1) for (let i = 0; i < hd; i++) dst[d + i] = src[s + i];
        else dst.set(src.subarray(s, s + n), d);
      }
    });
    this.length += T;
  }

  /** Keeps the rows `rows` (indices into the current batch) and drops the first `cut` slots. */
  select(rows: readonly number[], cut: number): void {
    this.reallocate(rows.length, rows, cut, this.nextCapacity(this.length - cut));
  }

  /**
   * The attention mask [batch, capacity + 1] of the next decode run: padding and empty
   * slots 0, filled slots and the new token 1.
   */
  mask(pads: readonly number[]): BigInt64Array {
    const w = this.capacity + 1;
    const m = new BigInt64Array(this.batch * w);
    pads.forEach((p, r) => {
      m.fill(1n, r * w + p, r * w + this.length);
      m[r * w + this.capacity] = 1n;
    });
    return m;
  }

  /** Megabytes held. */
  get megabytes(): number {
    return (this.buffers.length * this.batch * this.rowFloats * 4) / 2 ** 20;
  }

  private allocate(batch: number, capacity: number): void {
    const { layers, kvHeads: H, headDim: hd } = this.shape;
    this.batch = batch;
    this.capacity = capacity;
    const dims = [batch, H, capacity, hd];
    this.buffers = Array.from({ length: 2 * layers }, () => new Float32Array(batch * H * capacity * hd));
    this.feeds = this.buffers.map((b) => new ort.Tensor('float32', b, dims));
  }

  private reallocate(batch: number, rows: readonly number[], cut: number, capacity: number): void {
    const { kvHeads: H, headDim: hd } = this.shape;
    const old = this.buffers, oldCap = this.capacity, keep = this.length - cut;
    this.allocate(batch, capacity);
    old.forEach((src, k) => {
      const dst = this.buffers[k];
      rows.forEach((b, j) => {
        for (let h = 0; h < H; h++) {
          const s = ((b * H + h) * oldCap + cut) * hd;
          dst.set(src.subarray(s, s + keep * hd), (j * H + h) * capacity * hd);
        }
      });
    });
    this.length = keep;
  }
}

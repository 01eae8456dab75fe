// Language-model batches from a stream of documents: documents are tokenized, joined with
// an end-of-text token into one long sequence, and each batch row is a random window of
// T+1 tokens (inputs are the first T, targets the last T). Windows are drawn from a
// caller-owned Rng, the trainer's, so a resumed run sees exactly the batches an
// uninterrupted one would.

import ort from 'onnxruntime-node';
import type { Rng } from './rng.ts';

export class TokenStream {
  readonly tokens: Int32Array;

  constructor(documents: Iterable<readonly number[]>, eos: number) {
    const parts: number[][] = [];
    let total = 0;
    for (const doc of documents) {
      parts.push([...doc, eos]);
      total += doc.length + 1;
    }
    this.tokens = new Int32Array(total);
    let at = 0;
    for (const p of parts) {
      this.tokens.set(p, at);
      at += p.length;
    }
  }

  get length(): number {
    return this.tokens.length;
  }

  /** A batch of `rows` random windows of `seq` tokens, as `tokens` and `targets` int64 [rows, seq]. */
  randomBatch(rows: number, seq: number, rng: Rng): Record<string, ort.Tensor> {
    if (this.tokens.length < seq + 1) throw new Error(`the corpus has ${this.tokens.length} tokens, fewer than one window of ${seq + 1}`);
    const starts = Array.from({ length: rows }, () => rng.int(this.tokens.length - seq));
    return this.windows(starts, seq);
  }

  /** Consecutive non-overlapping windows covering the stream once (for evaluation), in batches of `rows`. */
  *sequentialBatches(rows: number, seq: number): Generator<Record<string, ort.Tensor>> {
    const n = Math.floor((this.tokens.length - 1) / seq);
    for (let i = 0; i < n; i += rows) {
      const starts = Array.from({ length: Math.min(rows, n - i) }, (_, r) => (i + r) * seq);
      yield this.windows(starts, seq);
    }
  }

  private windows(starts: number[], seq: number): Record<string, ort.Tensor> {
    const rows = starts.length;
    const tokens = new BigInt64Array(rows * seq), targets = new BigInt64Array(rows * seq);
    starts.forEach((s, r) => {
      for (let t = 0; t < seq; t++) {
        tokens[r * seq + t] = BigInt(this.tokens[s + t]);
        targets[r * seq + t] = BigInt(this.tokens[s + t + 1]);
      }
    });
    return { tokens: new ort.Tensor('int64', tokens, [rows, seq]), targets: new ort.Tensor('int64', targets, [rows, seq]) };
  }
}

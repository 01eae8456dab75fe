// Left-padded batches: every row's next token lands in the same (last) column, so one
// decode step serves the whole batch. Position ids count real tokens only, as
// transformers derives them from the attention mask (cumsum(mask) - 1).

export interface LeftPadded {
  batch: number;
  width: number;
  /** Padding columns at the left of each row. */
  pads: number[];
  /** int64 [batch, width]; padding holds `padId`. */
  tokens: BigInt64Array;
  /** int64 [batch, width]: 0, 1, ... over the real tokens; 0 on padding (masked anyway). */
  positions: BigInt64Array;
  /** int64 [batch, width]: 1 on real tokens, 0 on padding. */
  mask: BigInt64Array;
}

/** Checks token ids against the vocabulary, naming the row and position of a bad one. */
export function checkTokens(seqs: readonly (readonly number[])[], vocab: number, what: string): void {
  seqs.forEach((s, r) => {
    s.forEach((t, i) => {
      if (!Number.isInteger(t) || t < 0 || t >= vocab) throw new Error(`${what} ${r} has token id ${t} at position ${i}, outside the vocabulary (0..${vocab - 1}).`);
    });
  });
}

export function leftPad(seqs: readonly (readonly number[])[], padId = 0): LeftPadded {
  const batch = seqs.length;
  const width = Math.max(0, ...seqs.map((s) => s.length));
  const tokens = new BigInt64Array(batch * width).fill(BigInt(padId));
  const positions = new BigInt64Array(batch * width);
  const mask = new BigInt64Array(batch * width);
  const pads = seqs.map((s) => width - s.length);
  seqs.forEach((s, r) => {
    const base = r * width + pads[r];
    for (let i = 0; i < s.length; i++) {
      tokens[base + i] = BigInt(s[i]);
      positions[base + i] = BigInt(i);
      mask[base + i] = 1n;
    }
  });
  return { batch, width, pads, tokens, positions, mask };
}

/** The mask [rows, width] of rows with `pads[r]` padding columns on the left. */
export function leftMask(pads: readonly number[], width: number): BigInt64Array {
  const mask = new BigInt64Array(pads.length * width);
  pads.forEach((p, r) => mask.fill(1n, r * width + p, (r + 1) * width));
  return mask;
}

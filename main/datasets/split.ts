// Train/eval assignment by a stable hash of the prompt (DESIGN.md §3: "split by a stable
// hash of the prompt"). Splitting by prompt rather than by row keeps every response to
// one prompt on the same side, so no eval prompt is ever seen in training. The function
// must never change: a different hash would silently move eval prompts into train.
import { createHash } from 'node:crypto';

export type Split = 'train' | 'eval';

const TWO_TO_64 = 2 ** 64;

/** 'eval' when the first 8 bytes of sha256(prompt), read as an unsigned big-endian
 *  integer and divided by 2^64, fall below evalFraction; otherwise 'train'. */
export function stableSplit(prompt: string, evalFraction = 0.2): Split {
  if (!(evalFraction >= 0 && evalFraction <= 1)) {
    throw new RangeError(`The eval fraction must be a number from 0 to 1, but it is ${evalFraction}; use e.g. 0.2 for 20% eval prompts.`);
  }
  const digest = createHash('sha256').update(prompt, 'utf8').digest();
  return Number(digest.readBigUInt64BE(0)) / TWO_TO_64 < evalFraction ? 'eval' : 'train';
}

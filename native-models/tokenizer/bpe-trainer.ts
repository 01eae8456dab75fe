// Byte-level BPE training (GPT-2 style), written as a standard tokenizer.json that
// @huggingface/tokenizers, Python `tokenizers` and transformers all load.
//
// Words are counted once (GPT-2's pre-tokenization regex, special tokens split out first),
// then merges are learned on the distinct words weighted by their counts: pair counts are
// updated incrementally around each merged occurrence, and the best pair comes from a
// max-heap with lazy re-insertion of stale counts (the approach of HF's BpeTrainer).
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../runtime/atomic-file.ts';
import type { TokenizerConfig, TokenizerJson } from './tokenizer.ts';

/** GPT-2's pre-tokenization pattern (the one ByteLevel's use_regex applies). */
export const GPT2_PATTERN = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

export interface BpeTrainerOptions {
  /** Target vocabulary size, special tokens and the 256 byte tokens included. */
  vocabSize: number;
  /** Added as special tokens with ids 0.. in this order; default ["<|endoftext|>"]. */
  specialTokens?: readonly string[];
  /** Pairs seen fewer times than this are never merged (training may stop short of vocabSize); default 2. */
  minFrequency?: number;
  /** Called every 256 merges and at the end. */
  onProgress?: (progress: { merges: number; vocabSize: number; target: number }) => void;
}

export interface TrainedBpe {
  /** The tokenizer.json object. */
  json: TokenizerJson;
  /** The tokenizer.json text (deterministic: same input and options, same bytes). */
  text: string;
  /** Final vocabulary size (may be below the target when no pair reaches minFrequency). */
  vocabSize: number;
  merges: number;
  specialTokens: string[];
  stats: { words: number; distinctWords: number; countSeconds: number; mergeSeconds: number };
}

/** GPT-2's reversible byte -> printable character mapping. */
export function bytesToUnicode(): string[] {
  const keep: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) keep.push(b);
  for (let b = 0xa1; b <= 0xac; b++) keep.push(b);
  for (let b = 0xae; b <= 0xff; b++) keep.push(b);
  const out = new Array<string>(256);
  let n = 0;
  for (let b = 0; b < 256; b++) out[b] = String.fromCharCode(keep.includes(b) ? b : 256 + n++);
  return out;
}

// Pair keys pack two ids below 2^21 into one exact double.
const SHIFT = 2 ** 21;

/** Trains a byte-level BPE tokenizer on `texts`. */
export function trainBpe(texts: Iterable<string>, options: BpeTrainerOptions): TrainedBpe {
  const specials = [...(options.specialTokens ?? ['<|endoftext|>'])];
  const minFrequency = options.minFrequency ?? 2;
  const target = options.vocabSize;
  if (new Set(specials).size !== specials.length || specials.some((s) => s.length === 0)) {
    throw new Error(`BPE training needs distinct, non-empty special tokens, got ${JSON.stringify(specials)}.`);
  }
  if (!Number.isSafeInteger(target) || target < specials.length + 256 || target >= SHIFT) {
    throw new Error(`BPE training needs a vocabSize between ${specials.length + 256} (special tokens + 256 bytes) and ${SHIFT - 1}, got ${target}.`);
  }

  const t0 = performance.now();
  const counts = countWords(texts, specials);
  const t1 = performance.now();

  // Symbols: special tokens, then one per byte, then one per new merged string. The bytes
  // come in the order of their characters (GPT-2's vocab order, and HF's sorted alphabet),
  // so that ties, broken by ids, resolve as in HF's BpeTrainer: same merges, same order.
  const byteChars = bytesToUnicode();
  const tokens: string[] = [...specials, ...[...byteChars].sort((x, y) => x.charCodeAt(0) - y.charCodeAt(0))];
  const idOf = new Map<string, number>(tokens.map((t, i) => [t, i]));
  const byteId = byteChars.map((ch) => idOf.get(ch)!);

  // Distinct words as id arrays (merged in place; lens tracks their current length).
  const encoder = new TextEncoder();
  const words: Int32Array[] = [];
  const lens: number[] = [];
  const freqs: number[] = [];
  let totalWords = 0;
  for (const [word, count] of counts) {
    const bytes = encoder.encode(word);
    const ids = new Int32Array(bytes.length);
    for (let i = 0; i < bytes.length; i++) ids[i] = byteId[bytes[i]];
    words.push(ids);
    lens.push(ids.length);
    freqs.push(count);
    totalWords += count;
  }

  const pairCount = new Map<number, number>();
  const where = new Map<number, number[]>();
  for (let w = 0; w < words.length; w++) {
    const s = words[w];
    for (let i = 0; i + 1 < s.length; i++) {
      const key = s[i] * SHIFT + s[i + 1];
      pairCount.set(key, (pairCount.get(key) ?? 0) + freqs[w]);
      let list = where.get(key);
      if (list === undefined) where.set(key, (list = []));
      if (list[list.length - 1] !== w) list.push(w);
    }
  }
  const heap = new PairHeap();
  for (const [key, count] of pairCount) heap.push(count, key);

  const merges: [string, string][] = [];
  const seen = new Int32Array(words.length).fill(-1);
  while (tokens.length < target && heap.size > 0) {
    const { count, key } = heap.pop();
    const current = pairCount.get(key) ?? 0;
    if (current !== count) {
      // Stale entry: counts only fall for existing pairs, so re-queue the true count.
      if (current > 0) heap.push(current, key);
      continue;
    }
    if (count < minFrequency) break;
    const a = Math.floor(key / SHIFT);
    const b = key - a * SHIFT;
    const merged = tokens[a] + tokens[b];
    let c = idOf.get(merged);
    if (c === undefined) {
      c = tokens.length;
      tokens.push(merged);
      idOf.set(merged, c);
    }
    merges.push([tokens[a], tokens[b]]);

    const touched = new Set<number>();
    const bump = (x: number, y: number, delta: number, w: number): void => {
      const k = x * SHIFT + y;
      pairCount.set(k, (pairCount.get(k) ?? 0) + delta);
      if (delta > 0) {
        touched.add(k);
        let list = where.get(k);
        if (list === undefined) where.set(k, (list = []));
        if (list[list.length - 1] !== w) list.push(w);
      }
    };
    const mergeIndex = merges.length;
    for (const w of where.get(key) ?? []) {
      if (seen[w] === mergeIndex) continue;
      seen[w] = mergeIndex;
      const s = words[w];
      const n = lens[w];
      const f = freqs[w];
      let i = 0;
      let j = 0;
      // In-place compaction; s[i + 2] is read before anything at or after i is written.
      while (i < n) {
        if (i + 1 < n && s[i] === a && s[i + 1] === b) {
          if (j > 0) {
            bump(s[j - 1], a, -f, w);
            bump(s[j - 1], c, f, w);
          }
          if (i + 2 < n) {
            bump(b, s[i + 2], -f, w);
            bump(c, s[i + 2], f, w);
          }
          bump(a, b, -f, w);
          s[j++] = c;
          i += 2;
        } else {
          s[j++] = s[i++];
        }
      }
      lens[w] = j;
    }
    where.delete(key);
    pairCount.delete(key);
    for (const k of touched) {
      const v = pairCount.get(k) ?? 0;
      if (v > 0) heap.push(v, k);
    }
    if (options.onProgress !== undefined && merges.length % 256 === 0) options.onProgress({ merges: merges.length, vocabSize: tokens.length, target });
  }
  const t2 = performance.now();
  options.onProgress?.({ merges: merges.length, vocabSize: tokens.length, target });

  const json = tokenizerJsonOf(tokens, merges, specials);
  return {
    json,
    text: serializeTokenizerJson(json),
    vocabSize: tokens.length,
    merges: merges.length,
    specialTokens: specials,
    stats: { words: totalWords, distinctWords: counts.size, countSeconds: (t1 - t0) / 1000, mergeSeconds: (t2 - t1) / 1000 },
  };
}

/** Word counts after GPT-2 pre-tokenization, with special tokens cut out of the text. */
function countWords(texts: Iterable<string>, specials: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  const splitter = specials.length === 0 ? null : new RegExp([...specials].sort((x, y) => y.length - x.length).map(escapeRegExp).join('|'), 'u');
  const pattern = new RegExp(GPT2_PATTERN.source, GPT2_PATTERN.flags);
  for (const text of texts) {
    for (const piece of splitter === null ? [text] : text.split(splitter)) {
      for (const m of piece.matchAll(pattern)) counts.set(m[0], (counts.get(m[0]) ?? 0) + 1);
    }
  }
  return counts;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}

function tokenizerJsonOf(tokens: string[], merges: [string, string][], specials: string[]): TokenizerJson {
  const vocab: Record<string, number> = {};
  tokens.forEach((t, i) => (vocab[t] = i));
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: specials.map((content, id) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true })),
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
}

/**
 * tokenizer.json text with the vocabulary in id order and one merge per line. (A plain
 * JSON.stringify would move integer-like keys such as "12" to the front of the vocab.)
 */
export function serializeTokenizerJson(json: TokenizerJson): string {
  const { vocab, merges, ...modelRest } = json.model;
  const entries = vocab !== null && typeof vocab === 'object' && !Array.isArray(vocab) ? Object.entries(vocab as Record<string, number>) : [];
  entries.sort((x, y) => x[1] - y[1]);
  const vocabText = `{\n${entries.map(([t, id]) => `      ${JSON.stringify(t)}: ${id}`).join(',\n')}\n    }`;
  const mergeList = Array.isArray(merges) ? (merges as unknown[]) : [];
  const mergesText = `[\n${mergeList.map((m) => `      ${JSON.stringify(m)}`).join(',\n')}\n    ]`;
  const placeholder = '\u0000VOCAB\u0000';
  const placeholderMerges = '\u0000MERGES\u0000';
  const text = JSON.stringify({ ...json, model: { ...modelRest, vocab: placeholder, merges: placeholderMerges } }, null, 2);
  return `${text.replace(JSON.stringify(placeholder), () => vocabText).replace(JSON.stringify(placeholderMerges), () => mergesText)}\n`;
}

export interface TokenizerFolderOptions {
  /** Default: the first special token (GPT-2's convention). */
  eosToken?: string;
  /** Default: the EOS token; never added automatically (no add_bos_token). */
  bosToken?: string;
  padToken?: string;
  modelMaxLength?: number;
  chatTemplate?: string;
}

/**
 * Writes tokenizer.json and tokenizer_config.json into `dir` (created if needed; each file atomically), in the
 * layout transformers' AutoTokenizer and Tokenizer.fromFolder read.
 */
export async function writeTokenizerFolder(dir: string, trained: TrainedBpe, options: TokenizerFolderOptions = {}): Promise<void> {
  const eos = options.eosToken ?? trained.specialTokens[0];
  const config: TokenizerConfig = {
    tokenizer_class: 'PreTrainedTokenizerFast',
    bos_token: options.bosToken ?? eos ?? null,
    eos_token: eos ?? null,
    ...(options.padToken === undefined ? {} : { pad_token: options.padToken }),
    clean_up_tokenization_spaces: false,
    ...(options.modelMaxLength === undefined ? {} : { model_max_length: options.modelMaxLength }),
    ...(options.chatTemplate === undefined ? {} : { chat_template: options.chatTemplate }),
  };
  for (const token of [config.bos_token, config.eos_token, config.pad_token]) {
    if (typeof token === 'string' && !trained.specialTokens.includes(token)) {
      throw new Error(`Cannot write the tokenizer to ${dir}: "${token}" is not one of its special tokens (${trained.specialTokens.join(', ')}).`);
    }
  }
  const encoder = new TextEncoder();
  await mkdir(dir, { recursive: true });
  await writeFileAtomic(join(dir, 'tokenizer.json'), encoder.encode(trained.text));
  await writeFileAtomic(join(dir, 'tokenizer_config.json'), encoder.encode(`${JSON.stringify(config, null, 2)}\n`));
}

/** Binary max-heap of (count, pair key): higher count first, then the smaller key (ids) for determinism. */
class PairHeap {
  private counts: number[] = [];
  private keys: number[] = [];

  get size(): number {
    return this.counts.length;
  }

  private above(i: number, j: number): boolean {
    const ci = this.counts[i];
    const cj = this.counts[j];
    return ci > cj || (ci === cj && this.keys[i] < this.keys[j]);
  }

  private swap(i: number, j: number): void {
    const c = this.counts[i];
    this.counts[i] = this.counts[j];
    this.counts[j] = c;
    const k = this.keys[i];
    this.keys[i] = this.keys[j];
    this.keys[j] = k;
  }

  push(count: number, key: number): void {
    this.counts.push(count);
    this.keys.push(key);
    let i = this.counts.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.above(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  pop(): { count: number; key: number } {
    const top = { count: this.counts[0], key: this.keys[0] };
    const lastCount = this.counts.pop()!;
    const lastKey = this.keys.pop()!;
    if (this.counts.length > 0) {
      this.counts[0] = lastCount;
      this.keys[0] = lastKey;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let best = i;
        if (l < this.counts.length && this.above(l, best)) best = l;
        if (r < this.counts.length && this.above(r, best)) best = r;
        if (best === i) break;
        this.swap(i, best);
        i = best;
      }
    }
    return top;
  }
}

// Tokenizers from GGUF metadata, and back. A GGUF carries its tokenizer as metadata under
// llama.cpp's keys (tokenizer.ggml.*); the engine's Tokenizer runs Hugging Face
// tokenizer.json. This module translates between the two:
//
//   'gpt2' (byte-level BPE with merges) <-> a BPE model, a byte-level pre-tokenizer
//     chosen by `tokenizer.ggml.pre` from llama.cpp's table, and the ByteLevel decoder;
//   'llama' (SentencePiece pieces with scores) <-> a BPE model with byte fallback, merges
//     from the file or recovered from the scores as transformers does, Metaspace.
//
// Control tokens become special added tokens and user-defined ones plain added tokens, as in
// transformers' GGUF loader (integrations/gguf/gguf_tokenizer_mapping.py), whose token ids the
// tests compare against. Where transformers ignores what llama.cpp does with a pre-tokenizer
// name (SmolLM's one-digit split, the 'default' regexes, Llama 3's whole-word lookup, the BOS
// Llama 3 adds when the file does not say), this module follows llama.cpp, whose table is the
// model's own Hugging Face tokenizer.
import { gguf, type GgufTypedValue, type GgufValue } from './values.ts';

/** llama.cpp's token types (tokenizer.ggml.token_type). */
const enum TokenType {
  Normal = 1,
  Unknown = 2,
  Control = 3,
  UserDefined = 4,
  Unused = 5,
  Byte = 6,
}

// Pre-tokenizer regexes as Hugging Face writes them. llama.cpp applies a list of regexes one
// after the other, each splitting the pieces of the one before, which is a Sequence of
// isolating Splits. GPT-2's is ByteLevel's own regex.
const GPT2_SPLIT = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";
const LLAMA3_SPLIT = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2_SPLIT = "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const DIGIT_SPLIT = '\\p{N}';

interface PreTokenizer {
  /** The `tokenizer.ggml.pre` names llama.cpp (src/llama-vocab.cpp) gives these regexes; the first is written on export. */
  names: readonly string[];
  splits: readonly string[];
  /** llama.cpp's ignore_merges: a piece that is a whole token is that token (Llama 3's tokenizer.json says so too). */
  ignoreMerges: boolean;
  /** llama.cpp adds BOS for these when the file has no tokenizer.ggml.add_bos_token. */
  addBos: boolean;
}

const PRE_TOKENIZERS: readonly PreTokenizer[] = [
  { names: ['gpt-2', 'phi-2', 'mpt', 'olmo', 'jais', 'exaone4'], splits: [GPT2_SPLIT], ignoreMerges: false, addBos: false },
  { names: ['llama-bpe', 'llama3', 'llama-v3', 'falcon3', 'falcon-h1', 'pixtral', 'midm-2.0', 'lfm2'], splits: [LLAMA3_SPLIT], ignoreMerges: true, addBos: true },
  { names: ['smaug-bpe', 'dbrx'], splits: [LLAMA3_SPLIT], ignoreMerges: false, addBos: false },
  { names: ['qwen2', 'deepseek-r1-qwen', 'megrez', 'stablelm2', 'kormo', 'f2llmv2'], splits: [QWEN2_SPLIT], ignoreMerges: false, addBos: false },
  { names: ['smollm', 'starcoder', 'refact', 'command-r', 'codeshell', 'exaone', 'minerva-7b'], splits: [DIGIT_SPLIT, GPT2_SPLIT], ignoreMerges: false, addBos: false },
  // llama.cpp's fallback for BPE vocabularies; transformers uses GPT-2's split instead.
  { names: ['default'], splits: ['[\\p{P}\\$\\+<=>\\^~\\|]+', GPT2_SPLIT, '\\p{N}+', '[0-9][0-9][0-9]'], ignoreMerges: false, addBos: false },
];

const PRE_BY_NAME = new Map(PRE_TOKENIZERS.flatMap((p) => p.names.map((n) => [n, p] as const)));

// GPT-2's bytes_to_unicode: every byte as a printable character, the alphabet of byte-level vocabularies.
const BYTE_CHARS: readonly string[] = (() => {
  const printable = (b: number): boolean => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  let next = 256;
  return Array.from({ length: 256 }, (_, b) => String.fromCodePoint(printable(b) ? b : next++));
})();
const BYTE_ALPHABET = new Set(BYTE_CHARS);

const SPIECE_SPACE = '\u2581';
const NO_SPECIALS = { single_word: false, lstrip: false, rstrip: false, normalized: false } as const;

interface AddedToken {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

// ---------------------------------------------------------------------------------------
// GGUF -> tokenizer.json + tokenizer_config.json

/**
 * tokenizer.json and tokenizer_config.json objects equivalent to the GGUF's tokenizer; throws
 * one sentence naming the missing or bad key when the metadata lacks what a tokenizer needs.
 * `what` names the file in messages.
 */
export function hfTokenizerFromGguf(meta: ReadonlyMap<string, GgufValue>, what: string): { tokenizerJson: Record<string, unknown>; tokenizerConfig: Record<string, unknown> } {
  const read = new MetaReader(meta, what);
  const model = read.string('tokenizer.ggml.model');
  if (model === undefined) throw new Error(`${what} has no tokenizer.ggml.model, so it carries no tokenizer; AfD Studio needs one to use the model.`);
  const tokens = read.strings('tokenizer.ggml.tokens');
  if (tokens === undefined || tokens.length === 0) throw new Error(`${what} has no tokenizer.ggml.tokens (the vocabulary); the file is incomplete.`);
  const types = read.numbers('tokenizer.ggml.token_type', tokens.length) ?? [];
  const tokenId = (key: string): number | undefined => {
    const id = read.number(key);
    if (id !== undefined && !(Number.isInteger(id) && id >= 0 && id < tokens.length)) {
      throw new Error(`${what}: ${key} is ${id}, which is not a token id (the vocabulary has ${tokens.length} tokens).`);
    }
    return id;
  };
  const ids = {
    bos: tokenId('tokenizer.ggml.bos_token_id'),
    eos: tokenId('tokenizer.ggml.eos_token_id'),
    unk: tokenId('tokenizer.ggml.unknown_token_id'),
    pad: tokenId('tokenizer.ggml.padding_token_id'),
  };

  let built: { json: Record<string, unknown>; addBos: boolean };
  if (model === 'gpt2') built = byteLevel(read, tokens, types);
  else if (model === 'llama') built = sentencePiece(read, tokens, types);
  else throw new Error(`${what} has tokenizer.ggml.model "${model}"; AfD Studio reads 'gpt2' (byte-level BPE) and 'llama' (SentencePiece) tokenizers.`);

  const addBos = read.bool('tokenizer.ggml.add_bos_token') ?? built.addBos;
  const addEos = read.bool('tokenizer.ggml.add_eos_token') ?? false;
  if (addBos && ids.bos === undefined) throw new Error(`${what} asks for a BOS token (tokenizer.ggml.add_bos_token) but has no tokenizer.ggml.bos_token_id.`);
  if (addEos && ids.eos === undefined) throw new Error(`${what} asks for an EOS token (tokenizer.ggml.add_eos_token) but has no tokenizer.ggml.eos_token_id.`);

  // The named special tokens, like transformers: added as special tokens when not already added.
  const named = { bos_token: ids.bos, eos_token: ids.eos, unk_token: ids.unk, pad_token: ids.pad };
  const added = built.json.added_tokens as AddedToken[];
  const addedIds = new Set(added.map((t) => t.id));
  for (const id of Object.values(named)) {
    if (id === undefined || addedIds.has(id)) continue;
    added.push({ id, content: tokens[id], ...NO_SPECIALS, special: true });
    addedIds.add(id);
  }
  added.sort((a, b) => a.id - b.id);
  built.json.post_processor = templateProcessing(addBos ? ids.bos : undefined, addEos ? ids.eos : undefined, tokens);

  const tokenizerConfig: Record<string, unknown> = { tokenizer_class: 'PreTrainedTokenizerFast', add_bos_token: addBos, add_eos_token: addEos };
  for (const [key, id] of Object.entries(named)) if (id !== undefined) tokenizerConfig[key] = tokens[id];
  tokenizerConfig.clean_up_tokenization_spaces = false;
  const template = read.string('tokenizer.chat_template');
  if (template !== undefined) tokenizerConfig.chat_template = template;
  return { tokenizerJson: built.json, tokenizerConfig };
}

function byteLevel(read: MetaReader, tokens: readonly string[], types: readonly number[]): { json: Record<string, unknown>; addBos: boolean } {
  const preName = read.string('tokenizer.ggml.pre') ?? 'default'; // llama.cpp's choice when the key is missing
  const pre = PRE_BY_NAME.get(preName);
  if (pre === undefined) {
    throw new Error(`${read.what} has tokenizer.ggml.pre "${preName}", a pre-tokenizer AfD Studio does not know; it reads ${PRE_TOKENIZERS.map((p) => p.names.join(', ')).join(', ')}.`);
  }
  const mergeList = read.strings('tokenizer.ggml.merges');
  if (mergeList === undefined) throw new Error(`${read.what} has a byte-level BPE tokenizer without tokenizer.ggml.merges; the file is incomplete.`);
  // A token outside the byte alphabet is stored as text: spell it as bytes, as transformers does.
  const vocab = new Map<string, number>();
  tokens.forEach((t, i) => vocab.set(inByteAlphabet(t) ? t : spellBytes(t), i));
  const added: AddedToken[] = [];
  tokens.forEach((t, i) => {
    // transformers skips a control token outside the byte alphabet (a llama.cpp mislabel: no
    // byte-level token has such characters) and a user-defined one the vocabulary lacks as spelled.
    if (types[i] === TokenType.Control && inByteAlphabet(t)) added.push({ id: i, content: t, ...NO_SPECIALS, special: true });
    if (types[i] === TokenType.UserDefined && vocab.has(t)) added.push({ id: vocab.get(t) as number, content: t, ...NO_SPECIALS, special: false });
  });
  return {
    addBos: pre.addBos,
    json: tokenizerJson({
      model: bpeModel(vocab, splitMerges(mergeList, read.what), { fuse_unk: false, byte_fallback: false, ignore_merges: pre.ignoreMerges, continuing_subword_prefix: '', end_of_word_suffix: '' }),
      added,
      pre_tokenizer: bytePreTokenizer(pre),
      decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    }),
  };
}

/** The byte-level pre-tokenizer for llama.cpp's regexes, as the model's own tokenizer.json writes it. */
function bytePreTokenizer(pre: PreTokenizer): Record<string, unknown> {
  const byteLevel = (useRegex: boolean): Record<string, unknown> => ({ type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: useRegex });
  const { splits } = pre;
  if (splits.length === 1 && splits[0] === GPT2_SPLIT) return byteLevel(true);
  if (splits.length === 2 && splits[0] === DIGIT_SPLIT && splits[1] === GPT2_SPLIT) {
    return { type: 'Sequence', pretokenizers: [{ type: 'Digits', individual_digits: true }, byteLevel(true)] };
  }
  const split = (pattern: string): Record<string, unknown> => ({ type: 'Split', pattern: { Regex: pattern }, behavior: 'Isolated', invert: false });
  return { type: 'Sequence', pretokenizers: [...splits.map(split), byteLevel(false)] };
}

function sentencePiece(read: MetaReader, tokens: readonly string[], types: readonly number[]): { json: Record<string, unknown>; addBos: boolean } {
  const vocab = new Map<string, number>();
  tokens.forEach((t, i) => vocab.set(t, i));
  const mergeList = read.strings('tokenizer.ggml.merges');
  let merges: [string, string][];
  if (mergeList !== undefined) {
    merges = splitMerges(mergeList, read.what);
  } else {
    const scores = read.numbers('tokenizer.ggml.scores', tokens.length);
    if (scores === undefined) throw new Error(`${read.what} has a SentencePiece tokenizer with neither tokenizer.ggml.merges nor tokenizer.ggml.scores, so its merges cannot be known.`);
    merges = mergesFromScores(tokens, scores, vocab);
  }
  const added: AddedToken[] = [];
  tokens.forEach((t, i) => {
    if (types[i] === TokenType.Control) added.push({ id: i, content: t, ...NO_SPECIALS, special: true });
    if (types[i] === TokenType.UserDefined) added.push({ id: vocab.get(t) as number, content: t, ...NO_SPECIALS, special: false });
  });
  // transformers always adds the prefix space; llama.cpp honours the flag, which comes from the
  // SentencePiece model's add_dummy_prefix.
  const prefix = read.bool('tokenizer.ggml.add_space_prefix') ?? true;
  const decoders: unknown[] = [
    { type: 'Replace', pattern: { String: SPIECE_SPACE }, content: ' ' },
    { type: 'ByteFallback' },
    { type: 'Fuse' },
    ...(prefix ? [{ type: 'Strip', content: ' ', start: 1, stop: 0 }] : []),
  ];
  return {
    // llama.cpp (and transformers) add BOS to a SentencePiece vocabulary unless the file says otherwise.
    addBos: true,
    json: tokenizerJson({
      model: bpeModel(vocab, merges, { fuse_unk: true, byte_fallback: true, ignore_merges: false, continuing_subword_prefix: null, end_of_word_suffix: null }),
      added,
      pre_tokenizer: { type: 'Metaspace', replacement: SPIECE_SPACE, prepend_scheme: prefix ? 'first' : 'never', split: false },
      decoder: { type: 'Sequence', decoders },
    }),
  };
}

/**
 * transformers' generate_merges(vocab, scores): every split of every piece into two pieces of
 * the vocabulary is a merge, ranked by the piece's score (higher first), then by the lengths of
 * the left and right parts (longer first); ties keep vocabulary order.
 */
function mergesFromScores(tokens: readonly string[], scores: readonly number[], vocab: ReadonlyMap<string, number>): [string, string][] {
  const scoreOf = new Map<string, number>(); // like a Python dict: first position, last value
  tokens.forEach((t, i) => scoreOf.set(t, scores[i]));
  const all: { left: string; right: string; score: number; leftLen: number; rightLen: number }[] = [];
  for (const [piece, score] of scoreOf) {
    const chars = [...piece];
    const local: typeof all = [];
    for (let i = 1; i < chars.length; i++) {
      const left = chars.slice(0, i).join('');
      const right = chars.slice(i).join('');
      if (vocab.has(left) && vocab.has(right)) local.push({ left, right, score, leftLen: i, rightLen: chars.length - i });
    }
    local.sort((a, b) => (vocab.get(a.left) as number) - (vocab.get(b.left) as number) || (vocab.get(a.right) as number) - (vocab.get(b.right) as number));
    all.push(...local);
  }
  all.sort((a, b) => b.score - a.score || b.leftLen - a.leftLen || b.rightLen - a.rightLen); // stable, as Python's sort
  return all.map((m) => [m.left, m.right]);
}

function splitMerges(merges: readonly string[], what: string): [string, string][] {
  return merges.map((m, i) => {
    const parts = m.split(' ');
    if (parts.length !== 2) throw new Error(`${what}: tokenizer.ggml.merges[${i}] is ${JSON.stringify(m)}, not two tokens separated by one space.`);
    return parts as [string, string];
  });
}

function bpeModel(vocab: ReadonlyMap<string, number>, merges: [string, string][], options: Record<string, unknown>): Record<string, unknown> {
  return { type: 'BPE', dropout: null, unk_token: null, ...options, vocab: Object.fromEntries(vocab), merges };
}

function tokenizerJson(parts: { model: Record<string, unknown>; added: AddedToken[]; pre_tokenizer: unknown; decoder: unknown }): Record<string, unknown> {
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: parts.added,
    normalizer: null,
    pre_tokenizer: parts.pre_tokenizer,
    post_processor: null,
    decoder: parts.decoder,
    model: parts.model,
  };
}

/** transformers' post-processor for add_bos_token / add_eos_token. */
function templateProcessing(bos: number | undefined, eos: number | undefined, tokens: readonly string[]): Record<string, unknown> {
  const special = (id: number | undefined, typeId: number): unknown[] => (id === undefined ? [] : [{ SpecialToken: { id: tokens[id], type_id: typeId } }]);
  const seq = (name: 'A' | 'B', typeId: number): unknown[] => [...special(bos, typeId), { Sequence: { id: name, type_id: typeId } }, ...special(eos, typeId)];
  const specialTokens: Record<string, unknown> = {};
  for (const id of [bos, eos]) if (id !== undefined) specialTokens[tokens[id]] = { id: tokens[id], ids: [id], tokens: [tokens[id]] };
  return { type: 'TemplateProcessing', single: seq('A', 0), pair: [...seq('A', 0), ...seq('B', 1)], special_tokens: specialTokens };
}

function inByteAlphabet(token: string): boolean {
  for (const c of token) if (!BYTE_ALPHABET.has(c)) return false;
  return true;
}

function spellBytes(text: string): string {
  let out = '';
  for (const b of new TextEncoder().encode(text)) out += BYTE_CHARS[b];
  return out;
}

/** Typed reads of the metadata, each failing in one sentence that names the file and key. */
class MetaReader {
  constructor(private readonly meta: ReadonlyMap<string, GgufValue>, readonly what: string) {}

  string(key: string): string | undefined {
    const v = this.meta.get(key);
    if (v === undefined || typeof v === 'string') return v;
    throw this.mistyped(key, 'a string');
  }

  bool(key: string): boolean | undefined {
    const v = this.meta.get(key);
    if (v === undefined || typeof v === 'boolean') return v;
    throw this.mistyped(key, 'a bool');
  }

  number(key: string): number | undefined {
    const v = this.meta.get(key);
    if (v === undefined || typeof v === 'number') return v;
    if (typeof v === 'bigint' && v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= -BigInt(Number.MAX_SAFE_INTEGER)) return Number(v);
    throw this.mistyped(key, 'a number');
  }

  strings(key: string): string[] | undefined {
    const v = this.meta.get(key);
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw this.mistyped(key, 'an array of strings');
    return v as string[];
  }

  /** A number array with one entry per token. */
  numbers(key: string, length: number): number[] | undefined {
    const v = this.meta.get(key);
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'number')) throw this.mistyped(key, 'an array of numbers');
    if (v.length !== length) throw new Error(`${this.what}: ${key} has ${v.length} entries for ${length} tokens; the file is inconsistent.`);
    return v as number[];
  }

  private mistyped(key: string, expected: string): Error {
    return new Error(`${this.what}: ${key} must be ${expected}, got ${describe(this.meta.get(key))}.`);
  }
}

function describe(v: GgufValue | undefined): string {
  if (Array.isArray(v)) return `an array of ${v.length}`;
  return typeof v === 'string' ? JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v) : String(v);
}

// ---------------------------------------------------------------------------------------
// tokenizer.json + tokenizer_config.json -> GGUF

/**
 * The GGUF tokenizer metadata (typed for the writer, in llama.cpp's key order) for a model
 * folder's tokenizer: tokenizer.json and tokenizer_config.json objects, and the chat template
 * (chat_template.jinja's text; by default the config's `chat_template` string). Byte-level BPE
 * becomes 'gpt2' with the `pre` name of its pre-tokenizer; BPE with byte fallback and
 * Metaspace becomes 'llama' with scores that rank pieces as the merges do (llama.cpp merges
 * SentencePiece vocabularies by score) and the merges too. Anything else is refused.
 */
export function ggufTokenizerMetadata(json: Record<string, unknown>, config: Record<string, unknown>, chatTemplate?: string): Map<string, GgufTypedValue> {
  const what = 'the tokenizer';
  const model = json.model;
  if (!isObject(model) || model.type !== 'BPE' || !isObject(model.vocab)) {
    const type = isObject(model) ? String(model.type) : 'missing';
    throw new Error(`Cannot write ${what} to GGUF: its tokenizer.json has a ${type} model, and only BPE models (byte-level or with byte fallback) can be written.`);
  }
  const byteFallback = model.byte_fallback === true;
  const splits = byteFallback ? undefined : byteLevelSplits(json.pre_tokenizer);
  if (!byteFallback && (splits === undefined || !isByteLevelDecoder(json.decoder))) {
    throw new Error(`Cannot write ${what} to GGUF: its tokenizer.json is neither byte-level BPE (ByteLevel pre-tokenizer and decoder) nor BPE with byte fallback, the two kinds llama.cpp reads.`);
  }

  // Tokens by id: the model's vocabulary, then added tokens; a gap becomes an unused placeholder as in llama.cpp's converter.
  const byId = new Map<number, string>();
  for (const [token, id] of Object.entries(model.vocab)) if (typeof id === 'number') byId.set(id, token);
  const added = new Map<number, { content: string; special: boolean }>();
  for (const t of Array.isArray(json.added_tokens) ? json.added_tokens : []) {
    if (!isObject(t) || typeof t.id !== 'number' || typeof t.content !== 'string') continue;
    added.set(t.id, { content: t.content, special: t.special === true });
    if (!byId.has(t.id)) byId.set(t.id, t.content);
  }
  let count = 0;
  for (const id of byId.keys()) count = Math.max(count, id + 1);
  const tokens: string[] = [];
  const types: number[] = [];
  // SentencePiece's unknown piece is a special added token in tokenizer.json, but its own type in GGUF.
  const unk = byteFallback ? (contentOf(config.unk_token) ?? (typeof model.unk_token === 'string' ? model.unk_token : undefined)) : undefined;
  for (let id = 0; id < count; id++) {
    const token = byId.get(id);
    const extra = added.get(id);
    tokens.push(token ?? `[PAD${id}]`);
    if (token === undefined) types.push(TokenType.Unused);
    else if (token === unk) types.push(TokenType.Unknown);
    else if (extra !== undefined) types.push(extra.special ? TokenType.Control : TokenType.UserDefined);
    else if (byteFallback && /^<0x[0-9A-F]{2}>$/.test(token)) types.push(TokenType.Byte);
    else types.push(TokenType.Normal);
  }
  const merges = mergePairs(model.merges).map(([a, b], i) => {
    if (a.includes(' ') || b.includes(' ')) throw new Error(`Cannot write ${what} to GGUF: merge ${i} (${JSON.stringify([a, b])}) has a space in a token, which GGUF's "left right" merges cannot hold.`);
    return `${a} ${b}`;
  });

  const idOf = (key: string): number | undefined => {
    const content = contentOf(config[key]);
    if (content === undefined) return undefined;
    const id = [...added].find(([, t]) => t.content === content)?.[0] ?? (model.vocab as Record<string, unknown>)[content];
    if (typeof id !== 'number') throw new Error(`Cannot write ${what} to GGUF: its ${key} ${JSON.stringify(content)} is not in the vocabulary.`);
    return id;
  };
  const bos = idOf('bos_token');
  const eos = idOf('eos_token');
  const processor = postProcessorSpecials(json.post_processor);
  const addBos = typeof config.add_bos_token === 'boolean' ? config.add_bos_token : bos !== undefined && processor.first === tokens[bos];
  const addEos = typeof config.add_eos_token === 'boolean' ? config.add_eos_token : eos !== undefined && processor.last === tokens[eos];

  const out = new Map<string, GgufTypedValue>();
  if (byteFallback) {
    out.set('tokenizer.ggml.model', gguf.string('llama'));
    out.set('tokenizer.ggml.pre', gguf.string('default')); // what llama.cpp's converter writes; unused for SentencePiece
    out.set('tokenizer.ggml.tokens', gguf.strings(tokens));
    out.set('tokenizer.ggml.scores', gguf.f32s(scoresFromMerges(tokens, merges)));
    out.set('tokenizer.ggml.token_type', gguf.i32s(types));
  } else {
    const ignoreMerges = model.ignore_merges === true;
    const pre = PRE_TOKENIZERS.find((p) => p.ignoreMerges === ignoreMerges && sameList(p.splits, splits as string[]));
    if (pre === undefined) {
      throw new Error(`Cannot write ${what} to GGUF: its pre-tokenizer${ignoreMerges ? ' (with ignore_merges)' : ''} matches none of the regexes llama.cpp knows by name (${PRE_TOKENIZERS.map((p) => p.names[0]).join(', ')}).`);
    }
    out.set('tokenizer.ggml.model', gguf.string('gpt2'));
    out.set('tokenizer.ggml.pre', gguf.string(pre.names[0]));
    out.set('tokenizer.ggml.tokens', gguf.strings(tokens));
    out.set('tokenizer.ggml.token_type', gguf.i32s(types));
  }
  out.set('tokenizer.ggml.merges', gguf.strings(merges));
  const ids: [key: string, id: number | undefined][] = [
    ['tokenizer.ggml.bos_token_id', bos],
    ['tokenizer.ggml.eos_token_id', eos],
    ['tokenizer.ggml.unknown_token_id', idOf('unk_token')],
    ['tokenizer.ggml.padding_token_id', idOf('pad_token')],
  ];
  for (const [key, id] of ids) if (id !== undefined) out.set(key, gguf.u32(id));
  out.set('tokenizer.ggml.add_bos_token', gguf.bool(addBos));
  out.set('tokenizer.ggml.add_eos_token', gguf.bool(addEos));
  if (byteFallback) out.set('tokenizer.ggml.add_space_prefix', gguf.bool(addsPrefixSpace(json)));
  const template = chatTemplate ?? (typeof config.chat_template === 'string' ? config.chat_template : undefined);
  if (template !== undefined) out.set('tokenizer.chat_template', gguf.string(template));
  return out;
}

/** The regexes a byte-level pre-tokenizer splits by, in order; undefined when it is not one llama.cpp could express. */
function byteLevelSplits(pre: unknown): string[] | undefined {
  const splits: string[] = [];
  let byteLevel = false;
  const walk = (p: unknown): boolean => {
    if (!isObject(p)) return false;
    if (p.type === 'Sequence' && Array.isArray(p.pretokenizers)) return p.pretokenizers.every(walk);
    if (byteLevel) return false; // ByteLevel must come last
    if (p.type === 'ByteLevel') {
      if (p.add_prefix_space === true) return false;
      if (p.use_regex !== false) splits.push(GPT2_SPLIT);
      byteLevel = true;
      return true;
    }
    if (p.type === 'Digits' && p.individual_digits === true) return splits.push(DIGIT_SPLIT) > 0;
    if (p.type === 'Split' && isObject(p.pattern) && typeof p.pattern.Regex === 'string' && p.behavior === 'Isolated' && p.invert !== true) {
      return splits.push(p.pattern.Regex) > 0;
    }
    return false;
  };
  return walk(pre) && byteLevel ? splits : undefined;
}

function isByteLevelDecoder(decoder: unknown): boolean {
  return isObject(decoder) && decoder.type === 'ByteLevel';
}

/** Whether a SentencePiece-style tokenizer adds "▁" before the text (Metaspace or the legacy Prepend normalizer). */
function addsPrefixSpace(json: Record<string, unknown>): boolean {
  const found = (node: unknown, test: (n: Record<string, unknown>) => boolean): boolean => {
    if (!isObject(node)) return false;
    if (test(node)) return true;
    const children = node.pretokenizers ?? node.normalizers;
    return Array.isArray(children) && children.some((c) => found(c, test));
  };
  return found(json.pre_tokenizer, (n) => n.type === 'Metaspace' && n.prepend_scheme !== 'never' && n.add_prefix_space !== false)
    || found(json.normalizer, (n) => n.type === 'Prepend' && n.prepend === SPIECE_SPACE);
}

/** The first and last special tokens a TemplateProcessing post-processor puts around a single sequence. */
function postProcessorSpecials(processor: unknown): { first?: string; last?: string } {
  if (!isObject(processor) || processor.type !== 'TemplateProcessing' || !Array.isArray(processor.single)) return {};
  const items = processor.single as unknown[];
  const specialOf = (item: unknown): string | undefined => (isObject(item) && isObject(item.SpecialToken) && typeof item.SpecialToken.id === 'string' ? item.SpecialToken.id : undefined);
  return { first: specialOf(items[0]), last: items.length > 1 ? specialOf(items[items.length - 1]) : undefined };
}

/** A special token of tokenizer_config.json, given as a string or as a serialized AddedToken. */
function contentOf(spec: unknown): string | undefined {
  return typeof spec === 'string' ? spec : isObject(spec) && typeof spec.content === 'string' ? spec.content : undefined;
}

function mergePairs(merges: unknown): [string, string][] {
  if (!Array.isArray(merges)) return [];
  return merges.map((m) => (Array.isArray(m) ? [String(m[0]), String(m[1])] : (String(m).split(' ', 2) as [string, string])));
}

/**
 * SentencePiece-style scores for a BPE vocabulary: a piece made by merge r scores -r, so that
 * merging by score (llama.cpp) and recovering merges from scores (transformers) both follow the
 * merge order; pieces no merge makes (characters, bytes, specials) score below every merge.
 */
function scoresFromMerges(tokens: readonly string[], merges: readonly string[]): number[] {
  const rank = new Map<string, number>();
  merges.forEach((m, r) => {
    const piece = m.replace(' ', '');
    if (!rank.has(piece)) rank.set(piece, r);
  });
  return tokens.map((t) => -(rank.get(t) ?? merges.length));
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// Shared inputs of the tokenizer tests: a small multilingual corpus, the strings that
// encode/decode must handle, and the HH-RLHF transcripts when they are on this machine.
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';

/** The HH-RLHF copy shipped in the repository (data/hh-rlhf/). */
export const HH_FILE = fileURLToPath(new URL('../../data/hh-rlhf/harmless-base-test.jsonl.gz', import.meta.url));

const LINES = [
  'The quick brown fox jumps over the lazy dog. The dog sleeps; the fox runs away!',
  'Human: How do I bake bread at home?\n\nAssistant: Mix flour, water, salt and yeast, then let it rise.',
  "Il était une fois une élève très appliquée à l'école, qui préférait le café crème.",
  'Größe, Übermut und Ärger: schöne Grüße aus München.',
  '東京は日本の首都です。我喜欢学习中文和日本語。한국어도 재미있어요.',
  'Emoji time: 😀😃😄 👍🏽 🇫🇷 👨‍👩‍👧‍👦 ❤️ 🎉🎉🎉',
  'def f(x):\n\tif x > 0:\n\t\treturn x * 2\n    return -x  # spaces   and\ttabs\n',
  'Numbers like 12345, 3.14159 and 2024-06-01 appear in text; so do URLs: https://example.com/a?b=c.',
  'She said: "don\'t", he\'d\'ve said \'can\'t\' — it\'s the user\'s choice…',
  'Multiple   spaces,\n\n\nnewlines and \t\t tabs   everywhere   \n',
];

/** About 20 KB of varied text (deterministic). */
export function smallCorpus(): string[] {
  const out: string[] = [];
  for (let r = 0; r < 30; r++) LINES.forEach((line, i) => out.push((r + i) % 3 ? line : line.toLowerCase()));
  return out;
}

/** The chosen and rejected transcripts of HH-RLHF harmless-base test (about 3 MB), or undefined. */
export function hhTranscripts(): string[] | undefined {
  if (!existsSync(HH_FILE)) return undefined;
  const texts: string[] = [];
  for (const line of gunzipSync(readFileSync(HH_FILE)).toString('utf8').split('\n')) {
    if (line.trim() === '') continue;
    const row = JSON.parse(line) as { chosen: string; rejected: string };
    texts.push(row.chosen, row.rejected);
  }
  return texts;
}

/** Strings with unicode, whitespace runs and special tokens, for encode/decode parity and round trips. */
export const TRICKY = [
  'Hello world',
  'Hello  world <|im_end|> é 😀',
  '   leading spaces',
  'trailing spaces    ',
  'tabs\tand\t\ttabs\t',
  'new\nlines\n\n\nand\r\nCRLF\r\n',
  'café naïve Übermut façade ångström Ærø',
  'e\u0301 combining accent and precomposed é',
  '東京は日本の首都です。我喜欢学习中文。',
  '한국어 텍스트와 日本語のテキスト',
  '😀👍🏽🇫🇷👨‍👩‍👧‍👦❤️🎉 emoji-heavy 🤖🧠💡',
  'a😀b😃c 😄 d',
  '<|endoftext|>hello<|endoftext|>',
  'text <|im_start|>user\nhi<|im_end|>\n',
  '<s>[INST] hello [/INST] answer </s>',
  'numbers 1234567890 3.14159 -42',
  "contractions don't I'll we've they're she's I'm he'd",
  'def f(x):\n    return x  # comment\n\n\n',
  `a${' '.repeat(40)}b${'\n'.repeat(7)}c${'\t'.repeat(5)}d`,
  '\u00a0nbsp and\u2009thin space and\u3000ideographic space',
  ' ',
  '\n',
  '',
];

/** Mulberry32: a small seeded generator so that random cases are the same on every run. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ALPHABET = [
  ...'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789',
  ...".,;:!?'\"()[]{}<>-_/\\|@#$%^&*+=~`",
  ' ', ' ', ' ', '  ', '\n', '\n\n', '\t', '\r\n', '\u00a0',
  ...'éèêëàâäîïôöûüçñßøåæœÉÀÇ',
  'e\u0301', '\u0301',
  ...'東京日本語中文学习한국어',
  '😀', '👍🏽', '🇫🇷', '👨‍👩‍👧‍👦', '❤️', '🎉', '𝔘𝔫𝔦', '\u200d', '\ufe0f',
  '<|endoftext|>',
];

/** A random string from letters, punctuation, whitespace runs, accents, CJK, emoji and a special token. */
export function randomText(next: () => number, maxPieces = 40): string {
  const n = 1 + Math.floor(next() * maxPieces);
  let s = '';
  for (let i = 0; i < n; i++) s += ALPHABET[Math.floor(next() * ALPHABET.length)];
  return s;
}

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bytesToUnicode, serializeTokenizerJson, trainBpe, writeTokenizerFolder } from './bpe-trainer.ts';
import { StreamDecoder, Tokenizer } from './tokenizer.ts';
import { TRICKY, hhTranscripts, randomText, rng, smallCorpus } from './test-data.ts';

const SPECIALS = ['<|endoftext|>', '<|im_start|>', '<|im_end|>'];

test('byte-to-unicode mapping is GPT-2\'s: a bijection onto printable characters', () => {
  const map = bytesToUnicode();
  assert.equal(new Set(map).size, 256);
  assert.equal(map[0x20], 'Ġ');
  assert.equal(map[0x0a], 'Ċ');
  assert.equal(map[0x41], 'A');
  assert.equal(map[0xff], 'ÿ');
  assert.ok(map.every((ch) => !/\s/u.test(ch)));
});

test('training is deterministic: same input (in any order), same file bytes', () => {
  const corpus = smallCorpus();
  const a = trainBpe(corpus, { vocabSize: 600, specialTokens: SPECIALS });
  const b = trainBpe(corpus, { vocabSize: 600, specialTokens: SPECIALS });
  assert.equal(a.text, b.text);
  // Merges depend on word counts and ids only, not on the order words were first seen.
  const shuffled = [...corpus].reverse();
  assert.equal(trainBpe(shuffled, { vocabSize: 600, specialTokens: SPECIALS }).text, a.text);
  assert.equal(serializeTokenizerJson(a.json), a.text);
  // A different target gives a prefix of the same merge sequence.
  const small = trainBpe(corpus, { vocabSize: 400, specialTokens: SPECIALS });
  assert.deepEqual((a.json.model.merges as unknown[]).slice(0, small.merges), small.json.model.merges);
});

test('the vocabulary: special tokens, 256 bytes, then merges; ids in order in the file', () => {
  const trained = trainBpe(smallCorpus(), { vocabSize: 500, specialTokens: SPECIALS });
  assert.equal(trained.vocabSize, 500);
  assert.equal(trained.merges, 500 - 256 - SPECIALS.length);
  const vocab = trained.json.model.vocab as Record<string, number>;
  assert.deepEqual(SPECIALS.map((s) => vocab[s]), [0, 1, 2]);
  assert.equal(vocab['!'], 3);
  const vocabText = trained.text.slice(trained.text.indexOf('"vocab": {'), trained.text.indexOf('"merges": ['));
  const ids = [...vocabText.matchAll(/^ {6}"(?:[^"\\]|\\.)*": (\d+),?$/gm)].map((m) => Number(m[1]));
  assert.deepEqual(ids, [...Array(500).keys()]);
  assert.deepEqual(trained.json.added_tokens?.map((t) => [t.id, t.content, t.special]), SPECIALS.map((s, i) => [i, s, true]));
  // Special tokens in the training text are never split into merges.
  assert.ok(!Object.keys(vocab).some((t) => t.includes('<|') && !SPECIALS.includes(t)));
});

test('minFrequency stops training early; bad options are refused in one sentence', () => {
  const tiny = trainBpe(['ab ab ab cd'], { vocabSize: 1000, minFrequency: 2 });
  assert.ok(tiny.vocabSize < 1000);
  assert.equal(Tokenizer.fromJson(tiny.json).decode(Tokenizer.fromJson(tiny.json).encode('ab cd zz')), 'ab cd zz');
  assert.throws(() => trainBpe(['x'], { vocabSize: 100 }), /vocabSize between 257 .* got 100\./);
  assert.throws(() => trainBpe(['x'], { vocabSize: 300, specialTokens: ['<a>', '<a>'] }), /distinct, non-empty special tokens/);
});

test('round trip: encode then decode is the identity for unicode, whitespace runs and special tokens', () => {
  const trained = trainBpe(smallCorpus(), { vocabSize: 700, specialTokens: SPECIALS });
  const tok = Tokenizer.fromJson(trained.text);
  const next = rng(7);
  const cases = [...TRICKY, ...Array.from({ length: 300 }, () => randomText(next))];
  for (const text of cases) {
    const ids = tok.encode(text);
    assert.equal(tok.decode(ids), text, JSON.stringify(text));
    // Byte-level BPE never needs an unknown token.
    assert.ok(ids.every((id) => id >= 0 && id < tok.vocabSize));
  }
  assert.deepEqual(tok.encode('<|endoftext|>'), [0]);
  assert.equal(tok.decode(tok.encode('a<|im_end|>b'), { skipSpecialTokens: true }), 'ab');
});

test('StreamDecoder on a trained tokenizer: pieces concatenate to decode(all), never a broken character', () => {
  const tok = Tokenizer.fromJson(trainBpe(smallCorpus(), { vocabSize: 600, specialTokens: SPECIALS }).text);
  const text = '😀👍🏽🇫🇷👨‍👩‍👧‍👦❤️🎉 emoji-heavy 🤖🧠💡 東京 café\n\n  ok <|im_end|>';
  const ids = tok.encode(text);
  const stream = new StreamDecoder(tok);
  const pieces = ids.map((id) => stream.push(id));
  pieces.push(stream.flush());
  assert.equal(pieces.join(''), tok.decode(ids));
  assert.equal(pieces.join(''), text);
  assert.ok(pieces.every((p) => !p.includes('\uFFFD')), 'no replacement character was emitted');
  // Emoji span several byte-level tokens here, so some pushes must have waited.
  assert.ok(pieces.filter((p) => p === '').length > 0);
});

test('writeTokenizerFolder: tokenizer.json + tokenizer_config.json that fromFolder loads, byte-identical on rewrite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'afd-bpe-'));
  try {
    const trained = trainBpe(smallCorpus(), { vocabSize: 500, specialTokens: SPECIALS });
    const template = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
    await writeTokenizerFolder(dir, trained, { eosToken: '<|im_end|>', bosToken: '<|endoftext|>', padToken: '<|endoftext|>', modelMaxLength: 256, chatTemplate: template });
    assert.deepEqual((await readdir(dir)).sort(), ['tokenizer.json', 'tokenizer_config.json']);
    const first = await readFile(join(dir, 'tokenizer.json'));
    const firstConfig = await readFile(join(dir, 'tokenizer_config.json'));
    await writeTokenizerFolder(dir, trainBpe(smallCorpus(), { vocabSize: 500, specialTokens: SPECIALS }), { eosToken: '<|im_end|>', bosToken: '<|endoftext|>', padToken: '<|endoftext|>', modelMaxLength: 256, chatTemplate: template });
    assert.deepEqual(await readFile(join(dir, 'tokenizer.json')), first);
    assert.deepEqual(await readFile(join(dir, 'tokenizer_config.json')), firstConfig);
    const tok = await Tokenizer.fromFolder(dir);
    assert.deepEqual([tok.bosTokenId, tok.eosTokenId, tok.padTokenId, tok.modelMaxLength, tok.vocabSize], [0, 2, 0, 256, 500]);
    // No add_bos_token: GPT-2 style, nothing is added.
    assert.deepEqual(tok.encode('hi'), tok.encode('hi', { addSpecialTokens: false }));
    assert.equal(tok.applyChatTemplate([{ role: 'user', content: 'hi' }], { addGenerationPrompt: true }), '<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n');
    await assert.rejects(writeTokenizerFolder(dir, trained, { eosToken: '</s>' }), /"<\/s>" is not one of its special tokens/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

const hh = hhTranscripts();
test('speed: 4096 tokens on the HH-RLHF transcripts in well under a minute', { skip: hh === undefined ? 'HH-RLHF file not on this machine' : false }, () => {
  const texts = hh!;
  const bytes = texts.reduce((n, t) => n + Buffer.byteLength(t), 0);
  const start = performance.now();
  const trained = trainBpe(texts, { vocabSize: 4096 });
  const seconds = (performance.now() - start) / 1000;
  console.log(`# BPE training: ${(bytes / 1e6).toFixed(2)} MB, ${trained.stats.distinctWords} distinct words, ${trained.merges} merges in ${seconds.toFixed(2)} s (count ${trained.stats.countSeconds.toFixed(2)} s, merges ${trained.stats.mergeSeconds.toFixed(2)} s)`);
  assert.equal(trained.vocabSize, 4096);
  assert.ok(seconds < 20, `training took ${seconds.toFixed(1)} s`);
  const tok = Tokenizer.fromJson(trained.text);
  for (const t of texts.slice(0, 50)) assert.equal(tok.decode(tok.encode(t)), t);
});

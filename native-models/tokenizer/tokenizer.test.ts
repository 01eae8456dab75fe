import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { StreamDecoder, Tokenizer } from './tokenizer.ts';
import type { TokenizerConfig, TokenizerJson } from './tokenizer.ts';
import { trainBpe } from './bpe-trainer.ts';
import { smallCorpus } from './test-data.ts';
import { withTempDir } from '../../test/support/temp-dir.ts';

/** A tiny Llama-style tokenizer: Metaspace, BPE with byte fallback, "<s> $A". */
function llamaJson(): TokenizerJson {
  const vocab: Record<string, number> = { '<unk>': 0, '<s>': 1, '</s>': 2 };
  for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`] = 3 + b;
  const merges: [string, string][] = [['▁', 'h'], ['▁h', 'i'], ['▁', 't'], ['▁t', 'h'], ['▁th', 'e']];
  for (const piece of ['▁', ...'abcdefghijklmnopqrstuvwxyz', 'é', '▁h', '▁hi', '▁t', '▁th', '▁the']) vocab[piece] ??= Object.keys(vocab).length;
  const special = (id: number, content: string) => ({ id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true });
  return {
    version: '1.0',
    added_tokens: [special(0, '<unk>'), special(1, '<s>'), special(2, '</s>')],
    normalizer: null,
    pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: 'first', split: false },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }],
      pair: [{ SpecialToken: { id: '<s>', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { Sequence: { id: 'B', type_id: 1 } }],
      special_tokens: { '<s>': { id: '<s>', ids: [1], tokens: ['<s>'] } },
    },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: '▁' }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        { type: 'Strip', content: ' ', start: 1, stop: 0 },
      ],
    },
    model: { type: 'BPE', dropout: null, unk_token: '<unk>', continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: true, byte_fallback: true, ignore_merges: false, vocab, merges },
  };
}

const CHATML = "{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
const STRICT = "{% for m in messages %}{% if (m.role == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Roles must alternate user/assistant') }}{% endif %}{{ bos_token }}{{ m.role }}: {{ m.content }}{{ eos_token }}{% endfor %}";

const withDir = (fn: (dir: string) => Promise<void>): Promise<void> => withTempDir('tokenizer', fn);

/** One sentence that names `what`. */
function oneSentence(what: string): (err: unknown) => boolean {
  return (err) => {
    assert.ok(err instanceof Error);
    assert.ok(err.message.includes(what), `"${err.message}" should name ${what}`);
    assert.ok(!err.message.includes('\n') && /\.$/.test(err.message), `"${err.message}" should be one sentence`);
    return true;
  };
}

test('Llama-style tokenizer: BOS from the post-processor, byte fallback, special token ids', () => {
  const tok = Tokenizer.fromJson(llamaJson(), { bos_token: { content: '<s>', lstrip: false, rstrip: false, normalized: false, single_word: false, __type: 'AddedToken' }, eos_token: '</s>', unk_token: '<unk>' });
  assert.deepEqual([tok.bosTokenId, tok.eosTokenId, tok.unkTokenId, tok.padTokenId], [1, 2, 0, undefined]);
  const ids = tok.encode('hi the');
  assert.deepEqual(ids.map((id) => tok.idToToken(id)), ['<s>', '▁hi', '▁the']);
  assert.deepEqual(tok.encode('hi the', { addSpecialTokens: false }), ids.slice(1));
  // Characters outside the vocab become their UTF-8 bytes.
  const emoji = tok.encode('😀', { addSpecialTokens: false });
  assert.deepEqual(emoji.map((id) => tok.idToToken(id)), ['▁', '<0xF0>', '<0x9F>', '<0x98>', '<0x80>']);
  assert.equal(tok.decode(tok.encode('hi 😀 é </s>')), '<s> hi 😀 é </s>');
  assert.equal(tok.decode(tok.encode('hi 😀 é </s>'), { skipSpecialTokens: true }), 'hi 😀 é ');
  assert.equal(tok.tokenToId('▁the'), tok.encode('the', { addSpecialTokens: false })[0]);
  assert.deepEqual(tok.specialTokenIds, [0, 1, 2]);
});

test('add_bos_token / add_eos_token in the config rebuild the post-processor, as transformers does', () => {
  const json = llamaJson();
  const config: TokenizerConfig = { bos_token: '<s>', eos_token: '</s>', add_bos_token: false, add_eos_token: true };
  assert.deepEqual(Tokenizer.fromJson(json, config).encode('hi').map((id) => Tokenizer.fromJson(json).idToToken(id)), ['▁hi', '</s>']);
  // No post-processor and no flags: nothing is added.
  const bare = { ...json, post_processor: null };
  assert.deepEqual(Tokenizer.fromJson(bare, { bos_token: '<s>' }).encode('hi').length, 1);
  assert.deepEqual(Tokenizer.fromJson(bare, { bos_token: '<s>', add_bos_token: true }).encode('hi')[0], 1);
});

test('special tokens missing from tokenizer.json are added (vocab id reused, else a new id)', () => {
  const json = llamaJson();
  const size = Tokenizer.fromJson(json).vocabSize;
  const tok = Tokenizer.fromJson(json, { eos_token: '</s>', pad_token: '<pad>', additional_special_tokens: ['<|tool|>'], added_tokens_decoder: { 900: { content: '<x>', special: false, normalized: false }, 3: { content: '<0x00>', special: true } } });
  // Order as in transformers: added_tokens_decoder, named, extra; "<0x00>" keeps its vocab id.
  assert.deepEqual(['<x>', '<pad>', '<|tool|>', '<0x00>'].map((t) => tok.tokenToId(t)), [size, size + 1, size + 2, 3]);
  assert.equal(tok.padTokenId, size + 1);
  assert.equal(tok.vocabSize, size + 3);
  assert.deepEqual(tok.encode('hi<pad><|tool|><x>', { addSpecialTokens: false }), [tok.tokenToId('▁hi'), size + 1, size + 2, size]);
  // "<x>" is not special, so it survives skipSpecialTokens.
  assert.equal(tok.decode(tok.encode('hi<pad><x>'), { skipSpecialTokens: true }), 'hi<x>');
});

test('decode: empty input, unknown ids skipped (as the Rust tokenizers do)', () => {
  const tok = Tokenizer.fromJson(llamaJson());
  assert.equal(tok.decode([]), '');
  assert.equal(tok.decode([tok.tokenToId('▁hi')!, 99999, -1, 1.5]), 'hi');
  assert.equal(tok.decode([99999]), '');
});

test('model_max_length: a number, or undefined for the "no limit" sentinel', () => {
  assert.equal(Tokenizer.fromJson(llamaJson(), { model_max_length: 2048 }).modelMaxLength, 2048);
  assert.equal(Tokenizer.fromJson(llamaJson(), { model_max_length: 1e30 }).modelMaxLength, undefined);
  assert.equal(Tokenizer.fromJson(llamaJson()).modelMaxLength, undefined);
});

test('chat templates: string, named list, dict; variables bos_token, eos_token, add_generation_prompt', () => {
  const json = llamaJson();
  const msgs = [{ role: 'user', content: 'Hi 😀' }, { role: 'assistant', content: 'Hello' }];
  const single = Tokenizer.fromJson(json, { chat_template: CHATML });
  assert.ok(single.hasChatTemplate);
  assert.equal(single.applyChatTemplate(msgs), '<|im_start|>user\nHi 😀<|im_end|>\n<|im_start|>assistant\nHello<|im_end|>\n');
  assert.equal(single.applyChatTemplate(msgs, { addGenerationPrompt: true }).slice(-23), '<|im_start|>assistant\n'.padStart(23, '\n'));
  const named = Tokenizer.fromJson(json, { bos_token: '<s>', eos_token: '</s>', chat_template: [{ name: 'default', template: STRICT }, { name: 'chatml', template: CHATML }] });
  assert.deepEqual(named.chatTemplateNames, ['default', 'chatml']);
  assert.equal(named.applyChatTemplate(msgs), '<s>user: Hi 😀</s><s>assistant: Hello</s>');
  assert.equal(named.applyChatTemplate(msgs, { template: 'chatml' }), single.applyChatTemplate(msgs));
  const dict = Tokenizer.fromJson(json, { chat_template: { default: CHATML } });
  assert.equal(dict.applyChatTemplate(msgs), single.applyChatTemplate(msgs));
  assert.throws(() => named.applyChatTemplate(msgs, { template: 'tool_use' }), /no chat template named "tool_use" \(it has "default", "chatml"\)/);
  assert.throws(() => Tokenizer.fromJson(json).applyChatTemplate(msgs), /has no chat template/);
  assert.equal(Tokenizer.fromJson(json).hasChatTemplate, false);
  assert.throws(() => single.applyChatTemplate([]), /empty conversation/);
});

test('chat template failures: raise_exception and syntax errors name where the template came from', () => {
  const json = llamaJson();
  const strict = Tokenizer.fromJson(json, { bos_token: '<s>', eos_token: '</s>', chat_template: STRICT });
  assert.throws(() => strict.applyChatTemplate([{ role: 'user', content: 'a' }, { role: 'user', content: 'b' }]), (err) => {
    oneSentence('the tokenizer config given to Tokenizer.fromJson')(err);
    return /Roles must alternate user\/assistant\.$/.test((err as Error).message);
  });
  const broken = Tokenizer.fromJson(json, { chat_template: '{% for m in messages %}{{ m.content }' });
  assert.throws(() => broken.applyChatTemplate([{ role: 'user', content: 'a' }]), oneSentence('the tokenizer config given to Tokenizer.fromJson'));
});

test('fromFolder errors: missing or corrupt files, each in one sentence naming the file', () => withDir(async (dir) => {
  await assert.rejects(Tokenizer.fromFolder(dir), oneSentence(join(dir, 'tokenizer.json')));
  await writeFile(join(dir, 'tokenizer.json'), '{"model": {"type": "BPE", "vocab": {');
  await assert.rejects(Tokenizer.fromFolder(dir), oneSentence(join(dir, 'tokenizer.json')));
  await writeFile(join(dir, 'tokenizer.json'), '{"version": "1.0"}');
  await assert.rejects(Tokenizer.fromFolder(dir), oneSentence(join(dir, 'tokenizer.json')));
  await writeFile(join(dir, 'tokenizer.json'), JSON.stringify({ ...llamaJson(), model: { type: 'WordLevel', vocab: {} } }));
  await assert.rejects(Tokenizer.fromFolder(dir), oneSentence(join(dir, 'tokenizer.json')));
  await writeFile(join(dir, 'tokenizer.json'), JSON.stringify({ ...llamaJson(), decoder: { type: 'NoSuchDecoder' } }));
  await assert.rejects(Tokenizer.fromFolder(dir), oneSentence(join(dir, 'tokenizer.json')));
  await writeFile(join(dir, 'tokenizer.json'), JSON.stringify(llamaJson()));
  await writeFile(join(dir, 'tokenizer_config.json'), '{"bos_token": ');
  await assert.rejects(Tokenizer.fromFolder(dir), oneSentence(join(dir, 'tokenizer_config.json')));
  await writeFile(join(dir, 'tokenizer_config.json'), '{"bos_token": 5}');
  await assert.rejects(Tokenizer.fromFolder(dir), oneSentence(join(dir, 'tokenizer_config.json')));
  await writeFile(join(dir, 'tokenizer_config.json'), '{"chat_template": "{% if %}"}');
  const tok = await Tokenizer.fromFolder(dir);
  assert.throws(() => tok.applyChatTemplate([{ role: 'user', content: 'x' }]), oneSentence(join(dir, 'tokenizer_config.json')));
}));

test('fromFolder: chat_template.jinja and additional_chat_templates win over the config; special_tokens_map.json', () => withDir(async (dir) => {
  await writeFile(join(dir, 'tokenizer.json'), JSON.stringify(llamaJson()));
  await writeFile(join(dir, 'tokenizer_config.json'), JSON.stringify({ eos_token: '</s>', chat_template: 'from config', model_max_length: 4096 }));
  await writeFile(join(dir, 'special_tokens_map.json'), JSON.stringify({ bos_token: { content: '<s>', lstrip: false }, pad_token: '</s>' }));
  let tok = await Tokenizer.fromFolder(dir);
  assert.deepEqual([tok.bosTokenId, tok.eosTokenId, tok.padTokenId, tok.modelMaxLength], [1, 2, 2, 4096]);
  assert.equal(tok.applyChatTemplate([{ role: 'user', content: 'x' }]), 'from config');
  await writeFile(join(dir, 'chat_template.jinja'), '{{ bos_token }}{{ messages[0].content }}{{ eos_token }}');
  await mkdir(join(dir, 'additional_chat_templates'));
  await writeFile(join(dir, 'additional_chat_templates', 'tool_use.jinja'), 'tools={{ tools }}');
  tok = await Tokenizer.fromFolder(dir);
  assert.deepEqual(tok.chatTemplateNames, ['default', 'tool_use']);
  assert.equal(tok.applyChatTemplate([{ role: 'user', content: 'x' }]), '<s>x</s>');
  assert.equal(tok.applyChatTemplate([{ role: 'user', content: 'x' }], { template: 'tool_use' }), 'tools=');
  // With added_tokens_decoder in the config, transformers ignores special_tokens_map.json.
  await writeFile(join(dir, 'tokenizer_config.json'), JSON.stringify({ eos_token: '</s>', added_tokens_decoder: {} }));
  tok = await Tokenizer.fromFolder(dir);
  assert.deepEqual([tok.bosTokenId, tok.padTokenId], [undefined, undefined]);
}));

test('StreamDecoder with byte fallback: emoji split over byte tokens never come out half-done', () => {
  const tok = Tokenizer.fromJson(llamaJson());
  const text = 'hi 😀😃 the 👨‍👩‍👧‍👦 é🇫🇷!';
  const ids = tok.encode(text);
  const stream = new StreamDecoder(tok, { skipSpecialTokens: true });
  const pieces = ids.map((id) => stream.push(id));
  pieces.push(stream.flush());
  assert.equal(pieces.join(''), tok.decode(ids, { skipSpecialTokens: true }));
  assert.equal(pieces.join(''), text);
  assert.ok(pieces.every((p) => !p.includes('\uFFFD')));
  // flush() emits a trailing incomplete character as decode() would, then starts afresh.
  const partial = tok.encode('😀', { addSpecialTokens: false }).slice(0, 3);
  const s2 = new StreamDecoder(tok);
  assert.equal(partial.map((id) => s2.push(id)).join(''), '');
  assert.equal(s2.flush(), tok.decode(partial));
  assert.equal(s2.push(tok.tokenToId('▁hi')!), 'hi');
});

test('StreamDecoder with byte-level BPE and special tokens kept', () => {
  const tok = Tokenizer.fromJson(trainBpe(smallCorpus(), { vocabSize: 400, specialTokens: ['<|endoftext|>'] }).text);
  const text = 'Emoji time: 😀😃😄 👍🏽<|endoftext|>🇫🇷 👨‍👩‍👧‍👦 ❤️';
  const ids = tok.encode(text);
  const stream = new StreamDecoder(tok);
  const pieces = ids.map((id) => stream.push(id));
  pieces.push(stream.flush());
  assert.equal(pieces.join(''), text);
  assert.ok(pieces.every((p) => !p.includes('\uFFFD')));
});

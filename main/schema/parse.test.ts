// Boundary parsing: defaults, the house's sentences, and strict objects with a suggestion.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import Type from 'typebox';
import { described, flag, integer, nullable, number, oneOf, text } from './fields.ts';
import { closeKey, parseObject, SchemaError, show, suggestion } from './parse.ts';

const Sft = Type.Object({
  epochs: integer(1, 1000, { default: 2 }),
  lr: number(0, 10, { default: 3e-4 }),
  model: text({ default: 'pi0' }),
  loss: oneOf(['nll', 'dft'], { default: 'nll' }),
  perToken: flag({ default: false }),
  threads: nullable(integer(1, 1024), { default: null }),
  ns: described(Type.Array(integer(1)), 'a list of whole numbers from 1 up'),
  data: Type.Object({ maxTrain: Type.Optional(integer(1)), source: text({ default: 'hh' }) }, { additionalProperties: false, default: {} }),
}, { additionalProperties: false });
const place = { where: "stage 'sft'", noun: 'setting' };

test('defaults are filled in, null counts as absent unless the field admits it, and the input is left alone', () => {
  const raw = { epochs: null, threads: null, ns: [1], data: { maxTrain: null } };
  assert.deepEqual(parseObject(Sft, raw, place), { epochs: 2, lr: 3e-4, model: 'pi0', loss: 'nll', perToken: false, threads: null, ns: [1], data: { source: 'hh' } });
  assert.deepEqual(raw, { epochs: null, threads: null, ns: [1], data: { maxTrain: null } });
});

test("errors are the house's sentences, naming the field and the value", () => {
  const cases: [object, string, string[]][] = [
    [{ epochs: 0 }, 'epochs must be a whole number from 1 to 1000, not 0.', ['epochs']],
    [{ epochs: 1.5 }, 'epochs must be a whole number from 1 to 1000, not 1.5.', ['epochs']],
    [{ lr: 'x' }, 'lr must be a number from 0 to 10, not "x".', ['lr']],
    [{ model: '  ' }, 'model must be a non-empty text, not "  ".', ['model']],
    [{ loss: 'kl' }, 'loss must be one of nll, dft, not "kl".', ['loss']],
    [{ perToken: 1 }, 'perToken must be true or false, not 1.', ['perToken']],
    [{ threads: 0 }, 'threads must be a whole number from 1 to 1024, or null, not 0.', ['threads']],
    [{ ns: undefined }, 'ns must be a list of whole numbers from 1 up, not missing.', ['ns']],
    [{ ns: [1, 0] }, 'ns must be a list of whole numbers from 1 up, not [1,0].', ['ns', '1']],
    [{ ns: [], data: { maxTrain: 0 } }, 'data.maxTrain must be a whole number from 1 up, not 0.', ['data', 'maxTrain']],
  ];
  for (const [raw, message, path] of cases) {
    assert.throws(() => parseObject(Sft, { ns: [], ...raw }, place), (err: SchemaError) => {
      assert.equal(err.message, message);
      assert.deepEqual(err.path, path);
      return true;
    });
  }
});

test('an unknown key is refused with where it was and the closest known key', () => {
  assert.throws(() => parseObject(Sft, { ns: [], epoch: 3 }, place), { message: "stage 'sft' has no setting 'epoch'; did you mean 'epochs'?" });
  assert.throws(() => parseObject(Sft, { ns: [], PerTokens: true }, place), { message: "stage 'sft' has no setting 'PerTokens'; did you mean 'perToken'?" });
  assert.throws(() => parseObject(Sft, { ns: [], data: { maxTrian: 3 } }, place), { message: "data has no key 'maxTrian'; did you mean 'maxTrain'?" });
  // Far from every known key: no guess, the list instead. An unknown key goes first, since it is often a misspelt required one.
  assert.throws(() => parseObject(Sft, { temperature: 1 }, place), { message: "stage 'sft' has no setting 'temperature'; the known ones are epochs, lr, model, loss, perToken, threads, ns, data." });
  assert.throws(() => parseObject(Sft, 3, place), { message: "stage 'sft' must be a mapping, not 3." });
});

test('suggestions only for close keys', () => {
  assert.equal(suggestion('epoch', ['epochs', 'batch']), "did you mean 'epochs'?");
  assert.equal(suggestion('lr', ['n', 'loss']), 'the known ones are n, loss.');
  assert.equal(suggestion('maxlength', ['maxLength']), "did you mean 'maxLength'?");
  assert.equal(suggestion('nmae', ['dir', 'name']), "did you mean 'name'?");
  assert.equal(suggestion('x', ['n']), 'the known ones are n.');
  assert.equal(suggestion('x', []), 'it takes none.');
});

test('a text field can be bounded or admit blanks; a long value is cut in the sentence', () => {
  const Note = Type.Object({ title: text({ max: 5 }), body: Type.Optional(text({ max: 100, empty: true })) }, { additionalProperties: false });
  assert.deepEqual(parseObject(Note, { title: 'a', body: '  ' }, place), { title: 'a', body: '  ' });
  assert.throws(() => parseObject(Note, { title: 'abcdef' }, place), { message: 'title must be a non-empty text of at most 5 characters, not "abcdef".' });
  assert.throws(() => parseObject(Note, { title: ' ' }, place), { message: 'title must be a non-empty text of at most 5 characters, not " ".' });
  assert.throws(() => parseObject(Note, { title: 'a', body: 'b'.repeat(101) }, place), { message: `body must be a text of at most 100 characters, not a text of 101 characters ("${'b'.repeat(40)}...").` });
  assert.equal(show(Array.from({ length: 50 }, (_, i) => i)).length, 83);
});

test('closeKey names the key a typo stands for, or none', () => {
  assert.equal(closeKey('promt', ['prompt', 'response']), 'prompt');
  assert.equal(closeKey('Chosen', ['prompt', 'chosen']), 'chosen');
  assert.equal(closeKey('source', ['prompt', 'response']), null);
  assert.equal(closeKey('x', []), null);
});

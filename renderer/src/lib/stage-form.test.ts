// The stage form's mapping from a settings schema (as experiments.stageKinds sends it: the
// server's TypeBox schema as JSON) to fields, typed text to settings, and the server's
// problems to the fields and stages they name.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import Type from 'typebox';
import type { JsonObject, StageKind } from '../../../main/api/contract.ts';
import { described, flag, integer, number, oneOf, text } from '../../../main/schema/fields.ts';
import { fieldText, fieldValue, formFields, placeholder, placeProblems, readSettings, withSetting } from './stage-form.ts';

// A stage's settings built as the stages build theirs, then sent as JSON.
const SETTINGS = Type.Object({
  model: text({ default: 'pi0' }),
  candidates: described(Type.Union([text(), Type.Array(text(), { minItems: 1 })]), 'a stage id or a list of stage ids'),
  epochs: integer(1, 1000, { default: 2 }),
  checkpointEvery: integer(1, undefined, { default: 50 }),
  lr: number(0, 10, { default: 3e-4 }),
  adaptation: oneOf(['full', 'lora'], { default: 'full' }),
  loss: Type.Optional(oneOf(['nll', 'dft'], { description: 'nll (default) or dft' })),
  loraRank: Type.Optional(integer(1, 1024, { description: 'LoRA rank (default 8)' })),
  perToken: flag({ default: false }),
  ns: described(Type.Array(integer(1), { minItems: 1, default: [1, 2, 4] }), 'a list of whole numbers from 1 up'),
}, { additionalProperties: false });
const KIND: StageKind = {
  kind: 'demo', summary: 'a demo', produces: 'model',
  inputs: { model: { types: ['model'] }, candidates: { types: ['samples'], list: true } },
  settings: JSON.parse(JSON.stringify(SETTINGS)) as JsonObject,
};

test('stage form: each schema type becomes its control, with bounds, choices, default and help', () => {
  const fields = formFields(KIND);
  assert.deepEqual(fields.map((f) => [f.key, f.control]), [
    ['model', 'stage'], ['candidates', 'stage'], ['epochs', 'integer'], ['checkpointEvery', 'integer'], ['lr', 'number'],
    ['adaptation', 'select'], ['loss', 'select'], ['loraRank', 'integer'], ['perToken', 'checkbox'], ['ns', 'json'],
  ]);
  const by = Object.fromEntries(fields.map((f) => [f.key, f]));
  assert.deepEqual(by.epochs, { key: 'epochs', control: 'integer', min: 1, max: 1000, default: 2, must: 'a whole number from 1 to 1000' });
  // "From 1 up": no maximum on the input.
  assert.deepEqual([by.checkpointEvery.min, by.checkpointEvery.max], [1, undefined]);
  assert.deepEqual([by.lr.min, by.lr.max, by.lr.default], [0, 10, 3e-4]);
  assert.deepEqual([by.adaptation.choices, by.adaptation.default], [['full', 'lora'], 'full']);
  assert.deepEqual([by.loss.choices, by.loss.default, by.loss.description], [['nll', 'dft'], undefined, 'nll (default) or dft']);
  assert.equal(by.loraRank.description, 'LoRA rank (default 8)');
  assert.equal(by.candidates.list, true);
  assert.equal(by.model.list, undefined);
  // Absent settings show their default as the placeholder.
  assert.deepEqual(fields.map(placeholder), ['pi0', '', '2', '50', '0.0003', 'full', '', '', 'false', '[1,2,4]']);
});

test('stage form: typed text to settings and back; text that does not fit is kept for the server to refuse', () => {
  const by = Object.fromEntries(formFields(KIND).map((f) => [f.key, f]));
  assert.equal(fieldValue(by.epochs, ' 3 '), 3);
  assert.equal(fieldValue(by.epochs, ''), undefined, 'empty: the default applies');
  assert.equal(fieldValue(by.lr, '1e-4'), 1e-4);
  assert.equal(fieldValue(by.epochs, 'three'), 'three');
  assert.deepEqual(fieldValue(by.candidates, 'sft, bon ,'), ['sft', 'bon']);
  assert.equal(fieldValue(by.candidates, 'sft'), 'sft');
  assert.equal(fieldValue(by.model, 'sft'), 'sft');
  assert.deepEqual(fieldValue(by.ns, '[1, 8]'), [1, 8]);
  assert.equal(fieldValue(by.ns, '[1, 8'), '[1, 8');
  assert.equal(fieldText(by.candidates, ['sft', 'bon']), 'sft, bon');
  assert.equal(fieldText(by.ns, [1, 8]), '[1,8]');
  assert.equal(fieldText(by.ns, '[1, 8'), '[1, 8');
  assert.equal(fieldText(by.epochs, 3), '3');
  assert.equal(fieldText(by.epochs, undefined), '');

  // The form edits the stage's JSON text, which the text editor shows; other keys are kept.
  const settings = withSetting('{"epochs": 1, "note": "x"}', 'epochs', 0);
  assert.deepEqual(readSettings(settings), { epochs: 0, note: 'x' });
  assert.deepEqual(readSettings(withSetting(settings, 'epochs', undefined)), { note: 'x' });
  assert.deepEqual(readSettings(''), {});
  assert.equal(readSettings('{"epochs": '), null);
  assert.equal(readSettings('[1]'), null);
});

test("stage form: the server's problems go beside the field they name (a stage's setting or id, the definition's own field), else to the stage or the definition", () => {
  const stages = [{ kind: 'demo' }, { kind: 'demo' }, { kind: 'unknown' }];
  const placed = placeProblems([
    { message: "stage 'a' (demo): epochs must be a whole number from 1 to 1000, not 0.", stage: 0, stageId: 'a', path: ['epochs'] },
    { message: "stage 'a' has no setting 'epoch'; did you mean 'epochs'?", stage: 0, stageId: 'a', path: ['epoch'] },
    { message: "stage id 'a' is used twice.", stage: 1, stageId: 'a', path: ['id'] },
    { message: "stage 'c': kind must be one of demo, not \"unknown\".", stage: 2, stageId: 'c', path: ['kind'] },
    { message: 'data.evalFraction must be a number from 0.01 to 0.99, not 2.', stage: null, stageId: null, path: ['data', 'evalFraction'] },
    { message: "the experiment has no setting 'sed'; did you mean 'seed'?", stage: null, stageId: null, path: ['sed'] },
    { message: 'An experiment needs `stages`: a list of at least one stage.', stage: null, stageId: null, path: ['stages'] },
  ], stages, [KIND]);
  assert.deepEqual(placed, {
    stages: [
      { fields: { epochs: "stage 'a' (demo): epochs must be a whole number from 1 to 1000, not 0." }, stage: ["stage 'a' has no setting 'epoch'; did you mean 'epochs'?"] },
      { fields: { id: "stage id 'a' is used twice." }, stage: [] },
      { fields: {}, stage: ["stage 'c': kind must be one of demo, not \"unknown\"."] },
    ],
    // The definition's own: beside the composer's field where it has one, else at the top.
    definitionFields: { 'data.evalFraction': 'data.evalFraction must be a number from 0.01 to 0.99, not 2.' },
    definition: ["the experiment has no setting 'sed'; did you mean 'seed'?", 'An experiment needs `stages`: a list of at least one stage.'],
  });
});

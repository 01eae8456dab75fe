// Job configs are strict and complete: a misspelt key is refused with the closest known
// one, and a stored (parsed) config parses to itself, as a resumed run needs.
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { afdStageKind } from './afd-stage.ts';
import { exportModelKind } from './export-model.ts';
import { importDatasetKind } from './import-dataset.ts';
import { importModelKind } from './import-model.ts';

test('afd-stage: the stage parses its own settings, with their sentences', () => {
  const c = afdStageKind.parseConfig({ stage: 'sft', id: 'sft', experiment: 'e', settings: {}, inputs: { model: { type: 'model', dir: '/x', stage: 'pi0' } }, data: { source: 'hh-harmless', evalFraction: 0.2, chatTemplateModel: '/m' } });
  assert.equal(c.threads, null);
  assert.equal(c.settings.epochs, 2);
  assert.deepEqual(afdStageKind.parseConfig(c), c);
  assert.throws(() => afdStageKind.parseConfig({ ...c, settings: { epoch: 1 } }), { message: "the sft stage has no setting 'epoch'; did you mean 'epochs'?" });
  assert.throws(() => afdStageKind.parseConfig({ ...c, sed: 1 }), { message: "the afd-stage job's config has no key 'sed'; did you mean 'seed'?" });
  assert.throws(() => afdStageKind.parseConfig({ ...c, stage: 'x' }), /stage must be one of .*sft/);
  assert.throws(() => afdStageKind.parseConfig({ ...c, settings: [] }), { message: 'settings must be an object, not [].' });
});

test('import and export configs: defaults, resolved paths, strict keys', () => {
  const e = exportModelKind.parseConfig({ dir: 'a', out: 'b', format: 'gguf' });
  assert.deepEqual(e, { dir: resolve('a'), out: resolve('b'), format: 'gguf', type: 'f16', name: 'model' });
  assert.deepEqual(exportModelKind.parseConfig(e), e);
  assert.throws(() => exportModelKind.parseConfig({ dir: 'a', out: 'b', format: 'gguf', type: 'bf16' }), /for a GGUF file/);
  const d = importDatasetKind.parseConfig({ file: 'f', name: ' n ' });
  assert.deepEqual(d, { file: resolve('f'), name: 'n', format: 'auto', evalFraction: 0.2, chatTemplateModel: null });
  assert.deepEqual(importDatasetKind.parseConfig(d), d);
  assert.throws(() => importDatasetKind.parseConfig({ file: 'f', name: 'n', evalFraction: 2 }), { message: 'evalFraction must be a number from 0 to 1, not 2.' });
  const m = importModelKind.parseConfig({ dir: '/x/m.gguf' });
  assert.deepEqual(m, { dir: '/x/m.gguf', name: 'm' });
  assert.deepEqual(importModelKind.parseConfig(m), m);
  assert.throws(() => importModelKind.parseConfig({ dir: '/x', nmae: 'y' }), { message: "the import-model job's config has no key 'nmae'; did you mean 'name'?" });
});

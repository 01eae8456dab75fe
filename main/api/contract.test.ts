// The API's validators: good params pass (optional ones stay absent), bad ones are refused
// with one sentence that names the method and the parameter.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { METHODS, ValidationError, validate, validators } from './contract.ts';

const refused = (method: string, params: unknown, pattern: RegExp): void => {
  assert.throws(() => validate(method, params), (err: Error) => {
    assert.ok(err instanceof ValidationError, `${method}: not a ValidationError: ${err.message}`);
    assert.match(err.message, pattern);
    assert.match(err.message, /\.$/, 'a sentence ends with a full stop');
    return true;
  });
};

test('good params pass, with absent optional ones left out', () => {
  assert.deepEqual(validators['datasets.examples']({ datasetId: 3, split: 'eval', limit: 20 }), { datasetId: 3, split: 'eval', limit: 20 });
  assert.deepEqual(validators['status'](undefined), {});
  assert.deepEqual(validators['settings.set']({ modelCacheBytes: 0 }), { modelCacheBytes: 0 });
  assert.deepEqual(validators['compare.start']({ modelIds: [1, 2], prompts: ['hi'], sampling: { temperature: 0, maxTokens: 16 } }), { modelIds: [1, 2], prompts: ['hi'], sampling: { temperature: 0, maxTokens: 16 } });
  assert.deepEqual(validators['datasets.updateExample']({ exampleId: 1, patch: { response: null, tags: ['x'] } }), { exampleId: 1, patch: { response: null, tags: ['x'] } });
  assert.deepEqual(validate('compare.vote', { pairId: 'p', vote: 'tie' }), { method: 'compare.vote', params: { pairId: 'p', vote: 'tie' } });
});

test('bad params are refused with a sentence naming the method and the parameter', () => {
  refused('datasets.examples', { datasetId: 'x' }, /^The request "datasets\.examples" was refused: "datasetId" must be a whole number from 1 up, not the text "x"\.$/);
  refused('datasets.examples', { datasetId: 1, limit: 501 }, /"limit" must be a whole number from 1 to 500/);
  refused('datasets.examples', { datasetId: 1, split: 'test' }, /"split" must be one of "train", "eval"/);
  refused('datasets.examples', [], /parameters must be an object, not a list/);
  refused('datasets.list', { extra: 1 }, /"extra" is not one of its parameters \(it takes none\)/);
  refused('runs.cancel', {}, /"runId" must be a whole number from 1 up, not missing/);
  refused('datasets.importText', { name: 'a', fileName: '../etc/passwd', content: 'x' }, /"fileName" must be a file name without folders/);
  refused('datasets.updateExample', { exampleId: 1, patch: {} }, /"patch" changes nothing/);
  refused('datasets.updateExample', { exampleId: 1, patch: { split: 'dev' } }, /in "patch"/);
  refused('compare.start', { modelIds: [1], prompts: ['a'] }, /"modelIds" must have 2 to 8 items, not 1/);
  refused('compare.start', { modelIds: [1, 1], prompts: ['a'] }, /same id twice/);
  refused('compare.start', { modelIds: [1, 2], prompts: ['  '] }, /prompt 1 is empty/);
  refused('models.generate', { modelId: 1, prompt: 'p', sampling: { temperature: -1 } }, /"temperature" must be a number from 0 to 5/);
  refused('compare.nextPair', { modelA: 2, modelB: 2 }, /the same model/);
  refused('compare.vote', { pairId: 'p', vote: 'C' }, /"vote" must be one of "A", "B", "tie", "skip"/);
  refused('experiments.stop', { experimentId: 1, reason: 'stop' }, /"reason" must be one of "pause", "cancel"/);
  refused('experiments.exportTrl', { experimentId: 1, out: '' }, /"out" is empty; fill it in/);
  refused('experiments.exportTrl', { experimentId: 1, out: '/tmp/p', gpus: 0 }, /"gpus" must be a whole number from 1 to 1024/);
  refused('experiments.check', {}, /"definition" must be an object, not missing/);
  refused('settings.set', { forcedProvider: 'tpu' }, /"forcedProvider" must be one of/);
  refused('settings.set', { modelCacheBytes: -1 }, /"modelCacheBytes" must be a whole number from 0 to/);
  refused('generation.unload', { all: true }, /"all" is not one of its parameters/);
  refused('models.export', { modelId: 1, format: 'onnx', out: '/tmp/x' }, /"format" must be one of "hf", "gguf"/);
  refused('models.export', { modelId: 1, format: 'gguf', type: 'q4_k', out: '/tmp/x.gguf' }, /"type" must be one of/);
  refused('nope', {}, /^"nope" is not a method of the studio's API/);
  refused('__proto__', {}, /is not a method/);
});

test('every method has a validator that refuses a non-object', () => {
  assert.equal(METHODS.length, 43);
  for (const m of METHODS) refused(m, 'text', /must be an object/);
});

// The API's validators: good params pass (optional ones stay absent), bad ones are refused
// with one sentence that names the method and the parameter.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { METHODS, PARAMS, ValidationError, validate, validators } from './contract.ts';

const refused = (method: string, params: unknown, pattern: RegExp): void => {
  assert.throws(() => validate(method, params), (err: Error) => {
    assert.ok(err instanceof ValidationError, `${method}: not a ValidationError: ${err.message}`);
    assert.match(err.message, pattern);
    assert.match(err.message, /[.?]$/, 'a sentence ends with a full stop (a suggestion with a question mark)');
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
  refused('datasets.examples', { datasetId: 'x' }, /^The request "datasets\.examples" was refused: datasetId must be a whole number from 1 up, not "x"\.$/);
  refused('datasets.examples', { datasetId: 1, limit: 501 }, /limit must be a whole number from 1 to 500, not 501/);
  refused('datasets.examples', { datasetId: 1, split: 'test' }, /split must be one of train, eval, not "test"/);
  refused('datasets.examples', [], /parameters must be an object, not a list/);
  refused('datasets.list', { extra: 1 }, /it has no parameter 'extra'; it takes none\./);
  refused('runs.cancel', {}, /runId must be a whole number from 1 up, not missing/);
  refused('datasets.importText', { name: 'a', fileName: '../etc/passwd', content: 'x' }, /fileName must be a file name without folders/);
  refused('datasets.updateExample', { exampleId: 1, patch: {} }, /patch changes nothing; give at least one field to change\./);
  refused('datasets.updateExample', { exampleId: 1, patch: { split: 'dev' } }, /patch\.split must be one of train, eval, not "dev"/);
  refused('compare.start', { modelIds: [1], prompts: ['a'] }, /modelIds must be a list of 2 to 8 different model ids, not \[1\]/);
  refused('compare.start', { modelIds: [1, 1], prompts: ['a'] }, /modelIds must be a list of 2 to 8 different model ids, not \[1,1\]/);
  refused('compare.start', { modelIds: [1, 2], prompts: ['  '] }, /prompts must be a list of 1 to 20 prompts, each a non-empty text of at most 20000 characters, not \["  "\]/);
  refused('models.generate', { modelId: 1, prompt: 'p', sampling: { temperature: -1 } }, /sampling\.temperature must be a number from 0 to 5, not -1/);
  refused('compare.nextPair', { modelA: 2, modelB: 2 }, /the same model/);
  refused('compare.vote', { pairId: 'p', vote: 'C' }, /vote must be one of A, B, tie, skip, not "C"/);
  refused('experiments.stop', { experimentId: 1, reason: 'stop' }, /reason must be one of pause, cancel, not "stop"/);
  refused('experiments.exportTrl', { experimentId: 1, out: '' }, /out must be a non-empty text of at most 4096 characters, not ""/);
  refused('experiments.exportTrl', { experimentId: 1, out: '/tmp/p', gpus: 0 }, /gpus must be a whole number from 1 to 1024/);
  refused('experiments.exportTrl', { out: '/tmp/p' }, /give the experiment to export once: experimentId \(a stored experiment\) or definition/);
  refused('experiments.exportTrl', { experimentId: 1, definition: { name: 'x' }, out: '/tmp/p' }, /give the experiment to export once/);
  refused('experiments.check', {}, /definition must be a mapping \(an experiment definition\), not missing/);
  refused('settings.set', { forcedProvider: 'tpu' }, /forcedProvider must be one of/);
  refused('settings.set', { modelCacheBytes: -1 }, /modelCacheBytes must be a whole number from 0 to/);
  refused('generation.unload', { all: true }, /it has no parameter 'all'; it takes none/);
  refused('models.export', { modelId: 1, format: 'onnx', out: '/tmp/x' }, /format must be one of hf, gguf/);
  refused('models.export', { modelId: 1, format: 'gguf', type: 'q4_k', out: '/tmp/x.gguf' }, /type must be one of f32, f16, bf16, q8_0, not "q4_k"/);
  refused('runs.get', { runId: 1, logs: -1 }, /logs must be a whole number from 0 to 10000, not -1/);
  refused('runs.start', { kind: 'afd-stage', config: {} }, /kind must be one of train-tiny-lm, not "afd-stage"/);
  refused('runs.start', { kind: 'train-tiny-lm', config: [] }, /config must be a mapping \(the job kind's config\)/);
  refused('datasets.importFile', { path: '/tmp/a.jsonl', name: 'a', chatModelId: 1, chatModelDir: '/tmp/m' }, /it names a chat-template model twice \(chatModelId and chatModelDir\); give one of them\./);
  refused('nope', {}, /^"nope" is not a method of the studio's API/);
  refused('__proto__', {}, /is not a method/);
});

test("compare.start takes columns, a model's Best-of-N among them: N from 2 to 64, each column once, with sampling", () => {
  const columns = [{ modelId: 2 }, { modelId: 2, bestOf: { rewardModelId: 5, n: 8 } }];
  assert.deepEqual(validators['compare.start']({ columns, prompts: ['hi'] }), { columns, prompts: ['hi'] });
  assert.deepEqual(validators['compare.nextPair']({ modelA: 2, modelB: 2, bestOfB: { rewardModelId: 5, n: 8 } }), { modelA: 2, modelB: 2, bestOfB: { rewardModelId: 5, n: 8 } });
  const bon = (n: unknown) => ({ columns: [{ modelId: 2 }, { modelId: 2, bestOf: { rewardModelId: 5, n } }], prompts: ['a'] });
  refused('compare.start', bon(1), /columns\.1\.bestOf\.n must be a whole number from 2 to 64, not 1\./);
  refused('compare.start', bon(65), /columns\.1\.bestOf\.n must be a whole number from 2 to 64, not 65\./);
  refused('compare.start', { columns: [{ modelId: 2 }, { modelId: 2, bestOf: { rewardModel: 5, n: 4 } }], prompts: ['a'] }, /columns\.1\.bestOf has no key 'rewardModel'; did you mean 'rewardModelId'\?/);
  refused('compare.start', { columns: [{ modelId: 2 }], prompts: ['a'] }, /columns must be a list of 2 to 8 columns/);
  refused('compare.start', { modelIds: [1, 2], columns, prompts: ['a'] }, /it names the models twice \(modelIds and columns\); give one of them\./);
  refused('compare.start', { prompts: ['a'] }, /it names no models; give modelIds or columns\./);
  refused('compare.start', { columns: [{ modelId: 1 }, ...columns, { modelId: 2, bestOf: { rewardModelId: 5, n: 8 } }], prompts: ['a'] }, /columns 3 and 4 are the same \(model #2, best of 8 by model #5\); give each column once\./);
  refused('compare.start', { columns, prompts: ['a'], sampling: { temperature: 0 } }, /Best-of-N needs sampled answers, and temperature 0 gives N copies of the greedy one; set sampling\.temperature above 0\./);
  refused('compare.tally', { modelA: 2, modelB: 2, bestOfA: { rewardModelId: 5, n: 8 }, bestOfB: { n: 8, rewardModelId: 5 } }, /both sides are the same model's Best-of-N with the same N and reward model; choose two different sides\./);
});

test('an unknown parameter is refused with the closest known one, here or in a nested object', () => {
  refused('datasets.examples', { datasetId: 1, limt: 5 }, /^The request "datasets\.examples" was refused: it has no parameter 'limt'; did you mean 'limit'\?$/);
  refused('runs.list', { experimentID: 1 }, /it has no parameter 'experimentID'; did you mean 'experimentId'\?$/);
  refused('models.generate', { modelId: 1, prompt: 'p', sampling: { temprature: 1 } }, /sampling has no key 'temprature'; did you mean 'temperature'\?$/);
  refused('datasets.updateExample', { exampleId: 1, patch: { colour: 'red' } }, /patch has no key 'colour'; the known ones are prompt, response, chosen, rejected, tags, split\./);
});

test('a wrong type is refused naming the parameter, its path and the value (a long one cut)', () => {
  refused('datasets.updateExample', { exampleId: 1, patch: { tags: 'x' } }, /patch\.tags must be a list of at most 100 tags, each of at most 200 characters, not "x"\./);
  refused('datasets.examples', { datasetId: 1, text: 3 }, /text must be a text of at most 1000 characters, not 3\./);
  refused('runs.metrics', { runId: 1, names: [] }, /names must be a list of 1 to 100 metric names/);
  const long = 'x'.repeat(20_001);
  assert.throws(() => validate('models.generate', { modelId: 1, prompt: long }), (err: ValidationError) => {
    assert.match(err.message, /prompt must be a non-empty text of at most 20000 characters, not a text of 20001 characters \("x{40}\.\.\."\)\.$/);
    assert.ok(err.message.length < 250, 'the value is cut, not echoed');
    assert.deepEqual(err.path, ['prompt']);
    return true;
  });
  assert.throws(() => validate('datasets.updateExample', { exampleId: 1, patch: { split: 'dev' } }), (err: ValidationError) => {
    assert.deepEqual(err.path, ['patch', 'split']);
    return true;
  });
});

test('a null param counts as absent, unless it may be null; the types come from the schemas', () => {
  assert.deepEqual(validators['datasets.examples']({ datasetId: 1, limit: null, split: null }), { datasetId: 1 });
  assert.deepEqual(validators['datasets.updateExample']({ exampleId: 1, patch: { chosen: null } }), { exampleId: 1, patch: { chosen: null } });
  // The schema's must-sentences and bounds are there for a form to read.
  assert.equal((PARAMS['datasets.examples'].properties.limit as { maximum?: number }).maximum, 500);
});

test('every method has a validator that refuses a non-object', () => {
  assert.equal(METHODS.length, 45);
  for (const m of METHODS) refused(m, 'text', /must be an object/);
});

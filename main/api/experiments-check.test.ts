// The Experiments view's stage forms over the API: experiments.stageKinds gives each stage
// kind's settings as the JSON Schema its parse uses, and experiments.check gives every
// problem of a definition with its stage and setting, in the sentences experiments.start
// refuses it with.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { JsonObject } from '../../db/json.ts';
import { STAGES } from '../stages/kinds/index.ts';
import { openTestStudio } from './testing.ts';

test('experiments.stageKinds: every stage kind, its inputs and its settings schema as plain JSON', { timeout: 120_000 }, async () => {
  const t = await openTestStudio();
  try {
    const kinds = await t.service.call('experiments.stageKinds', {});
    assert.deepEqual(kinds.map((k) => k.kind), Object.keys(STAGES));
    const sft = kinds.find((k) => k.kind === 'sft')!;
    assert.equal(sft.summary, STAGES.sft.summary);
    assert.deepEqual(sft.inputs, { model: { types: ['model'] } });
    // The same schema the server parses with, bounds, defaults, choices and sentences included.
    assert.deepEqual(sft.settings, JSON.parse(JSON.stringify(STAGES.sft.settings)));
    const props = sft.settings.properties as Record<string, JsonObject>;
    assert.deepEqual([props.epochs.type, props.epochs.minimum, props.epochs.maximum, props.epochs.default, props.epochs.must], ['integer', 1, 1000, 2, 'a whole number from 1 to 1000']);
    assert.deepEqual(props.adaptation.enum, ['full', 'lora']);
    assert.equal(props.loraRank.description, 'LoRA rank (default 8)');
    assert.deepEqual(sft.settings.required, Object.keys(props).filter((k) => !['loraRank', 'loraAlpha', 'loss'].includes(k)));
    assert.deepEqual(kinds.find((k) => k.kind === 'eval')!.inputs.candidates, { types: ['samples', 'selection'], list: true });
  } finally {
    await t.close();
  }
});

test("experiments.check: each stage's first problem with its path, in experiments.start's sentences", { timeout: 120_000 }, async () => {
  const t = await openTestStudio();
  try {
    const definition: JsonObject = {
      name: 'forms', data: { evalFraction: 0.2 },
      stages: [
        { id: 'sft', kind: 'sft', epoch: 3 },
        { id: 'samples', kind: 'sample', model: 'sft', n: 0 },
        // 'samples' is in error above, yet still counts as defined: only 'nope' is refused here.
        { id: 'bon', kind: 'bon', samples: 'samples', reward: 'nope' },
        { id: 'sft-lora', kind: 'sft', model: 'sft', adaptation: 'lora', loraRank: 8 },
        { kind: 'sft' },
      ],
    };
    assert.deepEqual(await t.service.call('experiments.check', { definition }), [
      { message: "stage 'sft' has no setting 'epoch'; did you mean 'epochs'?", stage: 0, stageId: 'sft', path: ['epoch'] },
      { message: "stage 'samples' (sample): n must be a whole number from 1 to 1024, not 0.", stage: 1, stageId: 'samples', path: ['n'] },
      { message: "stage 'bon' (bon): reward names 'nope', which is not a stage defined before it.", stage: 2, stageId: 'bon', path: ['reward'] },
      { message: "stage 5 needs an id made of letters, digits, '-', '_', '.' or ':' (got null).", stage: 4, stageId: null, path: ['id'] },
    ]);
    // The first problem is the one experiments.start refuses the definition with.
    await assert.rejects(t.service.call('experiments.start', { definition }), { message: "stage 'sft' has no setting 'epoch'; did you mean 'epochs'?" });

    // The definition's own keys: no stage, the key's path, start's sentence.
    const badData: JsonObject = { ...definition, data: { evalFraction: 2 } };
    const refused = await t.service.call('experiments.start', { definition: badData }).then(() => assert.fail('started'), (err: Error) => err.message);
    assert.match(refused, /evalFraction must be a number from 0\.01 to 0\.99, not 2\.$/);
    assert.deepEqual(await t.service.call('experiments.check', { definition: badData }), [{ message: refused, stage: null, stageId: null, path: ['data', 'evalFraction'] }]);
    const ok: JsonObject = { name: 'ok', stages: [{ id: 'sft', kind: 'sft', epochs: 1 }, { id: 'samples', kind: 'sample', model: 'sft' }] };
    assert.deepEqual(await t.service.call('experiments.check', { definition: ok }), []);
    assert.equal((await t.service.call('experiments.list', {})).length, 0, 'checking starts nothing');
  } finally {
    await t.close();
  }
});

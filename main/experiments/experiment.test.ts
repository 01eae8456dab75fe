// Experiment definitions are checked before anything runs, with errors naming the stage.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { DEFAULT_MODEL_DIR } from '../models/builtin.ts';
import { loadDemonstrations } from '../stages/data.ts';
import { stageSeed } from './driver.ts';
import { parseExperiment } from './experiment.ts';
import { RECIPES } from './recipes.ts';
import { STAGES } from '../stages/kinds/index.ts';

const base = { name: 'x', stages: [{ id: 'sft', kind: 'sft' }] };

test('defaults are filled in and a parsed definition parses to itself', () => {
  const d = parseExperiment(base);
  assert.equal(d.model, 'default');
  assert.equal(d.data.source, 'hh-harmless');
  assert.equal(d.stages[0].model, 'pi0');
  assert.equal(d.stages[0].epochs, 2);
  assert.deepEqual(parseExperiment(JSON.parse(JSON.stringify(d))), d);
});

test('bad definitions are refused with a sentence naming the stage', () => {
  const bad: [unknown, RegExp][] = [
    [{ name: 'x', stages: [] }, /at least one stage/],
    [{ name: 'x', stages: [{ id: 'a', kind: 'nope' }] }, /stage 'a': kind must be one of .*sft/],
    [{ name: 'x', stages: [{ id: 'a', kind: 'sft' }, { id: 'a', kind: 'sft' }] }, /used twice/],
    [{ name: 'x', stages: [{ id: 'pi0', kind: 'sft' }] }, /names the initial model/],
    [{ name: 'x', stages: [{ id: 's', kind: 'sample', model: 'later' }, { id: 'later', kind: 'sft' }] }, /stage 's' \(sample\): model names 'later', which is not a stage defined before it/],
    [{ name: 'x', stages: [{ id: 's', kind: 'sample' }, { id: 'b', kind: 'sample', model: 's' }] }, /model needs model output, but 's' makes samples/],
    [{ name: 'x', stages: [{ id: 'a', kind: 'sft', epochs: 0 }] }, /stage 'a' \(sft\): epochs must be a whole number from 1/],
    [{ name: 'x', stages: [{ id: 'b', kind: 'bon', samples: 'pi0', reward: 'pi0' }] }, /samples needs samples output, but 'pi0' makes model/],
    [{ name: 'x', models: ['default'], stages: [{ id: 'a', kind: 'sft' }] }, /models must be a mapping from a name to a model/],
    [{ name: 'x', models: { pi0: 'default' }, stages: [{ id: 'a', kind: 'sft' }] }, /models: 'pi0' cannot name a model/],
    [{ name: 'x', models: { small: '' }, stages: [{ id: 'a', kind: 'sft' }] }, /small must be a non-empty text/],
    [{ name: 'x', models: { small: 'default' }, stages: [{ id: 'small', kind: 'sft' }] }, /stage id 'small' is used twice \(models: names a model 'small'\)/],
  ];
  for (const [def, message] of bad) assert.throws(() => parseExperiment(def), message);
});

test('unknown keys are refused with where they were and the closest known key', () => {
  const bad: [unknown, string][] = [
    [{ name: 'x', stages: [{ id: 'sft', kind: 'sft', epoch: 3 }] }, "stage 'sft' has no setting 'epoch'; did you mean 'epochs'?"],
    [{ name: 'x', stages: [{ id: 'sft-2', kind: 'sft', maxlength: 64 }] }, "stage 'sft-2' (sft) has no setting 'maxlength'; did you mean 'maxLength'?"],
    [{ name: 'x', stages: [{ id: 's', kind: 'sample', temprature: 0.7 }] }, "stage 's' (sample) has no setting 'temprature'; did you mean 'temperature'?"],
    [{ name: 'x', stages: [{ id: 'b', kind: 'bon', samples: 's', rewards: 'r' }] }, "stage 'b' (bon) has no setting 'rewards'; did you mean 'reward'?"],
    [{ name: 'x', seeds: 1, stages: [{ id: 'sft', kind: 'sft' }] }, "the experiment has no key 'seeds'; did you mean 'seed'?"],
    [{ name: 'x', data: { maxTrian: 5 }, stages: [{ id: 'sft', kind: 'sft' }] }, "data has no key 'maxTrian'; did you mean 'maxTrain'?"],
    [{ name: 'x', stages: [{ id: 'sft', kind: 'sft', colour: 'red' }] }, "stage 'sft' has no setting 'colour'; the known ones are model, epochs, batch, maxLength, adaptation, loraRank, loraAlpha, lr, warmup, weightDecay, clipNorm, checkpointEvery, loss."],
  ];
  for (const [def, message] of bad) assert.throws(() => parseExperiment(def), { message });
  // A stage parsed on its own (a job's config) names its kind.
  assert.throws(() => STAGES.sft.parse({ epoch: 3 }), { message: "the sft stage has no setting 'epoch'; did you mean 'epochs'?" });
});

test('named models are inputs beside pi0, and the reproductions parse', () => {
  const d = parseExperiment({ name: 'x', model: 'smollm2', models: { small: 'default' }, stages: [{ id: 'j', kind: 'judge', backbone: 'small' }, { id: 'sft', kind: 'sft' }] });
  assert.deepEqual(d.models, { small: 'default' });
  assert.equal(d.stages[0].backbone, 'small');
  assert.deepEqual(parseExperiment(JSON.parse(JSON.stringify(d))), d);
  for (const file of ['hh-harmless.yaml', 'hh-harmless-smollm2.yaml']) {
    const raw = parseYaml(readFileSync(new URL(`../../experiments/${file}`, import.meta.url), 'utf8'));
    assert.ok(parseExperiment(raw).stages.length > 20, file);
  }
  const smol = parseExperiment(parseYaml(readFileSync(new URL('../../experiments/hh-harmless-smollm2.yaml', import.meta.url), 'utf8')));
  assert.equal(smol.model, 'smollm2');
  assert.equal(smol.stages.find((s) => s.id === 'judge')!.allPrompts, true);
  assert.equal(smol.stages.at(-1)!.kind, 'eval', 'results.json is the last evaluation: the SmolLM2 judge\'s');
});

test('the shipped recipes parse', () => {
  assert.deepEqual(RECIPES.map((r) => r.id), ['paper-recipe', 'quick', 'demo', 'hh-harmless']);
  for (const r of RECIPES) assert.ok(parseExperiment(r.definition).stages.length > 0);
});

test("docs/methods.md's stages parse inside an experiment", () => {
  const doc = readFileSync(new URL('../../docs/methods.md', import.meta.url), 'utf8');
  const block = doc.slice(doc.indexOf('## In an experiment')).split('\n').filter((l) => l.startsWith('    ')).map((l) => l.slice(4)).join('\n');
  const stages = parseYaml(block) as { id: string; kind: string }[];
  assert.deepEqual(stages.map((x) => x.kind), ['reward:endogenous', 'bon', 'sft', 'sample', 'ditto', 'sample']);
  const d = parseExperiment({ name: 'methods', stages: [{ id: 'sft', kind: 'sft' }, { id: 'sft-eval', kind: 'sample', model: 'sft', split: 'eval', n: 8 }, ...stages] });
  const byId = new Map(d.stages.map((x) => [x.id, x]));
  assert.equal(byId.get('sft-dft')!.loss, 'dft');
  assert.equal(byId.get('ditto')!.reference, 'sft');
  assert.equal(byId.get('endogenous')!.gamma, 1);
});

test('stage seeds depend on the experiment seed and the stage id, not on the stage order', () => {
  assert.equal(stageSeed(0, 'sft'), stageSeed(0, 'sft'));
  assert.notEqual(stageSeed(0, 'sft'), stageSeed(1, 'sft'));
  assert.notEqual(stageSeed(0, 'sft'), stageSeed(0, 'sft-2'));
});

test('chat lines ({"messages": [...]}) in experiment data are rendered with the model\'s chat template', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'afd-chat-'));
  try {
    const file = join(dir, 'chats.jsonl');
    const lines = Array.from({ length: 30 }, (_, i) => JSON.stringify({ messages: [{ role: 'user', content: `question ${i}` }, { role: 'assistant', content: `answer ${i}` }] }));
    writeFileSync(file, `${lines.join('\n')}\n`);
    const d = await loadDemonstrations({ source: file, evalFraction: 0.2, chatTemplateModel: DEFAULT_MODEL_DIR });
    const all = [...d.train, ...d.eval];
    assert.equal(all.length, 30);
    const first = all.find((x) => x.prompt.includes('question 3\n'))!;
    assert.deepEqual(first, { prompt: '\n\nHuman: question 3\n\nAssistant:', response: ' answer 3' });
    await assert.rejects(loadDemonstrations({ source: file, evalFraction: 0.2 }), /needs the chat template of a model/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

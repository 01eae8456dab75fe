// The parsed form of every shipped definition is pinned: the experiment driver compares a
// stage's parsed settings with those its finished run stored, so any change here (a default,
// a key added or dropped) would make a resumed multi-hour run redo finished stages.
// Regenerate test/fixtures/parsed-definitions.json only for a deliberate change:
//   AFD_WRITE_FIXTURE=1 node --import tsx --test main/experiments/parsed-definitions.test.ts
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { parse as parseYaml } from 'yaml';
import { parseExperiment } from './experiment.ts';
import { RECIPES } from './recipes.ts';
import { STAGES } from '../stages/kinds/index.ts';

const FIXTURE = new URL('../../test/fixtures/parsed-definitions.json', import.meta.url);
const EXPERIMENTS = new URL('../../experiments/', import.meta.url);

/** docs/methods.md's example stages inside the experiment its test builds. */
function methodsExample(): unknown {
  const doc = readFileSync(new URL('../../docs/methods.md', import.meta.url), 'utf8');
  const block = doc.slice(doc.indexOf('## In an experiment')).split('\n').filter((l) => l.startsWith('    ')).map((l) => l.slice(4)).join('\n');
  return { name: 'methods', stages: [{ id: 'sft', kind: 'sft' }, { id: 'sft-eval', kind: 'sample', model: 'sft', split: 'eval', n: 8 }, ...(parseYaml(block) as unknown[])] };
}

/** Every stage kind with its defaults, and the options that add or drop keys. */
const EVERY_KIND = {
  name: 'every kind', seed: 7, model: 'smollm2', models: { small: 'default' }, provider: 'cpu', threads: 2,
  data: { source: 'x.jsonl', format: 'jsonl', evalFraction: 0.25, maxTrain: 10, maxEval: 5 },
  origin: { experimentId: null, name: 'o', project: 'p' },
  stages: [
    { id: 'pt', kind: 'pretrain' },
    { id: 'sft', kind: 'sft' },
    { id: 'sft-dft', kind: 'sft', loss: 'dft', adaptation: 'lora', loraRank: 4 },
    { id: 'sft-full', kind: 'sft', loss: 'nll', adaptation: 'full', loraRank: 4 },
    { id: 's0', kind: 'sample', stop: ['\n'], n: 4 },
    { id: 's1', kind: 'sample', model: 'sft', split: 'eval' },
    { id: 'rm', kind: 'reward', positive: 's1', negative: 's0', loss: 'bt' },
    { id: 'pref', kind: 'pref-reward' },
    { id: 'judge', kind: 'judge', allPrompts: true, backbone: 'small' },
    { id: 'judge2', kind: 'judge', allPrompts: false },
    { id: 'dr', kind: 'density-ratio', perToken: true },
    { id: 'endo', kind: 'reward:endogenous' },
    { id: 'bon', kind: 'bon', samples: 's1', reward: 'rm', ns: [4, 1, 2, 2] },
    { id: 'bonl', kind: 'bon:length', samples: 's1', mode: 'shortest' },
    { id: 'rl', kind: 'rl', reward: 'rm', adaptation: 'lora' },
    { id: 'airl', kind: 'airl', discriminatorLr: 1e-4 },
    { id: 'dpo', kind: 'dpo', policy: 'sft', reference: 'pi0' },
    { id: 'spin', kind: 'spin' },
    { id: 'spin2', kind: 'spin', samples: 's1' },
    { id: 'ditto', kind: 'ditto' },
    { id: 'ex', kind: 'extrapolate' },
    { id: 'eval', kind: 'eval', reference: 's1', candidates: ['bon', 'bonl'], labels: { bon: 'BoN' } },
    { id: 'eval2', kind: 'eval', reference: 's1', candidates: 'bon', lengthFit: 's1', shortest: 'bonl' },
  ],
};

function inputs(): Record<string, unknown> {
  const files = readdirSync(EXPERIMENTS).filter((f) => f.endsWith('.yaml')).sort();
  return {
    ...Object.fromEntries(files.map((f) => [`experiments/${f}`, parseYaml(readFileSync(new URL(f, EXPERIMENTS), 'utf8'))])),
    ...Object.fromEntries(RECIPES.map((r) => [`recipe ${r.id}`, r.definition])),
    'docs/methods.md': methodsExample(),
    'every stage kind': EVERY_KIND,
  };
}

test('every shipped definition parses exactly as pinned, and its stages re-parse to themselves', () => {
  const parsed = Object.fromEntries(Object.entries(inputs()).map(([name, raw]) => [name, parseExperiment(raw)]));
  if (process.env.AFD_WRITE_FIXTURE === '1') writeFileSync(FIXTURE, `${JSON.stringify(parsed, null, 1)}\n`);
  const pinned = JSON.parse(readFileSync(FIXTURE, 'utf8')) as Record<string, unknown>;
  assert.deepEqual(Object.keys(parsed), Object.keys(pinned));
  for (const [name, def] of Object.entries(parsed)) {
    assert.deepEqual(def, pinned[name], name);
    // A run stores its parsed settings and the job re-parses them on resume.
    for (const { id: _id, kind, ...settings } of def.stages) assert.deepEqual(STAGES[kind].parse(settings), settings, `${name}: ${_id}`);
  }
});

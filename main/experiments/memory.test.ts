// Each stage's memory estimate for an experiment's view, from its definition alone.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { openDatabase } from '../../db/database.ts';
import type { JsonObject } from '../../db/json.ts';
import { withTempDir } from '../../test/support/temp-dir.ts';
import { StudioFiles } from '../jobs/files.ts';
import { DEFAULT_MODEL_DIR } from '../models/builtin.ts';
import { STAGES } from '../stages/kinds/index.ts';
import { folderShape } from '../stages/memory-check.ts';
import { stageEstimate } from '../stages/memory-estimate.ts';
import type { ExperimentDefinition } from './contract.ts';
import { experimentEstimates, outsideShapes } from './memory.ts';

test("an experiment's stages are sized from its definition: each model follows from the stages it reads", async () => {
  const def = {
    name: 'm', seed: 0, model: 'default', models: { other: '/no/such/folder' }, data: { source: 'hh-harmless', evalFraction: 0.2 }, provider: 'cpu', threads: null,
    stages: [
      { id: 'sft', kind: 'sft', adaptation: 'lora', batch: 4 },
      { id: 'samples', kind: 'sample', model: 'sft', n: 2 },
      { id: 'rm', kind: 'reward', backbone: 'sft', positive: 'demos', negative: 'samples' },
      { id: 'ditto', kind: 'ditto', policy: 'sft' },
      { id: 'other-samples', kind: 'sample', model: 'other' },
      { id: 'best', kind: 'bon:length', samples: 'samples', ns: [1, 2] },
    ],
  } as unknown as ExperimentDefinition;
  await withTempDir('memory-def', async (dir) => {
    const db = await openDatabase(':memory:');
    const outside = await outsideShapes(db, new StudioFiles(dir), def);
    db.close();
    assert.deepEqual([...outside.keys()], ['pi0'], 'a folder that is not there is not sized');
    const e = experimentEstimates(def, outside);
    const shape = folderShape(DEFAULT_MODEL_DIR);
    const raw = (id: string): JsonObject => {
      const { id: _id, kind, ...settings } = def.stages.find((s) => s.id === id)!;
      return STAGES[kind].parse(settings as JsonObject);
    };
    assert.deepEqual(Object.keys(e), ['sft', 'samples', 'rm']);
    assert.deepEqual(e.sft, stageEstimate('sft', raw('sft'), () => shape));
    assert.deepEqual(e.samples, stageEstimate('sample', raw('samples'), () => shape), "sft's model has pi_0's shape");
    assert.equal(e.rm.phase === 'saving the model' || e.rm.phase === 'scoring with the trained scorer', true);
  });
});

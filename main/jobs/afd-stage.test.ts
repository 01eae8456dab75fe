// What a finished AfD stage leaves in the store: trained models and reward models with
// their parent (the lineage init -> SFT -> reward model), and samples as generations.
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { openDatabase } from '../../db/database.ts';
import { GenerationStore } from '../../db/generations.ts';
import type { JsonObject } from '../../db/json.ts';
import { ModelStore } from '../../db/models.ts';
import { RunStore } from '../../db/runs.ts';
import { DEFAULT_MODEL_DIR } from '../models/builtin.ts';
import { withTempDir } from '../../test/support/temp-dir.ts';
import type { Artifact } from '../stages/stage.ts';
import { afdStageKind } from './afd-stage.ts';
import { StudioFiles } from './files.ts';
import { JobRunner } from './runner.ts';

test('finish records models with lineage and samples as generations', async () => {
  await withTempDir('afd-stage', async (dir) => {
    const db = await openDatabase(':memory:');
    const models = new ModelStore(db), runs = new RunStore(db);
    const base = models.insert({ name: 'base', kind: 'imported', stage: 'base' });
    const pi0 = { type: 'model', dir: '/m', stage: 'pi0', modelId: base.id };
    const finish = (stage: string, settings: JsonObject, inputs: JsonObject, result: JsonObject): JsonObject => {
      const config = afdStageKind.parseConfig({ stage, id: stage, experiment: 'e', settings, inputs, data: { source: 'hh-harmless', evalFraction: 0.2 } });
      const run = runs.insert({ stage: 'afd-stage', config });
      return afdStageKind.finish!({ db, run }, config, result);
    };

    const sft = finish('sft', {}, { model: pi0 }, { family: 'gpt2', dir });
    const sftRow = models.get(sft.modelId as number)!;
    assert.deepEqual([sftRow.name, sftRow.stage, sftRow.parentId, sftRow.family], ['e/sft', 'sft', base.id, 'gpt2']);

    const rm = finish('reward', { positive: 'demos', negative: 'x' }, { backbone: { ...pi0, modelId: sftRow.id } }, { scorer: true, family: 'gpt2', dir });
    const rmRow = models.get(rm.modelId as number)!;
    assert.deepEqual([rmRow.stage, rmRow.parentId, rmRow.path?.endsWith('/scorer')], ['reward', sftRow.id, true]);

    mkdirSync(join(dir, 's'));
    writeFileSync(join(dir, 's', 'artifact.json'), JSON.stringify({ type: 'samples', model: '/m', split: 'eval', n: 2 }));
    writeFileSync(join(dir, 's', 'samples.jsonl'), [0, 1].map((k) => JSON.stringify({ i: 0, k, prompt: 'p', text: `t${k}`, tokens: 3, finish: 'eos' })).join('\n'));
    finish('sample', {}, { model: { ...pi0, modelId: sftRow.id } }, { dir: join(dir, 's') });
    assert.deepEqual(new GenerationStore(db).listByModel(sftRow.id).map((g) => [g.prompt, g.sampleIndex, g.text, g.tokenCount]), [['p', 0, 't0', 3], ['p', 1, 't1', 3]]);
    db.close();
  });
});

test('the afd-stage job refuses a stage that cannot fit before it loads anything', { timeout: 120_000 }, async () => {
  await withTempDir('memory-job', async (dir) => {
    const dbFile = join(dir, 'studio.db');
    const db = await openDatabase(dbFile);
    const runner = await JobRunner.open({ db, files: StudioFiles.forDatabase(dbFile) });
    try {
      // 4096 rows of 512 tokens on the default model: hundreds of GiB of activations.
      const submitted = runner.submit('afd-stage', {
        stage: 'sft', id: 'sft', experiment: 'e', settings: { batch: 4096, maxLength: 512 }, inputs: { model: { type: 'model', dir: DEFAULT_MODEL_DIR, stage: 'pi0' } satisfies Artifact as unknown as JsonObject },
        data: { source: 'hh-harmless', evalFraction: 0.2 }, seed: 0, provider: 'cpu', threads: 1,
      });
      const run = await runner.settled(submitted.id);
      assert.equal(run.status, 'failed');
      assert.match(run.error ?? '', /^Stage 'sft' would need about \d+\.\d GiB \(.*\) at its peak, but .* is available; lower batch \(now 4096\), maxLength \(now 512\) or adaptation: lora instead of full, or free memory, and run it again\.$/);
    } finally {
      await runner.close();
      db.close();
    }
  });
});

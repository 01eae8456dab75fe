// experiments.exportTrl, the Experiments view's Export for TRL: a stored experiment written
// as a TRL project (main/experiments/trl/export.ts), every stage listed with its script or the
// reason the studio keeps it; a relative folder is refused.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { ExperimentStore } from '../../db/experiments.ts';
import type { JsonObject } from '../../db/json.ts';
import { withTempDir } from '../../test/support/temp-dir.ts';
import { openTestStudio } from './testing.ts';

test('experiments.exportTrl writes the stored experiment as a TRL project', { timeout: 120_000 }, async () => {
  await withTempDir('api-trl', async (dir) => {
    const t = await openTestStudio();
    try {
      const definition: JsonObject = {
        name: 'tiny', model: 'default', data: { source: 'hh-harmless', evalFraction: 0.2, maxTrain: 6, maxEval: 3 },
        stages: [{ id: 'judge', kind: 'judge' }, { id: 'sft', kind: 'sft', epochs: 1 }, { id: 'samples', kind: 'sample', model: 'sft', split: 'eval', n: 2 }],
      };
      const id = new ExperimentStore(t.db).insert({ name: 'tiny', definition }).id;
      const out = join(dir, 'project');
      const r = await t.service.call('experiments.exportTrl', { experimentId: id, out, gpus: 4 });
      assert.equal(r.out, out);
      assert.deepEqual(r.stages.map((s) => [s.id, s.exported, s.script ?? null]), [['judge', false, null], ['sft', true, 'sft.py'], ['samples', true, 'sample.py']]);
      assert.match(r.stages[0].why!, /gold judge/);
      const manifest = JSON.parse(readFileSync(join(out, 'afd-export.json'), 'utf8')) as { experiment: { id: number }; gpus: number; data: { train: number; eval: number } };
      assert.deepEqual([manifest.experiment.id, manifest.gpus, manifest.data.train, manifest.data.eval], [id, 4, 6, 3]);
      // The result says what the manifest says (what `afd export trl --json` prints).
      assert.deepEqual([r.experiment, r.gpus, r.data.train, r.data.eval], [{ id, name: 'tiny' }, 4, 6, 3]);
      assert.ok(existsSync(join(out, 'models/pi0/config.json')), 'the default model is copied in');
      await assert.rejects(t.service.call('experiments.exportTrl', { experimentId: id, out: 'relative/place' }), /full path/);
      await assert.rejects(t.service.call('experiments.exportTrl', { experimentId: id, out }), /already exists/);
      // A definition not stored (an experiment file), with pi_0 referenced instead of copied.
      const other = join(dir, 'from-file');
      const f = await t.service.call('experiments.exportTrl', { definition: { ...definition, name: 'from-file' }, out: other, pi0: 'HuggingFaceTB/SmolLM2-135M-Instruct' });
      assert.deepEqual(f.experiment, { id: null, name: 'from-file' });
      assert.equal(existsSync(join(other, 'models/pi0')), false);
      assert.equal((JSON.parse(readFileSync(join(other, 'afd-export.json'), 'utf8')) as { pi0: string }).pi0, 'HuggingFaceTB/SmolLM2-135M-Instruct');
      // Reading a project back wants its full path, and a folder that export wrote.
      await assert.rejects(t.service.call('experiments.importTrl', { dir: 'relative/place' }), /full path/);
      await assert.rejects(t.service.call('experiments.importTrl', { dir }), /has no afd-export\.json/);
    } finally {
      await t.close();
    }
  });
});

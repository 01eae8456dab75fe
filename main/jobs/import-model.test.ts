// The `import-model` job: a Hugging Face folder checked by the engine and copied into the
// store; a bad one fails with the engine's sentence and leaves no model and no files; the
// files of a crashed import go at the next start, those of a stored model stay.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { openDatabase } from '../../db/database.ts';
import { ModelStore } from '../../db/models.ts';
import { RunStore } from '../../db/runs.ts';
import { exportHfModel } from '../../native-models/checkpoint/index.ts';
import { gpt2Defaults, gpt2Family } from '../../native-models/models/gpt2.ts';
import { Rng } from '../../native-models/train/rng.ts';
import { StudioFiles } from './files.ts';
import { processOwner } from './owner.ts';
import { recoverStore } from './recovery.ts';
import { JobRunner } from './runner.ts';

const dir = mkdtempSync(join(tmpdir(), 'afd-import-model-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const config = gpt2Defaults({ vocabSize: 30, nPositions: 8, nEmbd: 8, nLayer: 2, nHead: 2 });

async function tinyFolder(name: string): Promise<string> {
  const out = join(dir, name);
  await exportHfModel(out, { family: gpt2Family, config, weights: gpt2Family.init(config, new Rng(1)) });
  writeFileSync(join(out, 'tokenizer.json'), '{}');
  writeFileSync(join(out, 'README.md'), 'not copied');
  return out;
}

test('a folder is checked, copied into the run folder and registered; a bad one leaves nothing', async () => {
  const db = await openDatabase(join(dir, 'studio.db'));
  const files = StudioFiles.forDatabase(join(dir, 'studio.db'));
  const runner = await JobRunner.open({ db, files });
  const models = new ModelStore(db);
  try {
    const src = await tinyFolder('tiny');
    const end = await runner.settled(runner.submit('import-model', { dir: src }).id);
    assert.equal(end.status, 'done', end.error ?? '');
    const m = models.get(Number(end.result?.modelId));
    assert.deepEqual([m?.name, m?.kind, m?.family, m?.path], ['tiny', 'imported', 'gpt2', `runs/${end.id}/model`]);
    assert.equal(m?.config.nEmbd, 8);
    const stored = files.absolute(m?.path ?? '');
    assert.deepEqual(readdirSync(stored).sort(), ['config.json', 'model.safetensors', 'tokenizer.json']);
    assert.deepEqual(readFileSync(join(stored, 'model.safetensors')), readFileSync(join(src, 'model.safetensors')));

    const bad = await tinyFolder('bad');
    truncateSync(join(bad, 'model.safetensors'), 100);
    const failed = await runner.settled(runner.submit('import-model', { dir: bad, name: 'bad' }).id);
    assert.equal(failed.status, 'failed');
    assert.match(failed.error ?? '', /model\.safetensors/);
    assert.equal(models.list().length, 1);
    assert.throws(() => runner.submit('import-model', { dir: join(dir, 'none') }), /none is not a folder; give the folder of a Hugging Face model/);

    // A crashed import's leftovers go at the next start; the stored model stays even if
    // the run that imported it is deleted.
    const runs = new RunStore(db);
    const dead = processOwner(2 ** 22 + 7);
    const crashed = runs.insert({ stage: 'import-model', config: { dir: src, name: 'x' }, owner: dead });
    runs.setStatus(crashed.id, 'running', { owner: dead });
    const leftovers = files.ensureRunDir(crashed.id);
    for (const f of ['.model.partial/model.safetensors', 'model/config.json']) {
      mkdirSync(join(leftovers, f, '..'), { recursive: true });
      writeFileSync(join(leftovers, f), 'x');
    }
    writeFileSync(join(files.root, 'stray.bin'), 'x');
    db.sqlite.prepare('DELETE FROM runs WHERE id = ?').run(end.id);
    const report = await recoverStore(db, files);
    assert.deepEqual(report.interrupted.map((r) => r.id), [crashed.id]);
    assert.equal(report.removedFiles.length, 3);
    assert.ok(!existsSync(leftovers) && !existsSync(join(files.root, 'stray.bin')));
    assert.ok(existsSync(join(stored, 'model.safetensors')));
  } finally {
    await runner.close();
    db.close();
  }
});

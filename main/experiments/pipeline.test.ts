// `afd run` end to end on the marker toy world: a pipeline runs through the store and the
// job runner; killed with SIGKILL in the middle of a stage and resumed, it finishes with
// exactly the results of an uninterrupted run with the same seed, without redoing the
// stages that had finished.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { openDatabase } from '../../db/database.ts';
import { RunStore } from '../../db/runs.ts';
import { tempFiles } from '../../test/support/temp-dir.ts';
import { buildToyModel, writeToyDataset } from '../stages/toy.ts';

const AFD = fileURLToPath(new URL('../../bin/afd.js', import.meta.url));
const tmp = tempFiles('pipeline');
const model = join(tmp.dir, 'pi0');
const dataFile = join(tmp.dir, 'toy.jsonl');
const experiment = join(tmp.dir, 'toy.yaml');

function writeExperiment(): void {
  writeFileSync(experiment, `
name: toy
seed: 3
model: ${JSON.stringify(model)}
data: { source: ${JSON.stringify(dataFile)}, evalFraction: 0.2 }
threads: 1
stages:
  - { id: sft, kind: sft, epochs: 12, batch: 4, lr: 0.001, checkpointEvery: 5 }
  - { id: sft-eval, kind: sample, model: sft, split: eval, n: 4, maxNewTokens: 16, promptsPerChunk: 4 }
  - { id: bon-length, kind: 'bon:length', samples: sft-eval, mode: longest, ns: [1, 2, 4] }
`);
}

const afd = (args: string[]) => spawnSync(process.execPath, [AFD, ...args], { encoding: 'utf8', timeout: 240_000 });

/** The finished runs of a database, by stage id, with their output folders. */
async function stageRuns(db: string): Promise<Map<string, { id: number; dir: string }>> {
  const d = await openDatabase(db);
  try {
    return new Map(new RunStore(d).list({ status: 'done' }).map((r) => [String(r.config.id), { id: r.id, dir: String(r.result?.dir) }]));
  } finally {
    d.close();
  }
}

describe('afd run on the toy world', { timeout: 600_000 }, () => {
  before(async () => {
    await buildToyModel(model, { steps: 150 });
    await writeToyDataset(dataFile, 60);
    writeExperiment();
  });

  it('killed with SIGKILL mid-stage and resumed, ends exactly like an uninterrupted run', async () => {
    const dbA = join(tmp.dir, 'a.db'), dbB = join(tmp.dir, 'b.db');
    const a = afd(['run', experiment, '--db', dbA, '--json']);
    assert.equal(a.status, 0, a.stderr);

    // Run B: killed once the SFT stage has written a checkpoint, while it still runs.
    const child = spawn(process.execPath, [AFD, 'run', experiment, '--db', dbB], { stdio: 'ignore' });
    const exited = new Promise<NodeJS.Signals | null>((r) => child.on('exit', (_code, signal) => r(signal)));
    let killedAt: string | null = null;
    while (child.exitCode === null && killedAt === null) {
      await new Promise((r) => setTimeout(r, 20));
      const d = await openDatabase(dbB).catch(() => null);
      if (d === null) continue;
      try {
        const sft = new RunStore(d).list().find((r) => r.config.id === 'sft' && r.status === 'running' && r.checkpointPath !== null);
        if (sft !== undefined) {
          child.kill('SIGKILL');
          killedAt = sft.checkpointPath;
        }
      } finally {
        d.close();
      }
    }
    assert.equal(await exited, 'SIGKILL', 'run B was killed before it finished');
    const b = afd(['run', experiment, '--db', dbB, '--resume', '--json']);
    assert.equal(b.status, 0, b.stderr);
    assert.match(b.stderr, /Resuming experiment/);

    const runsA = await stageRuns(dbA), runsB = await stageRuns(dbB);
    for (const id of ['sft', 'sft-eval', 'bon-length']) assert.ok(runsA.has(id) && runsB.has(id), `stage ${id} finished in both runs`);
    const read = (dir: string, f: string) => readFileSync(join(dir, f));
    assert.deepEqual(read(runsB.get('sft')!.dir, 'model/model.safetensors'), read(runsA.get('sft')!.dir, 'model/model.safetensors'), 'same SFT weights');
    assert.equal(read(runsB.get('sft-eval')!.dir, 'samples.jsonl').toString(), read(runsA.get('sft-eval')!.dir, 'samples.jsonl').toString(), 'same samples');
    assert.deepEqual(JSON.parse(read(runsB.get('bon-length')!.dir, 'selection.json').toString()).picks, JSON.parse(read(runsA.get('bon-length')!.dir, 'selection.json').toString()).picks, 'same Best-of-N picks');

    // A second resume of a finished experiment redoes nothing.
    const again = afd(['run', experiment, '--db', dbB, '--resume', '--json']);
    assert.equal(again.status, 0, again.stderr);
    const runsB2 = await stageRuns(dbB);
    for (const [id, r] of runsB) assert.equal(runsB2.get(id)!.id, r.id, `stage ${id} was not run again`);
  });
});

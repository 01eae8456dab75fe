import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { loadModel, type LoadedModel } from '../lm.ts';
import type { Artifact } from '../stage.ts';
import { buildToyModel, toyDemonstrations } from '../toy.ts';
import { extrapolateStage, extrapolateWeights } from './extrapolate.ts';
import { sftStage } from './sft.ts';
import { pi0, runStage } from './testing.ts';

let root = '';
let sft: Artifact;
let base: LoadedModel, tuned: LoadedModel;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'afd-extrapolate-'));
  await buildToyModel(join(root, 'pi0'));
  const run = await runStage(sftStage, { model: 'pi0', epochs: 1, batch: 16, lr: 3e-3 }, { model: pi0(join(root, 'pi0')) }, { dir: join(root, 'sft'), data: toyDemonstrations(), id: 'sft' });
  sft = run.artifact;
  [base, tuned] = [await loadModel(join(root, 'pi0')), await loadModel(join(root, 'sft', 'model'))];
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

async function extrapolated(alpha: number): Promise<LoadedModel> {
  const dir = join(root, `x${alpha}`);
  const run = await runStage(extrapolateStage, { alpha }, { sft, base: pi0(join(root, 'pi0')) }, { dir, data: toyDemonstrations() });
  assert.equal(run.outcome.status, 'done');
  return loadModel(join(dir, 'model'));
}

test('extrapolate defaults: sft from sft, base pi0, alpha 0.5', () => {
  assert.deepEqual(extrapolateStage.parse({}), { sft: 'sft', base: 'pi0', alpha: 0.5 });
});

test('alpha 0 is exactly the SFT model', async () => {
  const m = await extrapolated(0);
  assert.equal(m.weights.size, tuned.weights.size);
  for (const [name, w] of tuned.weights) assert.deepEqual(m.weights.get(name), w, name);
});

test('alpha 1 is 2 theta_SFT - theta_0 (and SFT did move the weights)', async () => {
  const m = await extrapolated(1);
  let moved = 0;
  for (const [name, w] of tuned.weights) {
    const b = base.weights.get(name)!, x = m.weights.get(name)!;
    for (let i = 0; i < w.length; i++) {
      assert.equal(x[i], Math.fround(2 * w[i] - b[i]), `${name}[${i}]`);
      if (w[i] !== b[i]) moved++;
    }
  }
  assert.ok(moved > 1000, `${moved} weights changed in SFT`);
});

test('models of different shapes are refused with a sentence', () => {
  const other = { ...base, config: { ...(base.config as object), nEmbd: 32 } } as LoadedModel;
  assert.throws(() => extrapolateWeights(tuned, other, 0.5), /Cannot extrapolate .* is \[.*\] in the SFT model and \[.*\] in the base; both models must be the same architecture/);
});

// The exported TRL project for real (issue 17): `afd export trl` on a toy experiment, the
// project's run.sh on the CPU with the pinned trl, accelerate, datasets and peft (one
// process per script, AFD_MAX_STEPS=2 steps per training stage), then `afd import results`,
// which imports the outputs and runs the stages left to the studio (the gold judge and the
// evaluation): the project's samples, Best-of-N picks and RL policy appear in the results
// table, its models in the store with their lineage, and the studio's scorer made from the
// project's reward model gives the scores the project's Best-of-N used.
// Skips with a notice where trl is not installed, except under CI=true.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { openDatabase } from '../../../db/database.ts';
import { GenerationStore } from '../../../db/generations.ts';
import { ModelStore } from '../../../db/models.ts';
import { RunStore } from '../../../db/runs.ts';
import { readSafetensors } from '../../../native-models/runtime/safetensors.ts';
import { pythonSkip } from '../../../test/python/oracle.ts';
import { tempFiles } from '../../../test/support/temp-dir.ts';
import { StudioFiles } from '../../jobs/files.ts';
import type { ResultsTable } from '../contract.ts';
import { loadScorerReward } from '../../stages/scorer.ts';
import { buildToyModel, toyDemonstrations } from '../../stages/toy.ts';

const skip = pythonSkip(['trl', 'datasets', 'peft', 'accelerate'], 'TRL export tests');
const AFD = fileURLToPath(new URL('../../../bin/afd.js', import.meta.url));
const tmp = tempFiles('trl-project');
const pi0 = join(tmp.dir, 'pi0');
const db = join(tmp.dir, 'studio.db');
const project = join(tmp.dir, 'project');
const experiment = join(tmp.dir, 'toy.yaml');

// Stages ordered so that run.sh starts few Python processes (consecutive sample stages share one).
const EXPERIMENT = `
name: trl-toy
seed: 2
model: ${JSON.stringify(pi0)}
data: { source: ${JSON.stringify(join(tmp.dir, 'toy.jsonl'))}, evalFraction: 0.2 }
threads: 1
stages:
  - { id: judge, kind: judge, epochs: 1, batch: 8 }
  - { id: sft, kind: sft, epochs: 1, batch: 4, lr: 0.001 }
  - { id: init-train, kind: sample, model: pi0, split: train, n: 1, maxNewTokens: 8 }
  - { id: sft-train, kind: sample, model: sft, split: train, n: 1, maxNewTokens: 8 }
  - { id: rm, kind: reward, positive: sft-train, negative: init-train, epochs: 1, batch: 8 }
  - { id: rl, kind: rl, policy: sft, reward: rm, steps: 2, k: 2, promptsPerStep: 2, maxNewTokens: 8, lr: 0.0001 }
  - { id: dpo, kind: dpo, policy: sft, batch: 4, adaptation: lora, loraRank: 4, lr: 0.001 }
  - { id: sft-eval, kind: sample, model: sft, split: eval, n: 2, maxNewTokens: 8 }
  - { id: sft-ref, kind: sample, model: sft, split: eval, n: 1, maxNewTokens: 8 }
  - { id: rl-eval, kind: sample, model: rl, split: eval, n: 1, maxNewTokens: 8 }
  - { id: bon, kind: bon, samples: sft-eval, reward: rm, ns: [1, 2] }
  - { id: eval, kind: eval, judge: judge, reference: sft-ref, candidates: [sft-eval, bon, rl-eval] }
`;

function afd(args: string[]): string {
  const r = spawnSync(process.execPath, [AFD, ...args, '--db', db], { encoding: 'utf8', timeout: 240_000 });
  assert.equal(r.status, 0, `afd ${args.slice(0, 2).join(' ')} failed: ${r.stderr.slice(-3000)}`);
  return r.stdout;
}

describe('an exported TRL project, run and imported back', { skip, timeout: 600_000 }, () => {
  before(async () => {
    await buildToyModel(pi0, { steps: 100 });
    const d = toyDemonstrations(30, 1);
    writeFileSync(join(tmp.dir, 'toy.jsonl'), [...d.train, ...d.eval].map((x) => JSON.stringify({ prompt: x.prompt, chosen: x.response, rejected: x.response.replace(' Have a nice day.', '') })).join('\n') + '\n');
    writeFileSync(experiment, EXPERIMENT);
  });

  it('runs every exported stage with TRL, and its outputs appear in the results table', async () => {
    afd(['export', 'trl', experiment, '--out', project, '--gpus', '1']);
    const t0 = performance.now();
    const { LAUNCH: _launch, ...env } = process.env;
    const run = spawnSync('bash', [join(project, 'run.sh')], {
      encoding: 'utf8', timeout: 480_000,
      env: { ...env, AFD_MAX_STEPS: '2', OMP_NUM_THREADS: '1', TOKENIZERS_PARALLELISM: 'false', TRANSFORMERS_VERBOSITY: 'error', HF_HUB_OFFLINE: '1', HF_DATASETS_OFFLINE: '1', CUDA_VISIBLE_DEVICES: '' },
    });
    assert.equal(run.status, 0, `run.sh failed:\n${run.stdout.slice(-2000)}\n${run.stderr.slice(-4000)}`);
    const seconds = (performance.now() - t0) / 1000;
    for (const id of ['sft', 'rm', 'rl', 'dpo']) {
      const stage = JSON.parse(readFileSync(join(project, 'outputs', id, 'stage.json'), 'utf8')) as { metrics: { steps: number } };
      assert.equal(stage.metrics.steps, 2, `${id} took AFD_MAX_STEPS steps`);
    }
    console.log(`# run.sh: ${seconds.toFixed(0)} s`);

    const table = JSON.parse(afd(['import', 'results', project, '--json'])) as ResultsTable;
    assert.deepEqual(table.rows.map((r) => `${r.method}${r.n === undefined ? '' : `@${r.n}`}`), ['sft-eval', 'bon@1', 'bon@2', 'rl-eval']);
    for (const r of table.rows) assert.ok(Number.isFinite(r.gold_mean) && r.mean_length > 0, `${r.method}: a gold reward and a length`);

    const d = await openDatabase(db);
    try {
      const files = StudioFiles.forDatabase(db);
      const models = new ModelStore(d).list();
      const model = (id: string) => models.find((m) => m.name === `trl-toy (trl)/${id}`)!;
      const pi0Row = models.find((m) => m.path === pi0)!;
      assert.equal(model('sft').parentId, pi0Row.id);
      assert.equal(model('rl').parentId, model('sft').id);
      assert.equal(model('dpo').parentId, model('sft').id);
      const sftWeights = (await readSafetensors(files.absolute(model('sft').path!) + '/model.safetensors')).tensors;
      const pi0Weights = (await readSafetensors(join(pi0, 'model.safetensors'))).tensors;
      assert.notDeepEqual(sftWeights.get('transformer.h.0.mlp.c_fc.weight')!.data, pi0Weights.get('transformer.h.0.mlp.c_fc.weight')!.data, 'TRL trained the SFT model');

      const runs = new RunStore(d).list({ status: 'done' });
      const runOf = (id: string) => runs.find((r) => r.config.id === id && r.experimentId !== null && r.provider === 'trl')!;
      const rlEval = new GenerationStore(d).listByRun(runOf('rl-eval').id);
      assert.ok(rlEval.length > 0 && rlEval.every((g) => g.modelId === model('rl').id), 'the RL policy sampled rl-eval');

      // The studio's scorer made from the project's reward model scores the samples as the project's Best-of-N did.
      const selection = JSON.parse(readFileSync(join(files.runDir(runOf('bon').id), 'selection.json'), 'utf8')) as { rewards: number[][] };
      const samples = readFileSync(join(files.runDir(runOf('sft-eval').id), 'samples.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { i: number; k: number; prompt: string; text: string });
      const scorer = await loadScorerReward(join(files.runDir(runOf('rm').id), 'scorer'), { provider: 'cpu', threads: 1 });
      const scores = await scorer.score(samples.map((s) => ({ prompt: s.prompt, response: s.text })));
      await scorer.release();
      const worst = Math.max(...samples.map((s, j) => Math.abs(scores[j] - selection.rewards[s.i][s.k])));
      // float32 on both sides, different kernels: measured 1.8e-7.
      assert.ok(worst < 1e-4, `the studio's scorer and the project's reward model differ by ${worst}`);
      files.dispose();
    } finally {
      d.close();
    }
  });
});

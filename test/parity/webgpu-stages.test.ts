// The stages' own trainings on WebGPU: each training setup of the parity cases (sftTraining
// with either loss, scorerTraining with BCE and Bradley-Terry, pairTraining for DPO with
// its reference scored by a generator, PolicyUpdate for RL) creates its trainer with the
// provider 'webgpu', so its graphs are written for WebGPU and must create sessions with
// CPU fallback disabled, and trains the tiny world's models for 12 steps, whose losses
// must be the CPU's (2e-3 relative, as native-models/train/webgpu.test.ts argues; RL
// samples its own data, so there only the first step, on the CPU's samples, is compared).

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Demonstration } from '../../main/stages/data.ts';
import { endogenousRewardOf } from '../../main/stages/endogenous.ts';
import { loadModel } from '../../main/stages/lm.ts';
import { hiddenSize, scorerReward } from '../../main/stages/scorer.ts';
import { lengthReward } from '../../main/stages/reward-function.ts';
import { dpoStage, pairTraining } from '../../main/stages/kinds/dpo.ts';
import { rewardStage, scorerDataset, scorerTraining, type ScorerLoss } from '../../main/stages/kinds/reward.ts';
import { parsePolicyConfig, PolicyUpdate } from '../../main/stages/kinds/rl.ts';
import { sftStage, sftTraining } from '../../main/stages/kinds/sft.ts';
import { trainSteps, type StageTraining } from '../../main/stages/training.ts';
import type { ProviderName } from '../../native-models/runtime/providers.ts';
import { parityContext, tinyWorld, type ParityContext, type TinyWorld } from './harness.ts';
import { webgpuSkip } from '../support/webgpu.ts';

process.env.XDG_RUNTIME_DIR ??= mkdtempSync(join(tmpdir(), 'afd-xdg-'));

const skip = webgpuSkip('WebGPU stage-training tests');
const REL = 2e-3;
const OPTIMIZER = { lr: 2e-3, warmup: 0.2, weightDecay: 0.5, clipNorm: 1 };
const LORA = { adaptation: 'lora', loraRank: 4, loraAlpha: 8 };

let root = '';
let world: TinyWorld;
before(async () => {
  if (skip) return;
  root = await mkdtemp(join(tmpdir(), 'afd-webgpu-stages-'));
  world = await tinyWorld(root);
});
after(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

let runs = 0;
function context(provider: ProviderName, seed: number): ParityContext {
  return { ...parityContext(join(root, `run-${runs++}`), seed), provider };
}

/** The per-step losses of a stage's training, run as its `run` does (trainSteps). */
async function losses(ctx: ParityContext, t: StageTraining): Promise<number[]> {
  try {
    assert.equal(t.trainer.stateOnDevice, ctx.provider === 'webgpu');
    await trainSteps(ctx, t.trainer, t.settings, t.batch);
    t.trainer.parameters(); // the stage reads its weights back to save them
    return ctx.metrics.map((m) => m.values.loss);
  } finally {
    await t.trainer.release();
  }
}

function assertClose(cpu: number[], gpu: number[], what: string): string {
  assert.equal(gpu.length, cpu.length, what);
  let worst = 0;
  cpu.forEach((l, i) => {
    const d = Math.abs(l - gpu[i]) / Math.abs(l);
    worst = Math.max(worst, d);
    assert.ok(d <= REL, `${what} step ${i + 1}: cpu ${l} vs webgpu ${gpu[i]}`);
  });
  return `${what}: ${cpu.length} steps, largest relative difference ${worst.toExponential(1)}`;
}

/** Each demonstration (positive) against other demonstrations' replies to its prompt. */
function scorerData(demos: readonly Demonstration[], negatives: number) {
  return scorerDataset(demos.map((d, i) => ({
    prompt: d.prompt,
    positive: [{ text: d.response, source: 'demos' }],
    negative: Array.from({ length: negatives }, (_, k) => ({ text: demos[(i + 3 + 5 * k) % demos.length].response, source: 'other' })),
  })));
}

test('SFT and DFT (GPT-2 full, Llama LoRA) train on webgpu with the CPU\'s losses', { skip }, async (t) => {
  for (const [modelDir, raw, what] of [[world.gpt2, {}, 'sft gpt2 full'], [world.llama, LORA, 'sft llama lora'], [world.llama, { loss: 'dft' }, 'dft llama full']] as const) {
    const run = async (provider: ProviderName): Promise<number[]> => {
      const ctx = context(provider, 5);
      const config = sftStage.parse({ epochs: 3, batch: 4, maxLength: 24, ...OPTIMIZER, ...raw });
      return losses(ctx, await sftTraining(ctx, config, await loadModel(modelDir), world.demos.slice(0, 16)));
    };
    t.diagnostic(assertClose(await run('cpu'), await run('webgpu'), what));
  }
});

test('reward models (BCE on GPT-2 full, Bradley-Terry on Llama LoRA) train on webgpu with the CPU\'s losses', { skip }, async (t) => {
  for (const [modelDir, loss, raw] of [[world.gpt2, 'bce', {}], [world.llama, 'bt', LORA]] as [string, ScorerLoss, Record<string, unknown>][]) {
    const run = async (provider: ProviderName): Promise<number[]> => {
      const ctx = context(provider, 6);
      const config = rewardStage.parse({ positive: 'demos', negative: 'sft', loss, epochs: 2, batch: 4, maxLength: 24, ...OPTIMIZER, ...raw });
      return losses(ctx, await scorerTraining(ctx, await loadModel(modelDir), config, loss, scorerData(world.demos.slice(0, 12), loss === 'bce' ? 1 : 2)));
    };
    t.diagnostic(assertClose(await run('cpu'), await run('webgpu'), `reward ${loss}`));
  }
});

test('DPO (Llama full, its reference scored by a generator) trains on webgpu with the CPU\'s losses', { skip }, async (t) => {
  const run = async (provider: ProviderName): Promise<number[]> => {
    const ctx = context(provider, 7);
    const [policy, reference] = [await loadModel(world.llama), await loadModel(world.llamaReference)];
    const demos = world.demos.slice(0, 16);
    const pairs = demos.map((d, i) => ({ prompt: d.prompt, chosen: d.response, rejected: demos[(i + 7) % demos.length].response }));
    return losses(ctx, await pairTraining(ctx, dpoStage.parse({ beta: 0.5, epochs: 3, batch: 4, maxLength: 24, ...OPTIMIZER }), policy, reference, pairs));
  };
  t.diagnostic(assertClose(await run('cpu'), await run('webgpu'), 'dpo'));
});

test('RL (GRPO on Llama LoRA: sampling, scoring and the update) runs on webgpu; its first step matches the CPU\'s', { skip }, async (t) => {
  const run = async (provider: ProviderName): Promise<number[]> => {
    const ctx = context(provider, 8);
    const config = parsePolicyConfig({ k: 4, promptsPerStep: 2, steps: 3, beta: 0.1, maxNewTokens: 6, estimator: 'grpo', ...OPTIMIZER, ...LORA });
    const pu = await PolicyUpdate.create(ctx, config, await loadModel(world.llama), await loadModel(world.gpt2), world.demos.map((d) => d.prompt));
    try {
      assert.equal(pu.trainer.stateOnDevice, provider === 'webgpu');
      const reward = lengthReward('median', 12);
      await trainSteps(ctx, pu.trainer, pu.settings, async (s) => (await pu.next(s, reward)).feeds);
      pu.weights();
      return ctx.metrics.map((m) => m.values.loss);
    } finally {
      await pu.release();
    }
  };
  const cpu = await run('cpu'), gpu = await run('webgpu');
  assert.equal(gpu.length, 3);
  assert.ok(gpu.every(Number.isFinite), `webgpu losses ${gpu}`);
  // The first step samples from the same weights with the same seeds; later steps sample
  // from weights that differ by rounding, which may pick other tokens.
  t.diagnostic(assertClose(cpu.slice(0, 1), gpu.slice(0, 1), 'rl grpo, step 1'));
});

test("the pipeline's own scoring graphs (a scorer, the endogenous reward) run wholly on webgpu with the CPU's scores", { skip }, async (t) => {
  // graphSession writes them for WebGPU and creates their sessions with CPU fallback
  // disabled, so creating them is the test that no node falls back.
  const items = world.demos.slice(0, 6).map((d, i) => ({ prompt: d.prompt, response: world.demos[(i + 2) % world.demos.length].response }));
  for (const dir of [world.gpt2, world.llama]) {
    const model = await loadModel(dir);
    const D = hiddenSize(model);
    const head = { weight: Float32Array.from({ length: D }, (_, i) => Math.sin(i + 1) / Math.sqrt(D)), bias: 0.1 };
    const scores = async (provider: 'cpu' | 'webgpu') => {
      const runtime = { provider, threads: 1 };
      const rewards = [await scorerReward(model, model.weights, head, 32, runtime), await endogenousRewardOf(model, { alpha: 1, gamma: 1, perToken: false }, runtime, 'endogenous')];
      try {
        return await Promise.all(rewards.map((r) => r.score(items)));
      } finally {
        for (const r of rewards) await r.release();
      }
    };
    const [cpu, gpu] = [await scores('cpu'), await scores('webgpu')];
    for (const [k, what] of ['scorer', 'endogenous reward'].entries()) {
      cpu[k].forEach((x, i) => assert.ok(Math.abs(x - gpu[k][i]) <= 1e-3 * Math.max(1, Math.abs(x)), `${model.family.name} ${what} item ${i}: cpu ${x} vs webgpu ${gpu[k][i]}`));
    }
    t.diagnostic(`${model.family.name}: scorer and endogenous reward on webgpu give the CPU's ${items.length} scores`);
  }
});

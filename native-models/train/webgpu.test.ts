// The GPU code path, kept correct on machines without a GPU: training-step graphs written
// for ONNX Runtime's WebGPU provider (ir/emit.ts, target 'webgpu') run wholly on it (no
// node falls back to the CPU), keep the training state in the GPU's memory, and give the
// CPU provider's losses, here through Mesa's software Vulkan driver (lavapipe). The first
// test needs no GPU: it runs the graphs written for WebGPU on the CPU provider.
//
// Tolerance: WebGPU computes in float32 with its own kernels (other summation orders,
// fused multiply-adds, approximate exp/tanh, scatter-adds in any order), so losses agree
// to float32 rounding that compounds over steps: we allow 2e-3 relative on every step of
// 20-step runs, far below the loss's own step-to-step change (several percent), so a
// wrong kernel still fails. Measured on lavapipe: at most 6e-5 (each test reports its own).

import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import ort from 'onnxruntime-node';
import * as T from '../ir/index.ts';
import type { ModelFamily } from '../models/family.ts';
import { gpt2Defaults, gpt2Family, gpt2NextTokenLoss, gpt2Params } from '../models/gpt2.ts';
import { llamaDefaults, llamaFamily } from '../models/llama.ts';
import { loraInit, loraParamShapes, loraTraining } from '../models/lora.ts';
import { endogenousReturn } from '../objectives/endogenous.ts';
import { bradleyTerry, dftLoss, dpoLoss, pointwiseBce, policyGradientLoss, sftLoss } from '../objectives/losses.ts';
import { adamw } from '../optim/adamw.ts';
import { deviceFeeds } from '../runtime/device-feeds.ts';
import { Rng } from './rng.ts';
import { buildTrainStep, type TrainStepGraphs } from './step.ts';
import { Trainer, type Feeds } from './trainer.ts';
import { LossEvaluator } from './evaluator.ts';
import { gptTrainer, randomLmBatch, tinyLmConfig, trainTinyLm } from './tiny-lm.ts';
import { withTempDir } from '../../test/support/temp-dir.ts';
import { webgpuOnlySession, webgpuSkip } from '../../test/support/webgpu.ts';

process.env.XDG_RUNTIME_DIR ??= mkdtempSync(join(tmpdir(), 'afd-xdg-'));

const skip = webgpuSkip('WebGPU training-step tests');

const REL = 2e-3;
/** Asserts every step's loss within REL; returns the largest relative difference. */
function assertClose(cpu: number[], gpu: number[], what: string): number {
  assert.equal(gpu.length, cpu.length);
  let worst = 0;
  cpu.forEach((l, i) => {
    const d = Math.abs(l - gpu[i]) / Math.abs(l);
    worst = Math.max(worst, d);
    assert.ok(d <= REL, `${what} step ${i + 1}: cpu ${l} vs webgpu ${gpu[i]}`);
  });
  return worst;
}

// ---------------------------------------------------------------- the tiny models

const V = 48;
const FAMILIES = {
  gpt2: { family: gpt2Family as ModelFamily<unknown>, config: gpt2Defaults({ vocabSize: V, nPositions: 16, nEmbd: 16, nLayer: 2, nHead: 2, nInner: 24 }) as unknown },
  llama: { family: llamaFamily as ModelFamily<unknown>, config: llamaDefaults({ vocabSize: V, hiddenSize: 16, intermediateSize: 24, numLayers: 2, numHeads: 4, numKvHeads: 2, maxPositions: 16, tieWordEmbeddings: true }) as unknown },
};
type FamilyName = keyof typeof FAMILIES;
const OBJECTIVES = ['sft', 'dft', 'bce', 'bt', 'dpo', 'pg', 'endogenous'] as const;
type Objective = (typeof OBJECTIVES)[number];

/** Random weights of a visible size (0.02 leaves the tiny models' logits nearly uniform). */
function weights(name: FamilyName, seed: number): Map<string, Float32Array> {
  const { family, config } = FAMILIES[name];
  const w = family.init(config, new Rng(seed));
  for (const [n, a] of w) if (a.length > 24 && !/norm|ln_/.test(n)) for (let i = 0; i < a.length; i++) a[i] *= 5;
  return w;
}

/**
 * The step graphs of an objective as the stages compose them (main/stages: sequence inputs
 * [B, T] right-padded, a response mask, each row's last position, pair indices), full or
 * LoRA (rank 4), and the initial trained tensors.
 */
function objectiveStep(name: FamilyName, objective: Objective, lora: boolean, accumulation = 1): { graphs: TrainStepGraphs; init: Map<string, Float32Array> } {
  const { family, config } = FAMILIES[name];
  const base = weights(name, 1);
  let params: Map<string, T.Value>, trainable: T.Value[], frozen: Map<T.Value, Float32Array | T.ExternalTensor>, init: Map<string, Float32Array>;
  if (lora) {
    const spec = { rank: 4, alpha: 8 };
    ({ params, trainable, frozen } = loraTraining(family, config, base, spec));
    init = loraInit(loraParamShapes(family, config, spec), new Rng(2));
    for (const a of [...init].filter(([n]) => n.endsWith('.lora_B')).map(([, a]) => a)) a.fill(0.05); // B = 0 would make the adapters' first gradients trivial
  } else {
    params = new Map([...family.paramShapes(config)].map(([n, s]) => [n, T.param(n, s)]));
    trainable = [...params.values()];
    frozen = new Map();
    init = base;
  }
  const tokens = T.input('tokens', 'int64', ['B', 'T']), targets = T.input('targets', 'int64', ['B', 'T']);
  const mask = T.input('mask', 'float32', ['B', 'T']), last = T.input('last', 'int64', ['B']);
  const out = family.forward(config, params, { tokens, ...(lora ? { loraScale: 2 } : {}) });
  const logp = (): T.Value => T.reduceSum(T.mul(T.tokenLogProb(out.logits, targets), mask), 1); // [B]
  // A scalar head on the last real token's hidden state, as the scorer's.
  const D = out.hidden.shape[2] as number;
  const head = T.param('score.weight', [D, 1]);
  const scores = (): T.Value => T.reshape(T.matmul(T.gather(T.reshape(out.hidden, [-1, D]), last), head), [-1]); // [B]
  const pairs = (): [T.Value, T.Value] => [T.input('chosen', 'int64', ['N']), T.input('rejected', 'int64', ['N'])];
  let loss: T.Value;
  const metrics: Record<string, T.Value> = {};
  switch (objective) {
    case 'sft': loss = sftLoss(out.logits, targets, mask); break;
    case 'dft': loss = dftLoss(out.logits, targets, mask); break;
    case 'bce': {
      const s = scores();
      loss = pointwiseBce(s, T.input('labels', 'float32', ['B']));
      metrics.accuracy = T.reduceMean(T.cast(T.less(0, s), 'float32'));
      break;
    }
    case 'bt': {
      const [c, r] = pairs(), s = scores();
      loss = bradleyTerry(T.gather(s, c), T.gather(s, r));
      break;
    }
    case 'dpo': {
      const [c, r] = pairs(), lp = logp();
      loss = dpoLoss(T.gather(lp, c), T.gather(lp, r), T.input('ref_chosen', 'float32', ['N']), T.input('ref_rejected', 'float32', ['N']), 0.1);
      break;
    }
    case 'pg': loss = policyGradientLoss(logp(), T.input('advantages', 'float32', ['B'])); break;
    case 'endogenous': loss = T.neg(T.reduceMean(endogenousReturn(out.logits, targets, mask, mask, { alpha: 1, gamma: 1 }))); break;
  }
  if (objective === 'bce' || objective === 'bt') {
    trainable.push(head);
    init.set('score.weight', Float32Array.from({ length: D }, (_, i) => Math.sin(i) * 0.3));
  }
  return { graphs: buildTrainStep({ loss, metrics, trainable, frozen, optimizer: adamw({ weightDecay: 0.1 }), clipNorm: 1, accumulation }), init };
}

/** A batch of `rows` right-padded rows for every objective's inputs: tokens, targets, mask, last, labels, pairs... */
function batch(rows: number, width: number, seed: number): Feeds {
  const r = new Rng(seed);
  const ids = (n: number): BigInt64Array => BigInt64Array.from({ length: n }, () => BigInt(r.int(V)));
  const lengths = Array.from({ length: rows }, (_, b) => width - (b % 3)); // real tokens per row
  const mask = new Float32Array(rows * width);
  lengths.forEach((n, b) => mask.fill(1, b * width + 2, b * width + n)); // the first 2 tokens are the prompt
  const f32 = (a: number[]): ort.Tensor => new ort.Tensor('float32', Float32Array.from(a), [a.length]);
  const i64 = (a: number[]): ort.Tensor => new ort.Tensor('int64', BigInt64Array.from(a, BigInt), [a.length]);
  return {
    tokens: new ort.Tensor('int64', ids(rows * width), [rows, width]),
    targets: new ort.Tensor('int64', ids(rows * width), [rows, width]),
    mask: new ort.Tensor('float32', mask, [rows, width]),
    last: i64(lengths.map((n, b) => b * width + n - 1)),
    labels: f32(lengths.map((_, b) => b % 2)),
    chosen: i64([0, 2]), rejected: i64([1, 3]),
    ref_chosen: f32([-20, -21]), ref_rejected: f32([-22, -19]),
    advantages: f32(lengths.map((_, b) => (b % 2 ? 1 : -0.5))),
  };
}

/** Losses of `steps` steps from the given step graphs on one batch per step. */
async function train(provider: 'cpu' | 'webgpu', make: () => { graphs: TrainStepGraphs; init: Map<string, Float32Array> }, steps: number, lr = 3e-3): Promise<{ losses: number[]; params: Map<string, Float32Array>; trainer: Trainer }> {
  const { graphs, init } = make();
  const trainer = await Trainer.create(graphs, init, { provider, threads: 1 });
  const losses: number[] = [];
  for (let s = 0; s < steps; s++) {
    const k = graphs.accumulation;
    const b = k === 1 ? batch(4, 8, s) : Array.from({ length: k }, (_, i) => batch(4, 8 - i, 100 * s + i));
    losses.push((await trainer.step(b, lr)).loss);
  }
  return { losses, params: trainer.parameters(), trainer };
}

// ---------------------------------------------------------------- without a GPU

test('the step graphs written for webgpu compute on the CPU provider what the CPU graphs compute', async () => {
  for (const [name, objective, lora] of [['llama', 'sft', true], ['gpt2', 'bt', false], ['llama', 'dpo', false]] as const) {
    const { graphs, init } = objectiveStep(name, objective, lora);
    const feeds: Feeds = { ...batch(4, 8, 1), step: new ort.Tensor('float32', Float32Array.of(1), []), lr: new ort.Tensor('float32', Float32Array.of(1e-2), []) };
    for (const p of graphs.params) {
      feeds[p.name] = new ort.Tensor('float32', init.get(p.name)!, p.shape);
      for (const s of graphs.slots) feeds[`${p.name}.${s}`] = new ort.Tensor('float32', new Float32Array(p.shape.reduce((a, b) => a * b, 1)).fill(0.01), p.shape);
    }
    const outputs: Record<string, Float32Array>[] = [];
    for (const target of ['cpu', 'webgpu'] as const) {
      const model = graphs.emit(target).step;
      const session = await ort.InferenceSession.create(model.bytes);
      const r = await session.run(deviceFeeds(model, Object.fromEntries(model.inputNames.map((n) => [n, feeds[n]]))));
      outputs.push(Object.fromEntries(model.outputNames.map((n) => [n, r[n].data as Float32Array])));
      await session.release();
    }
    const [cpu, gpu] = outputs;
    for (const [out, a] of Object.entries(cpu)) {
      a.forEach((x, i) => assert.ok(Math.abs(x - gpu[out][i]) <= 1e-5 * Math.max(1, Math.abs(x)), `${name} ${objective} ${out}[${i}]: ${x} vs ${gpu[out][i]}`));
    }
  }
});

// ---------------------------------------------------------------- on WebGPU

test('every training step graph (GPT-2 and Llama, full and LoRA, each objective, accumulation) creates a WebGPU session with CPU fallback disabled', { skip }, async () => {
  for (const name of ['gpt2', 'llama'] as const) {
    for (const lora of [false, true]) {
      for (const objective of OBJECTIVES) {
        const { graphs } = objectiveStep(name, objective, lora, objective === 'sft' ? 2 : 1);
        const models = graphs.emit('webgpu');
        for (const [kind, model] of Object.entries(models)) {
          const what = `${name} ${lora ? 'LoRA' : 'full'} ${objective} ${kind}`;
          const session = await webgpuOnlySession(model.bytes).catch((e: Error) => assert.fail(`${what}: ${e.message}`));
          await session.release();
        }
      }
    }
  }
});

test('the MLP training step gives the same losses on webgpu as on cpu', { skip }, async (t) => {
  const losses = async (provider: 'cpu' | 'webgpu') => {
    const x = T.input('x', 'float32', ['B', 8]);
    const y = T.input('y', 'int64', ['B']);
    const w1 = T.param('w1', [8, 32]), b1 = T.param('b1', [32]), w2 = T.param('w2', [32, 4]), b2 = T.param('b2', [4]);
    const loss = T.crossEntropy(T.linear(T.gelu(T.linear(x, w1, b1), 'tanh'), w2, b2), y);
    const graphs = buildTrainStep({ loss, trainable: [w1, b1, w2, b2], optimizer: adamw(), clipNorm: 1 });
    const r = new Rng(1);
    const init = new Map([['w1', Float32Array.from({ length: 256 }, () => r.normal() * 0.3)], ['b1', new Float32Array(32)], ['w2', Float32Array.from({ length: 128 }, () => r.normal() * 0.3)], ['b2', new Float32Array(4)]]);
    const trainer = await Trainer.create(graphs, init, { provider, threads: 2 });
    const batch = { x: new ort.Tensor('float32', Float32Array.from({ length: 128 }, () => r.normal()), [16, 8]), y: new ort.Tensor('int64', BigInt64Array.from({ length: 16 }, () => BigInt(r.int(4))), [16]) };
    const out: number[] = [];
    for (let i = 0; i < 20; i++) out.push((await trainer.step(batch, 1e-2)).loss);
    await trainer.release();
    return out;
  };
  const cpu = await losses('cpu'), gpu = await losses('webgpu');
  assert.ok(cpu.at(-1)! < cpu[0] * 0.9, 'the loss must fall');
  t.diagnostic(`largest relative difference ${assertClose(cpu, gpu, 'MLP').toExponential(1)}`);
});

test('the 2-layer transformer LM training step gives the same losses on webgpu as on cpu over 20 steps', { skip }, async (t) => {
  const cpu = (await trainTinyLm({ steps: 20, provider: 'cpu', threads: 2 })).losses;
  const gpu = (await trainTinyLm({ steps: 20, provider: 'webgpu', threads: 2 })).losses;
  assert.ok(cpu.at(-1)! < cpu[0] * 0.9, 'the loss must fall');
  t.diagnostic(`largest relative difference ${assertClose(cpu, gpu, 'transformer LM').toExponential(1)}`);
});

test('a Llama LoRA fine-tune and a GPT-2 DPO run on webgpu give the CPU losses and parameters over 20 steps, their state kept on the GPU', { skip }, async (t) => {
  for (const [name, objective, lora] of [['llama', 'sft', true], ['gpt2', 'dpo', false]] as const) {
    const make = () => objectiveStep(name, objective, lora);
    const cpu = await train('cpu', make, 20);
    const gpu = await train('webgpu', make, 20);
    try {
      assert.ok(gpu.trainer.stateOnDevice);
      for (const [n, tensor] of gpu.trainer.state) assert.equal(tensor.location, 'gpu-buffer', n);
      assert.ok(cpu.losses.at(-1)! < cpu.losses[0], `${name} ${objective}: the loss must fall`);
      const worst = assertClose(cpu.losses, gpu.losses, `${name} ${objective}`);
      // AdamW moves a parameter up to lr (3e-3) a step whatever its gradient's size, so
      // where a gradient is near zero, rounding can turn a step's direction: 5e-3 allowed.
      // A wrong read-back would be off by the parameters' own size (about 0.1).
      let far = 0;
      for (const [n, a] of cpu.params) a.forEach((x, i) => (far = Math.max(far, Math.abs(x - gpu.params.get(n)![i]))));
      assert.ok(far < 5e-3, `${name} ${objective}: the parameters differ by up to ${far}`);
      t.diagnostic(`${name} ${objective}: largest relative loss difference ${worst.toExponential(1)}, parameters within ${far.toExponential(1)}`);
    } finally {
      await cpu.trainer.release();
      await gpu.trainer.release();
    }
  }
});

test('the loss evaluator on webgpu reads the trainer\'s state on the GPU and gives the CPU\'s loss', { skip }, async () => {
  const values: number[] = [];
  for (const provider of ['cpu', 'webgpu'] as const) {
    const c = tinyLmConfig({ nEmbd: 16, nPositions: 8, vocabSize: 32 });
    const trainer = await gptTrainer(c, { provider, threads: 1 });
    const evaluator = await LossEvaluator.create(gpt2NextTokenLoss(c).loss, [...gpt2Params(c).values()], { provider, intraOpThreads: 1 });
    try {
      const b = randomLmBatch(c, 4, new Rng(5));
      await trainer.step(b, 1e-2);
      assert.equal(trainer.stateOnDevice, provider === 'webgpu');
      values.push(await evaluator.mean([b, randomLmBatch(c, 2, new Rng(6))], trainer.state));
    } finally {
      await evaluator.release();
      await trainer.release();
    }
  }
  assert.ok(Math.abs(values[0] - values[1]) <= REL * values[0], `cpu ${values[0]}, webgpu ${values[1]}`);
});

test('gradient accumulation on webgpu gives the CPU losses', { skip }, async (t) => {
  const make = () => objectiveStep('gpt2', 'sft', false, 2);
  const cpu = await train('cpu', make, 5), gpu = await train('webgpu', make, 5);
  await cpu.trainer.release();
  await gpu.trainer.release();
  t.diagnostic(`largest relative difference ${assertClose(cpu.losses, gpu.losses, 'accumulation').toExponential(1)}`);
});

test('state on the GPU reads back: parameters() is what save writes, and a saved state resumes on either provider', { skip }, () => withTempDir('webgpu-state', async (dir) => {
  const make = () => objectiveStep('llama', 'sft', true);
  const gpu = await train('webgpu', make, 3);
  const file = join(dir, 'state.safetensors');
  try {
    await gpu.trainer.save(file);
    const next = (await gpu.trainer.step(batch(4, 8, 3), 3e-3)).loss;
    for (const provider of ['cpu', 'webgpu'] as const) {
      const { graphs, init } = make();
      const resumed = await Trainer.create(graphs, init, { provider, threads: 1 });
      try {
        await resumed.load(file);
        for (const [n, a] of resumed.parameters()) assert.deepEqual(a, gpu.params.get(n), `${provider}: ${n} as saved`);
        assert.equal(resumed.stepCount, 3);
        const loss = (await resumed.step(batch(4, 8, 3), 3e-3)).loss;
        assert.ok(Math.abs(loss - next) <= REL * Math.abs(next), `${provider}: the resumed step's loss ${loss}, the original's ${next}`);
      } finally {
        await resumed.release();
      }
    }
  } finally {
    await gpu.trainer.release();
  }
  assert.throws(() => gpu.trainer.parameters(), /released/);
}));

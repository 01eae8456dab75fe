// The GPU code path, kept correct on machines without a GPU: the same training-step graphs
// run on ONNX Runtime's WebGPU provider (here through Mesa's software Vulkan driver) and
// must give the CPU provider's losses.
//
// Tolerance: WebGPU computes in float32 with its own kernels (different summation orders,
// fused multiply-adds, approximate exp/tanh), so losses agree to float32 rounding that
// compounds over steps: we allow 2e-3 relative on every step of a 10-step run, far below
// the loss's own step-to-step change (several percent), so a wrong kernel still fails.

import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import ort from 'onnxruntime-node';
import * as T from '../ir/index.ts';
import { adamw } from '../optim/adamw.ts';
import { Rng } from './rng.ts';
import { buildTrainStep } from './step.ts';
import { Trainer } from './trainer.ts';
import { trainTinyLm } from './tiny-lm.ts';
import { webgpuSkip } from '../../test/support/webgpu.ts';

process.env.XDG_RUNTIME_DIR ??= mkdtempSync(join(tmpdir(), 'afd-xdg-'));

const skip = webgpuSkip('WebGPU training-step tests');

const REL = 2e-3;
const assertClose = (cpu: number[], gpu: number[], what: string) =>
  cpu.forEach((l, i) => assert.ok(Math.abs(l - gpu[i]) <= REL * Math.abs(l), `${what} step ${i + 1}: cpu ${l} vs webgpu ${gpu[i]}`));

test('the MLP training step gives the same losses on webgpu as on cpu', { skip }, async () => {
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
    for (let i = 0; i < 10; i++) out.push((await trainer.step(batch, 1e-2)).loss);
    await trainer.release();
    return out;
  };
  const cpu = await losses('cpu'), gpu = await losses('webgpu');
  assert.ok(cpu.at(-1)! < cpu[0] * 0.9, 'the loss must fall');
  assertClose(cpu, gpu, 'MLP');
});

test('the 2-layer transformer LM training step gives the same losses on webgpu as on cpu', { skip }, async () => {
  const cpu = (await trainTinyLm({ steps: 10, provider: 'cpu', threads: 2 })).losses;
  const gpu = (await trainTinyLm({ steps: 10, provider: 'webgpu', threads: 2 })).losses;
  assert.ok(cpu.at(-1)! < cpu[0] * 0.9, 'the loss must fall');
  assertClose(cpu, gpu, 'transformer LM');
});

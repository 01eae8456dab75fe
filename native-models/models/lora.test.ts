// LoRA: zero-initialized B leaves the model unchanged, training touches only the adapters,
// and merging them into the base weights gives the adapted model's logits.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import ort from 'onnxruntime-node';
import * as T from '../ir/index.ts';
import { adamw } from '../optim/adamw.ts';
import { Rng } from '../train/rng.ts';
import { buildTrainStep } from '../train/step.ts';
import { Trainer } from '../train/trainer.ts';
import { gpt2Defaults, gpt2Family } from './gpt2.ts';
import { llamaDefaults, llamaFamily } from './llama.ts';
import { loraInit, loraParamShapes, loraScale, loraTargets, loraTraining, mergeLora, type LoraSpec } from './lora.ts';
import type { ModelSpec } from './index.ts';
import { maxAbsDiff, testDecoder } from './test-decoder.ts';

const specs: [string, ModelSpec][] = [
  ['GPT-2', { family: gpt2Family, config: gpt2Defaults({ vocabSize: 40, nPositions: 16, nEmbd: 24, nLayer: 2, nHead: 2 }) }],
  ['Llama', { family: llamaFamily, config: llamaDefaults({ vocabSize: 40, hiddenSize: 24, intermediateSize: 36, numLayers: 2, numHeads: 4, numKvHeads: 2, headDim: 6, qkvBias: true, oBias: true }) }],
];
const lora: LoraSpec = { rank: 3, alpha: 6 };
const SEQ = [[1, 5, 9, 2, 30, 7, 7, 11], [4, 0, 13, 39, 22, 8, 1, 3]];

async function logits(m: ModelSpec, weights: ReadonlyMap<string, Float32Array>, adapters?: ReadonlyMap<string, Float32Array>): Promise<Float32Array> {
  const d = await testDecoder(m, new Map([...weights, ...(adapters ?? [])]), adapters ? { loraScale: loraScale(lora), shapes: loraParamShapes(m.family, m.config, lora) } : {});
  try {
    return (await d.run(SEQ)).logits;
  } finally {
    await d.release();
  }
}

test('LoRA targets: all projections by default, or by kind or name; unknown names are refused', () => {
  const [, gpt] = specs[0], [, llama] = specs[1];
  assert.equal(loraTargets(gpt.family, gpt.config, lora).length, 2 * 4);
  assert.equal(loraTargets(llama.family, llama.config, lora).length, 2 * 7);
  assert.deepEqual(loraTargets(llama.family, llama.config, { ...lora, targets: ['q_proj', 'v_proj'] }).map((x) => x.prefix.split('.').pop()), ['q_proj', 'v_proj', 'q_proj', 'v_proj']);
  assert.equal(loraTargets(gpt.family, gpt.config, { ...lora, targets: ['attn.c_proj'] }).length, 2);
  assert.equal(loraTargets(gpt.family, gpt.config, { ...lora, targets: ['mlp'] }).length, 4);
  const shapes = loraParamShapes(llama.family, llama.config, { ...lora, targets: ['k_proj'] });
  assert.deepEqual(shapes.get('model.layers.0.self_attn.k_proj.lora_A'), [24, 3]);
  assert.deepEqual(shapes.get('model.layers.0.self_attn.k_proj.lora_B'), [3, 12]);
  assert.throws(() => loraTargets(llama.family, llama.config, { ...lora, targets: ['c_attn'] }), /LoRA targets \["c_attn"\] match no projection of this llama model \(it has self_attn.q_proj/);
  assert.throws(() => loraTargets(llama.family, llama.config, { rank: 0, alpha: 1 }), /rank must be a positive integer/);
});

test('adapters in the params without a loraScale are refused', () => {
  const [, m] = specs[1];
  const { params } = loraTraining(m.family, m.config, m.family.init(m.config, new Rng(0)), lora);
  assert.throws(() => m.family.forward(m.config, params, { tokens: T.input('tokens', 'int64', ['B', 'T']) }), /has LoRA adapters but no loraScale/);
});

for (const [name, m] of specs) {
  test(`${name}: zero-initialized B gives the base model's logits`, async () => {
    const base = m.family.init(m.config, new Rng(1));
    const adapters = loraInit(loraParamShapes(m.family, m.config, lora), new Rng(2));
    assert.ok([...adapters].some(([n, a]) => n.endsWith('lora_A') && a.some((x) => x !== 0)));
    const d = maxAbsDiff(await logits(m, base, adapters), await logits(m, base));
    assert.ok(d === 0, `max diff ${d}`);
  });

  test(`${name}: training changes only the adapters, and the merged export equals the adapted model`, async () => {
    const base = m.family.init(m.config, new Rng(3));
    const before = new Map([...base].map(([k, v]) => [k, Float32Array.from(v)]));
    const { params, trainable, frozen } = loraTraining(m.family, m.config, base, lora);
    const tokens = T.input('tokens', 'int64', ['B', 'T']);
    const targets = T.input('targets', 'int64', ['B', 'T']);
    const loss = T.crossEntropy(m.family.forward(m.config, params, { tokens, loraScale: loraScale(lora) }).logits, targets);
    const graphs = buildTrainStep({ loss, trainable, frozen, optimizer: adamw({ weightDecay: 0 }) });
    const trainer = await Trainer.create(graphs, loraInit(loraParamShapes(m.family, m.config, lora), new Rng(4)), { threads: 1 });
    const batch = {
      tokens: new ort.Tensor('int64', BigInt64Array.from(SEQ.flatMap((s) => s.slice(0, -1)), BigInt), [2, 7]),
      targets: new ort.Tensor('int64', BigInt64Array.from(SEQ.flatMap((s) => s.slice(1)), BigInt), [2, 7]),
    };
    const losses: number[] = [];
    try {
      for (let i = 0; i < 6; i++) losses.push((await trainer.step(batch, 2e-2)).loss);
    } finally {
      await trainer.release();
    }
    assert.ok(losses[5] < losses[0], `loss did not fall: ${losses.join(', ')}`);
    const adapters = trainer.parameters();
    assert.deepEqual([...adapters.keys()].sort(), [...loraParamShapes(m.family, m.config, lora).keys()].sort(), 'only the adapters are trained');
    assert.ok([...adapters].every(([n, a]) => !n.endsWith('lora_B') || a.some((x) => x !== 0)), 'every B moved away from zero');
    for (const [k, v] of base) assert.deepEqual(v, before.get(k), `base weight ${k} changed`);

    const merged = mergeLora(base, adapters, m.family, m.config, lora);
    assert.deepEqual([...merged.keys()].sort(), [...m.family.paramShapes(m.config).keys()].sort());
    const diff = maxAbsDiff(await logits(m, merged), await logits(m, base, adapters));
    assert.ok(diff <= 1e-5, `merged vs adapted: max diff ${diff}`);
    assert.ok(maxAbsDiff(await logits(m, merged), await logits(m, base)) > 1e-3, 'the adapters changed the model');
  });
}

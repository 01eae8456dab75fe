// mapHfModel: a folder of float32 weights is validated from its headers and mapped (ONNX
// external data) rather than read; other dtypes are read as importHfModel reads them. A
// generator on mapped weights gives exactly the logits of one on the same weights in memory.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { withTempDir } from '../../test/support/temp-dir.ts';
import { Generator } from '../generate/generator.ts';
import { llamaDefaults, llamaFamily } from '../models/llama.ts';
import { SessionCache } from '../runtime/session.ts';
import { Rng } from '../train/rng.ts';
import { exportHfModel, importHfModel, mapHfModel } from './index.ts';

const config = llamaDefaults({ vocabSize: 53, hiddenSize: 32, numLayers: 2, numHeads: 4, numKvHeads: 2, maxPositions: 64, initializerRange: 0.2, tieWordEmbeddings: true });

test('float32 folders are mapped, others read; mapped weights generate exactly what the same weights in memory do', () => withTempDir('map', async (dir) => {
  const weights = llamaFamily.init(config, new Rng(5));
  await exportHfModel(join(dir, 'f32'), { family: llamaFamily, config, weights });
  await exportHfModel(join(dir, 'f16'), { family: llamaFamily, config, weights, dtype: 'F16' });

  const mapped = await mapHfModel(join(dir, 'f32'));
  assert.ok(!(mapped.weights instanceof Map));
  assert.equal(mapped.weights.dir, join(dir, 'f32'));
  assert.match(mapped.weights.identity, /^model\.safetensors:\d+:[\d.]+$/);
  assert.deepEqual([...mapped.weights.tensors.keys()].sort(), [...weights.keys()].sort());
  assert.deepEqual(mapped.storedDtypes, ['F32']);
  const read = await mapHfModel(join(dir, 'f16'));
  assert.ok(read.weights instanceof Map);
  assert.deepEqual(read.weights, (await importHfModel(join(dir, 'f16'))).weights);

  const sessions = new SessionCache();
  const fromFile = await Generator.create(mapped.family, mapped.config, mapped.weights, { provider: 'cpu', threads: 1, sessions });
  const again = await Generator.create(mapped.family, mapped.config, mapped.weights, { provider: 'cpu', threads: 1, sessions });
  const inMemory = await Generator.create(llamaFamily, config, weights, { provider: 'cpu', threads: 1 });
  try {
    assert.equal(sessions.size, 1, 'generators of one mapped folder share its session');
    const prompts = [[1, 7, 30, 4, 22, 9], [17, 3]];
    const logits = (g: Generator) => {
      const seen: Float32Array[] = [];
      return g.generate(prompts, { greedy: true, maxNewTokens: 6, onLogits: ({ logits: l }) => seen.push(l.slice()) }).then((out) => ({ out, seen }));
    };
    const a = await logits(fromFile), b = await logits(inMemory);
    assert.deepEqual(a.out, b.out);
    assert.deepEqual(a.seen, b.seen);
    assert.ok(new Set(a.out.flatMap((r) => r.tokens)).size > 3, 'the rows are not one repeated token');
  } finally {
    await Promise.all([fromFile.release(), again.release(), inMemory.release(), sessions.clear()]);
  }
}));

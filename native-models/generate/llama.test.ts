// Cached decoding against full recomputation on a tiny random Llama with grouped-query
// attention (4 query heads sharing 2 key/value heads), left-padded batch included.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { llamaDefaults, llamaFamily } from '../models/llama.ts';
import { Rng } from '../train/rng.ts';
import { argmax } from './sampler.ts';
import { Generator } from './generator.ts';

test('Llama with grouped-query attention: cached decoding equals full recomputation', async () => {
  const config = llamaDefaults({ vocabSize: 53, hiddenSize: 32, numLayers: 2, numHeads: 4, numKvHeads: 2, maxPositions: 64, initializerRange: 0.2 });
  const V = config.vocabSize;
  const gen = await Generator.create(llamaFamily, config, llamaFamily.init(config, new Rng(3)), { provider: 'cpu', threads: 1 });
  try {
    const prompts = [[1, 7, 30, 4, 22, 9], [17], [40, 2, 5]];
    const steps = 10;
    const seen: Float32Array[][] = prompts.map(() => []);
    const out = await gen.generate(prompts, { greedy: true, maxNewTokens: steps, onLogits: ({ row, step, logits }) => (seen[row][step] = logits.slice()) });
    for (let r = 0; r < prompts.length; r++) {
      const seq = [...prompts[r]];
      for (let s = 0; s < steps; s++) {
        const [all] = await gen.logits([seq]);
        const last = all.slice((seq.length - 1) * V, seq.length * V);
        const d = last.reduce((m, x, i) => Math.max(m, Math.abs(x - seen[r][s][i])), 0);
        assert.ok(d < 1e-4, `row ${r} step ${s}: logits differ by ${d}`);
        seq.push(argmax(last));
      }
      assert.deepEqual(out[r].tokens, seq.slice(prompts[r].length), `row ${r}`);
    }
    // The rows are not all one repeated token (the check would then be weak).
    assert.ok(new Set(out.flatMap((r) => r.tokens)).size > 5);
  } finally {
    await gen.release();
  }
});

// Generation and scoring on tiny random GPT-2 models: cached decoding against full
// recomputation, batches against single rows, seeds, EOS, stop strings, cancellation.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { gpt2Defaults, gpt2Family, type Gpt2Config } from '../models/gpt2.ts';
import { SessionCache } from '../runtime/session.ts';
import { Rng } from '../train/rng.ts';
import { argmax } from './sampler.ts';
import { Generator, GenerationCancelledError, type GenerateOptions, type GenerationResult } from './generator.ts';

const V = 61;
const config: Gpt2Config = gpt2Defaults({ vocabSize: V, nPositions: 48, nEmbd: 32, nLayer: 2, nHead: 4, tieWordEmbeddings: false });

/**
 * Random GPT-2 weights with larger embeddings and an untied, larger LM head, so that the
 * logits are neither nearly uniform nor dominated by the input token (a tied random head
 * makes greedy decoding repeat the last token forever).
 */
function tinyWeights(c: Gpt2Config, seed: number): Map<string, Float32Array> {
  const w = gpt2Family.init(c, new Rng(seed));
  for (const name of ['transformer.wte.weight', 'transformer.wpe.weight', 'lm_head.weight']) w.get(name)!.forEach((x, i, a) => (a[i] = x * 8));
  return w;
}

let gen: Generator<Gpt2Config>;
before(async () => {
  // A small growth step, so that the cache grows (and is copied) many times in every test.
  gen = await Generator.create(gpt2Family, config, tinyWeights(config, 1), { provider: 'cpu', threads: 1, cacheGrowth: 2 });
});
after(() => gen.release());

const prompts = [[5, 9, 2, 33, 7], [11], [3, 3, 8, 40, 12, 1, 19, 27, 50], [60, 0, 17]];

/** Max |a - b| over two arrays. */
const maxDiff = (a: Float32Array, b: Float32Array): number => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);

async function recomputeGreedy(prompt: number[], steps: number): Promise<{ tokens: number[]; logits: Float32Array[] }> {
  const seq = [...prompt];
  const logits: Float32Array[] = [];
  for (let s = 0; s < steps; s++) {
    const [all] = await gen.logits([seq]);
    const last = all.slice((seq.length - 1) * V, seq.length * V);
    logits.push(last);
    seq.push(argmax(last));
  }
  return { tokens: seq.slice(prompt.length), logits };
}

for (const [name, ps] of [['prompts of different lengths', prompts], ['one-token prompts', [[4], [20], [59]]]] as const) {
  test(`cached decoding equals full recomputation: ${name}`, async () => {
    const steps = 12;
    const seen: Float32Array[][] = ps.map(() => []);
    const out = await gen.generate(ps, { greedy: true, maxNewTokens: steps, onLogits: ({ row, step, logits }) => (seen[row][step] = logits.slice()) });
    for (let r = 0; r < ps.length; r++) {
      const ref = await recomputeGreedy([...ps[r]], steps);
      assert.deepEqual(out[r].tokens, ref.tokens, `row ${r}`);
      for (let s = 0; s < steps; s++) {
        const d = maxDiff(seen[r][s], ref.logits[s]);
        assert.ok(d < 1e-4, `row ${r} step ${s}: logits differ by ${d}`);
      }
      assert.equal(out[r].finishReason, 'length');
    }
    if (ps.length > 3) assert.ok(new Set(out.flatMap((r) => r.tokens)).size > 8, 'the model repeats itself: a weak check');
  });
}

async function oneByOne(ps: readonly number[][], opts: GenerateOptions, seeds?: number[]): Promise<GenerationResult[]> {
  const out: GenerationResult[] = [];
  for (let i = 0; i < ps.length; i++) out.push((await gen.generate([ps[i]], { ...opts, ...(seeds ? { seed: [seeds[i]] } : {}) }))[0]);
  return out;
}

test('a left-padded batch gives the rows what they get alone (greedy and seeded sampling, rows ending early)', async () => {
  const greedy = await gen.generate(prompts, { greedy: true, maxNewTokens: 10 });
  assert.deepEqual(greedy, await oneByOne(prompts, { greedy: true, maxNewTokens: 10 }));
  // An EOS that ends row 0 after 4 tokens: the batch is compacted while the others go on.
  const eos = greedy[0].tokens[3];
  const withEos = await gen.generate(prompts, { greedy: true, maxNewTokens: 10, eosTokenIds: [eos] });
  assert.equal(withEos[0].finishReason, 'eos');
  assert.ok(withEos[0].tokens.length <= 4);
  assert.deepEqual(withEos, await oneByOne(prompts, { greedy: true, maxNewTokens: 10, eosTokenIds: [eos] }));

  const seeds = [101, 202, 303, 404];
  const sampling: GenerateOptions = { temperature: 0.9, topK: 30, topP: 0.95, repetitionPenalty: 1.2, maxNewTokens: 10, eosTokenIds: [eos] };
  const batched = await gen.generate(prompts, { ...sampling, seed: seeds });
  assert.deepEqual(batched, await oneByOne(prompts, sampling, seeds));
  assert.deepEqual(batched.map((r) => r.seed), seeds);
});

test('seeded sampling repeats; other seeds differ; one number seeds row i with s + i', async () => {
  const opts: GenerateOptions = { temperature: 1, maxNewTokens: 16 };
  const a = await gen.generate([prompts[0], prompts[0]], { ...opts, seed: 7 });
  const b = await gen.generate([prompts[0], prompts[0]], { ...opts, seed: 7 });
  assert.deepEqual(a, b);
  assert.notDeepEqual(a[0].tokens, a[1].tokens); // seeds 7 and 8
  const alone = await gen.generate([prompts[0]], { ...opts, seed: 8 });
  assert.deepEqual(alone[0].tokens, a[1].tokens);
  const unseeded = await gen.generate([prompts[0]], opts);
  assert.equal(typeof unseeded[0].seed, 'number');
  assert.deepEqual((await gen.generate([prompts[0]], { ...opts, seed: [unseeded[0].seed!] }))[0].tokens, unseeded[0].tokens);
});

test('EOS ends a row (the EOS token ends its tokens, not its text); maxNewTokens ends the others', async () => {
  const free = await gen.generate([prompts[2], prompts[3]], { greedy: true, maxNewTokens: 8 });
  const eos = free[0].tokens[2];
  const k = free[0].tokens.indexOf(eos);
  const decode = (ids: readonly number[]): string => ids.map((i) => `<${i}>`).join('');
  const out = await gen.generate([prompts[2], prompts[3]], { greedy: true, maxNewTokens: 8, eosTokenIds: [eos], decode });
  assert.equal(out[0].finishReason, 'eos');
  assert.deepEqual(out[0].tokens, free[0].tokens.slice(0, k + 1));
  assert.equal(out[0].text, decode(out[0].tokens.slice(0, -1)));
  if (!free[1].tokens.includes(eos)) {
    assert.equal(out[1].finishReason, 'length');
    assert.equal(out[1].tokens.length, 8);
  }
});

test('stop strings cut the text, and streamed deltas add up to it', async () => {
  // Two letters per token, so that stop strings can straddle tokens.
  const letters = 'abcdefghijklmnopqrstuvwxyz';
  const decode = (ids: readonly number[]): string => ids.map((i) => letters[i % 26] + letters[(i * 7 + 3) % 26]).join('');
  const free = await gen.generate(prompts, { greedy: true, maxNewTokens: 12, decode });
  const full0 = free[0].text!;
  const stop = full0.slice(7, 10); // starts inside token 3, ends inside token 4
  const deltas: string[] = prompts.map(() => '');
  const counts = prompts.map(() => 0);
  const out = await gen.generate(prompts, {
    greedy: true, maxNewTokens: 12, decode, stopStrings: [stop, 'zzzzzz'],
    onToken: ({ row, textDelta }) => {
      deltas[row] += textDelta ?? '';
      counts[row]++;
    },
  });
  out.forEach((r, i) => {
    const full = free[i].text!;
    const at = full.indexOf(stop);
    if (at >= 0) {
      assert.equal(r.finishReason, 'stop', `row ${i}`);
      assert.equal(r.stopString, stop);
      assert.equal(r.text, full.slice(0, at));
      // The row stops at the token that completes the stop string.
      assert.equal(r.tokens.length, Math.ceil((at + stop.length) / 2));
    } else assert.equal(r.text, full);
    assert.equal(deltas[i], r.text, `row ${i}: the deltas add up to the text`);
    assert.equal(counts[i], r.tokens.length);
  });
  assert.equal(out[0].text, full0.slice(0, full0.indexOf(stop)));
});

function logSoftmaxAt(logits: Float32Array, pos: number, token: number): number {
  const row = logits.subarray(pos * V, (pos + 1) * V);
  const m = row.reduce((a, b) => Math.max(a, b), -Infinity);
  const z = row.reduce((s, x) => s + Math.exp(x - m), 0);
  return row[token] - m - Math.log(z);
}

test('score is the summed log-softmax of a full forward over the response tokens', async () => {
  const ps = [[1, 2, 3], [7], [9, 8, 7, 6, 5, 4], [30, 31]];
  const rs = [[4, 5], [8, 9, 10, 11, 12], [3], []];
  const scores = await gen.score(ps, rs, { maxLogits: 2 * 8 * V }); // forces several runs
  for (let i = 0; i < ps.length; i++) {
    const seq = [...ps[i], ...rs[i]];
    const [logits] = await gen.logits([seq]);
    const ref = rs[i].map((t, k) => logSoftmaxAt(logits, ps[i].length + k - 1, t));
    assert.equal(scores[i].perToken.length, rs[i].length);
    scores[i].perToken.forEach((x, k) => assert.ok(Math.abs(x - ref[k]) < 1e-4, `pair ${i} token ${k}: ${x} vs ${ref[k]}`));
    assert.ok(Math.abs(scores[i].sum - ref.reduce((a, b) => a + b, 0)) < 1e-4);
  }
  assert.deepEqual(scores[3], { sum: 0, perToken: [] });
  await assert.rejects(gen.score([[]], [[1]]), /Prompt 0 is empty/);
});

test('an AbortSignal stops generation between steps with the partial results', async () => {
  const ctrl = new AbortController();
  let calls = 0;
  const err = await gen.generate(prompts, {
    greedy: true, maxNewTokens: 20, signal: ctrl.signal,
    onToken: ({ row }) => {
      if (row === 0 && ++calls === 3) ctrl.abort();
    },
  }).then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof GenerationCancelledError, String(err));
  assert.equal(err.steps, 3);
  assert.equal(err.partial.length, prompts.length);
  for (const r of err.partial) {
    assert.equal(r.tokens.length, 3);
    assert.equal(r.finishReason, 'cancelled');
  }
  await assert.rejects(gen.generate(prompts, { greedy: true, maxNewTokens: 5, signal: AbortSignal.abort() }), /cancelled after 0 steps/);
});

test('the position table bounds generation; bad input is refused with a sentence', async () => {
  const long = Array.from({ length: config.nPositions - 2 }, (_, i) => i % V);
  const [r] = await gen.generate([long], { greedy: true, maxNewTokens: 10 });
  assert.equal(r.finishReason, 'length');
  assert.equal(long.length + r.tokens.length, config.nPositions);
  await assert.rejects(gen.generate([[1, V]], { greedy: true, maxNewTokens: 1 }), /token id 61 at position 1, outside the vocabulary/);
  await assert.rejects(gen.generate([[]], { greedy: true, maxNewTokens: 1 }), /Prompt 0 is empty/);
  await assert.rejects(gen.generate([[1]], { maxNewTokens: 1, stopStrings: ['x'] }), /need a decode function/);
  await assert.rejects(gen.generate([[1], [2]], { maxNewTokens: 1, seed: [1] }), /2 prompts/);
  assert.deepEqual(await gen.generate([[1]], { greedy: true, maxNewTokens: 0 }), [{ tokens: [], finishReason: 'length' }]);
});

test('each graph is compiled once, through the session cache', async () => {
  const sessions = new SessionCache();
  const g = await Generator.create(gpt2Family, config, tinyWeights(config, 2), { provider: 'cpu', threads: 1, sessions });
  assert.equal(sessions.size, 1); // one graph for prefill and decoding
  await g.generate(prompts, { greedy: true, maxNewTokens: 3 });
  await g.generate([[1]], { temperature: 1, maxNewTokens: 3 });
  assert.equal(sessions.size, 1);
  await g.score([[1, 2]], [[3]]);
  await g.score([[4]], [[5, 6]]);
  assert.equal(sessions.size, 2);
  await g.release(); // a shared cache is left to its owner
  assert.equal(sessions.size, 2);
  await sessions.clear();
});

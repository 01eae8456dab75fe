// The generation worker with the embedded default model: phases (reading the weights,
// preparing, generating), then tokens stream back while the main thread stays free, the
// deltas add up to the text; the model stays loaded for the next request and is released
// on demand; a stop ends a generation between steps, or at once when it is still waiting.
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { GenerateRequest, GenerationListener, WorkerPhase } from './generation.ts';
import { GenerationStopped, WorkerGeneration } from './generation.ts';
import { DEFAULT_MODEL_DIR } from '../models/builtin.ts';

const gen = new WorkerGeneration();
after(() => gen.close());
const GB = 1e9;
const request = (prompts: string[], sampling: GenerateRequest['sampling']): GenerateRequest => ({ modelDir: DEFAULT_MODEL_DIR, prompts, sampling, provider: 'cpu', cacheBytes: 4 * GB });

function recorder(): GenerationListener & { phases: WorkerPhase[]; deltas: string[][] } {
  const phases: WorkerPhase[] = [];
  const deltas: string[][] = [];
  return { phases, deltas, phase: (p) => phases.push(p), token: (row, _i, text) => (deltas[row] ??= []).push(text) };
}

test('a first generation reads and prepares the model with progress, then streams tokens whose texts add up to the response, off the main thread', async () => {
  assert.deepEqual(await gen.cache(4 * GB), { budgetBytes: 4 * GB, usedBytes: 0, models: [] }, 'no worker, nothing loaded');
  const on = recorder();
  let ticks = 0;
  const timer = setInterval(() => ticks++, 5);
  const rows = await gen.generate(request(['Human: How are you?\n\nAssistant:', 'Human: Hi\n\nAssistant:'], { temperature: 0, maxTokens: 12 }), on, new AbortController().signal);
  clearInterval(timer);
  assert.equal(rows.length, 2);
  rows.forEach((r, i) => {
    assert.ok(r.tokens >= 1 && r.tokens <= 12);
    assert.equal(on.deltas[i].join(''), r.text);
  });
  assert.ok(ticks > 0, 'timers fired while the model ran');

  // loading (bytes of model.safetensors, ending complete), preparing (one session built), generating.
  const weights = statSync(join(DEFAULT_MODEL_DIR, 'model.safetensors')).size;
  const order = on.phases.map((p) => p.phase).filter((p, i, all) => p !== all[i - 1]);
  assert.deepEqual(order, ['loading', 'preparing', 'generating']);
  const loading = on.phases.filter((p) => p.phase === 'loading');
  assert.ok(loading.every((p) => p.total === weights && p.done <= weights));
  assert.equal(loading.at(-1)?.done, weights);
  assert.ok(loading.every((p, i) => i === 0 || p.done >= loading[i - 1].done), 'bytes read only grow');
  assert.ok(on.phases.some((p) => p.phase === 'preparing' && p.done === 1), 'the session built is counted');
  assert.deepEqual(on.phases.at(-1), { phase: 'generating', done: 0, total: 12, etaMs: null });

  const state = await gen.cache(4 * GB);
  assert.equal(state.models.length, 1);
  assert.equal(state.models[0].dir, DEFAULT_MODEL_DIR);
  assert.equal(state.models[0].users, 0);
  assert.ok(state.models[0].bytes >= weights, 'a model counts at least its weights');
  assert.deepEqual([state.models[0].runsOn, state.models[0].estimated], ['cpu', false], 'loaded alone: measured');
  assert.equal(state.usedBytes, state.models[0].bytes);
});

test('a second generation with the same model goes straight to generating; after unloading it loads again', async () => {
  const warm = recorder();
  await gen.generate(request(['Human: Hi\n\nAssistant:'], { temperature: 0, maxTokens: 4 }), warm, new AbortController().signal);
  assert.deepEqual(warm.phases.map((p) => p.phase), ['generating']);

  assert.deepEqual((await gen.unload(4 * GB)).models, []);
  const cold = recorder();
  await gen.generate(request(['Human: Hi\n\nAssistant:'], { temperature: 0, maxTokens: 4 }), cold, new AbortController().signal);
  assert.equal(cold.phases[0].phase, 'loading');

  // A budget smaller than the model releases it once it is idle.
  assert.deepEqual((await gen.cache(1000)).models, []);
});

test('generations on loaded models run side by side: the second streams before the first ends', async () => {
  const events: string[] = [];
  const on = (name: string): GenerationListener => ({ phase: () => undefined, token: () => events.push(name) });
  const sampling = { temperature: 1, seed: 3, maxTokens: 40 };
  // Loaded first, so that neither waits for a load.
  await gen.generate(request(['Human: Hi\n\nAssistant:'], { temperature: 0, maxTokens: 1 }), recorder(), new AbortController().signal);
  const never = new AbortController().signal;
  await Promise.all([
    gen.generate(request(['Human: Tell me about the sea.\n\nAssistant:'], sampling), on('a'), never),
    gen.generate(request(['Human: Tell me about the hills.\n\nAssistant:'], sampling), on('b'), never),
  ]);
  assert.ok(events.indexOf('b') < events.lastIndexOf('a'), `tokens interleave: ${events.join('')}`);
});

test('a stop ends the generation with what it had; one stopped while its model loads is answered at once', async () => {
  await gen.unload(4 * GB);
  const abort = new AbortController();
  let seen = 0;
  const long = gen.generate(request(['Human: Tell me a long story.\n\nAssistant:'], { temperature: 1, seed: 1, maxTokens: 500 }), {
    phase: () => undefined,
    token: () => {
      if (++seen === 3) abort.abort();
    },
  }, abort.signal);
  const waiting = new AbortController();
  const queued = gen.generate(request(['Human: Hi\n\nAssistant:'], { temperature: 0, maxTokens: 4 }), recorder(), waiting.signal);
  waiting.abort();
  const ended: string[] = [];
  await Promise.all([
    assert.rejects(queued.finally(() => ended.push('queued')), (err: Error) => err instanceof GenerationStopped),
    assert.rejects(long.finally(() => ended.push('long')), (err: Error) => err instanceof GenerationStopped && err.partial.length === 1 && err.partial[0].finishReason === 'cancelled'),
  ]);
  assert.deepEqual(ended, ['queued', 'long'], 'the one stopped did not wait for the load');
});

// The generation worker with the embedded default model: tokens stream back while the
// main thread stays free, the deltas add up to the text, a stop ends it between steps.
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { GenerationStopped, WorkerGeneration } from './generation.ts';
import { DEFAULT_MODEL_DIR } from '../models/builtin.ts';

const gen = new WorkerGeneration();
after(() => gen.close());

test('greedy generation streams tokens whose texts add up to the response, off the main thread', async () => {
  const deltas: string[][] = [[], []];
  let ticks = 0;
  const timer = setInterval(() => ticks++, 5);
  const rows = await gen.generate({ modelDir: DEFAULT_MODEL_DIR, prompts: ['Human: How are you?\n\nAssistant:', 'Human: Hi\n\nAssistant:'], sampling: { temperature: 0, maxTokens: 12 }, provider: 'cpu' }, (row, _i, text) => deltas[row].push(text), new AbortController().signal);
  clearInterval(timer);
  assert.equal(rows.length, 2);
  rows.forEach((r, i) => {
    assert.ok(r.tokens >= 1 && r.tokens <= 12);
    assert.equal(deltas[i].join(''), r.text);
  });
  assert.ok(ticks > 0, 'timers fired while the model ran');
  const probe = await gen.probe('cpu');
  assert.equal(probe.provider, 'cpu');
});

test('a stop ends the generation with what it had', async () => {
  const abort = new AbortController();
  let seen = 0;
  const p = gen.generate({ modelDir: DEFAULT_MODEL_DIR, prompts: ['Human: Tell me a long story.\n\nAssistant:'], sampling: { temperature: 1, seed: 1, maxTokens: 500 }, provider: 'cpu' }, () => {
    if (++seen === 3) abort.abort();
  }, abort.signal);
  await assert.rejects(p, (err: Error) => err instanceof GenerationStopped && err.partial.length === 1 && err.partial[0].finishReason === 'cancelled');
});

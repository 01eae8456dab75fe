// The generation worker's model cache: hits skip the load, the budget releases the least
// recently used idle models first, a model in use is never released under a generation,
// emptying it releases the rest as their generations end, a failed load leaves nothing.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ModelCache } from './model-cache.ts';

const MB = 1_000_000;

function cache(budgetBytes: number) {
  let clock = 0;
  const disposed: string[] = [];
  const loads: string[] = [];
  const c = new ModelCache<string>({ budgetBytes, now: () => ++clock, dispose: async (v) => void disposed.push(v) });
  const get = (dir: string, bytes: number, provider = 'cpu') => c.acquire(dir, provider, bytes, async () => {
    loads.push(`${provider}|${dir}`);
    return { value: dir, bytes };
  });
  const settle = () => new Promise((r) => setImmediate(r));
  return { c, get, disposed, loads, settle };
}

test('a second use of the same model and provider is a hit; another provider is another model', async () => {
  const { c, get, loads } = cache(1000 * MB);
  const a = await get('a', 100 * MB);
  assert.equal(a.hit, false);
  a.release();
  const again = await get('a', 100 * MB);
  assert.equal(again.hit, true);
  assert.equal(again.value, 'a');
  again.release();
  (await get('a', 100 * MB, 'cuda')).release();
  assert.deepEqual(loads, ['cpu|a', 'cuda|a']);
  assert.equal(c.state().usedBytes, 200 * MB);
  assert.deepEqual(c.state().models.map((m) => `${m.provider}|${m.dir}`), ['cuda|a', 'cpu|a'], 'most recently used first');
});

test('the budget releases the least recently used idle models before a load, never one in use', async () => {
  const { c, get, disposed, settle } = cache(250 * MB);
  (await get('a', 100 * MB)).release();
  const b = await get('b', 100 * MB); // held
  (await get('a', 100 * MB)).release(); // a is now more recent than b
  (await get('c', 100 * MB)).release(); // 300 MB > 250: b is older but in use, so a goes
  await settle();
  assert.deepEqual(disposed, ['a']);
  assert.deepEqual(c.state().models.map((m) => m.dir).sort(), ['b', 'c']);
  b.release();
  (await get('d', 100 * MB)).release();
  await settle();
  assert.deepEqual(disposed, ['a', 'c'], "c, idle and least recently used (b's generation ended after it), makes room for d");
  assert.equal(c.state().usedBytes, 200 * MB);
});

test('a model larger than the budget is loaded for its generation and released after it', async () => {
  const { c, get, disposed, settle } = cache(50 * MB);
  const big = await get('big', 100 * MB);
  assert.equal(big.value, 'big');
  await settle();
  assert.deepEqual(disposed, []);
  big.release();
  await settle();
  assert.deepEqual(disposed, ['big']);
  assert.equal(c.state().usedBytes, 0);
});

test('emptying the cache releases idle models now and those in use when they are done; a smaller budget releases at once', async () => {
  const { c, get, disposed, settle, loads } = cache(1000 * MB);
  (await get('a', 100 * MB)).release();
  const b = await get('b', 100 * MB);
  c.clear();
  await settle();
  assert.deepEqual(disposed, ['a']);
  assert.deepEqual(c.state().models, []);
  b.release();
  b.release(); // twice is once
  await settle();
  assert.deepEqual(disposed, ['a', 'b']);
  (await get('b', 100 * MB)).release();
  assert.equal(loads.filter((l) => l === 'cpu|b').length, 2, 'an emptied model loads again');
  (await get('c', 300 * MB)).release();
  c.setBudget(350 * MB);
  await settle();
  assert.deepEqual(disposed, ['a', 'b', 'b']);
  assert.equal(c.state().budgetBytes, 350 * MB);
});

test('a failed load leaves nothing behind, and the next request loads again', async () => {
  const c = new ModelCache<string>({ budgetBytes: 1000 * MB, dispose: async () => undefined });
  await assert.rejects(c.acquire('x', 'cpu', MB, async () => { throw new Error('no config.json'); }), /no config\.json/);
  assert.deepEqual(c.state().models, []);
  const ok = await c.acquire('x', 'cpu', MB, async () => ({ value: 'x', bytes: MB }));
  assert.equal(ok.hit, false);
});

test('a request for a model that is still loading waits for that load', async () => {
  const c = new ModelCache<string>({ budgetBytes: 1000 * MB, dispose: async () => undefined });
  let loads = 0;
  let finish!: () => void;
  const load = () => new Promise<{ value: string; bytes: number }>((resolve) => {
    loads++;
    finish = () => resolve({ value: 'm', bytes: MB });
  });
  const first = c.acquire('m', 'cpu', MB, load);
  const second = c.acquire('m', 'cpu', MB, load);
  finish();
  const [a, b] = await Promise.all([first, second]);
  assert.equal(loads, 1);
  assert.deepEqual([a.hit, b.hit], [false, true]);
  assert.equal(c.state().models[0].users, 2);
});

test('makeRoom releases idle models, least recently used first, until the bytes fit; a model in use stays', async () => {
  const { c, get, disposed, settle } = cache(300 * MB);
  (await get('a', 100 * MB)).release();
  (await get('b', 100 * MB)).release();
  const held = await get('c', 100 * MB);
  c.makeRoom(50 * MB); // 300 + 50 > 300: the oldest idle one goes
  await settle();
  assert.deepEqual(disposed, ['a']);
  c.makeRoom(250 * MB); // only c (in use) may stay
  await settle();
  assert.deepEqual(disposed, ['a', 'b']);
  assert.deepEqual(c.state().models.map((m) => m.dir), ['c']);
  held.release();
});

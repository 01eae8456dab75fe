// The IPC handler without Electron: only the app's own page (main frame, app origin) is
// answered; params are validated with the contract's validators before the service sees
// them; failures come back as { ok: false, error: sentence }, never as a throw.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { APP_ORIGIN } from './channels.ts';
import { createCallHandler, isTrustedSender } from './ipc.ts';

const page = { url: `${APP_ORIGIN}/index.html`, isMainFrame: true };

test('only the main frame of the app origin is trusted', () => {
  assert.equal(isTrustedSender(page), true);
  assert.equal(isTrustedSender({ url: `${APP_ORIGIN}/datasets?x=1`, isMainFrame: true }), true);
  for (const sender of [
    { url: `${APP_ORIGIN}/index.html`, isMainFrame: false },
    { url: 'https://example.com/', isMainFrame: true },
    { url: 'app://studio.evil/index.html', isMainFrame: true },
    { url: 'file:///tmp/index.html', isMainFrame: true },
    { url: 'http://127.0.0.1:5178/', isMainFrame: true },
    { url: undefined, isMainFrame: true },
    { url: 'not a url', isMainFrame: true },
  ]) assert.equal(isTrustedSender(sender), false, JSON.stringify(sender));
});

test('calls from a foreign sender are refused before anything runs', async () => {
  const calls: unknown[] = [];
  const refused: string[] = [];
  const handle = createCallHandler(async (m, p) => { calls.push([m, p]); return 'ran'; }, { onRefused: (why) => refused.push(why) });
  const reply = await handle({ url: 'https://example.com/', isMainFrame: true }, 'datasets.list', {});
  assert.equal(reply.ok, false);
  assert.match(!reply.ok ? reply.error : '', /^An API call from https:\/\/example\.com\/ was refused: only the studio's own page may call it\.$/);
  assert.equal((await handle({ url: page.url, isMainFrame: false }, 'datasets.list', {})).ok, false);
  assert.deepEqual(calls, []);
  assert.equal(refused.length, 2);
});

test('params are validated by the contract; the service gets only checked params', async () => {
  const calls: unknown[] = [];
  const handle = createCallHandler(async (m, p) => { calls.push([m, p]); return { m }; });
  assert.deepEqual(await handle(page, 'datasets.examples', { datasetId: 2, limit: 10 }), { ok: true, result: { m: 'datasets.examples' } });
  assert.deepEqual(calls, [['datasets.examples', { datasetId: 2, limit: 10 }]]);
  const bad = await handle(page, 'datasets.examples', { datasetId: 2, limit: 10_000 });
  assert.equal(bad.ok, false);
  assert.match(!bad.ok ? bad.error : '', /limit must be a whole number from 1 to 500, not 10000\./);
  const unknown = await handle(page, 'fs.readFile', { path: '/etc/passwd' });
  assert.match(!unknown.ok ? unknown.error : '', /"fs\.readFile" is not a method/);
  assert.equal(calls.length, 1);
});

test("a failing method's sentence comes back as data", async () => {
  const handle = createCallHandler(async () => { throw new Error('There is no dataset #9; reload the list.'); });
  assert.deepEqual(await handle(page, 'datasets.stats', { datasetId: 9 }), { ok: false, error: 'There is no dataset #9; reload the list.' });
});

// afd serve: the token guards every /api/ request, methods answer with JSON or a 400
// sentence, server-sent events carry a job's progress, the renderer is served with a
// strict CSP, and the server listens on the loopback interface only.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { openDatabase } from '../../db/database.ts';
import { tempFiles } from '../../test/support/temp-dir.ts';
import { FakeGeneration } from '../api/testing.ts';
import type { StudioEvent } from '../api/contract.ts';
import { startServer } from './server.ts';

const tmp = tempFiles('server');
const staticDir = join(tmp.dir, 'dist');
mkdirSync(join(staticDir, 'assets'), { recursive: true });
writeFileSync(join(staticDir, 'index.html'), '<!doctype html><title>AfD</title><script type="module" src="/assets/app.js"></script>');
writeFileSync(join(staticDir, 'assets', 'app.js'), 'console.log(1)');

const db = await openDatabase(':memory:');
const server = await startServer({ db, port: 0, staticDir, service: { generation: new FakeGeneration() } });
after(async () => {
  await server.close();
  db.close();
});
const base = `http://127.0.0.1:${server.port}`;

const post = (method: string, body: unknown, token: string | null = server.token): Promise<Response> =>
  fetch(`${base}/api/${method}`, { method: 'POST', headers: { 'Content-Type': 'application/json', ...(token === null ? {} : { Authorization: `Bearer ${token}` }) }, body: JSON.stringify(body) });

test('the printed address is on the loopback interface and carries the token', () => {
  assert.equal(server.host, '127.0.0.1');
  assert.equal(server.url, `http://127.0.0.1:${server.port}/?token=${server.token}`);
  assert.ok(server.token.length >= 40);
});

test('without the token every /api/ request is refused with 401', async () => {
  for (const res of [await post('datasets.list', {}, null), await post('datasets.list', {}, 'wrong'), await fetch(`${base}/api/events`)]) {
    assert.equal(res.status, 401);
    assert.match(((await res.json()) as { error: string }).error, /no valid token/);
  }
});

test('with the token a method answers 200 with JSON; bad params and failures are 400 with a sentence', async () => {
  const ok = await post('datasets.list', {});
  assert.equal(ok.status, 200);
  assert.deepEqual(await ok.json(), []);
  const viaQuery = await fetch(`${base}/api/models.list?token=${server.token}`, { method: 'POST', body: '' });
  assert.equal(viaQuery.status, 200);
  assert.equal(((await viaQuery.json()) as { kind: string }[])[0].kind, 'builtin');

  const bad = await post('datasets.examples', { datasetId: 'x' });
  assert.equal(bad.status, 400);
  assert.match(((await bad.json()) as { error: string }).error, /^The request "datasets\.examples" was refused: datasetId must be/);
  const missing = await post('datasets.examples', { datasetId: 7 });
  assert.equal(missing.status, 400);
  assert.match(((await missing.json()) as { error: string }).error, /There is no dataset #7/);
  const unknown = await post('nope', {});
  assert.equal(unknown.status, 400);
  const notJson = await fetch(`${base}/api/datasets.list`, { method: 'POST', headers: { Authorization: `Bearer ${server.token}` }, body: '{' });
  assert.equal(notJson.status, 400);
  assert.match(((await notJson.json()) as { error: string }).error, /not valid JSON/);
  assert.equal((await fetch(`${base}/api/datasets.list`, { headers: { Authorization: `Bearer ${server.token}` } })).status, 405);
});

test("server-sent events deliver a job's progress and its end", async () => {
  const ac = new AbortController();
  const res = await fetch(`${base}/api/events?token=${server.token}`, { signal: ac.signal });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  const seen: StudioEvent[] = [];
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  const content = Array.from({ length: 50 }, (_, i) => JSON.stringify({ prompt: `p${i}`, response: `r${i}` })).join('\n');
  const started = await post('datasets.importText', { name: 'sse', fileName: 'sse.jsonl', content });
  assert.equal(started.status, 200);
  const run = (await started.json()) as { id: number };
  let buffer = '';
  while (!seen.some((e) => e.type === 'run.status' && e.run.id === run.id && e.run.status === 'done')) {
    const { value, done } = await reader.read();
    assert.equal(done, false, 'the stream ended early');
    buffer += value;
    const parts = buffer.split('\n\n');
    buffer = parts.pop() ?? '';
    for (const p of parts) if (p.startsWith('data: ')) seen.push(JSON.parse(p.slice(6)) as StudioEvent);
  }
  ac.abort();
  assert.ok(seen.some((e) => e.type === 'run.progress' && e.runId === run.id), 'progress events arrived');
  assert.ok(seen.some((e) => e.type === 'run.status' && e.run.id === run.id && e.run.status === 'running'));
});

test('the renderer is served with a strict Content-Security-Policy; nothing outside it', async () => {
  const page = await fetch(`${base}/`);
  assert.equal(page.status, 200);
  const csp = page.headers.get('content-security-policy') ?? '';
  assert.match(csp, /default-src 'self'/);
  assert.match(csp, /script-src 'self'(;|$)/);
  assert.doesNotMatch(csp, /https?:|\*/);
  assert.match(await page.text(), /<title>AfD<\/title>/);
  assert.equal((await fetch(`${base}/datasets`)).status, 200, 'a view route gets the page');
  const js = await fetch(`${base}/assets/app.js`);
  assert.match(js.headers.get('content-type') ?? '', /javascript/);
  assert.equal((await fetch(`${base}/assets/none.js`)).status, 404);
  // A raw request, so that ../ reaches the server unnormalized.
  for (const path of ['/../../etc/passwd', '/%2e%2e/%2e%2e/etc/passwd', '/..%2f..%2fetc%2fpasswd']) {
    const body = await new Promise<string>((resolve, reject) => {
      request({ host: '127.0.0.1', port: server.port, path }, (r) => {
        let text = '';
        r.on('data', (d: Buffer) => { text += d.toString(); });
        r.on('end', () => resolve(text));
      }).on('error', reject).end();
    });
    assert.doesNotMatch(body, /root:/, path);
  }
});

test('the server does not answer on other interfaces', async () => {
  const { networkInterfaces } = await import('node:os');
  const other = Object.values(networkInterfaces()).flat().find((i) => i !== undefined && i.family === 'IPv4' && !i.internal);
  if (other === undefined) return; // no other interface on this machine: nothing to probe
  await assert.rejects(fetch(`http://${other.address}:${server.port}/`, { signal: AbortSignal.timeout(2000) }));
});

test('afd serve --port 0 prints the address of the port it got', async () => {
  const bin = fileURLToPath(new URL('../../bin/afd.js', import.meta.url));
  const child = spawn(process.execPath, [bin, 'serve', '--port', '0', '--db', tmp.file('serve.db', '')], { stdio: ['ignore', 'pipe', 'pipe'] });
  try {
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        const m = /AfD Studio at (\S+)/.exec(out);
        if (m !== null) resolve(m[1]);
      });
      child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
      child.on('exit', (code) => reject(new Error(`afd serve exited (${code}): ${err}`)));
    });
    const url = new URL(line);
    assert.equal(url.hostname, '127.0.0.1');
    assert.notEqual(url.port, '0');
    const token = url.searchParams.get('token') ?? '';
    const res = await fetch(`${url.origin}/api/status`, { method: 'POST', headers: { Authorization: `Bearer ${token}` }, body: '{}' });
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { dbPath: string }).dbPath.endsWith('serve.db'), true);
  } finally {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
});

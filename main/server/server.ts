// `afd serve`: the studio's API over HTTP on this machine, and the built renderer.
//   POST /api/<method>  JSON params -> 200 JSON result | 400 {error} | 401 without the token
//   GET  /api/events    server-sent events, one StudioEvent per message
//   GET  /...           renderer/dist, with a strict Content-Security-Policy
// Every /api/ request needs the per-launch random token (Authorization: Bearer, or
// ?token= for EventSource, which cannot set headers); other pages and processes on the
// machine do not know it. The server binds the loopback interface unless told otherwise.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { Stats } from 'node:fs';
import { createReadStream, existsSync, statSync } from 'node:fs';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { StudioDatabase } from '../../db/database.ts';
import { ValidationError } from '../api/contract.ts';
import type { ServiceOptions } from '../api/service.ts';
import { StudioService } from '../api/service.ts';
import { StudioFiles } from '../jobs/files.ts';
import { JobRunner } from '../jobs/runner.ts';
import { CONTENT_SECURITY_POLICY } from './csp.ts';

export const RENDERER_DIST = fileURLToPath(new URL('../../renderer/dist', import.meta.url));
/** Uploads arrive as JSON text: room for the largest dataset content the contract allows. */
const MAX_BODY = 300 * 1024 * 1024;
const HEARTBEAT_MS = 15_000;

export interface ServerOptions {
  db: StudioDatabase;
  port?: number;
  host?: string;
  /** Default: 32 random bytes, base64url. */
  token?: string;
  /** The built renderer (default renderer/dist). */
  staticDir?: string;
  /** An existing runner (default: one opened over db, closed with the server). */
  runner?: JobRunner;
  /** Passed to the service (tests give a fake generation backend). */
  service?: Partial<Omit<ServiceOptions, 'db' | 'runner'>>;
}

export interface RunningServer {
  url: string;
  token: string;
  port: number;
  host: string;
  service: StudioService;
  close(): Promise<void>;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.json': 'application/json', '.svg': 'image/svg+xml', '.png': 'image/png', '.ico': 'image/x-icon', '.woff2': 'font/woff2', '.txt': 'text/plain; charset=utf-8', '.map': 'application/json',
};

const SECURITY_HEADERS = {
  'Content-Security-Policy': CONTENT_SECURITY_POLICY,
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

export async function startServer(options: ServerOptions): Promise<RunningServer> {
  const host = options.host ?? '127.0.0.1';
  const token = options.token ?? randomBytes(32).toString('base64url');
  const staticDir = resolve(options.staticDir ?? RENDERER_DIST);
  let files: StudioFiles | undefined;
  let runner = options.runner;
  if (runner === undefined) {
    files = StudioFiles.forDatabase(options.db.file);
    runner = await JobRunner.open({ db: options.db, files });
  }
  const service = new StudioService({ ...options.service, db: options.db, runner });
  const streams = new Set<ServerResponse>();

  const server: Server = createServer((req, res) => {
    void handle(req, res).catch((err: Error) => {
      if (!res.headersSent) json(res, 500, { error: `The server failed: ${err.message}` });
      else res.destroy();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (!url.pathname.startsWith('/api/')) return serveStatic(req, res, staticDir, url.pathname);
    if (!authorized(req, url, token)) return json(res, 401, { error: 'This request has no valid token; open the address that `afd serve` printed, which carries it.' });
    if (url.pathname === '/api/events') {
      if (req.method !== 'GET') return json(res, 405, { error: 'Events are read with GET.' });
      return events(req, res);
    }
    if (req.method !== 'POST') return json(res, 405, { error: 'API methods are called with POST and a JSON body.' });
    const method = decodeURIComponent(url.pathname.slice('/api/'.length));
    let params: unknown;
    try {
      params = await readJson(req);
    } catch (err) {
      return json(res, (err as { status?: number }).status ?? 400, { error: (err as Error).message });
    }
    try {
      const result = await service.dispatch(method, params);
      return json(res, 200, result === undefined ? null : result);
    } catch (err) {
      const e = err as Error;
      // Bad params and failures the user can act on are both 400 with their sentence.
      return json(res, 400, { error: e instanceof ValidationError ? e.message : e.message || 'The request failed.' });
    }
  }

  function events(req: IncomingMessage, res: ServerResponse): void {
    res.writeHead(200, { ...SECURITY_HEADERS, 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
    res.write(': AfD Studio events\n\n');
    streams.add(res);
    const unsubscribe = service.onEvent((e) => res.write(`data: ${JSON.stringify(e)}\n\n`));
    const heartbeat = setInterval(() => res.write(': keep-alive\n\n'), HEARTBEAT_MS);
    heartbeat.unref();
    const end = (): void => {
      clearInterval(heartbeat);
      unsubscribe();
      streams.delete(res);
    };
    req.on('close', end);
    res.on('error', end);
  }

  await new Promise<void>((resolveListen, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(new Error(err.code === 'EADDRINUSE' ? `Port ${options.port} on ${host} is already in use; choose another with --port, or --port 0 for any free one.` : `Could not listen on ${host}:${options.port ?? 0} (${err.message}).`, { cause: err }));
    });
    server.listen(options.port ?? 0, host, () => resolveListen());
  }).catch(async (err: unknown) => {
    await service.close();
    if (files !== undefined) {
      await runner.close();
      files.dispose();
    }
    throw err;
  });
  const port = (server.address() as AddressInfo).port;
  const urlHost = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${urlHost}:${port}/?token=${token}`,
    token, port, host, service,
    close: async () => {
      for (const s of streams) s.end();
      await new Promise<void>((r) => server.close(() => r()));
      server.closeAllConnections();
      await service.close();
      if (files !== undefined) {
        await runner.close();
        files.dispose();
      }
    },
  };
}

function authorized(req: IncomingMessage, url: URL, token: string): boolean {
  const header = req.headers.authorization;
  const given = header?.startsWith('Bearer ') ? header.slice(7) : url.searchParams.get('token');
  if (given === null || given === undefined) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...SECURITY_HEADERS, 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BODY) throw Object.assign(new Error(`The request is larger than ${MAX_BODY / 2 ** 20} MB; import large files by their path instead.`), { status: 413 });
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new Error('The request body is not valid JSON; send the parameters as a JSON object.');
  }
}

function serveStatic(req: IncomingMessage, res: ServerResponse, root: string, pathname: string): void {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, SECURITY_HEADERS).end();
    return;
  }
  if (!existsSync(join(root, 'index.html'))) {
    const page = '<!doctype html><meta charset="utf-8"><title>AfD Studio</title><p>The studio\'s interface is not built yet: run <code>npm run build:renderer</code>, then reload this page.</p>';
    res.writeHead(503, { ...SECURITY_HEADERS, 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' }).end(page);
    return;
  }
  let rel: string;
  try {
    rel = normalize(decodeURIComponent(pathname)).replace(/^([/\\])+/, '');
  } catch {
    res.writeHead(400, SECURITY_HEADERS).end();
    return;
  }
  let file = resolve(root, rel === '' ? 'index.html' : rel);
  if (file !== root && !file.startsWith(root + sep)) {
    res.writeHead(404, SECURITY_HEADERS).end();
    return;
  }
  let st = statOrNull(file);
  if (st?.isDirectory()) {
    file = join(file, 'index.html');
    st = statOrNull(file);
  }
  // Views are routes of one page: a path without an extension gets the page.
  if (st === null && extname(file) === '') {
    file = join(root, 'index.html');
    st = statOrNull(file);
  }
  if (st === null || !st.isFile()) {
    res.writeHead(404, { ...SECURITY_HEADERS, 'Content-Type': 'text/plain; charset=utf-8' }).end('Not found.');
    return;
  }
  const html = file.endsWith('.html');
  res.writeHead(200, {
    ...SECURITY_HEADERS,
    'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream',
    'Content-Length': st.size,
    // Vite names assets by content hash; the page itself must always be fresh.
    'Cache-Control': html ? 'no-store' : 'public, max-age=31536000, immutable',
  });
  if (req.method === 'HEAD') res.end();
  else createReadStream(file).pipe(res);
}

function statOrNull(file: string): Stats | null {
  try {
    return statSync(file);
  } catch {
    return null;
  }
}

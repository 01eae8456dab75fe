// The renderer in a real browser for tests: one Vite build per test process, Debian's
// Chromium through playwright-core (never a downloaded browser), and screenshots at
// 1280x800 into a temp folder, or into AFD_SCREENSHOTS (e.g. docs/screenshots).
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { chromium } from 'playwright-core';
import { skipWithout } from './components.ts';

export const REPO = fileURLToPath(new URL('../../', import.meta.url));
export const CHROMIUM = process.env.AFD_CHROMIUM ?? '/usr/bin/chromium';
export const VIEWPORT = { width: 1280, height: 800 } as const;

/**
 * A skip reason for node:test where there is no Chromium, or false (see
 * test/support/components.ts); `tests` names them in the notice. On CI, missing means failing.
 */
export function chromiumSkip(tests: string): string | false {
  return skipWithout({
    key: 'chromium',
    name: 'Chromium',
    absence: () => (existsSync(CHROMIUM) ? false : `there is no ${CHROMIUM}`),
    howToGet: 'apt-get install chromium (Debian), or set AFD_CHROMIUM to a Chromium binary',
  }, tests);
}

let built: Promise<string> | undefined;

/** Builds the renderer once per process into a temp folder (removed at exit); returns it. */
export function buildRenderer(): Promise<string> {
  built ??= (async () => {
    const out = mkdtempSync(join(tmpdir(), 'afd-renderer-'));
    process.on('exit', () => rmSync(out, { recursive: true, force: true }));
    const { build } = await import('vite');
    await build({ configFile: join(REPO, 'renderer/vite.config.ts'), build: { outDir: out, emptyOutDir: true }, logLevel: 'error' });
    return out;
  })();
  return built;
}

/** Chromium, headless, closed after the file's tests (call at the top level of a test file). */
export async function launchChromium(): Promise<Browser> {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'] });
  after(() => browser.close());
  return browser;
}

/** Where screenshots go: AFD_SCREENSHOTS (relative to the repository) or a temp folder. */
export function screenshotDir(): string {
  const wanted = process.env.AFD_SCREENSHOTS;
  const dir = wanted !== undefined && wanted !== '' ? resolve(REPO, wanted) : join(tmpdir(), 'afd-screenshots');
  mkdirSync(dir, { recursive: true });
  return dir;
}

export async function screenshot(page: Page, name: string): Promise<string> {
  const file = join(screenshotDir(), `${name}.png`);
  await page.screenshot({ path: file });
  return file;
}

/** Fails the test with the page's own errors (uncaught exceptions, console errors). */
export function collectPageErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(`console error: ${m.text()}`);
  });
  return errors;
}

/** A static server for a built renderer on 127.0.0.1 (for tests with a fake API). */
export async function serveDir(dir: string): Promise<{ origin: string; close(): Promise<void> }> {
  const { createServer } = await import('node:http');
  const { readFile } = await import('node:fs/promises');
  const { extname, normalize } = await import('node:path');
  const types: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml', '.png': 'image/png' };
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)).replace(/^([/\\])+/, '');
    readFile(join(dir, path === '' ? 'index.html' : path)).then((body) => {
      res.writeHead(200, { 'Content-Type': types[extname(path === '' ? 'index.html' : path)] ?? 'application/octet-stream' });
      res.end(body);
    }, () => {
      res.writeHead(404);
      res.end();
    });
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const port = (server.address() as { port: number }).port;
  return { origin: `http://127.0.0.1:${port}`, close: () => new Promise<void>((ok) => server.close(() => ok())) };
}

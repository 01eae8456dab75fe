// The studio as the end-to-end tests drive it: `afd serve`'s server on a new temporary
// database, the built renderer, and Debian's Chromium; closed when the test file ends.
import { join } from 'node:path';
import { after } from 'node:test';
import type { Browser } from 'playwright-core';
import { openDatabase } from '../../db/database.ts';
import { startServer } from '../../main/server/server.ts';
import { buildRenderer, launchChromium } from './browser.ts';
import { tempFiles } from './temp-dir.ts';

export async function startStudio(prefix: string): Promise<{ tmp: ReturnType<typeof tempFiles>; browser: Browser; server: Awaited<ReturnType<typeof startServer>> }> {
  const tmp = tempFiles(prefix);
  const [staticDir, browser] = await Promise.all([buildRenderer(), launchChromium()]);
  const db = await openDatabase(join(tmp.dir, 'studio.db'));
  const server = await startServer({ db, port: 0, staticDir });
  after(async () => {
    await server.close();
    db.close();
  });
  return { tmp, browser, server };
}

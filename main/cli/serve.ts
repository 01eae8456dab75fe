// `afd serve`: the studio in a browser, for machines without a display (or a preference
// for one). Runs until Ctrl-C; running jobs pause (or cancel, if they cannot) on the way out.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { JobRunner } from '../jobs/runner.ts';
import { RENDERER_DIST, startServer } from '../server/server.ts';
import { openStudio } from '../startup/open-studio.ts';
import { DB_OPTION, DB_USAGE } from './studio.ts';

const USAGE = `usage: afd serve [--port N] [--host 127.0.0.1] ${DB_USAGE}`;
const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);

export async function serveCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { ...DB_OPTION, port: { type: 'string', default: '5178' }, host: { type: 'string', default: '127.0.0.1' }, help: { type: 'boolean', default: false } } });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port must be a whole number from 0 to 65535 (0 picks a free port), not "${values.port}".`);
  await ensureRendererBuilt();
  const studio = await openStudio(values.db);
  const runner = new JobRunner({ db: studio.db, files: studio.files });
  let server;
  try {
    server = await startServer({ db: studio.db, runner, port, host: values.host });
  } catch (err) {
    await runner.close();
    studio.close();
    throw err;
  }
  if (!LOOPBACK.has(values.host)) console.error(`afd serve: listening on ${values.host}, not only this machine; anyone who learns the address with its token can use the studio.`);
  console.log(`AfD Studio at ${server.url}`);
  const running = server;
  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
  console.log('Stopping: running jobs pause and can be resumed later.');
  await running.close();
  await runner.close();
  studio.close();
  return 0;
}

/** Builds the interface the first time (a fresh clone has only its sources). */
async function ensureRendererBuilt(): Promise<void> {
  if (existsSync(join(RENDERER_DIST, 'index.html'))) return;
  console.error('afd serve: building the interface once (renderer/dist)...');
  const { build } = await import('vite');
  await build({ configFile: fileURLToPath(new URL('../../renderer/vite.config.ts', import.meta.url)), logLevel: 'warn' });
}

// `afd train-tiny`: trains the built-in tiny GPT as a job (a demonstration of the job
// runner: recorded in the store, a progress line, Ctrl-C cancels with a checkpoint, and
// `afd runs resume` continues it), started by the StudioService's runs.start.
import { parseArgs } from 'node:util';
import type { JsonObject } from '../../db/json.ts';
import { wholeNumber } from './output.ts';
import { followInForeground } from './runs.ts';
import { DB_OPTION, DB_USAGE, withService } from './studio.ts';

const USAGE = `usage: afd train-tiny --steps N [--checkpoint-every K] [--seed 0] [--lr 0.003] [--batch 4] [--threads 1] [--provider cpu|webgpu|cuda] [${DB_USAGE}]`;

export async function trainTiny(argv: string[]): Promise<number> {
  const str = { type: 'string' } as const;
  const { values } = parseArgs({
    args: argv,
    options: { ...DB_OPTION, steps: str, 'checkpoint-every': str, seed: str, lr: str, batch: str, threads: str, provider: str, help: { type: 'boolean', default: false } },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (values.steps === undefined) throw new Error(`Say how many steps to train with --steps: ${USAGE}`);
  // Only what the user gave; the job kind fills in and records every default.
  const config: JsonObject = { steps: wholeNumber('steps', values.steps, 0, 1) };
  if (values['checkpoint-every'] !== undefined) config.checkpointEvery = wholeNumber('checkpoint-every', values['checkpoint-every'], 0, 1);
  if (values.seed !== undefined) config.seed = wholeNumber('seed', values.seed, 0);
  if (values.batch !== undefined) config.batch = wholeNumber('batch', values.batch, 0, 1);
  if (values.threads !== undefined) config.threads = wholeNumber('threads', values.threads, 0, 1);
  if (values.lr !== undefined) {
    const lr = Number(values.lr);
    if (!(lr > 0)) throw new Error(`--lr must be a positive number, not '${values.lr}'.`);
    config.lr = lr;
  }
  if (values.provider !== undefined) config.provider = values.provider;
  return withService(values.db, async ({ service }) => {
    const run = await service.call('runs.start', { kind: 'train-tiny-lm', config });
    return followInForeground(service, run.id, 'Training', ['loss']);
  });
}

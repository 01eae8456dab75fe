// The worker side of the test kind `counter` (see counter.ts).
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { writeFileAtomic } from '../../../native-models/runtime/atomic-file.ts';
import type { WorkerRun } from '../kind.ts';
import type { CounterConfig, CounterWrite } from './counter.ts';

export const run: WorkerRun<CounterConfig, CounterWrite> = async (ctx) => {
  const c = ctx.config;
  let state = { step: 0, sum: 0 };
  if (ctx.checkpoint !== null) state = JSON.parse(await readFile(ctx.checkpoint, 'utf8')) as typeof state;
  ctx.started({ step: state.step });
  const file = join(ctx.runDir, 'checkpoint.json');
  let saved = state.step;
  const save = async (): Promise<void> => {
    if (saved === state.step) return;
    await ctx.flush();
    await writeFileAtomic(file, Buffer.from(JSON.stringify(state)));
    saved = state.step;
    ctx.checkpointWritten(file, saved);
  };
  while (state.step < c.steps) {
    if (ctx.stopRequested !== null) {
      await save();
      return { status: 'stopped', step: state.step };
    }
    const next = state.step + 1;
    if (next === c.failAt) throw new Error(`The counter was told to fail at step ${next}.`);
    if (next === c.exitAt) process.exit(3);
    const until = performance.now() + c.blockMs;
    while (performance.now() < until); // blocks, like session.run
    if (c.delayMs > c.blockMs) await sleep(c.delayMs - c.blockMs);
    state = { step: next, sum: state.sum + next };
    ctx.metric(next, { value: next, sum: state.sum });
    if (c.writes) await ctx.write({ step: next });
    ctx.progress(next, c.steps);
    if (next % 10 === 0) ctx.log(`at step ${next}`);
    if (next % c.checkpointEvery === 0) await save();
  }
  await save();
  return { status: 'done', result: { steps: state.step, sum: state.sum } };
};

// A job kind for the runner's tests: counts to `steps`, one step every `delayMs`
// (`blockMs` of it spent blocking the thread, as session.run does), with a checkpoint
// every `checkpointEvery` steps; it can fail, or kill its own thread, at a given step.
import type { JsonObject } from '../../../db/json.ts';
import { flag, integer, oneOf } from '../../schema/fields.ts';
import { configSchema, parseConfig } from '../config.ts';
import type { JobKind } from '../kind.ts';

export type CounterConfig = {
  steps: number;
  delayMs: number;
  blockMs: number;
  checkpointEvery: number;
  device: 'cpu' | 'gpu' | 'io';
  /** 0: never. */
  failAt: number;
  exitAt: number;
  /** Send each step as a write; the host refuses the one of this step (0: none). */
  writes: boolean;
  refuseWriteAt: number;
};

/** What the host stored of the writes, by run (tests read it). */
export type CounterWrite = { step: number };

export const counterWrites = new Map<number, number[]>();

const CONFIG = configSchema({
  steps: integer(1),
  delayMs: integer(0, undefined, { default: 5 }),
  blockMs: integer(0, undefined, { default: 0 }),
  checkpointEvery: integer(1, undefined, { default: 5 }),
  device: oneOf(['cpu', 'gpu', 'io'], { default: 'cpu' }),
  failAt: integer(0, undefined, { default: 0 }),
  exitAt: integer(0, undefined, { default: 0 }),
  writes: flag({ default: false }),
  refuseWriteAt: integer(0, undefined, { default: 0 }),
});

export const counterKind: JobKind<CounterConfig, CounterWrite> = {
  name: 'counter',
  summary: 'counts (for tests)',
  worker: new URL('./counter.worker.ts', import.meta.url),
  resume: 'checkpoint',
  pausable: true,
  parseConfig: (raw: JsonObject): CounterConfig => parseConfig('counter', CONFIG, raw),
  device: (c) => c.device,
  finish: (_ctx, _config, result) => ({ ...result, finishedBy: 'counter' }),
  apply({ run }, config, payload) {
    const step = payload.step;
    if (step === config.refuseWriteAt) throw new Error(`The store refused the write of step ${step}.`);
    counterWrites.set(run.id, [...(counterWrites.get(run.id) ?? []), step]);
  },
};

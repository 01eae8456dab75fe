// A job kind for the runner's tests: counts to `steps`, one step every `delayMs`
// (`blockMs` of it spent blocking the thread, as session.run does), with a checkpoint
// every `checkpointEvery` steps; it can fail, or kill its own thread, at a given step.
import type { JsonObject } from '../../../db/json.ts';
import { integer, oneOf } from '../config.ts';
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

export const counterKind: JobKind<CounterConfig, CounterWrite> = {
  name: 'counter',
  summary: 'counts (for tests)',
  worker: new URL('./counter.worker.ts', import.meta.url),
  resume: 'checkpoint',
  pausable: true,
  parseConfig: (raw: JsonObject): CounterConfig => ({
    steps: integer(raw, 'steps', undefined, 1),
    delayMs: integer(raw, 'delayMs', 5),
    blockMs: integer(raw, 'blockMs', 0),
    checkpointEvery: integer(raw, 'checkpointEvery', 5, 1),
    device: oneOf(raw, 'device', ['cpu', 'gpu', 'io'] as const, 'cpu'),
    failAt: integer(raw, 'failAt', 0),
    exitAt: integer(raw, 'exitAt', 0),
    writes: raw.writes === true,
    refuseWriteAt: integer(raw, 'refuseWriteAt', 0),
  }),
  device: (c) => c.device,
  finish: (_ctx, _config, result) => ({ ...result, finishedBy: 'counter' }),
  apply({ run }, config, payload) {
    const step = payload.step;
    if (step === config.refuseWriteAt) throw new Error(`The store refused the write of step ${step}.`);
    counterWrites.set(run.id, [...(counterWrites.get(run.id) ?? []), step]);
  },
};

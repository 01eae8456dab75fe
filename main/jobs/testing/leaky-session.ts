// A job kind for the runner's tests: its worker leaves behind what a careless stage could,
// an ONNX Runtime session with its own pool of intra-op threads and a timer that keeps the
// thread's event loop alive, and reports how many threads the process had meanwhile. Only
// ending the worker frees them, so the test sees whether the runner ends it with the run.
import { readFileSync } from 'node:fs';
import type { JsonObject } from '../../../db/json.ts';
import { configSchema, parseConfig } from '../config.ts';
import type { JobKind } from '../kind.ts';

/** Intra-op threads of the session it leaves: ORT's pool adds this many less one. */
export const LEAKED_SESSION_THREADS = 3;

/** Threads of the whole process, every worker's included (Linux). */
export const processThreads = (): number => Number(/^Threads:\s+(\d+)/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1] ?? NaN);

const CONFIG = configSchema({});

export const leakySessionKind: JobKind = {
  name: 'leaky-session',
  summary: 'leaves a session and a timer behind (for tests)',
  worker: new URL('./leaky-session.worker.ts', import.meta.url),
  resume: 'restart',
  pausable: false,
  parseConfig: (raw): JsonObject => ({ ...parseConfig('leaky-session', CONFIG, raw) }),
  device: () => 'cpu',
};

// A job kind for the runner's tests: its worker leaves behind what a careless stage could,
// an ONNX Runtime session with its own pool of intra-op threads and a timer that keeps the
// event loop alive, and reports its process id and the malloc tunables it was given. Only
// ending the run's process frees them, so the test sees whether the runner ends it with
// the run.
import type { JsonObject } from '../../../db/json.ts';
import { configSchema, parseConfig } from '../config.ts';
import type { JobKind } from '../kind.ts';

/** Intra-op threads of the session it leaves. */
export const LEAKED_SESSION_THREADS = 3;

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

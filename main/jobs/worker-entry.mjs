// The entry of a job's worker thread. Module hooks registered on the main thread do not
// reach workers in Node 20, and `--import tsx` in a worker's execArgv does not load its
// TypeScript entry either, so the worker registers tsx itself (as bin/afd.js does) and
// then loads the TypeScript harness. Resolved from this file, it works whatever the cwd.
import { register } from 'tsx/esm/api';

register();
await import('./worker.ts');

// The entry of the interactive-generation worker thread: registers tsx (module hooks of
// the main thread do not reach workers) and loads the TypeScript worker, as
// main/jobs/worker-entry.mjs does for jobs.
import { register } from 'tsx/esm/api';

register();
await import('./generation.worker.ts');

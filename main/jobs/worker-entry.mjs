// The entry of a run's process (job-process.ts). The runner starts it with no execArgv, so
// that a parent's test flags stay out, and the process registers tsx itself (as bin/afd.js
// does) before it loads the TypeScript harness. Resolved from this file, it works
// whatever the cwd.
import { register } from 'tsx/esm/api';

register();
await import('./worker.ts');

// A run's own process. The job runner starts one child Node process per run, with an IPC
// channel for the protocol's messages, instead of a worker thread of its own process:
// when the run ends its process exits and every byte it allocated goes back to the
// system. With worker threads, glibc kept what finished SmolLM2 stages had freed (5 GB
// after `rl` and `airl`, docs/benchmarks.md "Memory a finished stage leaves"), and a later
// stage could not use it.
//
// In Electron's main process `fork` starts Electron's own binary, which runs as plain Node
// with ELECTRON_RUN_AS_NODE (set here; it needs the RunAsNode fuse, on by default). If
// that fuse is ever turned off, Electron's utilityProcess is the replacement.
import type { ChildProcess } from 'node:child_process';
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ENTRY = fileURLToPath(new URL('./worker-entry.mjs', import.meta.url));

/** glibc's mmap threshold fixed at 128 KiB: a block above it is mapped on its own and
 *  unmapped when freed, so a run also returns large blocks while it runs (its peak fell by
 *  150-200 MiB on `rl`, docs/benchmarks.md). glibc reads tunables only when a process
 *  starts, which is why the runner sets them for the child. Other C libraries ignore them. */
export const JOB_MALLOC_TUNABLE = 'glibc.malloc.mmap_threshold=131072';

/** The environment of a run's process: the parent's, plus the malloc tunable unless the
 *  user set a threshold of their own, and under Electron the switch that makes its binary Node. */
export function jobEnvironment(env: NodeJS.ProcessEnv, electron = process.versions.electron !== undefined): NodeJS.ProcessEnv {
  const tunables = env.GLIBC_TUNABLES ?? '';
  const out: NodeJS.ProcessEnv = tunables.includes('glibc.malloc.mmap_threshold=') ? { ...env } : { ...env, GLIBC_TUNABLES: tunables === '' ? JOB_MALLOC_TUNABLE : `${tunables}:${JOB_MALLOC_TUNABLE}` };
  if (electron) out.ELECTRON_RUN_AS_NODE = '1';
  return out;
}

/** Run processes alive now: they end with this process, even when it exits in the middle
 *  of a run (a second Ctrl-C). A child whose parent died unannounced (kill -9) ends itself
 *  within 100 ms: worker.ts's watchdog thread. */
const live = new Set<ChildProcess>();
let endWithParent = false;

/** Starts the harness (worker.ts) in a child process; messages are structured clones, as
 *  between threads. */
export function startJobProcess(): ChildProcess {
  // execArgv: [] so that a parent's `--import tsx` or test flags do not reach the child;
  // worker-entry.mjs loads tsx itself. stdout and stderr are the parent's.
  const child = fork(ENTRY, [], { execArgv: [], serialization: 'advanced', env: jobEnvironment(process.env), stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  live.add(child);
  child.once('exit', () => live.delete(child));
  if (!endWithParent) {
    endWithParent = true;
    process.once('exit', () => live.forEach((c) => c.kill('SIGKILL')));
  }
  return child;
}

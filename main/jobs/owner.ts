// Which process owns a queued or running run, and whether that process still exists.
// Several processes may share one database (the app and a CLI in a terminal), so at
// start-up a process may mark as interrupted only the runs whose owner is gone.
//
// An owner is "host|boot|pid". The boot time (whole seconds, from the uptime) tells a
// pid of this boot from the same number reused after a reboot; a pid reused within one
// boot would keep a dead run "running" until that other process ends (rare: pids wrap
// after 4 M on Linux).
import { hostname, uptime } from 'node:os';

const BOOT_TOLERANCE_S = 120;

function bootTime(): number {
  return Math.round(Date.now() / 1000 - uptime());
}

/** The owner string of this process. */
export function processOwner(pid = process.pid): string {
  return `${hostname()}|${bootTime()}|${pid}`;
}

export function parseOwner(owner: string): { host: string; boot: number; pid: number } | undefined {
  const m = /^(.*)\|(\d+)\|(\d+)$/.exec(owner);
  return m === null ? undefined : { host: m[1], boot: Number(m[2]), pid: Number(m[3]) };
}

/** True while the owning process runs. A database is only ever used on one host at a
 *  time (WAL needs shared memory), so an owner on another host is not running here. */
export function isLiveOwner(owner: string): boolean {
  const o = parseOwner(owner);
  if (o === undefined || o.host !== hostname() || Math.abs(o.boot - bootTime()) > BOOT_TOLERANCE_S) return false;
  return isLivePid(o.pid);
}

export function isLivePid(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0); // signal 0 only checks that the process exists
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // exists, owned by another user
  }
}

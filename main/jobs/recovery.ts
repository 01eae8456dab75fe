// Start-up recovery, run by every process that opens the store: the runs that a crashed
// or killed process left queued or running become 'interrupted' (their kind removes what
// the half-done attempt wrote), and files no row references are removed. Runs of live
// processes (another window, a CLI in a terminal) are left alone.
import { isAbsolute } from 'node:path';
import type { StudioDatabase } from '../../db/database.ts';
import type { Run } from '../../db/runs.ts';
import { RunStore } from '../../db/runs.ts';
import type { StudioFiles } from './files.ts';
import type { KindTable } from './kinds.ts';
import { KINDS } from './kinds.ts';
import { isLiveOwner } from './owner.ts';

export interface RecoveryReport {
  interrupted: Run[];
  removedFiles: string[];
  /** Another database whose files folder this is: nothing was swept (StudioFiles.sharedWith). */
  sharedWith: string | null;
}

export async function recoverStore(db: StudioDatabase, files: StudioFiles, options: { kinds?: KindTable; isLive?: (owner: string) => boolean } = {}): Promise<RecoveryReport> {
  const kinds = options.kinds ?? KINDS;
  const isLive = options.isLive ?? isLiveOwner;
  const runs = new RunStore(db);
  const interrupted = db.transaction(() => {
    const marked = runs.interruptAbandoned(isLive);
    for (const run of marked) kinds[run.stage]?.discard?.({ db, run });
    return marked;
  });
  const sharedWith = files.sharedWith();
  const removedFiles = await files.sweep(() => ({
    referenced: db.statement<[], string>(
      `SELECT checkpoint_path FROM runs WHERE checkpoint_path IS NOT NULL
       UNION SELECT path FROM models WHERE path IS NOT NULL UNION SELECT path FROM artifacts`,
    ).pluck().all().filter((p) => !isAbsolute(p)).concat(keptFolders(runs, kinds)),
    isLiveRun: (id) => {
      const run = runs.get(id);
      return run !== undefined && (run.status === 'queued' || run.status === 'running') && run.owner !== null && isLive(run.owner);
    },
  }));
  return { interrupted, removedFiles, sharedWith };
}

/** The folders of runs whose kind keeps its whole folder, in any status: a finished run's
 *  folder is its output, an unfinished one's is the state a resume continues from. */
function keptFolders(runs: RunStore, kinds: KindTable): string[] {
  return runs.list().filter((r) => kinds[r.stage]?.keepsFolder === true).map((r) => `runs/${r.id}`);
}

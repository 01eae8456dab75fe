// Opening the studio's store, shared by every front door (the CLI, `afd serve`, the
// Electron window): where the database lives (a given path, or the user-data folder of
// the platform), its files folder, and start-up recovery.
import { mkdirSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, isAbsolute, join, win32 } from 'node:path';
import type { StudioDatabase } from '../../db/database.ts';
import { openDatabase } from '../../db/database.ts';
import { StudioFiles } from '../jobs/files.ts';
import type { RecoveryReport } from '../jobs/recovery.ts';
import { recoverStore } from '../jobs/recovery.ts';

/** studio.db in the platform's folder for application data. */
export function defaultDatabasePath(env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform, home = homedir()): string {
  if (platform === 'darwin') return join(home, 'Library', 'Application Support', 'AfD Studio', 'studio.db');
  if (platform === 'win32') return win32.join(env.APPDATA ?? win32.join(home, 'AppData', 'Roaming'), 'AfD Studio', 'studio.db');
  // The XDG spec says to ignore a relative XDG_DATA_HOME.
  const data = env.XDG_DATA_HOME !== undefined && isAbsolute(env.XDG_DATA_HOME) ? env.XDG_DATA_HOME : join(home, '.local', 'share');
  return join(data, 'afd-studio', 'studio.db');
}

export interface Studio {
  db: StudioDatabase;
  files: StudioFiles;
  recovery: RecoveryReport;
  close(): void;
}

/** Opens (creating if needed) the database at `file` or the default place, and
 *  recovers what a crashed process left behind. */
export async function openStudio(file: string | undefined): Promise<Studio> {
  const path = file ?? defaultDatabasePath();
  if (file === undefined) {
    try {
      mkdirSync(dirname(path), { recursive: true });
    } catch (err) {
      throw new Error(`Could not create the studio's data folder ${dirname(path)} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); pass --db PATH to put the database elsewhere.`, { cause: err });
    }
  }
  const db = await openDatabase(path);
  const files = StudioFiles.forDatabase(path);
  const close = (): void => {
    db.close();
    files.dispose();
  };
  try {
    return { db, files, recovery: await recoverStore(db, files), close };
  } catch (err) {
    close();
    throw err;
  }
}

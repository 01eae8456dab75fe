// The studio's files folder beside the database (`<db>.files/`). Each run has a folder,
// runs/<id>/, for what it writes: checkpoints, and the files of a model it imports.
// Files are written atomically (temp file, fsync, rename: native-models/runtime/
// atomic-file.ts) and referenced from the database (runs.checkpoint_path, models.path,
// artifacts.path) by a path relative to this folder, so the database and its folder can
// be moved together.
//
// After a crash, sweep() removes every file that nothing references: temp files of dead
// processes, and whatever a run that is not running left unreferenced. The rule for
// writers that follows: write only inside the folder of a run that is running, and
// reference the file from the database before the run stops.
//
// The folder names the database it belongs to (OWNER_FILE). A second database that
// reaches the same folder (a copy of the database beside a link to the folder) would see
// the first one's runs as unreferenced and remove them, which once cost a run of the
// SmolLM2 reproduction its samples: a folder that belongs to another database that still
// uses it is not swept.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { readdir, rm, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { isLivePid } from './owner.ts';

// writeFileAtomic's temp files: `.<name>.<pid>.<12 hex>.tmp`.
const TEMP = /^\..+\.(\d+)\.[0-9a-f]{12}\.tmp$/;

/** The file in the folder that names its database (an absolute path, one line). */
export const OWNER_FILE = '.database';

/** The real path of an existing path, else null. */
function real(path: string): string | null {
  try {
    return realpathSync(path);
  } catch {
    return null;
  }
}

export interface SweepFacts {
  /** Paths (relative, '/'-separated) that rows reference; a folder keeps all below it. */
  referenced: readonly string[];
  /** Runs queued or running in a live process: their folders are left alone. */
  isLiveRun(runId: number): boolean;
}

export class StudioFiles {
  readonly root: string;
  /** The database file this folder is beside (null for a folder made without one). */
  readonly database: string | null;
  private readonly temporary: boolean;

  constructor(root: string, options: { temporary?: boolean; database?: string } = {}) {
    this.root = resolve(root);
    this.temporary = options.temporary ?? false;
    this.database = options.database === undefined ? null : resolve(options.database);
  }

  /** `<db>.files/` beside a database file; a temporary folder for ':memory:'. */
  static forDatabase(dbFile: string): StudioFiles {
    if (dbFile === ':memory:' || dbFile === '') return new StudioFiles(mkdtempSync(join(tmpdir(), 'afd-files-')), { temporary: true });
    return new StudioFiles(`${resolve(dbFile)}.files`, { database: dbFile });
  }

  /**
   * Another database whose files folder this one is (the same folder on disk, reached by
   * a link or a copy of the database beside it), and which still exists; else null. A
   * database moved with its folder, or a copy beside a copied folder, is not another one.
   */
  sharedWith(): string | null {
    let named: string;
    try {
      named = readFileSync(join(this.root, OWNER_FILE), 'utf8').trim();
    } catch {
      return null;
    }
    if (this.database === null || named === '' || named === this.database || !existsSync(named)) return null;
    const theirs = real(`${named}.files`);
    return theirs !== null && theirs === real(this.root) ? named : null;
  }

  /** Names this folder's database in it, unless another database still uses the folder:
   *  then returns that database and writes nothing. */
  private claim(): string | null {
    const other = this.sharedWith();
    if (this.database === null || other !== null) return other;
    try {
      mkdirSync(this.root, { recursive: true });
      writeFileSync(join(this.root, OWNER_FILE), `${this.database}\n`);
    } catch {
      // A read-only folder: nothing is swept from it either.
    }
    return null;
  }

  runDir(runId: number): string {
    return join(this.root, 'runs', String(runId));
  }

  /** Creates the run's folder (and the files folder) if needed. */
  ensureRunDir(runId: number): string {
    const dir = this.runDir(runId);
    try {
      mkdirSync(dir, { recursive: true });
    } catch (err) {
      throw new Error(`Could not create the folder ${dir} for the run's files (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}); check that the disk is writable and not full.`, { cause: err });
    }
    return dir;
  }

  /** The stored form of a path inside the folder ('/'-separated); throws outside it. */
  relative(path: string): string {
    const rel = relative(this.root, resolve(path));
    if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) throw new Error(`${path} is outside the studio's files folder ${this.root}.`);
    return rel.split(sep).join('/');
  }

  absolute(stored: string): string {
    return join(this.root, ...stored.split('/'));
  }

  /** Removes every file that is not referenced, not in a live run's folder, and not a
   *  temp file of a live process; then the folders left empty. Returns what it removed.
   *  `facts` is asked after the files are listed, so a run created meanwhile by another
   *  process is already in the database. Removes nothing from a folder that belongs to
   *  another database (sharedWith). */
  async sweep(facts: () => SweepFacts): Promise<string[]> {
    if (this.claim() !== null) return [];
    const files = await listFiles(this.root);
    const { referenced, isLiveRun } = facts();
    const keep = (rel: string): boolean => {
      if (rel === OWNER_FILE) return true;
      const run = /^runs\/(\d+)\//.exec(rel);
      if (run !== null && isLiveRun(Number(run[1]))) return true;
      const temp = TEMP.exec(rel.slice(rel.lastIndexOf('/') + 1));
      if (temp !== null) return isLivePid(Number(temp[1]));
      return referenced.some((r) => rel === r || rel.startsWith(`${r}/`));
    };
    const removed: string[] = [];
    for (const path of files) {
      if (keep(this.relative(path))) continue;
      await rm(path, { force: true });
      removed.push(path);
    }
    // The folder of a run that went live meanwhile may be empty for now: it stays.
    await pruneEmptyFolders(this.root, (dir) => {
      const run = /^runs\/(\d+)$/.exec(this.relative(dir));
      return run !== null && isLiveRun(Number(run[1]));
    });
    return removed;
  }

  /** Removes a temporary folder (for ':memory:' databases); a real one stays. */
  dispose(): void {
    if (this.temporary) rmSync(this.root, { recursive: true, force: true });
  }
}

/** Removes the empty folders below `root`, except those `keep` names. */
async function pruneEmptyFolders(root: string, keep: (dir: string) => boolean, dir = root): Promise<void> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return;
  }
  for (const e of entries) if (e.isDirectory()) await pruneEmptyFolders(root, keep, join(dir, e.name));
  if (dir !== root && !keep(dir) && (await readdir(dir)).length === 0) await rmdir(dir).catch(() => undefined);
}

/** Every file below `dir` (not folders), absolute. */
async function listFiles(dir: string): Promise<string[]> {
  try {
    const entries = await readdir(dir, { recursive: true, withFileTypes: true });
    return entries.filter((e) => !e.isDirectory()).map((e) => join(e.parentPath ?? e.path, e.name));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

// Opening the studio database: pragmas, versioned migrations, the statement cache, and
// the one kind of transaction that may stay open across awaits (a bulk import).
import { rmSync } from 'node:fs';
import Database from 'better-sqlite3';
import type { Migration } from './migrations/index.ts';
import { MIGRATIONS, checkMigrations } from './migrations/index.ts';

export type Sqlite = Database.Database;
export type Statement<P extends unknown[] = unknown[], R = unknown> = Database.Statement<P, R>;

export interface OpenOptions {
  /** The migrations to apply; tests pass a prefix to build an older database. */
  migrations?: readonly Migration[];
  /** How long a statement waits for another connection's write lock (default 5 s). */
  busyTimeoutMs?: number;
}

/** The file was written by a newer AfD Studio, or is not a studio database at all. */
export class DatabaseVersionError extends Error {
  override readonly name = 'DatabaseVersionError';
  readonly file: string;
  readonly found: number;
  readonly known: number;
  constructor(file: string, found: number, known: number, message: string) {
    super(message);
    this.file = file;
    this.found = found;
    this.known = known;
  }
}

/** A statement was issued on a connection whose long transaction belongs to other work. */
export class StoreBusyError extends Error {
  override readonly name = 'StoreBusyError';
}

/** Opens (creating if needed) and migrates the database at `file`, or ':memory:'. */
export async function openDatabase(file: string, options: OpenOptions = {}): Promise<StudioDatabase> {
  const migrations = options.migrations ?? MIGRATIONS;
  checkMigrations(migrations);
  const known = migrations.length === 0 ? 0 : migrations[migrations.length - 1].version;
  const memory = file === ':memory:' || file === '';
  const busyTimeoutMs = options.busyTimeoutMs ?? 5000;

  let sqlite: Sqlite;
  try {
    sqlite = new Database(file, { timeout: busyTimeoutMs });
  } catch (err) {
    throw new Error(`Could not open the database ${file} (${(err as Error).message}); check that the folder exists and is writable.`, { cause: err });
  }
  try {
    if (!memory) {
      // WAL: readers never block the writer and see the last committed state, so the UI
      // can read while an import or a training run writes.
      const mode = sqlite.pragma('journal_mode = WAL', { simple: true });
      if (mode !== 'wal') {
        throw new Error(`The database ${file} could not use write-ahead logging (journal mode stays "${String(mode)}"); keep the studio's data in a folder on a local disk.`);
      }
      // After a checkpoint, shrink the WAL file back to at most 64 MB, so one large
      // import does not leave a WAL as big as the dataset on disk for good.
      sqlite.pragma('journal_size_limit = 67108864');
    }
    sqlite.pragma('foreign_keys = ON');
    // NORMAL in WAL mode fsyncs at checkpoints, not at every commit: a crash of the app or
    // the OS loses nothing and the file is never corrupted; a power cut can roll back the
    // last few commits. FULL would fsync on every metric a training run logs.
    sqlite.pragma('synchronous = NORMAL');
    sqlite.pragma(`busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`);

    const from = userVersion(sqlite);
    if (from > known) {
      throw new DatabaseVersionError(file, from, known, `The database ${file} was written by a newer version of AfD Studio (schema ${from}; this version knows up to ${known}); open it with that newer version, or restore one of its .backup files.`);
    }
    if (from === 0) {
      const tables = sqlite.prepare<[], { name: string }>("SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%' LIMIT 3").all();
      if (tables.length > 0) {
        throw new DatabaseVersionError(file, 0, known, `The file ${file} is an SQLite database but not an AfD Studio one (it has tables such as "${tables[0].name}" and no schema version); choose another file name for the studio's database.`);
      }
    }

    let backupFile: string | undefined;
    if (from < known && from > 0 && !memory) {
      backupFile = `${file}.backup-v${from}-${new Date().toISOString().replace(/[:.]/g, '-')}`;
      try {
        await sqlite.backup(backupFile);
      } catch (err) {
        rmSync(backupFile, { force: true });
        throw new Error(`Could not back up the database ${file} to ${backupFile} before upgrading it (${(err as Error).message}); free some disk space or check permissions, then open it again.`, { cause: err });
      }
    }
    for (const m of migrations) {
      if (m.version <= from) continue;
      // IMMEDIATE takes the write lock first; re-reading the version inside it makes two
      // processes that open an old file at once apply each migration exactly once.
      sqlite.transaction(() => {
        if (userVersion(sqlite) >= m.version) return;
        m.up(sqlite);
        sqlite.pragma(`user_version = ${m.version}`);
      }).immediate();
    }
    return new StudioDatabase(sqlite, file, from, backupFile);
  } catch (err) {
    sqlite.close();
    throw err;
  }
}

function userVersion(sqlite: Sqlite): number {
  return sqlite.pragma('user_version', { simple: true }) as number;
}

export class StudioDatabase {
  readonly sqlite: Sqlite;
  readonly file: string;
  /** The schema version the file had before this open (0 for a new database). */
  readonly migratedFrom: number;
  /** Where the file was copied before migrating it, if it was. */
  readonly backupFile: string | undefined;
  private readonly statements = new Map<string, Statement>();
  private long: LongTransaction | undefined;

  constructor(sqlite: Sqlite, file: string, migratedFrom: number, backupFile: string | undefined) {
    this.sqlite = sqlite;
    this.file = file;
    this.migratedFrom = migratedFrom;
    this.backupFile = backupFile;
  }

  get schemaVersion(): number {
    return userVersion(this.sqlite);
  }

  /** A cached prepared statement. Refused while a long transaction holds the connection,
   *  because anything run now would silently become part of it. */
  statement<P extends unknown[] = unknown[], R = unknown>(sql: string): Statement<P, R> {
    this.assertFree();
    return this.cached<P, R>(sql);
  }

  /** Runs fn in one synchronous IMMEDIATE transaction (a savepoint when nested). */
  transaction<T>(fn: () => T): T {
    this.assertFree();
    return this.sqlite.transaction(fn).immediate();
  }

  /** Opens the one transaction that may stay open across awaits, for a bulk write that
   *  must be all-or-nothing. BEGIN IMMEDIATE takes the write lock now, so writers on other
   *  connections wait (busy_timeout) and then fail rather than interleave; readers on
   *  other connections keep seeing the last commit. On THIS connection every other
   *  statement is refused until commit or rollback; give bulk work its own connection. */
  beginLongTransaction(purpose: string): LongTransaction {
    this.assertFree();
    if (this.sqlite.inTransaction) throw new StoreBusyError(`The database connection is already inside a transaction, so ${purpose} cannot start one; run it outside other database work.`);
    try {
      this.sqlite.exec('BEGIN IMMEDIATE');
    } catch (err) {
      if ((err as { code?: string }).code === 'SQLITE_BUSY') {
        throw new StoreBusyError(`Another window or process is writing to the database, so ${purpose} cannot start; try again when it has finished.`, { cause: err });
      }
      throw err;
    }
    const tx = new LongTransaction(purpose, <P extends unknown[], R>(sql: string) => this.cached<P, R>(sql), this.sqlite, () => { this.long = undefined; });
    this.long = tx;
    return tx;
  }

  get busyWith(): string | undefined {
    return this.long?.purpose;
  }

  /** Rolls back an unfinished long transaction, runs PRAGMA optimize, closes. */
  close(): void {
    if (!this.sqlite.open) return;
    if (this.long !== undefined) this.long.rollback();
    this.sqlite.pragma('optimize');
    this.sqlite.close();
  }

  private assertFree(): void {
    if (this.long !== undefined) {
      throw new StoreBusyError(`The database connection is busy with ${this.long.purpose}; wait for it to finish and try again.`);
    }
  }

  private cached<P extends unknown[], R>(sql: string): Statement<P, R> {
    let s = this.statements.get(sql);
    if (s === undefined) {
      s = this.sqlite.prepare(sql);
      this.statements.set(sql, s);
    }
    return s as unknown as Statement<P, R>;
  }
}

/** An open BEGIN IMMEDIATE ... COMMIT on a StudioDatabase; see beginLongTransaction. */
export class LongTransaction {
  readonly purpose: string;
  private readonly prepare: <P extends unknown[], R>(sql: string) => Statement<P, R>;
  private readonly sqlite: Sqlite;
  private readonly release: () => void;
  private done = false;
  private savepoints = 0;

  constructor(purpose: string, prepare: <P extends unknown[], R>(sql: string) => Statement<P, R>, sqlite: Sqlite, release: () => void) {
    this.purpose = purpose;
    this.prepare = prepare;
    this.sqlite = sqlite;
    this.release = release;
  }

  get open(): boolean {
    return !this.done;
  }

  statement<P extends unknown[] = unknown[], R = unknown>(sql: string): Statement<P, R> {
    this.assertOpen();
    return this.prepare<P, R>(sql);
  }

  /** Runs fn synchronously inside a SAVEPOINT: a failing batch is undone as a unit, and
   *  the caller decides whether the whole transaction goes on or rolls back. */
  savepoint<T>(fn: () => T): T {
    this.assertOpen();
    const name = `sp${++this.savepoints}`;
    this.sqlite.exec(`SAVEPOINT ${name}`);
    try {
      const result = fn();
      this.sqlite.exec(`RELEASE ${name}`);
      return result;
    } catch (err) {
      this.sqlite.exec(`ROLLBACK TO ${name}; RELEASE ${name}`);
      throw err;
    } finally {
      this.savepoints--;
    }
  }

  commit(): void {
    this.assertOpen();
    this.sqlite.exec('COMMIT');
    this.finish();
  }

  /** Undoes everything since BEGIN; safe to call twice or after a failed commit. */
  rollback(): void {
    if (this.done) return;
    try {
      if (this.sqlite.inTransaction) this.sqlite.exec('ROLLBACK');
    } finally {
      this.finish();
    }
  }

  private finish(): void {
    this.done = true;
    this.release();
  }

  private assertOpen(): void {
    if (this.done) throw new Error(`The transaction for ${this.purpose} has already ended; start a new one.`);
  }
}

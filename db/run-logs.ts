// The log lines of runs: what a job said while it ran (and the stack of a failure), kept
// for the app's log view and `afd runs show`.
import type { StudioDatabase } from './database.ts';

export type LogLevel = 'info' | 'warn' | 'error';

export interface LogLine {
  id: number;
  runId: number;
  at: string;
  level: LogLevel;
  text: string;
}

const COLUMNS = 'id, run_id AS runId, at, level, text';

export class RunLogStore {
  private readonly db: StudioDatabase;

  constructor(db: StudioDatabase) {
    this.db = db;
  }

  append(runId: number, level: LogLevel, text: string): LogLine {
    const { lastInsertRowid } = this.db.statement<[number, LogLevel, string]>('INSERT INTO run_logs (run_id, level, text) VALUES (?, ?, ?)').run(runId, level, text);
    return this.db.statement<[number], LogLine>(`SELECT ${COLUMNS} FROM run_logs WHERE id = ?`).get(Number(lastInsertRowid)) as LogLine;
  }

  /** The last `limit` lines of a run (default 100), oldest first. */
  tail(runId: number, limit = 100): LogLine[] {
    return this.db.statement<[number, number], LogLine>(`SELECT * FROM (SELECT ${COLUMNS} FROM run_logs WHERE run_id = ? ORDER BY id DESC LIMIT ?) ORDER BY id`)
      .all(runId, Math.max(0, Math.floor(limit)));
  }
}

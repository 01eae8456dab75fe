// Runs: one execution of one stage, with everything needed to repeat it (config, seed)
// and the state a job runner needs to resume or report it.
import type { StudioDatabase } from './database.ts';
import type { JsonObject } from './json.ts';
import { parseJson } from './json.ts';

export type RunStatus = 'queued' | 'running' | 'paused' | 'done' | 'failed' | 'cancelled' | 'interrupted';

export interface Run {
  id: number;
  experimentId: number | null;
  stage: string;
  status: RunStatus;
  config: JsonObject;
  seed: number | null;
  provider: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  error: string | null;
  checkpointPath: string | null;
}

export interface NewRun {
  experimentId?: number | null;
  stage: string;
  config?: JsonObject;
  seed?: number | null;
}

export interface StatusDetails {
  error?: string | null;
  provider?: string | null;
  checkpointPath?: string | null;
}

const COLUMNS = `id, experiment_id AS experimentId, stage, status, config, seed, provider, created_at AS createdAt,
  started_at AS startedAt, finished_at AS finishedAt, error, checkpoint_path AS checkpointPath`;
const FINAL: readonly RunStatus[] = ['done', 'failed', 'cancelled'];
type Row = Omit<Run, 'config'> & { config: string };

export class RunStore {
  private readonly db: StudioDatabase;

  constructor(db: StudioDatabase) {
    this.db = db;
  }

  insert(r: NewRun): Run {
    const { lastInsertRowid } = this.db.statement<[number | null, string, string, number | null]>('INSERT INTO runs (experiment_id, stage, config, seed) VALUES (?, ?, ?, ?)')
      .run(r.experimentId ?? null, r.stage, JSON.stringify(r.config ?? {}), r.seed ?? null);
    return this.get(Number(lastInsertRowid)) as Run;
  }

  get(id: number): Run | undefined {
    const row = this.db.statement<[number], Row>(`SELECT ${COLUMNS} FROM runs WHERE id = ?`).get(id);
    return row === undefined ? undefined : toRun(row);
  }

  /** Newest first, optionally of one experiment or in one status. */
  list(filter: { experimentId?: number; status?: RunStatus } = {}): Run[] {
    return this.db.statement<[number | null, number | null, string | null, string | null], Row>(
      `SELECT ${COLUMNS} FROM runs WHERE (? IS NULL OR experiment_id = ?) AND (? IS NULL OR status = ?) ORDER BY id DESC`,
    ).all(filter.experimentId ?? null, filter.experimentId ?? null, filter.status ?? null, filter.status ?? null).map(toRun);
  }

  /** Sets the status; the first 'running' stamps started_at, a final status finished_at;
   *  queueing or running again clears the error of an earlier attempt. */
  setStatus(id: number, status: RunStatus, details: StatusDetails = {}): Run {
    const error = details.error ?? null;
    const restarting = status === 'queued' || status === 'running';
    const changed = this.db.statement<[RunStatus, number, number, string | null, string | null, number, string | null, string | null, number]>(
      `UPDATE runs SET status = ?,
         started_at = CASE WHEN ? AND started_at IS NULL THEN strftime('%Y-%m-%dT%H:%M:%fZ', 'now') ELSE started_at END,
         finished_at = CASE WHEN ? THEN strftime('%Y-%m-%dT%H:%M:%fZ', 'now') ELSE NULL END,
         error = CASE WHEN ? IS NOT NULL THEN ? WHEN ? THEN NULL ELSE error END,
         provider = coalesce(?, provider), checkpoint_path = coalesce(?, checkpoint_path)
       WHERE id = ?`,
    ).run(status, status === 'running' ? 1 : 0, FINAL.includes(status) ? 1 : 0, error, error, restarting ? 1 : 0, details.provider ?? null, details.checkpointPath ?? null, id).changes;
    if (changed === 0) throw new Error(`There is no run #${id}; it may have been deleted, so reload the list.`);
    return this.get(id) as Run;
  }

  /** At startup: runs left 'running' by a crash or a closed window become 'interrupted'. */
  markInterrupted(): number {
    return this.db.statement("UPDATE runs SET status = 'interrupted' WHERE status = 'running'").run().changes;
  }
}

function toRun(row: Row): Run {
  return { ...row, config: parseJson<JsonObject>(row.config, `the config of run #${row.id}`) };
}

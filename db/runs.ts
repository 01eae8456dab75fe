// Runs: one execution of one stage, with everything needed to repeat it (config, seed)
// and the state a job runner needs to resume or report it.
import type { StudioDatabase } from './database.ts';
import type { JsonObject } from './json.ts';
import { parseJson } from './json.ts';

export type RunStatus = 'queued' | 'running' | 'paused' | 'done' | 'failed' | 'cancelled' | 'interrupted';
export type RunControl = 'cancel' | 'pause';

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
  /** Where the run's checkpoint is, relative to the studio's files folder. */
  checkpointPath: string | null;
  /** The process that queued or runs it ("host|boot|pid"); null once it has stopped. */
  owner: string | null;
  /** A stop asked by another process, for the owner to carry out. */
  control: RunControl | null;
  /** What a finished run produced. */
  result: JsonObject | null;
}

export interface NewRun {
  experimentId?: number | null;
  stage: string;
  config?: JsonObject;
  seed?: number | null;
  owner?: string | null;
}

export interface StatusDetails {
  error?: string | null;
  provider?: string | null;
  checkpointPath?: string | null;
  /** Kept while queued or running, cleared by any other status (as is a pending control). */
  owner?: string | null;
  result?: JsonObject | null;
}

const COLUMNS = `id, experiment_id AS experimentId, stage, status, config, seed, provider, created_at AS createdAt,
  started_at AS startedAt, finished_at AS finishedAt, error, checkpoint_path AS checkpointPath, owner, control, result`;
const FINAL: readonly RunStatus[] = ['done', 'failed', 'cancelled'];
type Row = Omit<Run, 'config' | 'result'> & { config: string; result: string | null };
type InsertParams = { experimentId: number | null; stage: string; config: string; seed: number | null; owner: string | null };
// SQLite has no booleans: running, final and restarting are bound as 0 or 1.
type StatusParams = {
  id: number; status: RunStatus; running: number; final: number; restarting: number;
  error: string | null; provider: string | null; checkpointPath: string | null; owner: string | null; result: string | null;
};

export class RunStore {
  private readonly db: StudioDatabase;

  constructor(db: StudioDatabase) {
    this.db = db;
  }

  insert(r: NewRun): Run {
    const { lastInsertRowid } = this.db.statement<[InsertParams]>(
      'INSERT INTO runs (experiment_id, stage, config, seed, owner) VALUES (@experimentId, @stage, @config, @seed, @owner)',
    ).run({ experimentId: r.experimentId ?? null, stage: r.stage, config: JSON.stringify(r.config ?? {}), seed: r.seed ?? null, owner: r.owner ?? null });
    return this.get(Number(lastInsertRowid)) as Run;
  }

  get(id: number): Run | undefined {
    const row = this.db.statement<[number], Row>(`SELECT ${COLUMNS} FROM runs WHERE id = ?`).get(id);
    return row === undefined ? undefined : toRun(row);
  }

  /** Newest first, optionally of one experiment or in one status. */
  list(filter: { experimentId?: number; status?: RunStatus } = {}): Run[] {
    return this.db.statement<[{ experimentId: number | null; status: RunStatus | null }], Row>(
      `SELECT ${COLUMNS} FROM runs WHERE (@experimentId IS NULL OR experiment_id = @experimentId) AND (@status IS NULL OR status = @status) ORDER BY id DESC`,
    ).all({ experimentId: filter.experimentId ?? null, status: filter.status ?? null }).map(toRun);
  }

  /** Sets the status; the first 'running' stamps started_at, a final status finished_at;
   *  queueing or running again clears the error and result of an earlier attempt. */
  setStatus(id: number, status: RunStatus, details: StatusDetails = {}): Run {
    const error = details.error ?? null;
    const restarting = status === 'queued' || status === 'running';
    const result = details.result == null ? null : JSON.stringify(details.result);
    const changed = this.db.statement<[StatusParams]>(
      `UPDATE runs SET status = @status,
         started_at = CASE WHEN @running AND started_at IS NULL THEN strftime('%Y-%m-%dT%H:%M:%fZ', 'now') ELSE started_at END,
         finished_at = CASE WHEN @final THEN strftime('%Y-%m-%dT%H:%M:%fZ', 'now') ELSE NULL END,
         error = CASE WHEN @error IS NOT NULL THEN @error WHEN @restarting THEN NULL ELSE error END,
         provider = coalesce(@provider, provider), checkpoint_path = coalesce(@checkpointPath, checkpoint_path),
         owner = CASE WHEN @restarting THEN coalesce(@owner, owner) ELSE NULL END, control = CASE WHEN @restarting THEN control ELSE NULL END,
         result = CASE WHEN @result IS NOT NULL THEN @result WHEN @restarting THEN NULL ELSE result END
       WHERE id = @id`,
    ).run({
      id, status, running: status === 'running' ? 1 : 0, final: FINAL.includes(status) ? 1 : 0, restarting: restarting ? 1 : 0,
      error, provider: details.provider ?? null, checkpointPath: details.checkpointPath ?? null, owner: details.owner ?? null, result,
    }).changes;
    if (changed === 0) throw new Error(`There is no run #${id}; it may have been deleted, so reload the list.`);
    return this.get(id) as Run;
  }

  /** Asks the process that owns a queued or running run to stop it; a cancel is not
   *  downgraded to a pause. False if the run is not queued or running. */
  requestControl(id: number, control: RunControl): boolean {
    return this.db.statement<[RunControl, number]>(
      "UPDATE runs SET control = CASE WHEN control = 'cancel' THEN 'cancel' ELSE ? END WHERE id = ? AND status IN ('queued', 'running')",
    ).run(control, id).changes > 0;
  }

  /** The stops asked for the runs `owner` has queued or running. */
  pendingControls(owner: string): { id: number; control: RunControl }[] {
    return this.db.statement<[string], { id: number; control: RunControl }>("SELECT id, control FROM runs WHERE owner = ? AND control IS NOT NULL AND status IN ('queued', 'running')").all(owner);
  }

  /** Replaces the run's config (a resumed run whose inputs now live at other paths). */
  setConfig(id: number, config: JsonObject): void {
    this.db.statement<[string, number]>('UPDATE runs SET config = ? WHERE id = ?').run(JSON.stringify(config), id);
  }

  /** Points the run at its checkpoint file (relative to the studio's files folder). */
  setCheckpoint(id: number, checkpointPath: string): void {
    this.db.statement<[string, number]>('UPDATE runs SET checkpoint_path = ? WHERE id = ?').run(checkpointPath, id);
  }

  /** At startup: the runs left queued or running by a process that no longer exists (a
   *  crash, a closed window) become 'interrupted'. Several processes may share the
   *  database, so runs of live owners stay; runs queued without an owner wait for any
   *  runner and stay too. Returns the runs it marked. */
  interruptAbandoned(isLive: (owner: string) => boolean): Run[] {
    return this.db.transaction(() => {
      // A running run without an owner (from before owners were recorded) has none left.
      const candidates = this.db.statement<[], { id: number; owner: string | null }>("SELECT id, owner FROM runs WHERE status = 'running' OR (status = 'queued' AND owner IS NOT NULL)").all();
      const mark = this.db.statement<[number]>("UPDATE runs SET status = 'interrupted', owner = NULL, control = NULL WHERE id = ?");
      const marked: Run[] = [];
      for (const c of candidates) {
        if (c.owner !== null && isLive(c.owner)) continue;
        mark.run(c.id);
        marked.push(this.get(c.id) as Run);
      }
      return marked;
    });
  }
}

function toRun(row: Row): Run {
  return {
    ...row,
    config: parseJson<JsonObject>(row.config, `the config of run #${row.id}`),
    result: row.result === null ? null : parseJson<JsonObject>(row.result, `the result of run #${row.id}`),
  };
}

// Metrics: (run, step, name) -> value, written in batches from training progress.
import type { StudioDatabase } from './database.ts';

export interface MetricPoint {
  step: number;
  value: number;
}

/** One metric of a run at a glance; min and max skip NaN (null when every value is NaN). */
export interface MetricSummary {
  name: string;
  count: number;
  firstStep: number;
  lastStep: number;
  last: number;
  min: number | null;
  max: number | null;
}

export class MetricStore {
  private readonly db: StudioDatabase;

  constructor(db: StudioDatabase) {
    this.db = db;
  }

  /** Records several metrics of one step in one transaction. A step logged again (a
   *  resumed run repeats its last steps) replaces the earlier value. */
  log(runId: number, step: number, values: Readonly<Record<string, number>>): void {
    this.db.transaction(() => {
      const insert = this.db.statement<[{ runId: number; step: number; name: string; value: number | null }]>(
        'INSERT OR REPLACE INTO metrics (run_id, step, name, value) VALUES (@runId, @step, @name, @value)',
      );
      // SQLite would store NaN as NULL anyway; say so explicitly.
      for (const [name, value] of Object.entries(values)) insert.run({ runId, step, name, value: Number.isNaN(value) ? null : value });
    });
  }

  /** One metric of a run by step; NULL comes back as NaN. */
  series(runId: number, name: string): MetricPoint[] {
    return this.db.statement<[number, string], { step: number; value: number | null }>('SELECT step, value FROM metrics WHERE run_id = ? AND name = ? ORDER BY step')
      .all(runId, name).map((p) => ({ step: p.step, value: p.value ?? Number.NaN }));
  }

  /** Every metric of a run, by name. */
  summary(runId: number): MetricSummary[] {
    return this.db.statement<[number], Omit<MetricSummary, 'last'> & { last: number | null }>(
      `SELECT name, count(*) AS count, min(step) AS firstStep, max(step) AS lastStep, min(value) AS min, max(value) AS max,
         (SELECT value FROM metrics l WHERE l.run_id = m.run_id AND l.name = m.name ORDER BY step DESC LIMIT 1) AS last
       FROM metrics m WHERE run_id = ? GROUP BY name ORDER BY name`,
    ).all(runId).map((s) => ({ ...s, last: s.last ?? Number.NaN }));
  }

  /** The last step with a metric, for every run that has one. */
  lastSteps(): Map<number, number> {
    return new Map(this.db.statement<[], { runId: number; step: number }>('SELECT run_id AS runId, max(step) AS step FROM metrics GROUP BY run_id').all().map((r) => [r.runId, r.step]));
  }

  names(runId: number): string[] {
    return this.db.statement<[number], string>('SELECT DISTINCT name FROM metrics WHERE run_id = ? ORDER BY name').pluck().all(runId);
  }
}

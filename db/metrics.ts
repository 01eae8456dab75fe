// Metrics: (run, step, name) -> value, written in batches from training progress.
import type { StudioDatabase } from './database.ts';

export interface MetricPoint {
  step: number;
  value: number;
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
      const insert = this.db.statement<[number, number, string, number | null]>('INSERT OR REPLACE INTO metrics (run_id, step, name, value) VALUES (?, ?, ?, ?)');
      // SQLite would store NaN as NULL anyway; say so explicitly.
      for (const [name, value] of Object.entries(values)) insert.run(runId, step, name, Number.isNaN(value) ? null : value);
    });
  }

  /** One metric of a run by step; NULL comes back as NaN. */
  series(runId: number, name: string): MetricPoint[] {
    return this.db.statement<[number, string], { step: number; value: number | null }>('SELECT step, value FROM metrics WHERE run_id = ? AND name = ? ORDER BY step')
      .all(runId, name).map((p) => ({ step: p.step, value: p.value ?? Number.NaN }));
  }

  names(runId: number): string[] {
    return this.db.statement<[number], string>('SELECT DISTINCT name FROM metrics WHERE run_id = ? ORDER BY name').pluck().all(runId);
  }
}

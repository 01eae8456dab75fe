// v3: what the job runner needs.
// - runs.owner: the process that queued or runs the run ("host|boot|pid"), so that at
//   start-up a process marks as interrupted only the runs of processes that are gone,
//   not those of another window or CLI working on the same database right now.
// - runs.control: 'cancel' or 'pause' asked by another process (e.g. `afd runs cancel`
//   in a second terminal); the owner's runner reads it and tells its worker.
// - runs.result: what a finished run produced (JSON), e.g. the imported dataset's counts.
// - run_logs: the log lines of a run, for the app's log view and `afd runs show`.
// - datasets.ready / import_run_id: an import job writes in short transactions (so the
//   app can keep writing while it runs) into a dataset that stays hidden (ready = 0)
//   until its last batch is stored; a cancelled, failed or interrupted import is deleted
//   whole. import_run_id keeps the provenance afterwards.
import type { Migration } from './migration.ts';

const NOW = "(strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))";

export const jobs: Migration = {
  version: 3,
  name: 'jobs',
  up(db) {
    db.exec(`
      ALTER TABLE runs ADD COLUMN owner TEXT;
      ALTER TABLE runs ADD COLUMN control TEXT CHECK (control IN ('cancel', 'pause'));
      ALTER TABLE runs ADD COLUMN result TEXT CHECK (result IS NULL OR json_valid(result));

      CREATE TABLE run_logs (
        id INTEGER PRIMARY KEY,
        run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        at TEXT NOT NULL DEFAULT ${NOW},
        level TEXT NOT NULL CHECK (level IN ('info', 'warn', 'error')),
        text TEXT NOT NULL
      ) STRICT;
      CREATE INDEX run_logs_by_run ON run_logs (run_id, id);

      ALTER TABLE datasets ADD COLUMN ready INTEGER NOT NULL DEFAULT 1 CHECK (ready IN (0, 1));
      ALTER TABLE datasets ADD COLUMN import_run_id INTEGER REFERENCES runs (id) ON DELETE SET NULL;
      CREATE INDEX datasets_by_import_run ON datasets (import_run_id);
    `);
  },
};

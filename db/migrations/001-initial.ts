// v1: the whole studio schema of DESIGN.md §4, so later work adds modules, not tables.
// STRICT tables make SQLite enforce the declared column types. Times are ISO 8601 UTC
// strings with milliseconds (they sort as text). JSON columns are checked with json_valid.
// Every foreign-key column is indexed (directly or as the prefix of a UNIQUE/PRIMARY KEY),
// so cascading deletes do not scan the child table.
import type { Migration } from './migration.ts';

const NOW = "(strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))";

export const initial: Migration = {
  version: 1,
  name: 'initial',
  up(db) {
    db.exec(`
      CREATE TABLE datasets (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE CHECK (length(trim(name)) > 0),
        created_at TEXT NOT NULL DEFAULT ${NOW},
        source_file TEXT,                            -- the imported file, absolute path
        source_format TEXT CHECK (source_format IN ('hh', 'jsonl', 'csv')),
        source_records INTEGER NOT NULL DEFAULT 0,   -- records read from the file
        source_duplicates INTEGER NOT NULL DEFAULT 0 -- of those, dropped as exact duplicates
      ) STRICT;

      -- response is the demonstration; chosen/rejected are set together for preference
      -- pairs (whose response is their chosen text).
      CREATE TABLE examples (
        id INTEGER PRIMARY KEY,
        dataset_id INTEGER NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
        prompt TEXT NOT NULL,
        response TEXT,
        chosen TEXT,
        rejected TEXT,
        source TEXT,                                 -- e.g. "file.jsonl:12"
        tags TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(tags) AND json_type(tags) = 'array'),
        split TEXT NOT NULL CHECK (split IN ('train', 'eval')),
        hash TEXT NOT NULL,                          -- sha256 of the content, for de-duplication
        created_at TEXT NOT NULL DEFAULT ${NOW},
        updated_at TEXT NOT NULL DEFAULT ${NOW},
        CHECK ((chosen IS NULL) = (rejected IS NULL)),
        CHECK (response IS NOT NULL OR chosen IS NOT NULL),
        UNIQUE (dataset_id, hash)
      ) STRICT;

      CREATE TABLE example_edits (
        id INTEGER PRIMARY KEY,
        example_id INTEGER NOT NULL REFERENCES examples (id) ON DELETE CASCADE,
        field TEXT NOT NULL CHECK (field IN ('prompt', 'response', 'chosen', 'rejected', 'tags', 'split')),
        old_value TEXT,
        new_value TEXT,
        at TEXT NOT NULL DEFAULT ${NOW}
      ) STRICT;
      CREATE INDEX example_edits_by_example ON example_edits (example_id, id);

      CREATE TABLE experiments (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        definition TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(definition)),
        created_at TEXT NOT NULL DEFAULT ${NOW}
      ) STRICT;

      CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        experiment_id INTEGER REFERENCES experiments (id) ON DELETE CASCADE,
        stage TEXT NOT NULL,                         -- sft, sample, reward, bon, rl, evaluate...
        status TEXT NOT NULL DEFAULT 'queued'
          CHECK (status IN ('queued', 'running', 'paused', 'done', 'failed', 'cancelled', 'interrupted')),
        config TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(config)),
        seed INTEGER,
        provider TEXT,                               -- execution provider actually used
        created_at TEXT NOT NULL DEFAULT ${NOW},
        started_at TEXT,
        finished_at TEXT,
        error TEXT,
        checkpoint_path TEXT                         -- where a paused or interrupted run resumes
      ) STRICT;
      CREATE INDEX runs_by_experiment ON runs (experiment_id, id);
      CREATE INDEX runs_by_status ON runs (status);

      -- run_id: the run that trained the model (provenance), null for imported ones.
      CREATE TABLE models (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('imported', 'trained')),
        family TEXT,                                 -- gpt2, llama...
        parent_id INTEGER REFERENCES models (id) ON DELETE SET NULL,
        run_id INTEGER REFERENCES runs (id) ON DELETE SET NULL,
        stage TEXT,                                  -- base, sft, reward...
        config TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(config)),
        path TEXT,
        created_at TEXT NOT NULL DEFAULT ${NOW}
      ) STRICT;
      CREATE INDEX models_by_parent ON models (parent_id);
      CREATE INDEX models_by_run ON models (run_id);

      -- value NULL stands for NaN (SQLite stores NaN as NULL); a diverged loss is data too.
      CREATE TABLE metrics (
        run_id INTEGER NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
        step INTEGER NOT NULL,
        name TEXT NOT NULL,
        value REAL,
        PRIMARY KEY (run_id, name, step)
      ) STRICT, WITHOUT ROWID;

      CREATE TABLE generations (
        id INTEGER PRIMARY KEY,
        run_id INTEGER REFERENCES runs (id) ON DELETE CASCADE,
        model_id INTEGER NOT NULL REFERENCES models (id) ON DELETE CASCADE,
        prompt TEXT NOT NULL,
        sample_index INTEGER NOT NULL DEFAULT 0,
        text TEXT NOT NULL,
        token_count INTEGER,
        scores TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(scores)),
        created_at TEXT NOT NULL DEFAULT ${NOW}
      ) STRICT;
      CREATE INDEX generations_by_run ON generations (run_id, id);
      CREATE INDEX generations_by_model ON generations (model_id, id);

      -- shown_order: which generation was shown on which side, e.g. ["b", "a"], so
      -- position bias can be measured.
      CREATE TABLE judgments (
        id INTEGER PRIMARY KEY,
        a_generation_id INTEGER NOT NULL REFERENCES generations (id) ON DELETE CASCADE,
        b_generation_id INTEGER NOT NULL REFERENCES generations (id) ON DELETE CASCADE,
        shown_order TEXT NOT NULL CHECK (json_valid(shown_order)),
        winner TEXT NOT NULL CHECK (winner IN ('a', 'b', 'tie', 'skip')),
        judge TEXT NOT NULL,                         -- 'human' or the judging model
        created_at TEXT NOT NULL DEFAULT ${NOW},
        CHECK (a_generation_id <> b_generation_id)
      ) STRICT;
      CREATE INDEX judgments_by_a ON judgments (a_generation_id);
      CREATE INDEX judgments_by_b ON judgments (b_generation_id);

      -- Large files beside the database, addressed by the sha256 of their content.
      CREATE TABLE artifacts (
        hash TEXT PRIMARY KEY,
        size INTEGER NOT NULL CHECK (size >= 0),
        path TEXT NOT NULL,
        created_at TEXT NOT NULL DEFAULT ${NOW}
      ) STRICT, WITHOUT ROWID;
    `);
  },
};

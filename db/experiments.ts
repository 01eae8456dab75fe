// Experiments: a named definition (which stages, models, datasets, hyperparameters).
import type { StudioDatabase } from './database.ts';
import type { JsonObject } from './json.ts';
import { parseJson } from './json.ts';

export interface Experiment {
  id: number;
  name: string;
  definition: JsonObject;
  createdAt: string;
}

const COLUMNS = 'id, name, definition, created_at AS createdAt';
type Row = Omit<Experiment, 'definition'> & { definition: string };

export class ExperimentStore {
  private readonly db: StudioDatabase;

  constructor(db: StudioDatabase) {
    this.db = db;
  }

  insert(e: { name: string; definition?: JsonObject }): Experiment {
    const { lastInsertRowid } = this.db.statement<[string, string]>('INSERT INTO experiments (name, definition) VALUES (?, ?)')
      .run(e.name, JSON.stringify(e.definition ?? {}));
    return this.get(Number(lastInsertRowid)) as Experiment;
  }

  get(id: number): Experiment | undefined {
    const row = this.db.statement<[number], Row>(`SELECT ${COLUMNS} FROM experiments WHERE id = ?`).get(id);
    return row === undefined ? undefined : toExperiment(row);
  }

  /** Replaces the stored definition (an experiment resumed with an edited one). */
  setDefinition(id: number, definition: JsonObject): void {
    this.db.statement<[string, number]>('UPDATE experiments SET definition = ? WHERE id = ?').run(JSON.stringify(definition), id);
  }

  /** Newest first. */
  list(): Experiment[] {
    return this.db.statement<[], Row>(`SELECT ${COLUMNS} FROM experiments ORDER BY id DESC`).all().map(toExperiment);
  }

  /** Deletes the experiment with its runs and their metrics and generations. */
  delete(id: number): boolean {
    return this.db.statement<[number]>('DELETE FROM experiments WHERE id = ?').run(id).changes > 0;
  }
}

function toExperiment(row: Row): Experiment {
  return { ...row, definition: parseJson<JsonObject>(row.definition, `the definition of experiment #${row.id}`) };
}

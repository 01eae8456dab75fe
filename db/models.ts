// Models: imported checkpoints and the ones the studio trains (with their lineage).
import type { StudioDatabase } from './database.ts';
import type { JsonObject } from './json.ts';
import { parseJson } from './json.ts';

export type ModelKind = 'imported' | 'trained';

export interface Model {
  id: number;
  name: string;
  kind: ModelKind;
  family: string | null;
  parentId: number | null;
  /** The run that trained it; null for imported models. */
  runId: number | null;
  stage: string | null;
  config: JsonObject;
  path: string | null;
  createdAt: string;
}

export interface NewModel {
  name: string;
  kind: ModelKind;
  family?: string | null;
  parentId?: number | null;
  runId?: number | null;
  stage?: string | null;
  config?: JsonObject;
  path?: string | null;
}

const COLUMNS = 'id, name, kind, family, parent_id AS parentId, run_id AS runId, stage, config, path, created_at AS createdAt';
type Row = Omit<Model, 'config'> & { config: string };
type InsertParams = Omit<Row, 'id' | 'createdAt'>;

export class ModelStore {
  private readonly db: StudioDatabase;

  constructor(db: StudioDatabase) {
    this.db = db;
  }

  insert(m: NewModel): Model {
    const { lastInsertRowid } = this.db.statement<[InsertParams]>(
      'INSERT INTO models (name, kind, family, parent_id, run_id, stage, config, path) VALUES (@name, @kind, @family, @parentId, @runId, @stage, @config, @path)',
    ).run({
      name: m.name, kind: m.kind, family: m.family ?? null, parentId: m.parentId ?? null, runId: m.runId ?? null, stage: m.stage ?? null,
      config: JSON.stringify(m.config ?? {}), path: m.path ?? null,
    });
    return this.get(Number(lastInsertRowid)) as Model;
  }

  get(id: number): Model | undefined {
    const row = this.db.statement<[number], Row>(`SELECT ${COLUMNS} FROM models WHERE id = ?`).get(id);
    return row === undefined ? undefined : toModel(row);
  }

  /** Newest first. */
  list(): Model[] {
    return this.db.statement<[], Row>(`SELECT ${COLUMNS} FROM models ORDER BY id DESC`).all().map(toModel);
  }

  delete(id: number): boolean {
    return this.db.statement<[number]>('DELETE FROM models WHERE id = ?').run(id).changes > 0;
  }
}

function toModel(row: Row): Model {
  return { ...row, config: parseJson<JsonObject>(row.config, `the config of model #${row.id}`) };
}

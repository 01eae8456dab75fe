// Judgments: one A/B comparison of two generations by a human or a judge model.
import type { StudioDatabase } from './database.ts';
import { parseJson } from './json.ts';

export type Winner = 'a' | 'b' | 'tie' | 'skip';
/** Which generation was shown first (left), e.g. ['b', 'a']; kept to measure position bias. */
export type ShownOrder = ['a', 'b'] | ['b', 'a'];

export interface Judgment {
  id: number;
  aGenerationId: number;
  bGenerationId: number;
  shownOrder: ShownOrder;
  winner: Winner;
  judge: string;
  createdAt: string;
}

export type NewJudgment = Omit<Judgment, 'id' | 'createdAt'>;

const COLUMNS = 'id, a_generation_id AS aGenerationId, b_generation_id AS bGenerationId, shown_order AS shownOrder, winner, judge, created_at AS createdAt';
type Row = Omit<Judgment, 'shownOrder'> & { shownOrder: string };

export class JudgmentStore {
  private readonly db: StudioDatabase;

  constructor(db: StudioDatabase) {
    this.db = db;
  }

  insert(j: NewJudgment): Judgment {
    const { lastInsertRowid } = this.db.statement<[{ aGenerationId: number; bGenerationId: number; shownOrder: string; winner: Winner; judge: string }]>(
      'INSERT INTO judgments (a_generation_id, b_generation_id, shown_order, winner, judge) VALUES (@aGenerationId, @bGenerationId, @shownOrder, @winner, @judge)',
    ).run({ aGenerationId: j.aGenerationId, bGenerationId: j.bGenerationId, shownOrder: JSON.stringify(j.shownOrder), winner: j.winner, judge: j.judge });
    return this.get(Number(lastInsertRowid)) as Judgment;
  }

  get(id: number): Judgment | undefined {
    const row = this.db.statement<[number], Row>(`SELECT ${COLUMNS} FROM judgments WHERE id = ?`).get(id);
    return row === undefined ? undefined : toJudgment(row);
  }

  /** Judgments that involve the generation on either side, oldest first. */
  listForGeneration(generationId: number): Judgment[] {
    return this.db.statement<[number, number], Row>(`SELECT ${COLUMNS} FROM judgments WHERE a_generation_id = ? OR b_generation_id = ? ORDER BY id`)
      .all(generationId, generationId).map(toJudgment);
  }

  /** Judgments of a response of model `a` against one of model `b` (either side), oldest
   *  first, with the model of each side. */
  betweenModels(a: number, b: number): (Judgment & { aModelId: number; bModelId: number })[] {
    return this.db.statement<[{ a: number; b: number }], Row & { aModelId: number; bModelId: number }>(
      `SELECT ${COLUMNS.split(', ').map((c) => `j.${c}`).join(', ')}, ga.model_id AS aModelId, gb.model_id AS bModelId
       FROM judgments j JOIN generations ga ON ga.id = j.a_generation_id JOIN generations gb ON gb.id = j.b_generation_id
       WHERE (ga.model_id = @a AND gb.model_id = @b) OR (ga.model_id = @b AND gb.model_id = @a) ORDER BY j.id`,
    ).all({ a, b }).map((row) => ({ ...toJudgment(row), aModelId: row.aModelId, bModelId: row.bModelId }));
  }

  list(): Judgment[] {
    return this.db.statement<[], Row>(`SELECT ${COLUMNS} FROM judgments ORDER BY id`).all().map(toJudgment);
  }
}

function toJudgment(row: Row): Judgment {
  return { ...row, shownOrder: parseJson<ShownOrder>(row.shownOrder, `the shown order of judgment #${row.id}`) };
}

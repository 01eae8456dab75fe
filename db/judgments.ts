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
    const { lastInsertRowid } = this.db.statement<[number, number, string, Winner, string]>(
      'INSERT INTO judgments (a_generation_id, b_generation_id, shown_order, winner, judge) VALUES (?, ?, ?, ?, ?)',
    ).run(j.aGenerationId, j.bGenerationId, JSON.stringify(j.shownOrder), j.winner, j.judge);
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

  list(): Judgment[] {
    return this.db.statement<[], Row>(`SELECT ${COLUMNS} FROM judgments ORDER BY id`).all().map(toJudgment);
  }
}

function toJudgment(row: Row): Judgment {
  return { ...row, shownOrder: parseJson<ShownOrder>(row.shownOrder, `the shown order of judgment #${row.id}`) };
}

// Judgments: one A/B comparison of two generations by a human or a judge model.
import type { StudioDatabase } from './database.ts';
import { onSide, sideParams, type GenerationSide } from './generations.ts';
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

  /** Judgments of a response of side `a` against one of side `b` (plain answers of a model,
   *  or its Best-of-N picks), oldest first, with the judgment's side that held side a's response. */
  betweenSides(a: GenerationSide, b: GenerationSide): (Judgment & { sideOfA: 'a' | 'b' })[] {
    return this.db.statement<[Record<string, number | null>], Row & { sideOfA: 'a' | 'b' }>(
      `SELECT ${COLUMNS.split(', ').map((c) => `j.${c}`).join(', ')}, CASE WHEN ${onSide('ga', 'x')} THEN 'a' ELSE 'b' END AS sideOfA
       FROM judgments j JOIN generations ga ON ga.id = j.a_generation_id JOIN generations gb ON gb.id = j.b_generation_id
       WHERE (${onSide('ga', 'x')} AND ${onSide('gb', 'y')}) OR (${onSide('ga', 'y')} AND ${onSide('gb', 'x')}) ORDER BY j.id`,
    ).all({ ...sideParams(a, 'x'), ...sideParams(b, 'y') }).map((row) => ({ ...toJudgment(row), sideOfA: row.sideOfA }));
  }

  list(): Judgment[] {
    return this.db.statement<[], Row>(`SELECT ${COLUMNS} FROM judgments ORDER BY id`).all().map(toJudgment);
  }
}

function toJudgment(row: Row): Judgment {
  return { ...row, shownOrder: parseJson<ShownOrder>(row.shownOrder, `the shown order of judgment #${row.id}`) };
}

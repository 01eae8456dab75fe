// Generations: sampled responses of a model to a prompt, with their scores.
import type { StudioDatabase } from './database.ts';
import type { JsonObject } from './json.ts';
import { parseJson } from './json.ts';

export interface Generation {
  id: number;
  runId: number | null;
  modelId: number;
  prompt: string;
  sampleIndex: number;
  text: string;
  tokenCount: number | null;
  /** Scores by judge or reward model, e.g. {"gold": 1.3, "rm:7": -0.2}; a Best-of-N pick
   *  also carries its label here (bestOfScores). */
  scores: JsonObject;
  createdAt: string;
}

export interface NewGeneration {
  runId?: number | null;
  modelId: number;
  prompt: string;
  sampleIndex?: number;
  text: string;
  tokenCount?: number | null;
  scores?: JsonObject;
}

/**
 * A Best-of-N pick: the answer reward model `rewardModelId` scored highest among `n`
 * answers of its model to the prompt. It is stored under the model that wrote it, told
 * apart from the model's plain answers by its scores (bestOfScores).
 */
export interface BestOfLabel {
  n: number;
  rewardModelId: number;
}

/** The scores of a Best-of-N pick: its label (`bestOf`: N, `bestOfReward`: the reward
 *  model's id) and its reward under the name reward-model scores have ("rm:<id>"). */
export function bestOfScores(label: BestOfLabel, reward: number): JsonObject {
  return { bestOf: label.n, bestOfReward: label.rewardModelId, [`rm:${label.rewardModelId}`]: reward };
}

/** One side of a blind comparison: a model's plain answers (no Best-of-N label), or its
 *  Best-of-N picks with one N by one reward model. */
export interface GenerationSide {
  modelId: number;
  bestOf?: BestOfLabel | null;
}

/** SQL that is true when the generation row `alias` is on the side bound by sideParams
 *  with the same `prefix`; `IS` matches an absent label with the null of a plain side. */
export function onSide(alias: string, prefix: string): string {
  return `(${alias}.model_id = @${prefix}Model AND json_extract(${alias}.scores, '$.bestOf') IS @${prefix}N AND json_extract(${alias}.scores, '$.bestOfReward') IS @${prefix}Reward)`;
}

export function sideParams(side: GenerationSide, prefix: string): Record<string, number | null> {
  return { [`${prefix}Model`]: side.modelId, [`${prefix}N`]: side.bestOf?.n ?? null, [`${prefix}Reward`]: side.bestOf?.rewardModelId ?? null };
}

const COLUMNS = 'id, run_id AS runId, model_id AS modelId, prompt, sample_index AS sampleIndex, text, token_count AS tokenCount, scores, created_at AS createdAt';
type Row = Omit<Generation, 'scores'> & { scores: string };
type InsertParams = Omit<Row, 'id' | 'createdAt'>;

export class GenerationStore {
  private readonly db: StudioDatabase;

  constructor(db: StudioDatabase) {
    this.db = db;
  }

  /** Inserts in one transaction; returns the new ids in order. */
  insertMany(rows: readonly NewGeneration[]): number[] {
    return this.db.transaction(() => {
      const insert = this.db.statement<[InsertParams]>(
        'INSERT INTO generations (run_id, model_id, prompt, sample_index, text, token_count, scores) VALUES (@runId, @modelId, @prompt, @sampleIndex, @text, @tokenCount, @scores)',
      );
      return rows.map((g) => Number(insert.run({
        runId: g.runId ?? null, modelId: g.modelId, prompt: g.prompt, sampleIndex: g.sampleIndex ?? 0, text: g.text, tokenCount: g.tokenCount ?? null, scores: JSON.stringify(g.scores ?? {}),
      }).lastInsertRowid));
    });
  }

  get(id: number): Generation | undefined {
    const row = this.db.statement<[number], Row>(`SELECT ${COLUMNS} FROM generations WHERE id = ?`).get(id);
    return row === undefined ? undefined : toGeneration(row);
  }

  listByRun(runId: number): Generation[] {
    return this.db.statement<[number], Row>(`SELECT ${COLUMNS} FROM generations WHERE run_id = ? ORDER BY id`).all(runId).map(toGeneration);
  }

  listByModel(modelId: number): Generation[] {
    return this.db.statement<[number], Row>(`SELECT ${COLUMNS} FROM generations WHERE model_id = ? ORDER BY id`).all(modelId).map(toGeneration);
  }

  /** Pairs of responses of two sides (plain answers of a model, or its Best-of-N picks) to
   *  the same prompt that no judgment has compared yet (in either order), newest first,
   *  for blind A/B voting. */
  unjudgedPairs(a: GenerationSide, b: GenerationSide, limit = 200): { a: number; b: number; prompt: string }[] {
    return this.db.statement<[Record<string, number | null>], { a: number; b: number; prompt: string }>(
      `SELECT ga.id AS a, gb.id AS b, ga.prompt AS prompt FROM generations ga JOIN generations gb ON gb.prompt = ga.prompt AND gb.id <> ga.id AND ${onSide('gb', 'b')}
       WHERE ${onSide('ga', 'a')} AND NOT EXISTS (SELECT 1 FROM judgments j WHERE (j.a_generation_id = ga.id AND j.b_generation_id = gb.id)
         OR (j.a_generation_id = gb.id AND j.b_generation_id = ga.id))
       ORDER BY ga.id DESC, gb.id DESC LIMIT @limit`,
    ).all({ ...sideParams(a, 'a'), ...sideParams(b, 'b'), limit: Math.max(1, Math.floor(limit)) });
  }

  /** Merges scores into the stored ones (json_patch), e.g. after a judge has run. */
  addScores(id: number, scores: JsonObject): void {
    this.db.statement<[string, number]>('UPDATE generations SET scores = json_patch(scores, ?) WHERE id = ?').run(JSON.stringify(scores), id);
  }
}

function toGeneration(row: Row): Generation {
  return { ...row, scores: parseJson<JsonObject>(row.scores, `the scores of generation #${row.id}`) };
}

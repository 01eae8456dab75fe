// One step of the schema's history (the list is index.ts). Its own module so that the
// migrations and the list that imports them do not import each other.
import type Database from 'better-sqlite3';

export interface Migration {
  readonly version: number;
  readonly name: string;
  up(db: Database.Database): void;
}

// The schema's history, oldest first. Each migration runs in its own transaction that
// ends by setting PRAGMA user_version to its number (see openDatabase). Never edit a
// migration that has shipped: add the next one. PRAGMA foreign_keys cannot change inside
// a transaction, so a migration that rebuilds a table must keep references valid itself.
import { initial } from './001-initial.ts';
import { examplesBySplit } from './002-examples-by-split.ts';
import { jobs } from './003-jobs.ts';
import type { Migration } from './migration.ts';

export type { Migration } from './migration.ts';

export const MIGRATIONS: readonly Migration[] = [initial, examplesBySplit, jobs];

/** Versions must run 1, 2, 3... with no gap, or a database could skip a step. */
export function checkMigrations(migrations: readonly Migration[]): void {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`Migration "${m.name}" has version ${m.version} but is number ${i + 1} in the list; number migrations 1, 2, 3... in order.`);
  });
}

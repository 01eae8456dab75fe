// The store for a command: the --db option, and the studio open for the length of a
// command (main/startup/open-studio.ts opens it).
import type { Studio } from '../startup/open-studio.ts';
import { openStudio } from '../startup/open-studio.ts';

export type { Studio };

/** The option every store command takes. */
export const DB_OPTION = { db: { type: 'string' } } as const;
export const DB_USAGE = '--db PATH (default: the studio database in your user-data folder; :memory: for a throwaway one)';

/** Runs `fn` with the studio open, and closes it whatever happens. */
export async function withStudio<T>(dbOption: string | undefined, fn: (studio: Studio) => Promise<T> | T): Promise<T> {
  const studio = await openStudio(dbOption);
  try {
    return await fn(studio);
  } finally {
    studio.close();
  }
}

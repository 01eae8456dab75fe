// The store for a command: the --db option, and the studio open for the length of a
// command (main/startup/open-studio.ts opens it), alone or behind the StudioService that
// the window and `afd serve` call.
import { StudioService } from '../api/service.ts';
import { JobRunner } from '../jobs/runner.ts';
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

/** A command's front door: the service over the studio at --db (its job runner runs the
 *  jobs the command starts, in this process), and the studio's files for what it writes. */
export interface CommandService {
  service: StudioService;
  studio: Studio;
}

/**
 * Runs `fn` with the StudioService open over the studio, and closes both whatever happens.
 * `recover`: the runner first settles runs that a stopped process left behind (as the
 * window does at start-up), for commands that run jobs in the foreground and resume them.
 */
export function withService<T>(dbOption: string | undefined, fn: (open: CommandService) => Promise<T> | T, opts: { recover?: boolean } = {}): Promise<T> {
  return withStudio(dbOption, async (studio) => {
    const runner = opts.recover === true ? await JobRunner.open({ db: studio.db, files: studio.files }) : new JobRunner({ db: studio.db, files: studio.files });
    const service = new StudioService({ db: studio.db, runner, findHint: (list) => `check the number with \`afd ${list} list\`` });
    try {
      return await fn({ service, studio });
    } finally {
      await service.close();
      await runner.close();
    }
  });
}

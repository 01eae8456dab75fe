// The studio's engine inside the Electron main process: the store in the data folder,
// the job runner and the API service. It is loaded from the TypeScript sources through
// tsx (as bin/afd.js loads the CLI), not bundled, so that job and generation workers
// find their modules next to it exactly as in the CLI and in tests.
import { join } from 'node:path';
import type { AppLogLine, StudioEvent } from '../api/contract.ts';
import { StudioService } from '../api/service.ts';
import { SettingsFile } from '../api/settings.ts';
import { openStudio } from '../startup/open-studio.ts';
import { JobRunner } from '../jobs/runner.ts';

export interface Backend {
  dispatch(method: unknown, params: unknown): Promise<unknown>;
  onEvent(listener: (event: StudioEvent) => void): () => void;
  log(level: AppLogLine['level'], text: string): void;
  dataFolder: string;
  close(): Promise<void>;
}

/** Opens the studio whose data folder the settings in `userData` name (default: userData). */
export async function startBackend(userData: string, choosePath?: (kind: 'file' | 'folder') => Promise<string | null>): Promise<Backend> {
  const settingsFile = join(userData, 'settings.json');
  const { dataFolder } = new SettingsFile(settingsFile, { dataFolder: userData, forcedProvider: 'auto' }).get();
  const studio = await openStudio(join(dataFolder, 'studio.db'));
  const runner = new JobRunner({ db: studio.db, files: studio.files });
  const service = new StudioService({ db: studio.db, runner, settingsFile, dataFolder, ...(choosePath ? { choosePath } : {}) });
  if (studio.recovery.sharedWith !== null) service.log('warn', `The files folder ${studio.files.root} is also the folder of ${studio.recovery.sharedWith}; the studio leaves its files alone (it removes nothing at start-up). Give this database a folder of its own.`);
  for (const r of studio.recovery.interrupted) service.log('warn', `Run #${r.id} (${r.stage}) was interrupted when the studio last closed; resume it from the runs view.`);
  return {
    dispatch: (method, params) => service.dispatch(method, params),
    onEvent: (listener) => service.onEvent(listener),
    log: (level, text) => service.log(level, text),
    dataFolder,
    close: async () => {
      await service.close();
      await runner.close();
      studio.close();
    },
  };
}

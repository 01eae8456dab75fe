// What every area of the service works with: the store, the job runner, the event stream,
// the app log, the settings and the generation worker.
import type { StudioDatabase } from '../../db/database.ts';
import type { JobRunner } from '../jobs/runner.ts';
import type { AppLogLine, LogLevel, Method, Params, Result, StudioEvent } from './contract.ts';
import type { GenerationBackend } from './generation.ts';
import type { SettingsFile } from './settings.ts';

export interface ApiContext {
  db: StudioDatabase;
  runner: JobRunner;
  settings: SettingsFile;
  generation: GenerationBackend;
  emit(event: StudioEvent): void;
  log(level: LogLevel, text: string): void;
  appLog(limit: number): AppLogLine[];
  /** How a sentence about a missing item tells the user to find the right one: the
   *  window reloads its list, the CLI names its list command. */
  findHint(list: 'runs'): string;
  /** Random numbers in [0, 1) (blind order, pair choice); tests make it deterministic. */
  random(): number;
}

/** One area's methods. */
export type Handlers<K extends Method> = { [M in K]: (params: Params<M>) => Result<M> | Promise<Result<M>> };

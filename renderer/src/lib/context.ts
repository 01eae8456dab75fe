// The API and the page's state handed to every view through Svelte's context, so views can
// be rendered against a fake API in tests.
import { getContext, setContext } from 'svelte';
import type { StudioApi } from '../../../main/api/contract.ts';
import type { Studio } from '../state/studio.ts';

const API = Symbol('afd.api');
const STUDIO = Symbol('afd.studio');

export function provideApi(api: StudioApi): void {
  setContext(API, api);
}

export function useApi(): StudioApi {
  const api = getContext<StudioApi | undefined>(API);
  if (api === undefined) throw new Error('No studio API in context; mount the view inside <App> or call provideApi() first.');
  return api;
}

/** The runs, experiments, models, generations, status and app log (renderer/src/state/). */
export function provideStudio(studio: Studio): void {
  setContext(STUDIO, studio);
}

export function useStudio(): Studio {
  const studio = getContext<Studio | undefined>(STUDIO);
  if (studio === undefined) throw new Error('No studio state in context; mount the view inside <App> or call provideStudio() first.');
  return studio;
}

/** The message of anything thrown, for showing where it happened. */
export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

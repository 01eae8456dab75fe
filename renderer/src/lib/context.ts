// The API and app-wide state handed to every view through Svelte's context, so views can be
// rendered against a fake API in tests.
import { getContext, setContext } from 'svelte';
import type { StudioApi } from '../../../main/api/contract.ts';

const API = Symbol('afd.api');

export function provideApi(api: StudioApi): void {
  setContext(API, api);
}

export function useApi(): StudioApi {
  const api = getContext<StudioApi | undefined>(API);
  if (api === undefined) throw new Error('No studio API in context; mount the view inside <App> or call provideApi() first.');
  return api;
}

/** The message of anything thrown, for showing where it happened. */
export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

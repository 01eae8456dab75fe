// The renderer's one way to the studio: window.afd in Electron (the preload's IPC bridge),
// HTTP to `afd serve` otherwise (same origin, bearer token, server-sent events). Only
// types come from the contract, so no engine code ends up in the bundle.
import type { AfdBridge, Method, Params, Result, StudioApi, StudioEvent, StudioEventListener } from '../../main/api/contract.ts';
import { TOKEN_QUERY, TOKEN_STORAGE_KEY, takeToken } from './lib/token.ts';

// Mirrors HTTP in main/api/contract.ts (a value there, so not imported).
const API_PREFIX = '/api/';
const EVENTS_PATH = '/api/events';

declare global {
  interface Window {
    afd?: AfdBridge;
  }
}

/** A failed call, with the sentence to show where it happened. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  readonly status: number | null;
  constructor(message: string, status: number | null = null) {
    super(message);
    this.status = status;
  }
}

/** The bridge as a typed API. */
export function bridgeApi(bridge: AfdBridge): StudioApi {
  return {
    call: async <M extends Method>(method: M, params: Params<M>) => {
      try {
        // Plain JSON data: Svelte's $state proxies cannot cross IPC (structured clone refuses them).
        return (await bridge.call(method, JSON.parse(JSON.stringify(params ?? {})))) as Result<M>;
      } catch (err) {
        // Electron prefixes errors crossing IPC with "Error invoking remote method ...: Error: ".
        throw new ApiError((err as Error).message.replace(/^Error invoking remote method '[^']*': (\w*Error: )?/, ''));
      }
    },
    onEvent: (listener) => bridge.onEvent(listener),
  };
}

/** The HTTP client of `afd serve`, on the page's own origin. */
export function httpApi(token: string | null, origin = location.origin): StudioApi {
  const listeners = new Set<StudioEventListener>();
  let source: EventSource | null = null;

  const connect = (): void => {
    if (source !== null || token === null) return;
    source = new EventSource(`${origin}${EVENTS_PATH}?${TOKEN_QUERY}=${encodeURIComponent(token)}`);
    source.onmessage = (m: MessageEvent<string>) => {
      let event: StudioEvent;
      try {
        event = JSON.parse(m.data) as StudioEvent;
      } catch {
        return; // a keep-alive or a line this version does not know
      }
      for (const l of listeners) l(event);
    };
    // EventSource reconnects by itself after a dropped connection.
  };

  return {
    async call<M extends Method>(method: M, params: Params<M>): Promise<Result<M>> {
      if (token === null) throw new ApiError('This page has no access token, so the studio refuses its requests; open the address that `afd serve` printed (it ends in ?token=...).', 401);
      let res: Response;
      try {
        res = await fetch(`${origin}${API_PREFIX}${method}`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
          body: JSON.stringify(params ?? {}),
        });
      } catch {
        throw new ApiError(`The studio at ${origin} did not answer; check that \`afd serve\` is still running, then try again.`);
      }
      const body = (await res.json().catch(() => null)) as { error?: string } | null;
      if (res.status === 401) throw new ApiError('The studio refused the access token of this page (it changes each time `afd serve` starts); open the address it printed most recently.', 401);
      if (!res.ok) throw new ApiError(body?.error ?? `The studio answered "${method}" with HTTP ${res.status}; see the log panel in Settings.`, res.status);
      return body as Result<M>;
    },
    onEvent(listener) {
      listeners.add(listener);
      connect();
      return () => {
        listeners.delete(listener);
        if (listeners.size === 0 && source !== null) {
          source.close();
          source = null;
        }
      };
    },
  };
}

/** The API of this page: Electron's bridge when present, else HTTP with the URL's token. */
export function createApi(): StudioApi {
  if (window.afd !== undefined) return bridgeApi(window.afd);
  let stored: string | null = null;
  try {
    stored = sessionStorage.getItem(TOKEN_STORAGE_KEY);
  } catch {
    // storage disabled: the token lives only as long as this page
  }
  const { token, cleanUrl } = takeToken(location.href, stored);
  if (token !== null) {
    try {
      sessionStorage.setItem(TOKEN_STORAGE_KEY, token);
    } catch {
      // see above
    }
  }
  if (cleanUrl !== null) history.replaceState(history.state, '', cleanUrl);
  return httpApi(token);
}

// The main-process side of the bridge, as plain functions so that tests need no Electron:
// a call is answered only for the app's own page (its main frame, on the app's origin),
// and only with a known method and params the contract's validators accept.
import type { IpcMain, IpcMainInvokeEvent } from 'electron';
import { validate } from '../api/contract.ts';
import type { IpcReply } from './channels.ts';
import { APP_ORIGIN, CALL_CHANNEL } from './channels.ts';

export interface CallSender {
  /** The URL of the frame that sent the message (event.senderFrame.url). */
  url: string | undefined;
  /** Whether that frame is its page's main frame (not an iframe). */
  isMainFrame: boolean;
}

/** The app's page: the main frame of a document on the app's own origin. */
export function isTrustedSender(sender: CallSender, origin = APP_ORIGIN): boolean {
  if (!sender.isMainFrame || sender.url === undefined) return false;
  try {
    // Compared by scheme and host: URL.origin is "null" for a custom scheme such as app:.
    const from = new URL(sender.url);
    const app = new URL(origin);
    return from.protocol === app.protocol && from.host === app.host && from.username === '' && from.password === '';
  } catch {
    return false;
  }
}

export type Dispatch = (method: unknown, params: unknown) => Promise<unknown>;

/** Answers one call: refused for a foreign sender or bad params, else the dispatch's
 *  result or its error sentence. Never throws. */
export function createCallHandler(dispatch: Dispatch, options: { origin?: string; onRefused?: (why: string) => void } = {}): (sender: CallSender, method: unknown, params: unknown) => Promise<IpcReply> {
  return async (sender, method, params) => {
    if (!isTrustedSender(sender, options.origin)) {
      const why = `An API call from ${sender.url ?? 'an unknown frame'}${sender.isMainFrame ? '' : ' (a sub-frame)'} was refused: only the studio's own page may call it.`;
      options.onRefused?.(why);
      return { ok: false, error: why };
    }
    try {
      const checked = validate(method, params);
      return { ok: true, result: await dispatch(checked.method, checked.params) };
    } catch (err) {
      return { ok: false, error: err instanceof Error ? err.message : String(err) };
    }
  };
}

/** Registers the handler on ipcMain; returns the function that removes it. */
export function registerIpc(ipcMain: IpcMain, dispatch: Dispatch, options: { origin?: string; onRefused?: (why: string) => void } = {}): () => void {
  const handle = createCallHandler(dispatch, options);
  ipcMain.handle(CALL_CHANNEL, (event: IpcMainInvokeEvent, method: unknown, params: unknown) => {
    const frame = event.senderFrame;
    return handle({ url: frame?.url, isMainFrame: frame !== null && frame === event.sender.mainFrame }, method, params);
  });
  return () => ipcMain.removeHandler(CALL_CHANNEL);
}

// The IPC channel names shared by the main process and the preload (which is sandboxed
// and bundled: it may import nothing but electron and this file).
export const CALL_CHANNEL = 'afd:call';
export const EVENT_CHANNEL = 'afd:event';

/** What the main process answers a call with: errors travel as data, because an
 *  exception thrown across ipcMain.handle reaches the page with Electron's prefix. */
export type IpcReply = { ok: true; result: unknown } | { ok: false; error: string };

/** The scheme and host the app's pages are served from (see main.ts). */
export const APP_SCHEME = 'app';
export const APP_ORIGIN = 'app://studio';

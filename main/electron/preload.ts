// The preload of the studio's window (sandboxed, context-isolated): it exposes exactly
// window.afd = { call, onEvent } and nothing of Node or Electron.
import type { IpcRendererEvent } from 'electron';
import { contextBridge, ipcRenderer } from 'electron';
import type { AfdBridge, StudioEvent } from '../api/contract.ts';
import type { IpcReply } from './channels.ts';
import { CALL_CHANNEL, EVENT_CHANNEL } from './channels.ts';

const bridge: AfdBridge = {
  async call(method: string, params: unknown): Promise<unknown> {
    const reply = (await ipcRenderer.invoke(CALL_CHANNEL, method, params)) as IpcReply;
    if (!reply.ok) throw new Error(reply.error);
    return reply.result;
  },
  onEvent(listener: (event: StudioEvent) => void): () => void {
    const forward = (_e: IpcRendererEvent, event: StudioEvent): void => listener(event);
    ipcRenderer.on(EVENT_CHANNEL, forward);
    return () => {
      ipcRenderer.removeListener(EVENT_CHANNEL, forward);
    };
  },
};

contextBridge.exposeInMainWorld('afd', bridge);

// The Electron main process: one window on the app's own page, locked down (context
// isolation, sandbox, no Node in the page, a strict CSP, no navigation away, no new
// windows, no permissions), an application menu, one instance per user, and the engine
// (backend.ts) answering the page's calls through ipc.ts. Bundled to dist/electron/main.cjs
// by scripts/build-electron.mjs; the engine itself is loaded from source through tsx.
import { readFile } from 'node:fs/promises';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { MenuItemConstructorOptions } from 'electron';
import { BrowserWindow, Menu, app, dialog, ipcMain, protocol, session, shell } from 'electron';
import type { StudioEvent } from '../api/contract.ts';
import { CONTENT_SECURITY_POLICY } from '../server/csp.ts';
import type { Backend } from './backend.ts';
import { APP_ORIGIN, APP_SCHEME, EVENT_CHANNEL } from './channels.ts';
import { registerIpc } from './ipc.ts';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.json': 'application/json',
  '.svg': 'image/svg+xml', '.png': 'image/png', '.ico': 'image/x-icon', '.woff2': 'font/woff2',
};

// app:// must be registered before the app is ready; "standard" and "secure" give it an
// origin of its own, like https, so the CSP's 'self' means exactly the app's files.
protocol.registerSchemesAsPrivileged([{ scheme: APP_SCHEME, privileges: { standard: true, secure: true, supportFetchAPI: true } }]);

let win: BrowserWindow | null = null;
let backend: Backend | null = null;

if (!app.requestSingleInstanceLock()) {
  // Another instance has the database open: it gets focused instead.
  app.quit();
} else {
  app.on('second-instance', () => {
    if (win === null) return;
    if (win.isMinimized()) win.restore();
    win.focus();
  });
  app.whenReady().then(start).catch((err: Error) => {
    dialog.showErrorBox('AfD Studio could not start', err.message);
    app.exit(1);
  });
}

async function start(): Promise<void> {
  const root = app.getAppPath();
  const rendererDir = resolve(root, 'renderer', 'dist');
  protocol.handle(APP_SCHEME, (request) => serveAppFile(rendererDir, request.url));
  lockDownSession();
  lockDownContents();

  backend = await loadBackend(root, app.getPath('userData'));
  const b = backend;
  registerIpc(ipcMain, (method, params) => b.dispatch(method, params), { onRefused: (why) => b.log('warn', why) });
  b.onEvent((event: StudioEvent) => {
    if (win !== null && !win.isDestroyed()) win.webContents.send(EVENT_CHANNEL, event);
  });

  Menu.setApplicationMenu(Menu.buildFromTemplate(menu(b)));
  createWindow();
  app.on('activate', () => {
    if (BrowserWindow.getAllWindows().length === 0) createWindow();
  });
}

/** The engine, from the TypeScript sources through tsx (see backend.ts). */
async function loadBackend(root: string, userData: string): Promise<Backend> {
  const { register } = (await import('tsx/esm/api')) as { register: () => unknown };
  register();
  const mod = (await import(pathToFileURL(join(root, 'main', 'electron', 'backend.ts')).href)) as { startBackend: (userData: string, choosePath: (kind: 'file' | 'folder') => Promise<string | null>) => Promise<Backend> };
  return mod.startBackend(userData, choosePath);
}

/** The native open dialog, for dataset files and model folders. */
async function choosePath(kind: 'file' | 'folder'): Promise<string | null> {
  const options = { properties: [kind === 'folder' ? ('openDirectory' as const) : ('openFile' as const)] };
  const r = win !== null ? await dialog.showOpenDialog(win, options) : await dialog.showOpenDialog(options);
  return r.canceled || r.filePaths.length === 0 ? null : r.filePaths[0];
}

function createWindow(): void {
  win = new BrowserWindow({
    width: 1280,
    height: 820,
    minWidth: 800,
    minHeight: 560,
    title: 'AfD Studio',
    show: false,
    webPreferences: {
      preload: join(__dirname, 'preload.cjs'),
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      webviewTag: false,
      spellcheck: false,
    },
  });
  win.once('ready-to-show', () => win?.show());
  win.on('closed', () => {
    win = null;
  });
  void win.loadURL(`${APP_ORIGIN}/index.html`);
}

/** No permission (camera, notifications, geolocation...) is ever granted, and every
 *  response carries the CSP (the app:// handler sets it too). */
function lockDownSession(): void {
  const s = session.defaultSession;
  s.setPermissionRequestHandler((_contents, _permission, callback) => callback(false));
  s.setPermissionCheckHandler(() => false);
  s.webRequest.onHeadersReceived((details, callback) => {
    callback({ responseHeaders: { ...details.responseHeaders, 'Content-Security-Policy': [CONTENT_SECURITY_POLICY] } });
  });
  // Nothing leaves the machine: requests to anything but the app's own files are cancelled.
  s.webRequest.onBeforeRequest((details, callback) => {
    const allowed = details.url.startsWith(`${APP_ORIGIN}/`) || details.url.startsWith('devtools://') || details.url.startsWith('data:') || details.url.startsWith('blob:');
    callback({ cancel: !allowed });
  });
}

/** Every web contents (the window, and anything that might appear later): no navigation
 *  away from the app, no new windows (http links open in the browser), no webviews. */
function lockDownContents(): void {
  app.on('web-contents-created', (_event, contents) => {
    contents.on('will-navigate', (event, url) => {
      if (!url.startsWith(`${APP_ORIGIN}/`)) event.preventDefault();
    });
    contents.on('will-redirect', (event, url) => {
      if (!url.startsWith(`${APP_ORIGIN}/`)) event.preventDefault();
    });
    contents.on('will-attach-webview', (event) => event.preventDefault());
    contents.setWindowOpenHandler(({ url }) => {
      if (url.startsWith('https://')) void shell.openExternal(url);
      return { action: 'deny' };
    });
  });
}

async function serveAppFile(rendererDir: string, url: string): Promise<Response> {
  const headers = { 'Content-Security-Policy': CONTENT_SECURITY_POLICY, 'X-Content-Type-Options': 'nosniff' };
  const { host, pathname } = new URL(url);
  if (host !== new URL(APP_ORIGIN).host) return new Response('Not found.', { status: 404, headers });
  const rel = normalize(decodeURIComponent(pathname)).replace(/^([/\\])+/, '') || 'index.html';
  let file = resolve(rendererDir, rel);
  if (!file.startsWith(rendererDir + sep)) return new Response('Not found.', { status: 404, headers });
  // Views are routes of one page.
  if (extname(file) === '') file = join(rendererDir, 'index.html');
  try {
    const body = await readFile(file);
    return new Response(body, { headers: { ...headers, 'Content-Type': TYPES[extname(file)] ?? 'application/octet-stream' } });
  } catch {
    if (file.endsWith('index.html')) return new Response('The studio\'s interface is not built: run npm run build, then start the app again.', { status: 503, headers });
    return new Response('Not found.', { status: 404, headers });
  }
}

function menu(b: Backend): MenuItemConstructorOptions[] {
  const mac = process.platform === 'darwin';
  return [
    ...(mac ? [{ role: 'appMenu' } as MenuItemConstructorOptions] : []),
    {
      label: 'File',
      submenu: [
        { label: 'Show Data Folder', click: () => void shell.openPath(b.dataFolder) },
        { type: 'separator' },
        mac ? { role: 'close' } : { role: 'quit' },
      ],
    },
    { role: 'editMenu' },
    {
      label: 'View',
      submenu: [
        { role: 'reload' },
        ...(app.isPackaged ? [] : [{ role: 'toggleDevTools' } as MenuItemConstructorOptions]),
        { type: 'separator' },
        { role: 'resetZoom' },
        { role: 'zoomIn' },
        { role: 'zoomOut' },
        { type: 'separator' },
        { role: 'togglefullscreen' },
      ],
    },
    { role: 'windowMenu' },
    {
      role: 'help',
      submenu: [{ label: `AfD Studio ${app.getVersion()}`, enabled: false }],
    },
  ];
}

// Running jobs pause (with a checkpoint) before the app exits.
let quitting = false;
app.on('before-quit', (event) => {
  if (quitting || backend === null) return;
  event.preventDefault();
  quitting = true;
  void backend.close().finally(() => app.exit(0));
});

app.on('window-all-closed', () => {
  if (process.platform !== 'darwin') app.quit();
});

// The one window: sandboxed, context-isolated, no Node; links to other sites open in the browser.
import { BrowserWindow, shell } from 'electron';
import { join } from 'node:path';
import { log } from './log';

export interface WindowOptions {
  /** The page to load: the engine's admin URL (or the dev server in `npm run dev`). */
  url: string;
  preloadPath: string;
  iconPath?: string;
  show: boolean;
}

export function isSameOrigin(a: string, b: string): boolean {
  try {
    return new URL(a).origin === new URL(b).origin;
  } catch {
    return false;
  }
}

export function isExternalHttpUrl(url: string): boolean {
  try {
    const u = new URL(url);
    return u.protocol === 'https:' || u.protocol === 'http:' || u.protocol === 'mailto:';
  } catch {
    return false;
  }
}

export function createMainWindow(opts: WindowOptions): BrowserWindow {
  const win = new BrowserWindow({
    width: 1200,
    height: 820,
    minWidth: 720,
    minHeight: 520,
    show: false,
    title: 'Triplicate',
    icon: opts.iconPath,
    backgroundColor: '#f6f7f9',
    autoHideMenuBar: true,
    webPreferences: {
      preload: opts.preloadPath,
      contextIsolation: true,
      sandbox: true,
      nodeIntegration: false,
      nodeIntegrationInWorker: false,
      webSecurity: true,
      allowRunningInsecureContent: false,
      spellcheck: false,
    },
  });

  const contents = win.webContents;
  // New windows: never inside the app. http(s) links go to the default browser.
  contents.setWindowOpenHandler(({ url }) => {
    if (isExternalHttpUrl(url)) void shell.openExternal(url);
    else log.warn('blocked a window for', url.slice(0, 200));
    return { action: 'deny' };
  });
  // Navigation away from the app's origin: cancelled; http(s) goes to the browser.
  contents.on('will-navigate', (event, url) => {
    if (isSameOrigin(url, opts.url)) return;
    event.preventDefault();
    if (isExternalHttpUrl(url)) void shell.openExternal(url);
  });
  contents.on('will-attach-webview', (event) => event.preventDefault());
  // Permission prompts (camera, location, ...): the app needs none but notifications and clipboard writes.
  contents.session.setPermissionRequestHandler((_wc, permission, callback) => {
    callback(permission === 'notifications' || permission === 'clipboard-sanitized-write');
  });

  if (opts.show) win.once('ready-to-show', () => win.show());
  void win.loadURL(opts.url).catch((e: unknown) => log.error('window load failed', e));
  return win;
}

/** A small page shown when the engine cannot start: a sentence, the next step, the detail. */
export function errorPageUrl(message: string, detail?: string): string {
  const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  const html = `<!doctype html><meta charset="utf-8"><title>Triplicate</title>
<style>body{font:16px/1.5 system-ui,sans-serif;margin:3rem;max-width:44rem;color:#1b1f24;background:#f6f7f9}
@media (prefers-color-scheme:dark){body{color:#e8eaed;background:#15181c}}h1{font-size:1.6rem}
details{margin-top:1.5rem}pre{white-space:pre-wrap}</style>
<h1>Triplicate could not start</h1><p>${esc(message)}</p>${detail ? `<details><summary>Technical detail</summary><pre>${esc(detail)}</pre></details>` : ''}`;
  return `data:text/html;charset=utf-8,${encodeURIComponent(html)}`;
}

export function rendererDir(appPath: string): string {
  return join(appPath, 'out', 'renderer');
}

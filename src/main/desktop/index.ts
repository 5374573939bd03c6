// The Electron shell: one instance, one window (hidden to the tray on close), the tray, native
// notifications, and the engine in its own process (supervised) or as a system service.
import { app, BrowserWindow, dialog, ipcMain, Notification, safeStorage, shell, type IpcMainEvent, type IpcMainInvokeEvent } from 'electron';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { DesktopSettingsPatch, EngineConnection, RendererCommand } from '../../preload/bridge';
import { IPC } from '../../preload/channels';
import { ApiError } from '../../shared/client';
import { applyAutoStart, autoStartSupported, startedHidden } from './autostart';
import { DragOut } from './drag';
import { connectToService, EngineStartError, engineProcessHost, serviceSettingsFromEnv, STOP_TIMEOUT_MS, type HostedEngine } from './engine-host';
import { EngineWatch } from './engine-watch';
import { logFilePath, setupLogging } from './log';
import { SettingsError } from './logic/settings';
import type { EngineState, EngineSupervisor } from './logic/supervisor';
import { linkFor, type TrayCommand } from './logic/tray';
import { Notifier } from './notifier';
import { SecretVault } from './secret-vault';
import { DesktopSettingsStore } from './settings-store';
import { AppTray } from './tray';
import { createMainWindow, errorPageUrl, isExternalHttpUrl, isSameOrigin } from './window';

const log = setupLogging();
app.setName('Triplicate');
if (process.platform === 'win32') app.setAppUserModelId('org.triplicate.app');

if (!app.requestSingleInstanceLock()) {
  // Another Triplicate runs: it shows its window (second-instance below) and this one leaves.
  app.quit();
} else {
  main();
}

function main(): void {
  const devRendererUrl = !app.isPackaged ? process.env.ELECTRON_RENDERER_URL : undefined;
  const resourcesDir = app.isPackaged ? join(process.resourcesPath, 'resources') : join(app.getAppPath(), 'resources');
  const preloadPath = join(import.meta.dirname, '../preload/index.cjs');
  const appIcon = join(resourcesDir, 'icon.png');
  const dataDir = process.env.TRIPLICATE_DATA_DIR?.trim() || join(app.getPath('userData'), 'data');

  let win: BrowserWindow | null = null;
  let windowUrl = '';
  let tray: AppTray | null = null;
  let hosted: HostedEngine | null = null;
  let supervisor: EngineSupervisor | null = null;
  let watch: EngineWatch | null = null;
  let notifier: Notifier | null = null;
  let dragOut: DragOut | null = null;
  let quitting = false;
  let toldAboutTray = false;
  /** The engine process's state (null: the app connects to a service). */
  let engineState: EngineState | null = null;
  /** Sentences for the operator that wait until the window has loaded. */
  const pendingMessages: RendererCommand[] = [];
  const settings = new DesktopSettingsStore();

  const send = (cmd: RendererCommand) => win?.webContents.send(IPC.command, cmd);
  const tell = (text: string) => {
    const cmd: RendererCommand = { type: 'message', level: 'error', text };
    if (win && !win.webContents.isLoading()) send(cmd);
    else pendingMessages.push(cmd);
  };
  const updateTray = () => {
    const cur = watch?.current ?? { status: null, link: { state: 'connecting' as const } };
    tray?.update(cur.status, linkFor(cur.link, engineState));
  };

  const showWindow = (page?: string) => {
    if (!win) return;
    if (win.isMinimized()) win.restore();
    win.show();
    win.focus();
    if (page) send({ type: 'navigate', page });
  };

  app.on('second-instance', () => showWindow());
  // macOS: a click on the Dock icon brings the window back.
  app.on('activate', () => showWindow());

  /** Only our own page may call the bridge. */
  const trusted = (e: IpcMainInvokeEvent | IpcMainEvent): boolean => {
    const url = e.senderFrame?.url ?? '';
    const ok = !!windowUrl && isSameOrigin(url, windowUrl);
    if (!ok) log.warn('ignored IPC from', url.slice(0, 200));
    return ok;
  };
  const handle = (channel: string, fn: (e: IpcMainInvokeEvent, ...args: unknown[]) => unknown) =>
    ipcMain.handle(channel, (e, ...args) => {
      if (!trusted(e)) throw new Error('not allowed');
      return fn(e, ...args);
    });

  const runTrayCommand = async (c: TrayCommand) => {
    if (c === 'open') return showWindow();
    if (c === 'quit') return app.quit();
    if (!watch) return;
    try {
      if (c === 'pause') await watch.client.call('pauseAll');
      else if (c === 'resume') await watch.client.call('resumeAll');
      else if (c === 'sync-now') await watch.client.call('initialSync', { body: {} });
      else if (c === 'restore-missing') {
        await watch.client.call('restoreMissing', { body: {} });
        showWindow('restore');
      }
      await watch.refresh();
    } catch (e) {
      const text =
        e instanceof ApiError && e.status === 404
          ? 'This version of the backup engine cannot do that yet.'
          : e instanceof Error
            ? e.message
            : String(e);
      log.warn(`tray command ${c} failed: ${text}`);
      showWindow();
      send({ type: 'message', level: 'error', text });
    }
  };

  app.on('before-quit', (event) => {
    if (quitting) return;
    quitting = true;
    event.preventDefault();
    void (async () => {
      watch?.stop();
      notifier?.dispose();
      await dragOut?.dispose();
      try {
        // the engine process stops its uploads and exits; after the timeout it is ended
        await supervisor?.stop(STOP_TIMEOUT_MS);
      } catch (e) {
        log.error('engine stop failed', e);
      }
      tray?.destroy();
      app.exit(0);
    })();
  });

  // Keep running in the tray when the window closes.
  app.on('window-all-closed', () => undefined);

  app.whenReady().then(async () => {
    log.info(`Triplicate ${app.getVersion()} starting (${process.platform}, electron ${process.versions.electron})`);
    applyAutoStart(settings.value.autoStart);

    // IPC: named functions only (src/preload/index.ts).
    let connection: EngineConnection | null = null;
    handle(IPC.getEngineConnection, () => {
      if (!connection) throw new Error('The backup engine is not running.');
      // In `npm run dev` the page comes from the Vite dev server, which proxies /api to the engine.
      return devRendererUrl ? { ...connection, baseUrl: '' } : connection;
    });
    handle(IPC.pickFolder, async (_e, raw) => {
      const opts = (raw ?? {}) as { title?: string; defaultPath?: string };
      const parent = win ?? undefined;
      const dialogOpts: Electron.OpenDialogOptions = {
        title: opts.title || 'Choose a folder to back up',
        defaultPath: opts.defaultPath || undefined,
        properties: ['openDirectory', 'createDirectory', 'dontAddToRecent'],
      };
      const r = parent ? await dialog.showOpenDialog(parent, dialogOpts) : await dialog.showOpenDialog(dialogOpts);
      return r.canceled || r.filePaths.length === 0 ? null : r.filePaths[0];
    });
    handle(IPC.prepareDrag, (_e, key) => (dragOut && typeof key === 'string' ? dragOut.prepare(key) : { ready: false }));
    ipcMain.on(IPC.startDrag, (e, key) => {
      if (!trusted(e) || typeof key !== 'string' || !dragOut) return;
      void dragOut.start(e.sender, key);
    });
    handle(IPC.openExternal, async (_e, url) => {
      if (typeof url === 'string' && isExternalHttpUrl(url)) await shell.openExternal(url);
    });
    handle(IPC.showItemInFolder, (_e, path) => {
      if (typeof path === 'string' && path && existsSync(path)) shell.showItemInFolder(path);
    });
    handle(IPC.getDesktopSettings, () => settings.view(autoStartSupported()));
    handle(IPC.setDesktopSettings, (_e, patch) => {
      try {
        const before = settings.value.autoStart;
        const next = settings.patch((patch ?? {}) as DesktopSettingsPatch);
        if (next.autoStart !== before) applyAutoStart(next.autoStart);
        notifier?.settingsChanged();
        return settings.view(autoStartSupported());
      } catch (e) {
        if (e instanceof SettingsError) throw new Error(e.message);
        throw e;
      }
    });
    handle(IPC.testWebhook, () => notifier?.test() ?? { ok: false, message: 'Not ready yet.' });
    handle(IPC.getAppInfo, () => ({
      version: app.getVersion(),
      platform: process.platform,
      logFile: logFilePath(),
      dataDir,
      engineMode: hosted?.connection.mode ?? 'embedded',
    }));
    handle(IPC.openLogFolder, async () => {
      shell.showItemInFolder(logFilePath());
    });

    const service = serviceSettingsFromEnv();
    tray = new AppTray(resourcesDir, (c) => void runTrayCommand(c), !service);

    /** The engine cannot run: the window shows why (a sentence, the next step, the detail). */
    const showEngineError = (msg: string, detail?: string) => {
      log.error('engine failed', msg, detail ?? '');
      windowUrl = '';
      const url = errorPageUrl(msg, detail);
      if (win) {
        void win.loadURL(url);
        showWindow();
      } else win = createMainWindow({ url, preloadPath, iconPath: appIcon, show: true });
    };

    // The S3 keys and the tunnel token go to the system's password store, when there is a real one
    // (not Linux's basic_text fallback); otherwise config.json (0600) keeps them, as a service's does.
    const vaultFile = join(app.getPath('userData'), 'engine-secrets.json');
    const vault = !service && settings.secretsProtected() ? new SecretVault(vaultFile, safeStorage) : null;
    if (!service && !vault && existsSync(vaultFile)) {
      tell('The destination keys are kept in the system password store, which is not available now, so copies to those destinations fail. Sign in to your desktop session with its password store unlocked and start Triplicate again, or enter the keys again on the Destinations page.');
    }

    const host = service
      ? null
      : engineProcessHost({
          modulePath: join(app.getAppPath(), 'out', 'engine', 'triplicate.mjs'),
          dataDir,
          vault,
          onSecretsProblem: tell,
          // `npm run dev`: the Vite dev server proxies /api to this fixed port (electron.vite.config.ts)
          adminPort: devRendererUrl ? Number(process.env.TRIPLICATE_DEV_ADMIN_PORT ?? 8765) : undefined,
          devHint: !app.isPackaged,
          onState: (s) => {
            engineState = s;
            log.info(`engine ${s.state}${s.state === 'restarting' ? ` (attempt ${s.attempt}, exit code ${s.lastExit.code})` : ''}`);
            updateTray();
            if (s.state === 'running') watch?.retryNow();
            if (s.state === 'failed' && watch) showEngineError(s.message, s.detail);
          },
        });
    supervisor = host?.supervisor ?? null;
    try {
      hosted = service ? await connectToService(service.url, service.tokenFile) : await host!.start();
    } catch (e) {
      if (quitting) return;
      const msg = e instanceof EngineStartError ? e.message : 'The backup engine could not start.';
      const detail = e instanceof EngineStartError ? e.detail : e instanceof Error ? e.stack : String(e);
      showEngineError(msg, detail);
      return;
    }
    connection = hosted.connection;
    log.info(`engine (${connection.mode}) at ${connection.baseUrl}`);

    notifier = new Notifier(settings, (page) => showWindow(page), appIcon);
    watch = new EngineWatch(connection, {
      status: (s, link) => {
        tray?.update(s, linkFor(link, engineState));
        if (s && link.state === 'connected') notifier?.onStatus(s);
      },
      event: (ev) => notifier?.onEvent(ev),
    });
    watch.start();
    dragOut = new DragOut(watch.client, join(resourcesDir, 'drag.png'));

    windowUrl = devRendererUrl ?? `${connection.baseUrl}/`;
    win = createMainWindow({ url: windowUrl, preloadPath, iconPath: appIcon, show: !startedHidden() });
    win.webContents.on('did-finish-load', () => {
      for (const cmd of pendingMessages.splice(0)) send(cmd);
    });
    win.on('close', (event) => {
      if (quitting) return;
      event.preventDefault();
      win?.hide();
      if (!toldAboutTray && Notification.isSupported()) {
        toldAboutTray = true;
        new Notification({
          title: 'Triplicate keeps backing up',
          body: 'The window is closed, but Triplicate still runs. Its icon is next to the clock; choose Quit there to stop it.',
          silent: true,
          icon: appIcon,
        }).show();
      }
    });
    if (!app.isPackaged) win.webContents.openDevTools({ mode: 'detach' });
  }).catch((e: unknown) => {
    log.error('startup failed', e);
    dialog.showErrorBox('Triplicate could not start', e instanceof Error ? e.message : String(e));
    app.exit(1);
  });
}

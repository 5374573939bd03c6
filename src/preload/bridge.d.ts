// The functions the preload script exposes to the page as `window.triplicate` (Electron only;
// in a browser `window.triplicate` is undefined). Named functions only, never ipcRenderer.
// Included by tsconfig.web.json (renderer) and imported by the preload and the main process.

export interface EngineConnection {
  /** Where the admin API answers, e.g. http://127.0.0.1:8765 ("" = the page's own origin). */
  baseUrl: string;
  token: string;
  /** The public download server, for links. */
  downloadUrl?: string;
  /** embedded: this app runs the engine (in its own process); service: the app connects to a system service. */
  mode: 'embedded' | 'service';
}

/** What main asks the window to do (tray menu, notification clicks). */
export type RendererCommand =
  | { type: 'navigate'; page: string }
  | { type: 'message'; level: 'info' | 'warn' | 'error'; text: string };

export type WebhookKindName = 'ntfy' | 'slack' | 'healthchecks' | 'json';

export interface DesktopSettingsView {
  autoStart: boolean;
  /** false on systems where login items are not supported */
  autoStartSupported: boolean;
  notifications: { desktop: boolean; quietHours?: { start: string; end: string } };
  webhook: { configured: boolean; kind?: WebhookKindName; host?: string };
  /** true when secrets are encrypted by the system's password store (safeStorage) */
  secretsProtected: boolean;
}

export interface DesktopSettingsPatch {
  autoStart?: boolean;
  notifications?: { desktop?: boolean; quietHours?: { start: string; end: string } | null };
  /** null removes the webhook */
  webhook?: { url: string; kind?: WebhookKindName } | null;
}

export interface AppInfo {
  version: string;
  platform: string;
  logFile: string;
  dataDir: string;
  engineMode: 'embedded' | 'service';
}

export interface TriplicateBridge {
  readonly isElectron: true;
  readonly platform: string;
  getEngineConnection(): Promise<EngineConnection>;
  /** The native folder picker; null when cancelled. */
  pickFolder(opts?: { title?: string; defaultPath?: string }): Promise<string | null>;
  /** Absolute paths of files dropped on the window (webUtils.getPathForFile); "" for ones without a path. */
  pathsForFiles(files: readonly File[]): string[];
  /** Call on pointer-down over a draggable file: fetches a missing file so the drag can start at once. */
  prepareDrag(fileKey: string): Promise<{ ready: boolean; message?: string }>;
  /** Call from dragstart (after preventDefault): drags the file out to wherever it is dropped. */
  startDrag(fileKey: string): void;
  openExternal(url: string): Promise<void>;
  showItemInFolder(path: string): Promise<void>;
  onCommand(cb: (cmd: RendererCommand) => void): () => void;
  getDesktopSettings(): Promise<DesktopSettingsView>;
  setDesktopSettings(patch: DesktopSettingsPatch): Promise<DesktopSettingsView>;
  testWebhook(): Promise<{ ok: boolean; message: string }>;
  getAppInfo(): Promise<AppInfo>;
  openLogFolder(): Promise<void>;
}

declare global {
  interface Window {
    triplicate?: TriplicateBridge;
  }
}

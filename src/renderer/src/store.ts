// The one store. Fed by the typed ApiClient (initial loads, after actions) and the event stream
// (everything else). No polling: a refresh happens because an event said something changed.
import { create } from 'zustand';
import type { Config } from '../../shared/config';
import type { EngineEvent, EventRecord, ProviderPresetInfo, RestoreProgress, RootInfo, SyncStatus, TargetInfo, TunnelStatus } from '../../shared/api';
import { ApiClient } from '../../shared/client';
import { isNotAvailable, isUnauthorized, toShownError } from './lib/errors';
import { EventStream, type StreamState } from './lib/live';
import { discoverConnection, isElectron, signIn as postLogin, storeToken, type Connection } from './lib/transport';

export const PAGES = ['overview', 'folders', 'destinations', 'activity', 'browse', 'restore', 'sharing', 'media', 'settings'] as const;
export type PageId = (typeof PAGES)[number];

export function pageFromHash(hash: string): PageId {
  const p = hash.replace(/^#\/?/, '').split(/[?/]/)[0] as PageId;
  return (PAGES as readonly string[]).includes(p) ? p : 'overview';
}

export interface Transfer {
  key: string;
  target_id: string;
  file_key: string;
  bytes: number;
  total: number;
  /** bytes/s, smoothed */
  rate: number;
  startedAt: number;
  updatedAt: number;
}

export interface Toast {
  id: number;
  level: 'info' | 'success' | 'warn' | 'error';
  text: string;
  detail?: string;
}

export type Phase = 'starting' | 'signin' | 'online' | 'lost' | 'fatal';

export interface AppState {
  phase: Phase;
  conn: Connection | null;
  client: ApiClient | null;
  lost: { since: number; attempt: number; retryAt: number } | null;
  fatal: string | null;
  signInError: string | null;

  status: SyncStatus | null;
  roots: RootInfo[] | null;
  targets: TargetInfo[] | null;
  presets: ProviderPresetInfo[] | null;
  config: Config | null;
  transfers: Transfer[];
  restore: RestoreProgress | null;
  tunnel: TunnelStatus | null;
  /** newest first, at most 200 */
  recentEvents: EventRecord[];
  toasts: Toast[];
  page: PageId;

  boot(): Promise<void>;
  signIn(password: string): Promise<void>;
  signOut(): void;
  retryNow(): void;
  navigate(page: PageId): void;
  refreshStatus(): Promise<void>;
  refreshRoots(): Promise<void>;
  refreshTargets(): Promise<void>;
  refreshConfig(): Promise<void>;
  toast(level: Toast['level'], text: string, detail?: string): void;
  dismissToast(id: number): void;
  /** Run an action; on failure show its sentence as a toast. Returns undefined on failure. */
  run<T>(fn: (client: ApiClient) => Promise<T>, success?: string): Promise<T | undefined>;
}

let stream: EventStream | null = null;
let toastSeq = 0;

// --- progress events come many times a second per transfer: buffer them, flush 4x a second
const progressBuffer = new Map<string, { target_id: string; file_key: string; bytes: number; total: number; at: number }>();
const finished = new Set<string>();
let flushTimer: ReturnType<typeof setTimeout> | null = null;
let staleTimer: ReturnType<typeof setTimeout> | null = null;
const STALE_MS = 15_000;

function scheduleFlush(): void {
  if (flushTimer) return;
  flushTimer = setTimeout(() => {
    flushTimer = null;
    flushTransfers();
  }, 250);
}

function flushTransfers(): void {
  const now = Date.now();
  const cur = new Map(useApp.getState().transfers.map((t) => [t.key, t]));
  for (const key of finished) cur.delete(key);
  finished.clear();
  for (const [key, p] of progressBuffer) {
    const prev = cur.get(key);
    let rate = prev?.rate ?? 0;
    if (prev && p.at > prev.updatedAt && p.bytes >= prev.bytes) {
      const inst = ((p.bytes - prev.bytes) * 1000) / (p.at - prev.updatedAt);
      rate = prev.rate > 0 ? prev.rate * 0.7 + inst * 0.3 : inst;
    }
    cur.set(key, { key, target_id: p.target_id, file_key: p.file_key, bytes: p.bytes, total: p.total, rate, startedAt: prev?.startedAt ?? p.at, updatedAt: p.at });
  }
  progressBuffer.clear();
  for (const [key, t] of cur) if (now - t.updatedAt > STALE_MS || (t.total > 0 && t.bytes >= t.total && now - t.updatedAt > 2000)) cur.delete(key);
  const transfers = [...cur.values()].sort((a, b) => a.startedAt - b.startedAt);
  useApp.setState({ transfers });
  if (staleTimer) clearTimeout(staleTimer);
  staleTimer = transfers.length > 0 ? setTimeout(flushTransfers, STALE_MS) : null;
}

// --- refreshes caused by events, at most once per interval each
const throttled = new Map<string, ReturnType<typeof setTimeout>>();
function throttle(name: string, ms: number, fn: () => void): void {
  if (throttled.has(name)) return;
  throttled.set(
    name,
    setTimeout(() => {
      throttled.delete(name);
      fn();
    }, ms),
  );
}

function onEvent(ev: EngineEvent): void {
  const s = useApp.getState();
  switch (ev.type) {
    case 'status':
      useApp.setState({ status: ev.status });
      break;
    case 'progress': {
      const key = `${ev.target_id}\u0000${ev.file_key}`;
      progressBuffer.set(key, { target_id: ev.target_id, file_key: ev.file_key, bytes: ev.bytes, total: ev.total, at: Date.now() });
      scheduleFlush();
      break;
    }
    case 'copy':
      if (ev.state !== 'uploading') {
        const key = `${ev.target_id}\u0000${ev.file_key}`;
        progressBuffer.delete(key);
        finished.add(key);
        scheduleFlush();
      }
      break;
    case 'config':
      void s.refreshRoots();
      void s.refreshTargets();
      void s.refreshConfig();
      break;
    case 'scan':
    case 'file':
      throttle('roots', 3000, () => void useApp.getState().refreshRoots());
      break;
    case 'log':
      useApp.setState({ recentEvents: [ev.event, ...s.recentEvents].slice(0, 200) });
      break;
    case 'restore':
      useApp.setState({ restore: ev.progress });
      break;
    case 'tunnel':
      useApp.setState({ tunnel: ev.tunnel });
      break;
    case 'target':
      throttle('targets', 1000, () => void useApp.getState().refreshTargets());
      break;
    default:
      break;
  }
}

export const useApp = create<AppState>()((set, get) => ({
  phase: 'starting',
  conn: null,
  client: null,
  lost: null,
  fatal: null,
  signInError: null,
  status: null,
  roots: null,
  targets: null,
  presets: null,
  config: null,
  transfers: [],
  restore: null,
  tunnel: null,
  recentEvents: [],
  toasts: [],
  page: typeof window !== 'undefined' ? pageFromHash(window.location.hash) : 'overview',

  async boot() {
    stream?.close();
    stream = null;
    let conn: Connection;
    try {
      conn = await discoverConnection();
    } catch (e) {
      set({ phase: 'fatal', fatal: toShownError(e).message });
      return;
    }
    const client = new ApiClient({ baseUrl: conn.baseUrl, token: conn.token ?? undefined });
    set({ conn, client });
    if (!conn.token && conn.kind === 'browser') {
      // Maybe the engine needs no sign-in here (loopback without a password): try once.
      try {
        await client.call('status');
      } catch (e) {
        if (isUnauthorized(e)) {
          set({ phase: 'signin' });
          return;
        }
      }
    }
    let first = true;
    stream = new EventStream(conn, {
      catchUp: async () => {
        try {
          const status = await client.call('status');
          set({ status });
        } catch (e) {
          if (isUnauthorized(e)) {
            stream?.close();
            if (conn.kind === 'browser') {
              storeToken(null);
              set({ phase: 'signin', signInError: first ? null : 'Your session ended. Sign in again.' });
            } else void get().boot(); // Electron: the engine restarted with a new token
          }
          throw e;
        }
        first = false;
        await Promise.all([get().refreshRoots(), get().refreshTargets(), get().refreshConfig(), loadOptional()]);
      },
      event: onEvent,
      state: (st: StreamState) => {
        if (st.state === 'open') set({ phase: 'online', lost: null });
        else set((s) => ({ phase: 'lost', lost: { since: s.lost?.since ?? Date.now(), attempt: st.attempt, retryAt: st.retryAt } }));
      },
    });
    stream.start();
  },

  async signIn(password) {
    const conn = get().conn;
    if (!conn) return;
    set({ signInError: null });
    try {
      await postLogin(conn.baseUrl, password);
    } catch (e) {
      set({ signInError: toShownError(e).message });
      return;
    }
    set({ phase: 'starting' });
    await get().boot();
  },

  signOut() {
    stream?.close();
    stream = null;
    storeToken(null);
    set({ phase: 'signin', status: null, client: null });
    void get().boot();
  },

  retryNow() {
    stream?.retryNow();
  },

  navigate(page) {
    if (window.location.hash !== `#/${page}`) window.location.hash = `#/${page}`;
    set({ page });
  },

  async refreshStatus() {
    const c = get().client;
    if (!c) return;
    try {
      set({ status: await c.call('status') });
    } catch {
      /* the stream notices a lost engine */
    }
  },
  async refreshRoots() {
    const c = get().client;
    if (!c) return;
    try {
      set({ roots: await c.call('listRoots') });
    } catch (e) {
      if (!get().roots) set({ roots: [] });
      if (!isNotAvailable(e)) console.warn('roots', e);
    }
  },
  async refreshTargets() {
    const c = get().client;
    if (!c) return;
    try {
      set({ targets: await c.call('listTargets') });
    } catch (e) {
      if (!get().targets) set({ targets: [] });
      if (!isNotAvailable(e)) console.warn('targets', e);
    }
  },
  async refreshConfig() {
    const c = get().client;
    if (!c) return;
    try {
      set({ config: await c.call('getConfig') });
    } catch {
      /* optional */
    }
  },

  toast(level, text, detail) {
    const id = ++toastSeq;
    set((s) => ({ toasts: [...s.toasts.slice(-4), { id, level, text, detail }] }));
    if (level === 'info' || level === 'success') setTimeout(() => get().dismissToast(id), 6000);
  },
  dismissToast(id) {
    set((s) => ({ toasts: s.toasts.filter((t) => t.id !== id) }));
  },

  async run(fn, success) {
    const c = get().client;
    if (!c) return undefined;
    try {
      const r = await fn(c);
      if (success) get().toast('success', success);
      return r;
    } catch (e) {
      if (isNotAvailable(e)) get().toast('warn', 'This version of the backup engine cannot do that yet.');
      else {
        const shown = toShownError(e);
        get().toast('error', shown.message, shown.detail);
      }
      return undefined;
    }
  },
}));

/** Routes of features that may not have landed yet: a 404 just leaves them empty. */
async function loadOptional(): Promise<void> {
  const { client } = useApp.getState();
  if (!client) return;
  await Promise.all([
    client.call('presets').then((presets) => useApp.setState({ presets }), () => undefined),
    client.call('restoreStatus').then((r) => useApp.setState({ restore: r.current ?? r.recent[0] ?? null }), () => undefined),
    client.call('tunnelStatus').then((tunnel) => useApp.setState({ tunnel }), () => undefined),
    client.call('events', { query: { limit: 200 } }).then((ev) => useApp.setState({ recentEvents: [...ev].sort((a, b) => b.ts - a.ts).slice(0, 200) }), () => undefined),
  ]);
}

if (typeof window !== 'undefined') {
  window.addEventListener('hashchange', () => useApp.setState({ page: pageFromHash(window.location.hash) }));
  if (isElectron()) {
    window.triplicate!.onCommand((cmd) => {
      if (cmd.type === 'navigate') useApp.getState().navigate(pageFromHash(`#/${cmd.page}`));
      else useApp.getState().toast(cmd.level, cmd.text);
    });
  }
}

/** For pages: the client, which exists once the app is online. */
export function api(): ApiClient {
  const c = useApp.getState().client;
  if (!c) throw new Error('Not connected to the backup engine yet.');
  return c;
}

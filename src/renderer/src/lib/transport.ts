// Where the engine is and how to prove who we are.
// - Electron: the preload bridge hands over { baseUrl, token } (window.triplicate).
// - Browser (web console): the token comes in the URL fragment `#token=...` once (kept in
//   sessionStorage, removed from the address bar), or from the sign-in form (`POST /api/login`).
import { ApiClient, ApiError } from '../../../shared/client';

export interface Connection {
  baseUrl: string;
  token: string | null;
  kind: 'electron' | 'browser';
  downloadUrl?: string;
}

const TOKEN_KEY = 'triplicate.token';

export function isElectron(): boolean {
  return typeof window !== 'undefined' && !!window.triplicate?.isElectron;
}

/** Take `#token=...` out of the address bar (and out of history), keep it for this tab only. */
export function takeTokenFromFragment(loc: Location = window.location, hist: History = window.history): string | null {
  const hash = loc.hash.replace(/^#/, '');
  if (!hash) return null;
  const params = new URLSearchParams(hash.includes('token=') && !hash.startsWith('/') ? hash : hash.split('?')[1] ?? '');
  const token = params.get('token');
  if (!token) return null;
  try {
    sessionStorage.setItem(TOKEN_KEY, token);
  } catch {
    /* private mode: keep it in memory only */
  }
  hist.replaceState(null, '', `${loc.pathname}${loc.search}#/overview`);
  return token;
}

export function storedToken(): string | null {
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export function storeToken(token: string | null): void {
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    /* ignore */
  }
}

/** The page's own origin: the engine serves the web console on its admin port. */
export function browserBaseUrl(): string {
  return '';
}

export async function discoverConnection(): Promise<Connection> {
  if (isElectron()) {
    const c = await window.triplicate!.getEngineConnection();
    return { baseUrl: c.baseUrl, token: c.token, kind: 'electron', downloadUrl: c.downloadUrl };
  }
  const token = takeTokenFromFragment() ?? storedToken();
  return { baseUrl: browserBaseUrl(), token, kind: 'browser' };
}

export async function signIn(baseUrl: string, password: string): Promise<string> {
  const client = new ApiClient({ baseUrl });
  try {
    const { token } = await client.call('login', { body: { password } });
    storeToken(token);
    return token;
  } catch (e) {
    if (e instanceof ApiError && (e.status === 401 || e.status === 403)) throw new Error('That password is not right. Try again, or ask whoever set up Triplicate.');
    if (e instanceof ApiError && e.status === 429) throw new Error('Too many tries. Wait a minute, then try again.');
    throw e;
  }
}

/** A URL for <img>, <video>, <a download> and EventSource, which cannot send headers. */
export function urlWithToken(conn: Pick<Connection, 'baseUrl' | 'token'>, path: string, query: Record<string, string | number | undefined> = {}): string {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') qs.set(k, String(v));
  if (conn.token) qs.set('access_token', conn.token);
  const s = qs.toString();
  const base = conn.baseUrl.replace(/\/$/, '');
  return `${base}${path}${s ? `?${s}` : ''}`;
}

export function absoluteUrl(url: string): string {
  return new URL(url, window.location.href).toString();
}

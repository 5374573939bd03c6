// Helpers for the download-server tests: a real engine with real s3rver targets, signed links
// through the admin API, and a raw HTTP/1.1 client (fetch would normalize "..", "%2e" and friends
// before they ever reach the server, so traversal tests write the request line themselves).
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import type { LinkInfo } from '../../src/shared/api';
import { ApiClient } from '../../src/shared/client';
import type { ConfigInput } from '../../src/shared/config';
import type { Engine } from '../../src/main/engine/engine';
import { silenceConsole } from '../../src/main/engine/log';
import { startS3, type TestS3 } from '../helpers/s3';
import { cleanup, startEngine, tempDir, waitFor, waitForStatus, writeFile } from '../helpers/engine';

/** When the last raw() request started: lastAccess() waits for a log entry at least this new. */
let lastRequestAt = 0;
/**
 * When the last raw() answer ended. The access log's times are in whole milliseconds, so the next
 * request starts in a later one: else the entry of a request that ended in the same millisecond
 * would pass lastAccess()'s filter too, and be found first while the last one's waits for its flush.
 */
let lastDoneAt = 0;

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  /** The connection ended before the announced Content-Length arrived. */
  truncated: boolean;
}

/**
 * Send one request on a fresh connection and read the whole answer (Connection: close).
 * `request` is the full raw text, or {method, path, headers} to build it.
 */
export async function raw(
  port: number,
  request: string | Buffer | { method?: string; path: string; headers?: Record<string, string> },
  timeoutMs = 15_000,
): Promise<RawResponse> {
  if (Date.now() <= lastDoneAt) await new Promise((r) => setTimeout(r, 1));
  let text: string | Buffer;
  if (typeof request === 'string' || Buffer.isBuffer(request)) text = request;
  else {
    const h = { host: `127.0.0.1:${port}`, connection: 'close', ...(request.headers ?? {}) };
    text = `${request.method ?? 'GET'} ${request.path} HTTP/1.1\r\n${Object.entries(h)
      .map(([k, v]) => `${k}: ${v}`)
      .join('\r\n')}\r\n\r\n`;
  }
  lastRequestAt = Date.now();
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no complete answer within ${timeoutMs} ms`));
    }, timeoutMs);
    sock.on('data', (d) => chunks.push(d));
    sock.on('error', () => undefined); // a reset after the answer is fine; parsed below
    sock.on('close', () => {
      clearTimeout(timer);
      lastDoneAt = Date.now();
      const all = Buffer.concat(chunks);
      const end = all.indexOf('\r\n\r\n');
      if (end < 0) return reject(new Error(`no HTTP answer (got ${all.length} bytes)`));
      const lines = all.subarray(0, end).toString('latin1').split('\r\n');
      const status = Number(lines[0]!.split(' ')[1]);
      const headers: Record<string, string> = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      const body = all.subarray(end + 4);
      const len = headers['content-length'] !== undefined ? Number(headers['content-length']) : undefined;
      resolve({ status, headers, body, truncated: len !== undefined && body.length < len });
    });
    sock.write(text);
  });
}

/** Open a download and keep the socket: for tests that read part of it, pause, or hang up. */
export function openRaw(
  port: number,
  path: string,
  headers: Record<string, string> = {},
  opts: { pauseAfter?: number } = {},
): Promise<{ sock: Socket; head: string; received: () => number; paused: () => Promise<void> }> {
  lastRequestAt = Date.now();
  return new Promise((resolve, reject) => {
    const sock = connect(port, '127.0.0.1');
    let buf = Buffer.alloc(0);
    let got = 0;
    let done = false;
    sock.on('error', (e) => !done && reject(e));
    let onPause: (() => void) | undefined;
    const pausedP = new Promise<void>((r) => (onPause = r));
    sock.on('data', (d) => {
      got += d.length;
      if (opts.pauseAfter !== undefined && got >= opts.pauseAfter) {
        // stop reading right here (polling would let the whole file through in the meantime)
        sock.pause();
        onPause!();
      }
      if (done) return;
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end >= 0) {
        done = true;
        resolve({ sock, head: buf.subarray(0, end).toString('latin1'), received: () => got, paused: () => pausedP });
      }
    });
    const h = { host: `127.0.0.1:${port}`, ...headers };
    sock.write(`GET ${path} HTTP/1.1\r\n${Object.entries(h).map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n`);
  });
}

/** Split a multipart/byteranges body into its parts. */
export function parseMultipart(body: Buffer, contentType: string): { range: [number, number, number]; type: string; data: Buffer }[] {
  const m = /boundary=([^;]+)/.exec(contentType);
  if (!m) throw new Error(`no boundary in ${contentType}`);
  const delim = Buffer.from(`--${m[1]}`);
  const parts: { range: [number, number, number]; type: string; data: Buffer }[] = [];
  let pos = body.indexOf(delim);
  for (let guard = 0; pos >= 0 && guard < 1000; guard++) {
    const after = pos + delim.length;
    if (body.subarray(after, after + 2).toString() === '--') break;
    const headEnd = body.indexOf('\r\n\r\n', after);
    const head = body.subarray(after + 2, headEnd).toString('latin1');
    const cr = /content-range: bytes (\d+)-(\d+)\/(\d+)/i.exec(head);
    const ct = /content-type: (.*)/i.exec(head);
    if (!cr) throw new Error(`part without content-range: ${head}`);
    const [s, e, total] = [Number(cr[1]), Number(cr[2]), Number(cr[3])];
    const data = body.subarray(headEnd + 4, headEnd + 4 + (e - s + 1));
    parts.push({ range: [s, e, total], type: ct?.[1]?.trim() ?? '', data });
    pos = body.indexOf(delim, headEnd + 4 + data.length);
  }
  return parts;
}

export interface Setup {
  engine: Engine;
  s3: TestS3[];
  media: string;
  dataDir: string;
  api: ApiClient;
  port: number;
  link(key: string, ttl?: number, extra?: { disposition?: 'inline' | 'attachment'; note?: string }): Promise<LinkInfo>;
  /** Path + query of a link URL (for raw requests). */
  pathOf(link: LinkInfo): string;
  accessLog(): Record<string, unknown>[];
  /** The access-log entry of the last raw() request for this path (waits for it to be written). */
  lastAccess(pathname: string): Promise<Record<string, unknown>>;
  dispose(): Promise<void>;
}

/** An engine with `targets` s3rver destinations (priority 1, 2, ...) and `files` in its folder "media", all synced. */
export async function setupSharing(files: Record<string, string | Buffer>, opts: { targets?: number; config?: Partial<ConfigInput>; server?: Record<string, unknown> } = {}): Promise<Setup> {
  const s3: TestS3[] = [];
  for (let i = 0; i < (opts.targets ?? 2); i++) s3.push(await startS3());
  const media = tempDir('trip-dl-media-');
  const dataDir = tempDir('trip-dl-data-');
  for (const [rel, content] of Object.entries(files)) writeFile(media, rel, content);
  const engine = await startEngine(dataDir, {
    roots: [{ id: 'media', label: 'Media', path: media }],
    targets: s3.map((s, i) => s.target(i === 0 ? 'nas' : i === 1 ? 'cloud' : `t${i}`, { priority: i + 1, label: i === 0 ? 'NAS' : i === 1 ? 'Cloud' : `T${i}` })),
    server: { downloadHost: '127.0.0.1', ...(opts.server ?? {}) },
    ...(opts.config ?? {}),
  } as ConfigInput);
  silenceConsole();
  const n = Object.keys(files).length;
  await waitForStatus(engine, (s) => s.total_files >= n && s.safe_files >= n && s.pending === 0 && s.uploading === 0, 90_000, `${n} files synced`);
  const api = new ApiClient({ baseUrl: engine.endpoints.adminUrl!, token: engine.token });
  const port = Number(new URL(engine.endpoints.downloadUrl!).port);
  const logPath = join(dataDir, 'logs', 'download-access.jsonl');
  const accessLog = () => {
    try {
      return readFileSync(logPath, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    } catch {
      return [];
    }
  };
  return {
    engine,
    s3,
    media,
    dataDir,
    api,
    port,
    link: (key, ttl = 3600, extra = {}) => api.call('createLink', { body: { key, ttl_seconds: ttl, ...extra } }),
    pathOf: (l) => {
      const u = new URL(l.url);
      return u.pathname + u.search;
    },
    accessLog,
    async lastAccess(pathname) {
      const since = lastRequestAt;
      let found: Record<string, unknown> | undefined;
      await waitFor(() => {
        found = accessLog()
          .reverse()
          .find((e) => e.path === pathname && e.status !== undefined && Date.parse(String(e.ts)) >= since);
        return !!found;
      }, 5_000, `access log entry for ${pathname}`);
      return found!;
    },
    async dispose() {
      await engine.stop();
      for (const s of s3) await s.dispose();
      cleanup(media, dataDir);
    },
  };
}

/** Open sockets of this process connected to a port (client side). */
export function socketsTo(port: number): number {
  const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
  return handles.filter((h) => {
    const s = h as Socket;
    return typeof s === 'object' && s !== null && 'remotePort' in s && s.remotePort === port && !s.destroyed;
  }).length;
}

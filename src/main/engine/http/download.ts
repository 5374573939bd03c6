// The public download server: its own listener (never the admin port), meant to sit behind a
// Cloudflare Tunnel or on the LAN.
//
//   GET|HEAD /files/<root id>/<relative path>?token=<jwt>   (or Authorization: Bearer <jwt>)
//   GET|HEAD /files/<root id>/<folder>/?token=<jwt>        a folder link: a plain list of its files
//   GET      /health                                        liveness
//   GET      /health/deep                                   catalog + every enabled target, JSON
//
// Source chain: the local file (opened by its name on disk, never through a symlink that leaves
// its root), else each enabled target in priority order (one that is down is skipped; targets seen
// down recently or marked offline go last), else 404 — or 503 when a target that might hold the
// file could not be asked, because "not found" would be a lie that clients and caches keep.
// Bodies are streamed with backpressure (pipeline); a source that breaks after the headers went
// out destroys the response, so the client sees a broken download, never a short "200".
// Bytes from a target are checked against the SHA-256 they must have: a small object before its
// first byte goes out (a damaged copy is passed over for the next target), a big one while it
// streams, its last chunk held back until the hash is known (a damaged copy is cut off short of
// its Content-Length). A damaged copy is queued for repair and passed over until it is repaired.
// The operator's console reaches the same chain through the admin API (`/api/admin/download`).
// A link opens only files that are backed up (linkablePaths, links.ts); downloads share
// server.maxConcurrentDownloads per client and per link, with a minimum rate (slots.ts).
import { createHash, randomBytes } from 'node:crypto';
import { appendFileSync, close as fsClose, constants as fsc, createWriteStream, existsSync, fstat, open as fsOpen, read as fsRead, readlinkSync, renameSync, stat as fsStat, statSync, type Stats, type WriteStream } from 'node:fs';
import { realpath } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join, sep } from 'node:path';
import { pipeline, Readable, Transform, type TransformCallback } from 'node:stream';
import type { RootConfig, TargetConfig } from '../../../shared/config';
import { contentTypeOf, objectKey, parseFileKey } from '../../../shared/keys';
import { isStorageError, type GetResult, type ObjectInfo, type StorageBackend } from '../backends/types';
import { diskRel, type CopyRow, type FileRow } from '../catalog/catalog';
import type { EngineContext, EngineService } from '../core/context';
import { BoostWhileBusy, PROXY_HEAP_GROWING_PERCENT } from '../heap';
import { log } from '../log';
import { errorText } from '../util';
import { PRIVATE_FILE_MODE } from '../private-files';
import { isAnyAddress, isLoopback } from '../../../shared/config';
import { encodeKeyPath, grantCovers, LinkError, parseScope, type Grant, type Links } from './links';
import { contentDisposition, decodeKeyPath, multipartFraming, planResponse, weakEtag, type Plan, type Representation, type Span } from './ranges';
import { clientAddress, forwardedFor, RateFloor, Slots, type Slot } from './slots';

/** What the download server asks of the sync service (wired by the composition root). */
export interface DownloadDeps {
  /** When the engine started (`/health`). */
  startedAt: number;
  /** The destination is known to be offline for uploads: tried last. */
  offline(targetId: string): boolean;
  /** A repair was queued: the upload lanes look at their queues. */
  wakeLanes(): void;
}

export interface DownloadServerOptions {
  /** Override server.downloadPort (0: any free port). */
  port?: number;
  host?: string;
  /** A socket that moves no bytes for this long is closed (a vanished client). Default 60 s. */
  idleTimeoutMs?: number;
}

/** The console's own downloads at once (outside the public pool: a full pool does not lock the operator out). */
const ADMIN_DOWNLOADS_MAX = 16;

/** URLs longer than this get 414; headers beyond MAX_HEADER_BYTES get 431 from the parser. */
export const MAX_URL_CHARS = 4096;
export const MAX_HEADER_BYTES = 16 * 1024;
/** A target that failed is tried after the others for this long. */
const DOWN_MEMORY_MS = 15_000;
/** Deep health results are reused this long (it is public: it must not become a way to hammer the targets). */
const DEEP_HEALTH_CACHE_MS = 5_000;
const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'SAMEORIGIN',
};
const SECURITY_HEADER_LIST = Object.entries(SECURITY_HEADERS).flat();
/** Served files are data, never a page that runs scripts (an SVG or HTML file opened inline). */
const FILE_CSP = "sandbox; default-src 'none'; img-src 'self' data:; media-src 'self'; style-src 'unsafe-inline'";

interface AccessEntry {
  ts: string;
  method: string;
  path: string;
  status?: number;
  bytes?: number;
  complete?: boolean;
  ms?: number;
  ip?: string;
  /** The visitor behind the tunnel (CF-Connecting-IP from cloudflared on this machine). */
  client?: string;
  source?: string;
  link?: string;
  range?: string;
  via?: 'admin';
  error?: string;
  ua?: string;
}

type ServeWhat = { rootId: string; relPath: string; disposition: 'inline' | 'attachment'; cacheControl: string };

/** One admitted download: what is served, to whom, and whether the client is still there. */
class ServeCtx {
  readonly method: 'GET' | 'HEAD';
  readonly rootId: string;
  readonly relPath: string;
  readonly disposition: 'inline' | 'attachment';
  readonly cacheControl: string;
  /** The client left before the end. */
  gone = false;
  /** Filled when a body (or HEAD headers) went out: status and first byte. */
  sent?: { status: number; firstByte: number };
  /** Made only when a source asks for the signal (local files do not). */
  private ac?: AbortController;
  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly entry: AccessEntry,
    what: ServeWhat,
  ) {
    this.method = req.method === 'HEAD' ? 'HEAD' : 'GET';
    this.rootId = what.rootId;
    this.relPath = what.relPath;
    this.disposition = what.disposition;
    this.cacheControl = what.cacheControl;
  }
  /** Aborted when the client leaves before the end. */
  get signal(): AbortSignal {
    this.ac ??= new AbortController();
    if (this.gone && !this.ac.signal.aborted) this.ac.abort();
    return this.ac.signal;
  }
  /** The response closed: unless it finished, the client left, and the source is aborted. */
  closed(): void {
    if (this.res.writableFinished) return;
    this.gone = true;
    this.ac?.abort();
  }
}

/** A public request until its response closes: its access-log entry and the download it was admitted as. */
interface Pending {
  t0: number;
  entry: AccessEntry;
  ctx?: ServeCtx;
  slot?: Slot;
}

/** A download path already decoded and checked once (a pure function of the path, so it can be remembered). */
interface PathKey {
  key: string;
  dir: false;
  rootId: string;
  relPath: string;
}

const PATH_KEYS_MAX = 4096;
const PATH_KEY_MAX_CHARS = 1024;

/** A query that is just `token=<base64url JWT>`: read without URLSearchParams (nothing in it to decode). */
const PLAIN_TOKEN_QUERY = /^token=[\w.-]*$/;

let isoAt = NaN;
let isoText = '';
/** toISOString of a ms timestamp, reused while the millisecond is the same (many requests share one). */
function isoTime(t: number): string {
  if (t !== isoAt) {
    isoAt = t;
    isoText = new Date(t).toISOString();
  }
  return isoText;
}

/**
 * sent; missing (not there); other (there, with other content than the catalog's); damaged (its
 * bytes do not match its checksum, or a repair of it is pending); down; gone (the client left).
 */
type TryResult = 'sent' | 'missing' | 'other' | 'damaged' | 'down' | 'gone';

/** The object on a target is not what the catalog says (changed since): ask it again. */
class ChangedError extends Error {}

/** The bytes of an object do not hash to the SHA-256 they must have. */
class DamagedError extends Error {
  constructor(readonly actual: string) {
    super(`the bytes do not match their checksum (they hash to ${actual})`);
  }
}

/**
 * Objects up to this size are read whole into memory and checked before their first byte goes
 * out (a damaged copy can then be passed over): phone photos and thumbnails, while 64 downloads at
 * once (the default limit) hold at most 256 MiB.
 */
const CHECK_IN_MEMORY_MAX = 4 * 1024 * 1024;

/** Access-log lines wait in memory at most this long (or until ACCESS_BATCH_CHARS), then go out in one write. */
const ACCESS_FLUSH_MS = 200;
const ACCESS_BATCH_CHARS = 64 * 1024;
/** Logs with lines still in memory: written synchronously if the process exits before their flush. */
const unflushedLogs = new Set<AccessLog>();
let exitHookInstalled = false;

/**
 * JSON-lines access log; tokens never reach it (only the path is logged, never the query or headers).
 * Lines are batched (like nginx's `access_log … buffer= flush=`): one write per ACCESS_FLUSH_MS or
 * per 64 KiB instead of one per request; stop() and process exit write what is left.
 */
class AccessLog {
  private stream: WriteStream | null = null;
  private dropped = 0;
  private pending = '';
  private pendingLines = 0;
  private timer: NodeJS.Timeout | null = null;
  constructor(private readonly path: string) {}
  open(): void {
    try {
      if (statSync(this.path).size > 50 * 1024 * 1024) renameSync(this.path, `${this.path}.1`);
    } catch {}
    this.stream = createWriteStream(this.path, { flags: 'a', mode: PRIVATE_FILE_MODE });
    this.stream.on('error', (e) => log.warn(`download access log: ${errorText(e)}`));
    if (!exitHookInstalled) {
      exitHookInstalled = true;
      process.once('exit', () => {
        for (const l of unflushedLogs) l.flushSync();
      });
    }
  }
  write(e: AccessEntry): void {
    if (!this.stream) return;
    this.pending += `${JSON.stringify(e)}\n`;
    this.pendingLines++;
    if (this.pending.length >= ACCESS_BATCH_CHARS) this.flush();
    else if (!this.timer) {
      unflushedLogs.add(this);
      this.timer = setTimeout(() => this.flush(), ACCESS_FLUSH_MS);
      this.timer.unref?.();
    }
  }
  private take(): string {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    unflushedLogs.delete(this);
    let text = this.pending;
    if (this.dropped && text) {
      text = `${JSON.stringify({ ts: new Date().toISOString(), dropped_lines: this.dropped })}\n${text}`;
      this.dropped = 0;
    }
    this.pending = '';
    this.pendingLines = 0;
    return text;
  }
  flush(): void {
    const s = this.stream;
    if (!s || !this.pending) return;
    // A disk that cannot keep up must not make the log grow in memory.
    if (s.writableLength > 8 * 1024 * 1024) {
      const lines = this.pendingLines;
      this.take();
      this.dropped += lines;
      return;
    }
    s.write(this.take());
  }
  /** At process exit: append what is still in memory (best effort; the stream's own writes may be in flight). */
  flushSync(): void {
    if (!this.pending) return;
    try {
      appendFileSync(this.path, this.take());
    } catch {}
  }
  close(): Promise<void> {
    this.flush();
    this.take();
    const s = this.stream;
    this.stream = null;
    return new Promise((r) => (s ? s.end(() => r()) : r()));
  }
}

export class DownloadServer implements EngineService {
  readonly name = 'download';
  private server: Server | null = null;
  /** Where the server listens on this computer, while it does. */
  url: string | undefined;
  private access!: AccessLog;
  /** Public downloads by client and by link (server.maxConcurrentDownloads), and the console's. */
  private readonly slots = new Slots();
  private adminActive = 0;
  private readonly floor = new RateFloor();
  private readonly sockets = new Set<Socket>();
  private readonly downUntil = new Map<string, number>();
  private readonly rootReal = new Map<string, string>();
  /** Small local files kept in memory (bounded), so hot thumbnails and photos cost one stat per request. */
  private readonly smallFiles = new SmallFileCache();
  /**
   * File keys whose local file could not be opened, and when (nginx's open_file_cache_errors):
   * a file lost from the disk and served from a target is not looked for on the disk again for
   * SMALL_FILE_VALID_MS. (A failed open costs a trip through the thread pool, ~9 % of the
   * engine's time in bench/serve.mjs's small-file fallback.) A file that comes back within that
   * second is served from a target meanwhile: the same bytes, as the catalog's SHA-256 is checked.
   */
  private readonly localMisses = new Map<string, number>();
  /**
   * The catalog rows a download reads (the file, its copy on each target), remembered for
   * SMALL_FILE_VALID_MS per file key: two SQLite reads were ~8 % of the engine's time on the
   * small-file fallback path. A row at most a second old is safe here: a copy trusted from it is
   * still checked against the SHA-256 the target returns, and a file changed on the disk is
   * stat'ed, not taken from the row.
   */
  private readonly rows = new Map<string, KnownRows>();
  /** Download paths decoded and parsed before (a pure function of the path: safe to remember). */
  private readonly pathKeys = new Map<string, PathKey>();
  private deepCache: { at: number; status: number; body: unknown } | null = null;
  /** Damaged objects of other content than the catalog's, already reported (target, key, hash). */
  private readonly damagedSeen = new Set<string>();
  /** Heap headroom while bodies are proxied from targets (see PROXY_HEAP_GROWING_PERCENT). */
  private readonly proxyHeap = new BoostWhileBusy(PROXY_HEAP_GROWING_PERCENT);
  private offBus: (() => void) | null = null;
  private boundPort = 0;
  private boundHost = '';
  /** The host as the config names it ("localhost", "0.0.0.0"...), to compare with the next config. */
  private askedHost = '';

  constructor(
    private readonly core: EngineContext,
    private readonly links: Links,
    private readonly deps: DownloadDeps,
    private readonly opts: DownloadServerOptions = {},
  ) {}

  /** Downloads being served right now (public and the console's). */
  get activeDownloads(): number {
    return this.slots.active + this.adminActive;
  }

  /** Change the minimum transfer rate of public downloads (tests use a short window; defaults: MIN_RATE). */
  setMinRate(bytesPerSec: number, windowMs: number): void {
    this.floor.start(bytesPerSec, windowMs);
  }

  /** Change the idle timeout of new connections (tests use a short one). */
  setIdleTimeout(ms: number): void {
    this.opts.idleTimeoutMs = ms;
    if (this.server) this.server.timeout = ms;
  }

  get port(): number {
    return this.boundPort;
  }

  async start(): Promise<void> {
    this.access = new AccessLog(join(this.core.dataDir, 'logs', 'download-access.jsonl'));
    this.access.open();
    const { host, port } = this.wanted();
    try {
      this.take(await this.listen(host, port), host);
    } catch (e) {
      // Backups matter more than sharing: the engine runs on, without downloads, and says why.
      this.listenFailed(e, host, port);
    }
    this.floor.start();
    this.offBus = this.core.bus.on((e) => {
      if (e.type !== 'config') return;
      this.forgetCaches();
      // A hand edit of server.downloadHost or downloadPort takes effect without a restart.
      void this.rebind().catch((err: unknown) => this.listenFailed(err, this.wanted().host, this.wanted().port));
    });
  }

  /** Where the config says to listen (an explicit option wins). */
  private wanted(): { host: string; port: number } {
    const cfg = this.core.config.get().server;
    return { host: this.opts.host ?? cfg.downloadHost, port: this.opts.port ?? cfg.downloadPort };
  }

  private listenFailed(e: unknown, host: string, port: number): void {
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === 'EADDRINUSE'
        ? `port ${port} on ${host} is already used by another program. Choose another download port in the settings (server.downloadPort; 0 picks a free one) and restart Triplicate`
        : code === 'EADDRNOTAVAIL'
          ? `this computer has no address ${host}. Set server.downloadHost to 0.0.0.0 (every network) or 127.0.0.1 and restart Triplicate`
          : code === 'EACCES'
            ? `Triplicate may not use port ${port}. Choose a port above 1024 (server.downloadPort) and restart Triplicate`
            : `the server could not start (${errorText(e)}). Restart Triplicate; if it keeps happening, send the diagnostics to your support contact`;
    this.core.bus.record({ level: 'error', kind: 'download-server', message: `Downloads and shared links are off: ${why}.`, detail: errorText(e) });
  }

  /** A new listener on host:port (the handlers, limits and socket tracking of this server). Rejects with the listen error. */
  private async listen(host: string, port: number): Promise<Server> {
    const srv = createServer({ maxHeaderSize: MAX_HEADER_BYTES, headersTimeout: 20_000, requestTimeout: 30_000, keepAliveTimeout: 5_000 }, (req, res) => this.handle(req, res));
    srv.timeout = this.opts.idleTimeoutMs ?? 60_000;
    srv.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.once('close', () => this.sockets.delete(s));
    });
    srv.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => this.clientError(err, socket));
    // CONNECT and Upgrade requests bypass the request handler: refuse them here, with an answer.
    const refuse = (req: IncomingMessage, socket: Socket) => {
      this.access.write({ ts: new Date().toISOString(), method: req.method ?? '?', path: (req.url ?? '').split('?')[0]!.slice(0, 1000), status: 405, ip: socket.remoteAddress });
      socket.end('HTTP/1.1 405 Method Not Allowed\r\nallow: GET, HEAD\r\nconnection: close\r\ncontent-length: 0\r\n\r\n');
      socket.destroySoon?.();
    };
    srv.on('connect', refuse);
    srv.on('upgrade', refuse);
    try {
      await new Promise<void>((resolvePromise, reject) => {
        srv.once('error', reject);
        srv.listen(port, host, () => resolvePromise());
      });
    } catch (e) {
      srv.close();
      throw e;
    }
    return srv;
  }

  private take(srv: Server, asked: string): void {
    this.server = srv;
    const addr = srv.address() as AddressInfo;
    this.boundPort = addr.port;
    this.boundHost = addr.address;
    this.askedHost = asked;
    this.url = this.localUrl();
  }

  private rebinding: Promise<void> = Promise.resolve();

  /**
   * Listen where the config says (or on `to`), without a restart of the engine: the new listener
   * takes over, the old one stops taking connections (downloads in flight go on, unless the new
   * place is this computer only). Port 0 in the config keeps the port in use, so links keep
   * their port. When the new place cannot be had, the old one is taken back and the listen
   * error is thrown (its `code`: EADDRINUSE when another program has the port). One at a time.
   */
  rebind(to?: { host: string; port?: number }): Promise<void> {
    const run = this.rebinding.then(() => this.rebindNow(to));
    this.rebinding = run.catch(() => undefined);
    return run;
  }

  private async rebindNow(to?: { host: string; port?: number }): Promise<void> {
    const want = to ? { host: to.host, port: to.port ?? this.wanted().port } : this.wanted();
    const port = want.port || this.boundPort;
    if (this.server && want.host === this.askedHost && port === this.boundPort) return;
    const old = this.server;
    const before = { host: this.askedHost, port: this.boundPort };
    if (old) {
      old.close();
      old.closeIdleConnections();
    }
    this.server = null;
    try {
      this.take(await this.listen(want.host, port), want.host);
    } catch (e) {
      if (old) {
        // Take the old place back; the caller says why nothing changed.
        try {
          this.take(await this.listen(before.host, before.port), before.host);
        } catch (again) {
          this.url = undefined;
          this.listenFailed(again, before.host, before.port);
        }
      }
      throw e;
    }
    if (old && isLoopback(want.host)) old.closeAllConnections();
    log.info(`download server: now listening on ${this.listening()}`);
    this.onRebound?.();
  }

  /** Called after the listener moved (the tunnel follows the local URL). */
  onRebound?: () => void;

  async stop(): Promise<void> {
    this.offBus?.();
    this.floor.stop();
    await this.rebinding;
    const srv = this.server;
    this.server = null;
    if (srv) {
      const closed = new Promise<void>((r) => srv.close(() => r()));
      for (const s of this.sockets) s.destroy();
      srv.closeAllConnections();
      await closed;
    }
    for (const s of this.sockets) s.destroy();
    this.links.flush();
    this.proxyHeap.release();
    await this.access?.close();
  }

  /** `host:port` the server listens on, or undefined while it is off. */
  listening(): string | undefined {
    if (!this.server) return undefined;
    const h = this.boundHost.includes(':') ? `[${this.boundHost}]` : this.boundHost;
    return `${h}:${this.boundPort}`;
  }

  /** The host the server was asked to listen on (as in the config), while it listens. */
  get host(): string | undefined {
    return this.server ? this.askedHost : undefined;
  }

  /** The URL of the server on this machine (what cloudflared forwards to). */
  localUrl(): string {
    if (!this.boundPort) throw new Error('the download server is not listening');
    const h = this.boundHost;
    const host = isAnyAddress(h) ? '127.0.0.1' : h.includes(':') ? `[${h}]` : h;
    return `http://${host}:${this.boundPort}`;
  }

  /**
   * The URL people on the LAN use: the bound address, or this machine's LAN address when bound to
   * all; undefined when the server listens on loopback only or the machine has no LAN address.
   */
  lanUrl(): string | undefined {
    if (!this.server) return undefined;
    let host = this.boundHost;
    if (isLoopback(host)) return undefined;
    if (isAnyAddress(host)) {
      const v4 = Object.values(networkInterfaces())
        .flatMap((list) => list ?? [])
        .find((i) => i.family === 'IPv4' && !i.internal);
      if (!v4) return undefined;
      host = v4.address;
    } else if (host.includes(':')) host = `[${host}]`;
    return `http://${host}:${this.boundPort}`;
  }

  // ---- backends for reading ------------------------------------------------------------------

  /**
   * The target's one backend (core/targets.ts), shared with uploads and restores (its pool is sized
   * for server.maxConcurrentDownloads too), as downloads retry and wait: two tries, and a target
   * that does not answer within a few seconds is passed over for the next copy.
   */
  private backendFor(t: TargetConfig): StorageBackend | undefined {
    return this.core.targets.backend(t.id, 'download');
  }

  /** A new config: what was remembered of folders, files and targets may be stale. */
  private forgetCaches(): void {
    this.rootReal.clear();
    this.smallFiles.clear();
    this.localMisses.clear();
    this.rows.clear();
    this.deepCache = null;
  }

  /** Enabled targets by priority; those seen failing recently (or offline for uploads) go last. */
  private targetOrder(): TargetConfig[] {
    const now = Date.now();
    const ts = this.core.targets.enabled();
    const bad = (t: TargetConfig) => (this.downUntil.get(t.id) ?? 0) > now || this.deps.offline(t.id);
    const good = ts.filter((t) => !bad(t));
    return good.length === ts.length ? ts : [...good, ...ts.filter(bad)];
  }

  private markDown(t: TargetConfig, e: unknown): void {
    const was = (this.downUntil.get(t.id) ?? 0) > Date.now();
    this.downUntil.set(t.id, Date.now() + DOWN_MEMORY_MS);
    if (!was) log.warn(`download: ${t.label} did not answer, trying the next copy: ${isStorageError(e) ? `${e.kind}: ${e.detail || e.message}` : errorText(e)}`);
  }

  /** The file's catalog row (and a place for its copies' rows), at most SMALL_FILE_VALID_MS old. */
  private known(key: string, rootId: string, relPath: string): KnownRows {
    const now = Date.now();
    let k = this.rows.get(key);
    if (!k || now - k.at >= SMALL_FILE_VALID_MS) {
      if (!k && this.rows.size >= ROWS_MAX) this.rows.clear();
      k = { at: now, file: this.core.catalog.fileByPath(rootId, relPath), copies: new Map() };
      this.rows.set(key, k);
    }
    return k;
  }

  /** The file's copy on a target, from the same memory as its row. */
  private copyRow(k: KnownRows, targetId: string): CopyRow | undefined {
    if (!k.file) return undefined;
    if (k.copies.has(targetId)) return k.copies.get(targetId);
    const c = this.core.catalog.copy(k.file.id, targetId);
    k.copies.set(targetId, c);
    return c;
  }

  // ---- request handling ----------------------------------------------------------------------

  private clientError(err: NodeJS.ErrnoException, socket: Socket): void {
    const code = err.code ?? '';
    if (code === 'ECONNRESET' || code === 'EPIPE') {
      socket.destroy(); // the client went away between requests: nothing to answer, nothing to log
      return;
    }
    const status = code === 'HPE_HEADER_OVERFLOW' ? 431 : code === 'HPE_URI_OVERFLOW' ? 414 : code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    this.access.write({ ts: new Date().toISOString(), method: '?', path: '?', status, error: code || err.message, ip: socket.remoteAddress });
    if (socket.writable) {
      const text = status === 431 ? 'Request Header Fields Too Large' : status === 414 ? 'URI Too Long' : status === 408 ? 'Request Timeout' : 'Bad Request';
      socket.end(`HTTP/1.1 ${status} ${text}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    }
    socket.destroy();
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const t0 = Date.now();
    const p: Pending = { t0, entry: { ts: isoTime(t0), method: req.method ?? '?', path: '', ip: req.socket.remoteAddress } };
    // behind the tunnel the peer is cloudflared on this machine: log the visitor too
    const visitor = forwardedFor(req.socket.remoteAddress, req.headers['cf-connecting-ip']);
    if (visitor) p.entry.client = visitor;
    res.once('close', () => {
      const entry = p.entry;
      entry.status = res.statusCode;
      entry.complete = res.writableFinished;
      entry.ms = Date.now() - t0;
      const ua = req.headers['user-agent'];
      if (ua) entry.ua = ua.slice(0, 200);
      this.access.write(entry);
      if (p.ctx) this.release(p);
    });
    // The common case (a cached link, a small file in memory) is answered without waiting for
    // anything: route() returns a promise only when it has to.
    let out: Promise<void> | void;
    try {
      out = this.route(req, res, p);
    } catch (e) {
      return this.failed(req, res, p.entry, e);
    }
    if (out) out.catch((e: unknown) => this.failed(req, res, p.entry, e));
  }

  private failed(req: IncomingMessage, res: ServerResponse, entry: AccessEntry, e: unknown): void {
    entry.error = errorText(e).slice(0, 300);
    log.error(`download ${req.method} ${entry.path}: ${errorText(e)}`);
    if (!res.headersSent) sendError(req, res, 500, 'internal', 'Something went wrong on the server. Try again; if it keeps happening, tell the person who sent the link.');
    else res.destroy();
  }

  private route(req: IncomingMessage, res: ServerResponse, p: Pending): Promise<void> | void {
    const entry = p.entry;
    const method = req.method;
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const pathname = q < 0 ? url : url.slice(0, q);
    entry.path = pathname.length > 1000 ? pathname.slice(0, 1000) : pathname;
    if (url.length > MAX_URL_CHARS) return sendError(req, res, 414, 'uri_too_long', 'The address is too long.');
    if (method !== 'GET' && method !== 'HEAD') {
      return sendError(req, res, 405, 'method_not_allowed', 'Only GET and HEAD are allowed here.', { allow: 'GET, HEAD' });
    }
    if (!pathname.startsWith('/')) return sendError(req, res, 400, 'bad_request', 'The address is malformed.');
    if (pathname === '/health') return sendJsonBody(req, res, 200, { ok: true, uptime_s: Math.round((Date.now() - this.deps.startedAt) / 1000) });
    if (pathname === '/health/deep') return this.deepHealth().then(({ status, body }) => sendJsonBody(req, res, status, body));
    if (!pathname.startsWith('/files/')) return sendError(req, res, 404, 'not_found', 'There is nothing at this address. Download links look like /files/<folder>/<file>?token=…');
    const query = q < 0 ? '' : url.slice(q + 1);
    let tokenParam: string | null = null;
    let download: string | null = null;
    if (PLAIN_TOKEN_QUERY.test(query)) tokenParam = query.slice('token='.length);
    else if (query) {
      const params = new URLSearchParams(query);
      tokenParam = params.get('token');
      download = params.get('download');
    }
    const rawKey = pathname.slice('/files/'.length);
    const known = this.pathKeys.get(rawKey);
    let decoded: { key: string; dir: boolean };
    if (known) decoded = known;
    else {
      try {
        decoded = decodeKeyPath(rawKey);
      } catch (e) {
        entry.error = errorText(e);
        return sendError(req, res, 400, 'bad_key', 'This address does not name a file that can be shared.');
      }
    }
    const auth = req.headers.authorization;
    const token = tokenParam ?? (auth && /^Bearer\s+/i.test(auth) ? auth.replace(/^Bearer\s+/i, '').trim() : null);
    let grant: Grant | undefined;
    try {
      grant = this.links.cachedGrant(token); // a token seen before: no signature check, no wait
    } catch (e) {
      return refused(req, res, entry, e);
    }
    if (grant) return this.granted(req, res, p, grant, rawKey, decoded, known, tokenParam, download);
    return this.links.verify(token).then(
      (g) => this.granted(req, res, p, g, rawKey, decoded, known, tokenParam, download),
      (e: unknown) => refused(req, res, entry, e),
    );
  }

  private granted(
    req: IncomingMessage,
    res: ServerResponse,
    p: Pending,
    grant: Grant,
    rawKey: string,
    decoded: { key: string; dir: boolean },
    known: PathKey | undefined,
    tokenParam: string | null,
    download: string | null,
  ): Promise<void> | void {
    const entry = p.entry;
    entry.link = grant.id;
    if (decoded.dir) return this.serveListing(req, res, grant, decoded.key, tokenParam, entry);
    let pk = known;
    if (!pk) {
      let parsed;
      try {
        parsed = parseFileKey(decoded.key);
      } catch (e) {
        entry.error = errorText(e);
        return sendError(req, res, 400, 'bad_key', 'This address does not name a file that can be shared.');
      }
      pk = { key: `${parsed.rootId}/${parsed.relPath}`, dir: false, rootId: parsed.rootId, relPath: parsed.relPath };
      if (rawKey.length <= PATH_KEY_MAX_CHARS) {
        if (this.pathKeys.size >= PATH_KEYS_MAX) this.pathKeys.clear();
        this.pathKeys.set(rawKey, pk);
      }
    }
    if (!grantCovers(grant, pk.key)) {
      entry.error = 'out_of_scope';
      return sendError(req, res, 403, 'out_of_scope', grant.prefix ? `This link opens the files in "${grant.scope}" only.` : 'This link opens one other file only.');
    }
    if (!this.linkOpens(pk)) {
      // Not backed up (excluded, temporary, never cataloged): the same answer as a missing file.
      entry.error = 'not_backed_up';
      return sendError(req, res, 404, 'not_found', NOT_FOUND);
    }
    const maxAge = Math.max(0, Math.floor((grant.expiresAt - Date.now()) / 1000));
    const disposition = download === '1' ? 'attachment' : (grant.disposition ?? 'inline');
    const ctx = this.admit(req, res, p, grant.id, { rootId: pk.rootId, relPath: pk.relPath, disposition, cacheControl: `private, max-age=${maxAge}` });
    if (!ctx) return;
    const out = this.serveKey(ctx, pk.key);
    if (out) return out.then(() => this.counted(grant, ctx));
    this.counted(grant, ctx);
  }

  /** Does a link open this file? linkablePaths (links.ts) decides; remembered with the file's rows. */
  private linkOpens(pk: PathKey): boolean {
    const k = this.known(pk.key, pk.rootId, pk.relPath);
    k.linkOpens ??= k.file !== undefined && this.links.linkable(pk.rootId)(k.file.rel_path);
    return k.linkOpens;
  }

  private counted(grant: Grant, ctx: ServeCtx): void {
    if (ctx.sent) this.links.recordUse(grant.id, ctx.method === 'GET' && (ctx.sent.status === 200 || (ctx.sent.status === 206 && ctx.sent.firstByte === 0)));
    else this.links.recordUse(grant.id, false);
  }

  /**
   * A slot of server.maxConcurrentDownloads, within the client's and the link's shares (see
   * slots.ts), or an answer with Retry-After. The request's close listener (handle) releases it.
   */
  private admit(req: IncomingMessage, res: ServerResponse, p: Pending, linkId: string, what: ServeWhat): ServeCtx | null {
    const entry = p.entry;
    // The client left while its link was being checked: nothing to serve (and no close event to come).
    if (res.destroyed) return null;
    const slot: Slot = { client: clientAddress(req.socket.remoteAddress, req.headers['cf-connecting-ip']), link: linkId };
    const refusal = this.slots.take(slot, this.core.config.get().server.maxConcurrentDownloads);
    if (refusal) {
      entry.error = refusal.code;
      sendError(req, res, refusal.status, refusal.code, refusal.message, { 'retry-after': refusal.retryAfter });
      return null;
    }
    // A client that goes away (or a socket that idles out) aborts the source: S3 sockets are freed.
    const ctx = this.serveCtx(req, res, entry, what);
    p.ctx = ctx;
    p.slot = slot;
    this.floor.watch(ctx, req.socket, () => {
      entry.error = 'too_slow';
      ctx.closed();
      res.destroy();
    });
    return ctx;
  }

  private serveCtx(req: IncomingMessage, res: ServerResponse, entry: AccessEntry, what: ServeWhat): ServeCtx {
    const ctx = new ServeCtx(req, res, entry, what);
    const range = req.headers.range;
    if (range) entry.range = range.slice(0, 100);
    return ctx;
  }

  private release(p: Pending): void {
    if (p.slot) this.slots.give(p.slot);
    this.floor.unwatch(p.ctx!);
    p.ctx!.closed();
  }

  /** `GET /api/admin/download?key=`: the operator's own console, admin-token auth (checked by the admin server). */
  async serveAdmin(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      return sendError(req, res, 405, 'method_not_allowed', 'Use GET or HEAD to download a file.', { allow: 'GET, HEAD' });
    }
    const { rootId, relPath } = parseFileKey(url.searchParams.get('key') ?? ''); // KeyError: the admin server answers 400
    const t0 = Date.now();
    const entry: AccessEntry = { ts: new Date(t0).toISOString(), method: req.method, path: `/files/${rootId}/${relPath}`.slice(0, 1000), via: 'admin', ip: req.socket.remoteAddress };
    res.once('close', () => {
      entry.status = res.statusCode;
      entry.complete = res.writableFinished;
      entry.ms = Date.now() - t0;
      this.access.write(entry);
    });
    // The console shows the catalog's files, and opens those only (not any name in the folder).
    // A file a later rule left out still opens: the console lists it and its backups stay restorable.
    const key = `${rootId}/${relPath}`;
    if (!this.known(key, rootId, relPath).file) {
      entry.error = 'not_cataloged';
      return sendError(req, res, 404, 'not_found', 'Triplicate does not know this file. It may have been renamed or deleted; refresh the page.');
    }
    // Its own small bound, outside the public pool: a full pool does not lock the operator out.
    if (this.adminActive >= ADMIN_DOWNLOADS_MAX) {
      entry.error = 'busy';
      return sendError(req, res, 503, 'busy', `The console is already downloading ${ADMIN_DOWNLOADS_MAX} files at once. Wait until one has finished, then try again.`, { 'retry-after': '5' });
    }
    if (res.destroyed) return;
    this.adminActive++;
    const disposition = url.searchParams.get('download') === '1' ? 'attachment' : 'inline';
    const ctx = this.serveCtx(req, res, entry, { rootId, relPath, disposition, cacheControl: 'private, no-cache' });
    res.once('close', () => {
      this.adminActive--;
      ctx.closed();
    });
    await this.serveKey(ctx, key);
  }

  // ---- the source chain ------------------------------------------------------------------------

  /**
   * Serve a file key. A small file served less than SMALL_FILE_VALID_MS ago is answered from
   * memory at once (like nginx's open_file_cache); everything else returns a promise.
   */
  private serveKey(ctx: ServeCtx, key: string): Promise<void> | void {
    const root = this.core.config.get().roots.find((r) => r.id === ctx.rootId);
    if (!root) return sendError(ctx.req, ctx.res, 404, 'not_found', NOT_FOUND);
    const hit = this.smallFiles.get(key);
    if (hit && hit.root === root.path && Date.now() - hit.checkedAt < SMALL_FILE_VALID_MS) {
      ctx.entry.source = 'local';
      return this.sendBuffer(ctx, hit.buf, hit.rep);
    }
    return this.serveKeySlow(ctx, key, root, hit && hit.root === root.path ? hit : undefined);
  }

  private async serveKeySlow(ctx: ServeCtx, key: string, root: RootConfig, hit: CachedFile | undefined): Promise<void> {
    if (hit) {
      // A small file served before, last checked more than a second ago: one stat proves it is
      // still the same file (inode, size, modification and change times) before it is served
      // from memory again.
      const now = Date.now();
      const st = await new Promise<Stats | null>((res) => fsStat(hit.abs, (e, x) => res(e ? null : x)));
      if (st?.isFile() && sameFile(st, hit)) {
        hit.checkedAt = now;
        hit.rep = { size: hit.size, etag: this.localEtag(this.known(key, ctx.rootId, ctx.relPath).file, hit.size, hit.mtimeMs), lastModified: hit.mtimeMs };
        ctx.entry.source = 'local';
        return this.sendBuffer(ctx, hit.buf, hit.rep);
      }
      this.smallFiles.delete(key);
    }
    const known = this.known(key, ctx.rootId, ctx.relPath);
    const f = known.file;
    // Only files the catalog knows are served (checked before admission; gone from it since: gone).
    if (!f) return sendError(ctx.req, ctx.res, 404, 'not_found', NOT_FOUND);
    const missKey = `${root.path}\0${key}`;
    const missedAt = this.localMisses.get(missKey);
    const abs = join(root.path, ...diskRel(f).split('/'));
    let local: { fd: number; st: Stats } | null = null;
    if (missedAt === undefined || Date.now() - missedAt >= SMALL_FILE_VALID_MS) {
      local = await this.openLocal(root, abs, ctx.relPath);
      if (local) this.localMisses.delete(missKey);
      else {
        if (this.localMisses.size >= LOCAL_MISSES_MAX) this.localMisses.clear();
        this.localMisses.set(missKey, Date.now());
      }
    }
    if (local) {
      ctx.entry.source = 'local';
      const { st } = local;
      const rep: Representation = { size: st.size, etag: this.localEtag(f, st.size, st.mtimeMs), lastModified: st.mtimeMs };
      try {
        let body: number | Buffer = local.fd;
        if (st.size <= this.smallFiles.maxEntry) {
          body = await readSpan(local.fd, 0, st.size);
          this.smallFiles.set(key, { buf: body, abs, root: root.path, dev: st.dev, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, rep, checkedAt: Date.now() });
          await this.sendBuffer(ctx, body, rep);
        } else await this.sendLocal(ctx, body, rep);
      } finally {
        fsClose(local.fd, () => undefined);
      }
      return;
    }
    let down = 0;
    let damaged = 0;
    const other: TargetConfig[] = [];
    for (const t of this.targetOrder()) {
      if (ctx.gone) return;
      const r = await this.tryTarget(ctx, t, known, true);
      if (r === 'sent' || r === 'gone') return;
      if (r === 'down') down++;
      if (r === 'damaged') damaged++;
      if (r === 'other') other.push(t);
    }
    // No target has the content the catalog knows; one has some other content under this name
    // (an older version whose upload is pending, or an object changed behind our back): serve it
    // as it is, with its own ETag, rather than nothing.
    for (const t of other) {
      if (ctx.gone) return;
      const r = await this.tryTarget(ctx, t, known, false);
      if (r === 'sent' || r === 'gone') return;
      if (r === 'down') down++;
      if (r === 'damaged') damaged++;
    }
    if (ctx.gone) return;
    if (down > 0) {
      ctx.entry.error = 'sources_down';
      return sendError(
        ctx.req,
        ctx.res,
        503,
        'sources_unavailable',
        "This file is not on the server's own disk, and its backup copies cannot be reached right now. Try again in a few minutes.",
        { 'retry-after': '60' },
      );
    }
    if (damaged > 0) {
      ctx.entry.error = 'copies_damaged';
      const why = "This file is not on the server's own disk, and its backup copies are damaged, so it was not sent. The operator has been told; ask the person who shared it.";
      return sendError(ctx.req, ctx.res, 502, 'copies_damaged', why);
    }
    sendError(ctx.req, ctx.res, 404, 'not_found', NOT_FOUND);
  }

  private async realRoot(root: RootConfig): Promise<string | null> {
    const have = this.rootReal.get(root.path);
    if (have) return have;
    try {
      const r = await realpath(root.path);
      this.rootReal.set(root.path, r);
      return r;
    } catch {
      return null;
    }
  }

  /**
   * Open the local file, or null: absent, not a regular file, or reached through a symlink that
   * leads out of the root. On Linux the check is made on the file actually opened (the path of
   * /proc/self/fd/N), so nothing can be swapped between the check and the open; elsewhere the path
   * is resolved first (realpath) and the resolved path opened. O_NOFOLLOW refuses a symlink as the
   * last component either way (the scanner never backs those up).
   */
  private async openLocal(root: RootConfig, abs: string, relPath: string): Promise<{ fd: number; st: Stats } | null> {
    const rootReal = await this.realRoot(root);
    if (!rootReal) return null;
    const inside = rootReal.endsWith(sep) ? rootReal : rootReal + sep;
    const refuse = () => log.warn(`download: refused "${root.id}/${relPath}": it resolves to a place outside the folder ${root.path}`);
    let path = abs;
    if (!PROC_FD) {
      try {
        path = await realpath(abs);
      } catch {
        return null;
      }
      if (!path.startsWith(inside) || this.core.ownData.covers(path)) {
        refuse();
        return null;
      }
    }
    let fd: number;
    try {
      fd = await new Promise<number>((res, rej) => fsOpen(path, fsc.O_RDONLY | (fsc.O_NOFOLLOW ?? 0), (e, n) => (e ? rej(e) : res(n))));
    } catch {
      return null;
    }
    try {
      // Never a file of Triplicate's own data folder, whatever the catalog says (a third wall after
      // the folder rules and the scanner).
      const real = PROC_FD ? readlinkSync(`/proc/self/fd/${fd}`) : path;
      if (!real.startsWith(inside) || this.core.ownData.covers(real)) {
        refuse();
      } else {
        const st = await new Promise<Stats>((res, rej) => fstat(fd, (e, x) => (e ? rej(e) : res(x))));
        if (st.isFile()) return { fd, st };
      }
    } catch {}
    fsClose(fd, () => undefined);
    return null;
  }

  /** Strong ETag (the catalog's SHA-256) when the file on disk is the one the catalog hashed, else weak. */
  private localEtag(f: FileRow | undefined, size: number, mtimeMs: number): string {
    return f?.sha256 && f.size === size && f.mtime_ms === Math.trunc(mtimeMs) ? `"${f.sha256}"` : weakEtag(size, mtimeMs);
  }

  /** Serve a local file from its open fd. */
  private async sendLocal(ctx: ServeCtx, fd: number, rep: Representation): Promise<void> {
    await this.send(ctx, rep, planResponse(ctx.method, ctx.req.headers, rep), async (span) => {
      const len = span.end - span.start + 1;
      // Small spans in one read (one buffer, one write); bigger ones pumped through two reused buffers.
      if (len <= SINGLE_READ_MAX) return readSpan(fd, span.start, len);
      return { fd };
    });
  }

  /**
   * Serve content that is in memory (small local files). Answered at once, headers and body in
   * one write; only a multi-range answer returns a promise.
   */
  private sendBuffer(ctx: ServeCtx, buf: Buffer, rep: Representation): Promise<void> | void {
    const plan = planResponse(ctx.method, ctx.req.headers, rep);
    const head = this.head(ctx, rep, plan);
    if (!head) return;
    if (head.framing) return this.sendBody(ctx, plan, head, async (span) => buf.subarray(span.start, span.end + 1));
    const { res } = ctx;
    res.writeHead(plan.status, head.headers);
    const span = head.spans[0];
    if (ctx.method === 'HEAD' || !span) {
      res.end();
      ctx.sent = { status: plan.status, firstByte: 0 };
      return;
    }
    ctx.sent = { status: plan.status, firstByte: span.start };
    res.end(span.start === 0 && span.end === buf.length - 1 ? buf : buf.subarray(span.start, span.end + 1));
  }

  /**
   * Serve from one target. `strict`: the catalog knows the file's content, and a target whose
   * object differs (another size or SHA-256) is passed over ('other') for one that has the right
   * bytes; only when no target has them is a differing object served, as it is (non-strict).
   */
  private async tryTarget(ctx: ServeCtx, t: TargetConfig, known: KnownRows, strict: boolean): Promise<TryResult> {
    let key: string;
    try {
      key = objectKey(t.prefix, ctx.rootId, ctx.relPath);
    } catch {
      return 'missing';
    }
    const backend = this.backendFor(t);
    if (!backend) return 'missing'; // switched off since the order was made
    const f = known.file;
    const want = strict && f?.sha256 ? { size: f.size, sha256: f.sha256 } : undefined;
    const copy = want ? this.copyRow(known, t.id) : undefined;
    // A copy found damaged stays passed over until its repair made it synced again.
    if (copy && copy.state !== 'synced' && this.core.catalog.repairQueued(copy.file_id, t.id)) return 'damaged';
    // A copy the catalog knows as synced with this content: GET straight away (one round trip).
    let trusted = ctx.method === 'GET' && !!want && copy?.state === 'synced' && copy.sha256 === want.sha256;
    for (let attempt = 0; attempt < 2; attempt++) {
      let rep: Representation & { sha256?: string };
      if (trusted) {
        rep = { size: f!.size, etag: `"${f!.sha256}"`, lastModified: f!.mtime_ms, sha256: f!.sha256! };
      } else {
        let info: ObjectInfo | null;
        try {
          info = await backend.head(key, ctx.signal);
        } catch (e) {
          if (ctx.gone) return 'gone';
          this.markDown(t, e);
          return 'down';
        }
        if (!info) return 'missing';
        if (want && (info.size !== want.size || (info.sha256 !== undefined && info.sha256 !== want.sha256))) return 'other';
        rep = {
          size: info.size,
          etag: info.sha256 ? `"${info.sha256}"` : weakEtag(info.size, info.lastModified ?? 0),
          lastModified: info.mtimeMs ?? info.lastModified,
          sha256: info.sha256,
        };
      }
      const plan = planResponse(ctx.method, ctx.req.headers, rep);
      const proxying = ctx.method === 'GET';
      if (proxying) this.proxyHeap.started();
      const open = async (range?: Span): Promise<GetResult> => {
        const got = await backend.get(key, { range, signal: ctx.signal });
        if (got.totalSize !== rep.size || (rep.sha256 && got.info.sha256 && got.info.sha256 !== rep.sha256)) {
          got.body.destroy();
          throw new ChangedError(`the object changed: ${got.totalSize} bytes, sha256 ${got.info.sha256 ?? '?'}`);
        }
        return got;
      };
      // The SHA-256 the bytes must have: the catalog's, or (non-strict) the object's own.
      const check = want?.sha256 ?? rep.sha256;
      let inMemory: Promise<Buffer> | undefined;
      try {
        await this.send(ctx, rep, plan, async (span) => {
          if (check && rep.size <= CHECK_IN_MEMORY_MAX) {
            // Every range of it is served from the whole object, checked before the headers go out.
            inMemory ??= open().then((got) => readChecked(got.body, rep.size, check));
            return (await inMemory).subarray(span.start, span.end + 1);
          }
          const whole = span.start === 0 && span.end === rep.size - 1;
          const got = await open(whole ? undefined : span);
          // A part of a big file cannot be checked against the whole file's hash: it is served
          // from a copy not known to be damaged (one found damaged is passed over, above).
          if (!check || !whole) return got.body;
          const checked = new CheckedStream(rep.size, check, (actual) => this.damaged(ctx, t, known, strict, actual));
          pipeline(got.body, checked, () => undefined); // a failing source destroys `checked`, which breaks the response
          return checked;
        });
        ctx.entry.source = t.id;
        return 'sent';
      } catch (e) {
        if (ctx.gone) return 'gone';
        if (e instanceof ChangedError) {
          trusted = false;
          continue;
        }
        if (e instanceof DamagedError) {
          this.damaged(ctx, t, known, strict, e.actual);
          return 'damaged';
        }
        if (isStorageError(e) && e.kind === 'not_found') return 'missing';
        this.markDown(t, e);
        return 'down';
      } finally {
        if (proxying) this.proxyHeap.ended();
      }
    }
    return 'other';
  }

  /**
   * The copy on `t` is damaged: its bytes hash to `actual`, not to the SHA-256 they must have. A
   * copy of the catalog's content is no longer trusted: a repair job on its lane (downloads pass
   * it over until the repair is done) and an event in Activity. Other content (non-strict) has no
   * copy to repair: the operator is told once.
   */
  private damaged(ctx: ServeCtx, t: TargetConfig, known: KnownRows, strict: boolean, actual: string): void {
    const key = `${ctx.rootId}/${ctx.relPath}`;
    const f = known.file;
    ctx.entry.error = `damaged copy on ${t.id}`;
    const message = `The copy of "${key}" on ${t.label} is damaged: its bytes do not match its checksum, so it was not sent.`;
    const detail = `the bytes hash to ${actual}`;
    if (strict && f?.sha256) {
      const reason = `The copy on ${t.label} is damaged (its bytes do not match its checksum). Triplicate replaces it with a good copy.`;
      this.core.catalog.queueRepair(f.id, t.id, f.size, reason);
      known.copies.delete(t.id);
      this.core.bus.record({ level: 'error', kind: 'copy-damaged', message: `${message} Triplicate replaces it with a good copy.`, file_key: key, target_id: t.id, detail });
      this.core.bus.emit({ type: 'copy', file_key: key, target_id: t.id, state: 'pending', error: reason });
      this.deps.wakeLanes();
      return;
    }
    const seen = `${t.id}\0${key}\0${actual}`;
    if (this.damagedSeen.has(seen)) return;
    if (this.damagedSeen.size >= ROWS_MAX) this.damagedSeen.clear();
    this.damagedSeen.add(seen);
    this.core.bus.record({ level: 'error', kind: 'copy-damaged', message, file_key: key, target_id: t.id, detail });
  }

  /**
   * Answer per the plan. `open` gives the body of one span; the first one is opened before any
   * header is written, so a source that fails to open lets the caller try the next source.
   * Failures after the headers destroy the response (never a silently short body).
   */
  private async send(ctx: ServeCtx, rep: Representation, plan: Plan, openSpan: (span: Span) => Promise<Body>): Promise<void> {
    const head = this.head(ctx, rep, plan);
    if (head) await this.sendBody(ctx, plan, head, openSpan);
  }

  /**
   * The headers and spans of an answer with a body (200, 206), or null when the plan was answered
   * here already (304, 412, 416).
   */
  private head(ctx: ServeCtx, rep: Representation, plan: Plan): Head | null {
    const { req, res } = ctx;
    // A flat [name, value, …] list: the cheapest form for writeHead (no header object to build).
    const headers: (string | number)[] = [...SECURITY_HEADER_LIST, 'accept-ranges', 'bytes', 'etag', rep.etag, 'cache-control', ctx.cacheControl];
    if (rep.lastModified !== undefined) headers.push('last-modified', memo(httpDates, rep.lastModified, httpDate));
    if (plan.status === 304) {
      res.writeHead(304, headers);
      res.end();
      return null;
    }
    if (plan.status === 412) {
      sendError(req, res, 412, 'precondition_failed', 'The file changed since you last got it.');
      return null;
    }
    if (plan.status === 416) {
      sendError(req, res, 416, 'range_not_satisfiable', 'The requested part of the file is beyond its end.', { 'content-range': `bytes */${rep.size}` });
      return null;
    }
    const { name, type } = fileMeta(ctx.relPath);
    headers.push(
      'content-disposition',
      ctx.disposition === 'inline' ? memo(inlineDispositions, name, inlineDisposition) : memo(attachmentDispositions, name, attachmentDisposition),
      'content-security-policy',
      FILE_CSP,
    );
    const spans: Span[] = plan.status === 206 ? plan.ranges : rep.size > 0 ? [{ start: 0, end: rep.size - 1 }] : [];
    let framing: Head['framing'];
    let length: number;
    if (spans.length > 1) {
      const boundary = randomBytes(12).toString('hex');
      framing = multipartFraming(boundary, type, spans, rep.size);
      length = framing.length;
      headers.push('content-type', `multipart/byteranges; boundary=${boundary}`, 'content-length', length);
    } else {
      length = spans.length ? spans[0]!.end - spans[0]!.start + 1 : 0;
      headers.push('content-type', type, 'content-length', length);
      if (plan.status === 206) headers.push('content-range', `bytes ${spans[0]!.start}-${spans[0]!.end}/${rep.size}`);
    }
    ctx.entry.bytes = length;
    return { headers, spans, framing };
  }

  private async sendBody(ctx: ServeCtx, plan: Plan, head: Head, openSpan: (span: Span) => Promise<Body>): Promise<void> {
    const { res } = ctx;
    const { headers, spans, framing } = head;
    if (ctx.method === 'HEAD' || spans.length === 0) {
      res.writeHead(plan.status, headers);
      res.end();
      ctx.sent = { status: plan.status, firstByte: 0 };
      return;
    }
    const first = await openSpan(spans[0]!); // may throw: nothing was written yet
    res.writeHead(plan.status, headers);
    ctx.sent = { status: plan.status, firstByte: spans[0]!.start };
    try {
      if (!framing) {
        if (Buffer.isBuffer(first)) {
          if (first.length !== spans[0]!.end - spans[0]!.start + 1) throw new Error('short read');
          res.end(first); // headers and body in one write
          return;
        }
        await pump(first, res, spans[0]!);
        res.end();
        return;
      }
      for (let i = 0; i < spans.length; i++) {
        if (!res.write(framing.heads[i]!)) await drained(res);
        await pump(i === 0 ? first : await openSpan(spans[i]!), res, spans[i]!);
      }
      res.end(framing.tail);
    } catch (e) {
      if (first instanceof Readable) first.destroy();
      if (!ctx.gone) {
        ctx.entry.error = `source failed mid-way: ${isStorageError(e) ? e.kind : errorText(e)}`.slice(0, 300);
        log.warn(`download of ${ctx.rootId}/${ctx.relPath} broke off (${ctx.entry.source ?? '?'}): ${errorText(e)}`);
      }
      res.destroy();
    }
  }

  // ---- folder links ----------------------------------------------------------------------------

  /** A folder link opened in a browser: the files and sub-folders in it, each a link with the same token. */
  private async serveListing(req: IncomingMessage, res: ServerResponse, grant: Grant, dirKey: string, token: string | null, entry: AccessEntry): Promise<void> {
    let scope;
    try {
      scope = parseScope(dirKey);
    } catch {
      return sendError(req, res, 400, 'bad_key', 'This address does not name a folder that can be shared.');
    }
    if (!grant.prefix || !scope.scope.startsWith(grant.scope)) {
      entry.error = 'out_of_scope';
      return sendError(req, res, 403, 'out_of_scope', 'This link does not open this folder.');
    }
    // The files a link opens (linkablePaths): a listing never shows what a link would refuse.
    const opens = this.links.linkable(scope.rootId);
    const rows: { rel_path: string; size: number }[] = [];
    const all = this.core.catalog.db
      .prepare<[string, number, string], { rel_path: string; size: number }>('SELECT rel_path, size FROM files WHERE root_id = ? AND substr(rel_path, 1, ?) = ? ORDER BY rel_path')
      .iterate(scope.rootId, scope.relPath ? scope.relPath.length + 1 : 0, scope.relPath ? `${scope.relPath}/` : '');
    for (const r of all) {
      if (!opens(r.rel_path)) continue;
      rows.push(r);
      if (rows.length > 5000) break;
    }
    const base = scope.relPath ? `${scope.relPath}/` : '';
    const dirs = new Set<string>();
    const files: { name: string; size: number }[] = [];
    for (const r of rows.slice(0, 5000)) {
      const rest = r.rel_path.slice(base.length);
      const slash = rest.indexOf('/');
      if (slash >= 0) dirs.add(rest.slice(0, slash));
      else files.push({ name: rest, size: r.size });
    }
    const q = token ? `?token=${encodeURIComponent(token)}` : '';
    const href = (k: string) => `/files/${encodeKeyPath(k)}${q}`;
    const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
    const items = [
      ...[...dirs].map((d) => `<li><a href="${esc(href(`${scope.scope}${d}/`))}">${esc(d)}/</a></li>`),
      ...files.map((fl) => `<li><a href="${esc(href(`${scope.scope}${fl.name}`))}">${esc(fl.name)}</a> <small>${fl.size.toLocaleString('en')} bytes</small></li>`),
    ];
    const up = scope.scope !== grant.scope ? `<p><a href="${esc(href(scope.scope.slice(0, scope.scope.slice(0, -1).lastIndexOf('/') + 1)))}">↑ up</a></p>` : '';
    const more = rows.length > 5000 ? '<p>Only the first 5,000 files are listed.</p>' : '';
    const html =
      `<!doctype html><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>${esc(scope.scope)}</title>` +
      `<body style="font-family:sans-serif;max-width:50em;margin:2em auto;padding:0 1em"><h1>${esc(scope.scope)}</h1>${up}<ul>${items.join('') || '<li>No files here.</li>'}</ul>${more}</body>`;
    const body = Buffer.from(html);
    res.writeHead(200, {
      ...SECURITY_HEADERS,
      'content-type': 'text/html; charset=utf-8',
      'content-length': body.length,
      'cache-control': 'private, no-cache',
      'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'",
    });
    res.end(req.method === 'HEAD' ? undefined : body);
    this.links.recordUse(grant.id, false);
  }

  // ---- health ------------------------------------------------------------------------------------

  private async deepHealth(): Promise<{ status: number; body: unknown }> {
    const now = Date.now();
    if (this.deepCache && now - this.deepCache.at < DEEP_HEALTH_CACHE_MS) return this.deepCache;
    const t0 = performance.now();
    let catalog: { ok: boolean; ms: number; error?: string };
    try {
      this.core.catalog.db.prepare('SELECT count(*) AS n FROM files').get();
      catalog = { ok: true, ms: Math.round(performance.now() - t0) };
    } catch (e) {
      catalog = { ok: false, ms: Math.round(performance.now() - t0), error: 'The catalog database cannot be read.' };
      log.error(`deep health: catalog: ${errorText(e)}`);
    }
    const targets: Record<string, { ok: boolean; ms: number; error?: string }> = {};
    await Promise.all(
      this.core.targets.enabled().map(async (t) => {
        const s = performance.now();
        try {
          const backend = this.backendFor(t);
          if (!backend) throw new Error('switched off');
          await backend.head(`${t.prefix}.triplicate/health-probe`, AbortSignal.timeout(5_000));
          targets[t.id] = { ok: true, ms: Math.round(performance.now() - s) };
        } catch (e) {
          // The reason, not the detail: this answer is public and must not describe the network behind it.
          targets[t.id] = { ok: false, ms: Math.round(performance.now() - s), error: publicReason(e) };
        }
      }),
    );
    const ok = catalog.ok && Object.values(targets).every((t) => t.ok);
    const out = { at: now, status: ok ? 200 : 503, body: { ok, catalog, targets } };
    this.deepCache = out;
    return out;
  }
}

function publicReason(e: unknown): string {
  if (!isStorageError(e)) return 'the check failed';
  switch (e.kind) {
    case 'network':
      return 'network: the destination did not answer';
    case 'timeout':
    case 'aborted':
      return 'timeout: the destination answered too slowly';
    case 'auth':
      return 'auth: the destination refused the credentials';
    case 'no_bucket':
      return 'no_bucket: the bucket does not exist';
    case 'server':
    case 'throttled':
      return `${e.kind}: the destination reported a problem`;
    default:
      return `${e.kind}: the check failed`;
  }
}

/** A file's catalog rows as read at `at`: its own, and its copy per target id (read when first needed). */
interface KnownRows {
  at: number;
  file: FileRow | undefined;
  copies: Map<string, CopyRow | undefined>;
  /** Whether a link opens it (DownloadServer.linkOpens), once asked. */
  linkOpens?: boolean;
}

interface CachedFile {
  buf: Buffer;
  /** Where it was read from, and the root folder it belongs to (a changed root path misses). */
  abs: string;
  root: string;
  /** Size, ETag and Last-Modified, as served. */
  rep: Representation;
  /** When a stat last proved it current. */
  checkedAt: number;
  /** SmallFileCache's insertion counter when it was last moved to the young end. */
  seq?: number;
  dev: number;
  ino: number;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
}

/** The same file as when it was cached: same inode, size, modification and change times. */
function sameFile(st: Stats, c: CachedFile): boolean {
  return st.ino === c.ino && st.dev === c.dev && st.size === c.size && st.mtimeMs === c.mtimeMs && st.ctimeMs === c.ctimeMs;
}

/**
 * LRU of small files' content, by file key. An entry is used within SMALL_FILE_VALID_MS of the
 * last check, or after a stat shows the very same file (inode, size, mtime, ctime): an edited or
 * replaced file is read again, at most a second late.
 */
class SmallFileCache {
  private readonly map = new Map<string, CachedFile>();
  private bytes = 0;
  /** Insertion counter: an entry is moved to the young end only when it has aged (fewer Map rehashes). */
  private seq = 0;
  constructor(
    readonly maxBytes = 32 * 1024 * 1024,
    readonly maxEntry = 512 * 1024,
  ) {}
  get(path: string): CachedFile | undefined {
    const e = this.map.get(path);
    if (e && this.seq - (e.seq ?? 0) > this.map.size >> 1) {
      // Used again but in the older half: move it to the young end (an approximate LRU that does
      // not delete and re-insert the hot entries on every request).
      this.map.delete(path);
      this.map.set(path, e);
      e.seq = ++this.seq;
    }
    return e;
  }
  set(path: string, e: CachedFile): void {
    if (e.size > this.maxEntry) return;
    this.delete(path);
    e.seq = ++this.seq;
    this.map.set(path, e);
    this.bytes += e.size;
    for (const [k, v] of this.map) {
      if (this.bytes <= this.maxBytes) break;
      this.map.delete(k);
      this.bytes -= v.size;
    }
  }
  delete(path: string): void {
    const e = this.map.get(path);
    if (!e) return;
    this.map.delete(path);
    this.bytes -= e.size;
  }
  clear(): void {
    this.map.clear();
    this.bytes = 0;
  }
}

/** The headers and spans of an answer with a body. */
interface Head {
  /** [name, value, name, value, …] */
  headers: (string | number)[];
  spans: Span[];
  /** Multipart framing, when more than one range is sent. */
  framing?: { heads: string[]; tail: string; length: number };
}

/** Small memo tables for header values that are the same for every request of a file. */
const httpDates = new Map<number, string>();
const httpDate = (ms: number) => new Date(ms).toUTCString();
const inlineDispositions = new Map<string, string>();
const inlineDisposition = (name: string) => contentDisposition('inline', name);
const attachmentDispositions = new Map<string, string>();
const attachmentDisposition = (name: string) => contentDisposition('attachment', name);
const fileMetas = new Map<string, { name: string; type: string }>();
const makeFileMeta = (relPath: string) => ({ name: relPath.slice(relPath.lastIndexOf('/') + 1), type: contentTypeOf(relPath) });
/** The file name and Content-Type of a relative path. */
function fileMeta(relPath: string): { name: string; type: string } {
  return memo(fileMetas, relPath, makeFileMeta);
}
/** `make` takes the key (no closure per call on the hot path). */
function memo<K, V>(m: Map<K, V>, k: K, make: (k: K) => V): V {
  let v = m.get(k);
  if (v === undefined) {
    if (m.size >= 2048) m.clear();
    v = make(k);
    m.set(k, v);
  }
  return v;
}

const NOT_FOUND = 'There is no such file. It may have been renamed or deleted.';
/** A cached small file is served without a stat for this long after the last check. */
const SMALL_FILE_VALID_MS = 1_000;
/** Files whose catalog rows are remembered, at most (all forgotten at once when full: a second's worth). */
const ROWS_MAX = 10_000;
/** Remembered local misses at most (all forgotten at once when full: they are a second's worth). */
const LOCAL_MISSES_MAX = 10_000;
/** Spans up to this size are read in one call into one buffer. */
const SINGLE_READ_MAX = 1024 * 1024;
/** Linux: check the file actually opened through /proc/self/fd. */
const PROC_FD = process.platform === 'linux' && existsSync('/proc/self/fd');

/** Read `len` bytes at `pos`; fewer (the file shrank) is an error, never a short answer. */
async function readSpan(fd: number, pos: number, len: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(len);
  await readInto(fd, buf, len, pos);
  return buf;
}

/** Stream one span into the response (backpressure via pipeline); a source that ends short is an error. */
async function pump(body: Body, res: ServerResponse, span: Span): Promise<void> {
  const want = span.end - span.start + 1;
  if (Buffer.isBuffer(body)) {
    if (body.length !== want) throw new Error(`the source gave ${body.length} of ${want} bytes`);
    if (!res.write(body)) await drained(res);
    return;
  }
  if (!(body instanceof Readable)) return pumpFile(body.fd, res, span);
  // Backpressure with room: the source is paused only when more than STREAM_WINDOW bytes wait
  // for the client, not at every chunk above the socket's 16 KiB mark (a stop-and-go that halves
  // the throughput of a proxied S3 download). Events, not an async iterator: no promise per chunk.
  let got = 0;
  // Errors after we stopped listening (the source aborted because the client left) are expected:
  // a permanent listener keeps them from becoming uncaught.
  body.on('error', () => undefined);
  // A small body (a photo, a thumbnail) goes out in one write with the headers once it has all
  // come in, not a write per socket read of the source (3-4 for 200 KB).
  const corked = want <= CORK_MAX;
  if (corked) res.cork();
  // A bigger span: the chunks that come in during one turn of the event loop go out in one
  // write (corked until setImmediate), not one send per 64 KiB socket read.
  let batch: NodeJS.Immediate | null = null;
  const flushBatch = () => {
    batch = null;
    res.uncork();
  };
  try {
    await new Promise<void>((resolve, reject) => {
      const onDrain = () => body.resume();
      const onData = (chunk: Buffer) => {
        got += chunk.length;
        if (!corked && !batch) {
          res.cork();
          batch = setImmediate(flushBatch);
        }
        res.write(chunk);
        if (res.writableLength > STREAM_WINDOW) {
          body.pause();
          res.once('drain', onDrain);
        }
      };
      const onClose = () => finish(new Error('the client went away'));
      const finish = (e?: Error | null) => {
        body.off('data', onData);
        body.off('end', finish);
        body.off('error', finish);
        res.off('close', onClose);
        res.off('drain', onDrain);
        if (e) reject(e);
        else resolve();
      };
      body.on('data', onData);
      body.once('end', finish);
      body.once('error', finish);
      res.once('close', onClose);
    });
  } finally {
    if (batch) {
      clearImmediate(batch);
      flushBatch();
    }
    if (corked) res.uncork();
    if (!body.destroyed) body.destroy();
  }
  if (got !== want) throw new Error(`the source ended after ${got} of ${want} bytes`);
}

/** A whole object read into memory, checked against the SHA-256 it must have (DamagedError if not). */
async function readChecked(body: Readable, size: number, sha256: string): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(size);
  let got = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      if (got + chunk.length > size) throw new Error(`the source gave more than ${size} bytes`);
      chunk.copy(buf, got);
      got += chunk.length;
    }
  } finally {
    body.destroy();
  }
  if (got !== size) throw new Error(`the source ended after ${got} of ${size} bytes`);
  const actual = createHash('sha256').update(buf).digest('hex');
  if (actual !== sha256) throw new DamagedError(actual);
  return buf;
}

/**
 * A whole object passed through and hashed one chunk behind: the last chunk goes out only once
 * the hash of all of it is known to be `sha256`. Otherwise `onDamaged` is told and the stream
 * fails, which destroys the response short of its Content-Length: the client never sees a clean end.
 */
class CheckedStream extends Transform {
  private readonly hash = createHash('sha256');
  private held: Buffer | null = null;
  private bytes = 0;
  constructor(
    private readonly size: number,
    private readonly sha256: string,
    private readonly onDamaged: (actual: string) => void,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    if (this.held) this.push(this.held);
    this.held = chunk;
    cb();
  }
  override _flush(cb: TransformCallback): void {
    if (this.bytes !== this.size) return cb(new Error(`the source ended after ${this.bytes} of ${this.size} bytes`));
    const actual = this.hash.digest('hex');
    if (actual !== this.sha256) {
      this.onDamaged(actual);
      return cb(new DamagedError(actual));
    }
    if (this.held) this.push(this.held);
    this.held = null;
    cb();
  }
}

/** Bytes a proxied download may have waiting for the client before its source is paused. */
const STREAM_WINDOW = 1024 * 1024;
/** Proxied spans up to this size are sent in one write when complete (below STREAM_WINDOW: no pause). */
const CORK_MAX = 512 * 1024;

/** What a source gives for a span: a stream (targets), bytes (small local spans) or an open file to pump. */
type Body = Readable | Buffer | { fd: number };

const PUMP_CHUNK = 512 * 1024;

/**
 * Copy a span of a local file to the response through two reused buffers: the next chunk is read
 * while the previous one is being sent, and a buffer is reused only after its write completed.
 * (No allocation per chunk, no stream machinery: the big-file path costs two copies and little else.)
 */
async function pumpFile(fd: number, res: ServerResponse, span: Span): Promise<void> {
  const total = span.end - span.start + 1;
  const size = Math.min(PUMP_CHUNK, total);
  const bufs = [Buffer.allocUnsafeSlow(size), Buffer.allocUnsafeSlow(size)];
  const free: Promise<void>[] = [Promise.resolve(), Promise.resolve()];
  let pos = span.start;
  let i = 0;
  let reading = readInto(fd, bufs[0]!, size, pos);
  for (;;) {
    const n = await reading;
    if (res.destroyed) throw new Error('the client went away');
    const buf = bufs[i]!;
    pos += n;
    let release!: () => void;
    free[i] = new Promise<void>((r) => (release = r));
    const ok = res.write(n === buf.length ? buf : buf.subarray(0, n), () => release());
    if (pos > span.end) {
      if (!ok) await drained(res);
      return;
    }
    const j = i ^ 1;
    await untilClosed(free[j]!, res); // that buffer's last write is done: it may be filled again
    reading = readInto(fd, bufs[j]!, Math.min(PUMP_CHUNK, span.end - pos + 1), pos);
    i = j;
    if (!ok) await drained(res);
  }
}

/** Read exactly `len` bytes at `pos` into `buf` (fewer: the file shrank, an error). */
async function readInto(fd: number, buf: Buffer, len: number, pos: number): Promise<number> {
  let off = 0;
  while (off < len) {
    const n = await new Promise<number>((res, rej) => fsRead(fd, buf, off, len - off, pos + off, (e, k) => (e ? rej(e) : res(k))));
    if (n === 0) throw new Error(`the file ended ${len - off} bytes early`);
    off += n;
  }
  return len;
}

function untilClosed(p: Promise<void>, res: ServerResponse): Promise<void> {
  if (res.destroyed) return Promise.reject(new Error('the client went away'));
  return new Promise((resolve, reject) => {
    const fail = () => reject(new Error('the client went away'));
    res.once('close', fail);
    p.then(() => {
      res.off('close', fail);
      resolve();
    });
  });
}

function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', fail);
      resolve();
    };
    const fail = () => {
      res.off('drain', done);
      reject(new Error('the client went away'));
    };
    res.once('drain', done);
    res.once('close', fail);
  });
}

/** A link that was refused (LinkError: 401 or 403, with its sentence); anything else is rethrown. */
function refused(req: IncomingMessage, res: ServerResponse, entry: AccessEntry, e: unknown): void {
  if (!(e instanceof LinkError)) throw e;
  entry.error = e.code;
  sendError(req, res, e.status, e.code, e.message, e.status === 401 ? { 'www-authenticate': 'Bearer realm="triplicate"' } : {});
}

function sendJsonBody(req: IncomingMessage, res: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', ...extra });
  res.end(req.method === 'HEAD' ? undefined : text);
}

function sendError(req: IncomingMessage, res: ServerResponse, status: number, code: string, message: string, extra: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendJsonBody(req, res, status, { error: message, code }, extra);
}

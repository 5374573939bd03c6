// The public download server: its own listener (never the admin port), meant to sit behind a
// Cloudflare Tunnel or on the LAN.
//
//   GET|HEAD /files/<root id>/<relative path>?token=<jwt>   (or Authorization: Bearer <jwt>)
//   GET|HEAD /files/<root id>/<folder>/?token=<jwt>        a folder link: a plain list of its files
//   GET      /health                                        liveness
//   GET      /health/deep                                   catalog + every enabled target, JSON
//
// Here: the listener, routing, the link check, admission (server.maxConcurrentDownloads per
// client and per link, with a minimum rate: slots.ts) and health. A link opens only files that
// are backed up (linkablePaths, links.ts). The file itself comes from the source chain (chain.ts),
// the answer is made by answer.ts, and every request gets a line in the access log (access-log.ts).
// The operator's console reaches the same chain through the admin API (`/api/admin/download`).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { parseFileKey } from '../../../../shared/keys';
import { isAnyAddress, isLoopback } from '../../../../shared/config';
import { isStorageError } from '../../backends/types';
import type { EngineContext, EngineService } from '../../core/context';
import { log } from '../../log';
import { errorText } from '../../util';
import { grantCovers, LinkError, type Grant, type Links } from '../links';
import { decodeKeyPath } from '../ranges';
import { clientAddress, forwardedFor, RateFloor, Slots, type Slot } from '../slots';
import { AccessLog, type AccessEntry } from './access-log';
import { NOT_FOUND, sendError, sendJsonBody, ServeCtx, type ServeWhat } from './answer';
import { SourceChain, type ChainDeps } from './chain';
import { serveListing } from './listing';

/** What the download server asks of the sync service (wired by the composition root). */
export interface DownloadDeps extends ChainDeps {
  /** When the engine started (`/health`). */
  startedAt: number;
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
/** Deep health results are reused this long (it is public: it must not become a way to hammer the targets). */
const DEEP_HEALTH_CACHE_MS = 5_000;

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
  /** Download paths decoded and checked before: that is a good share of a small download (a pure function of the path: safe to remember). */
  private readonly pathKeys = new Map<string, PathKey>();
  private deepCache: { at: number; status: number; body: unknown } | null = null;
  /** Where the files come from: the local file, then the targets. */
  private readonly chain: SourceChain;
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
  ) {
    this.chain = new SourceChain(core, deps);
  }

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
      // What was remembered of folders, files and targets may be stale.
      this.chain.forget();
      this.deepCache = null;
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
    const p: Pending = { t0, entry: { ts: new Date(t0).toISOString(), method: req.method ?? '?', path: '', ip: req.socket.remoteAddress } };
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
    if (decoded.dir) return serveListing(this.core, this.links, req, res, grant, decoded.key, tokenParam, entry);
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
    const out = this.chain.serve(ctx, pk.key);
    if (out) return out.then(() => this.counted(grant, ctx));
    this.counted(grant, ctx);
  }

  /** Does a link open this file? linkablePaths (links.ts) decides; remembered with the file's rows. */
  private linkOpens(pk: PathKey): boolean {
    const k = this.chain.known(pk.key, pk.rootId, pk.relPath);
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
    if (!this.chain.known(key, rootId, relPath).file) {
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
    await this.chain.serve(ctx, key);
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
          const backend = this.core.targets.backend(t.id, 'download');
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

/** A link that was refused (LinkError: 401 or 403, with its sentence); anything else is rethrown. */
function refused(req: IncomingMessage, res: ServerResponse, entry: AccessEntry, e: unknown): void {
  if (!(e instanceof LinkError)) throw e;
  entry.error = e.code;
  sendError(req, res, e.status, e.code, e.message, e.status === 401 ? { 'www-authenticate': 'Bearer realm="triplicate"' } : {});
}

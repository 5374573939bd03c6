// The admin API and web console: one listener, 127.0.0.1 by default. Bearer token from
// `<data dir>/admin-token` (0600); the SSE stream and other GET stream routes also take
// `?access_token=` (EventSource, <img> and <a> cannot set headers). Binding beyond loopback needs a
// password (scrypt), exchanged at `/api/login` for the token. JSON-lines access log, tokens stripped.
import { createReadStream, createWriteStream, existsSync, statSync, type WriteStream } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIP, type AddressInfo } from 'node:net';
import { hostname } from 'node:os';
import { basename, dirname, extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { randomBytes, scryptSync, timingSafeEqual } from 'node:crypto';
import { QUERY_TOKEN_ROUTES, STREAM_ROUTES, routes, type EngineEvent, type SyncStatus } from '../../../shared/api';
import type { EngineContext, EngineService } from '../core/context';
import { log } from '../log';
import { errorText } from '../util';
import { HttpError, Router, readJsonBody, sendJson, type ApiRegistry, type Handlers, type RawHandler } from './router';
import { metricsText } from './metrics';
import { PRIVATE_FILE_MODE, privateDir } from '../private-files';
import { ConfigChangedError, ConfigError, ForbiddenSettingError } from '../config/config';
import { KeyError } from '../../../shared/keys';
import { describeIssues } from '../../../shared/config';
import { ZodError } from 'zod';

export type { RawHandler } from './router';

export interface AdminServerOptions {
  port?: number;
  host?: string;
  webRoot?: string;
  /** The admin token (Bearer, or `?access_token=` on stream routes). */
  token: string;
  /** When the engine started (health, metrics). */
  startedAt: number;
  /** The status the event stream starts with and the metrics report. */
  status(): SyncStatus;
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost']);
/** Failed sign-ins a client may make per LOGIN_WINDOW_MS before it must wait. */
const LOGIN_MAX_FAILURES = 10;
const LOGIN_WINDOW_MS = 60_000;
/** Clients whose failures are remembered, at most (a flood of addresses cannot grow memory). */
const LOGIN_CLIENTS_MAX = 10_000;

export function hashPassword(password: string): string {
  const salt = randomBytes(16);
  const hash = scryptSync(password, salt, 32, { N: 16384, r: 8, p: 1 });
  return `scrypt$16384$${salt.toString('base64')}$${hash.toString('base64')}`;
}

export function verifyPassword(password: string, stored: string): boolean {
  const [scheme, n, salt, hash] = stored.split('$');
  if (scheme !== 'scrypt' || !n || !salt || !hash) return false;
  const want = Buffer.from(hash, 'base64');
  const got = scryptSync(password, Buffer.from(salt, 'base64'), want.length, { N: Number(n), r: 8, p: 1 });
  return got.length === want.length && timingSafeEqual(got, want);
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** Where the built web UI is: TRIPLICATE_WEB_ROOT, else `out/renderer` of this package. */
export function findWebRoot(): string | undefined {
  if (process.env.TRIPLICATE_WEB_ROOT) return process.env.TRIPLICATE_WEB_ROOT;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const cand = join(dir, 'out', 'renderer', 'index.html');
    if (existsSync(cand)) return dirname(cand);
    // packaged / electron-vite build: this file is bundled into out/main, the UI is out/renderer
    if (basename(dir) === 'out' && existsSync(join(dir, 'renderer', 'index.html'))) return join(dir, 'renderer');
    dir = dirname(dir);
  }
  return undefined;
}

const STATIC_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml', '.png': 'image/png', '.ico': 'image/x-icon', '.json': 'application/json', '.woff2': 'font/woff2', '.webp': 'image/webp', '.jpg': 'image/jpeg',
};

export class AdminServer implements EngineService, ApiRegistry {
  readonly name = 'admin';
  readonly router = new Router();
  private readonly raw: { prefix: string; fn: RawHandler; auth: boolean }[] = [];
  private server: Server | null = null;
  /** Where the console is, once it listens. */
  url: string | undefined;
  private access: WriteStream | null = null;
  private sse = new Set<ServerResponse>();
  private offBus: (() => void) | null = null;
  private heartbeat: NodeJS.Timeout | null = null;
  /** Failed sign-ins per client address (timestamps within LOGIN_WINDOW_MS). */
  private readonly loginFailures = new Map<string, number[]>();
  webRoot: string | undefined;

  constructor(
    private readonly ctx: EngineContext,
    private readonly opts: AdminServerOptions,
  ) {}

  /** Services add their JSON handlers here (before or after start). */
  register(h: Handlers): void {
    this.router.register(h);
  }

  /** Services add raw routes (streams) here; `path` matches exactly or as a prefix ending in "/". */
  registerRaw(path: string, fn: RawHandler, opts: { auth?: boolean } = {}): void {
    this.raw.push({ prefix: path, fn, auth: opts.auth ?? true });
  }

  async start(): Promise<void> {
    const { ctx } = this;
    const cfg = ctx.config.get().server;
    const host = this.opts.host ?? cfg.adminHost;
    if (!LOOPBACK.has(host) && !cfg.adminPasswordHash) {
      throw new ConfigError(
        `The web console is set to listen on ${host}, beyond this computer, but no console password is set. ` +
          'Set one first (Settings → Web console, or `triplicate password`), or keep server.adminHost at 127.0.0.1.',
      );
    }
    this.webRoot = this.opts.webRoot ?? findWebRoot();
    privateDir(join(ctx.dataDir, 'logs'));
    this.access = createWriteStream(join(ctx.dataDir, 'logs', 'admin-access.jsonl'), { flags: 'a', mode: PRIVATE_FILE_MODE });
    this.registerBuiltins();
    this.server = createServer({ requestTimeout: 0, headersTimeout: 30_000, maxHeaderSize: 16 * 1024 }, (req, res) => void this.handle(req, res));
    this.server.keepAliveTimeout = 5_000;
    await new Promise<void>((resolvePromise, reject) => {
      this.server!.once('error', (e: NodeJS.ErrnoException) =>
        reject(
          e.code === 'EADDRINUSE'
            ? new ConfigError(`Port ${this.opts.port ?? cfg.adminPort} on ${host} is already used by another program. Choose another server.adminPort (0 picks a free one).`)
            : e,
        ),
      );
      this.server!.listen(this.opts.port ?? cfg.adminPort, host, () => resolvePromise());
    });
    const addr = this.server.address() as AddressInfo;
    const shownHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address === '0.0.0.0' ? '127.0.0.1' : addr.address;
    this.url = `http://${shownHost}:${addr.port}`;
    this.offBus = ctx.bus.on((e) => this.broadcast(e));
    this.heartbeat = setInterval(() => {
      for (const r of this.sse) r.write(': keep-alive\n\n');
    }, 15_000);
    this.heartbeat.unref?.();
  }

  async stop(): Promise<void> {
    this.offBus?.();
    if (this.heartbeat) clearInterval(this.heartbeat);
    for (const r of this.sse) r.end();
    this.sse.clear();
    const srv = this.server;
    this.server = null;
    if (srv) {
      const closed = new Promise<void>((r) => srv.close(() => r()));
      srv.closeAllConnections();
      await closed;
    }
    await new Promise<void>((r) => (this.access ? this.access.end(() => r()) : r()));
  }

  private broadcast(e: EngineEvent): void {
    if (this.sse.size === 0) return;
    const line = `data: ${JSON.stringify(e)}\n\n`;
    for (const r of this.sse) r.write(line);
  }

  private registerBuiltins(): void {
    this.registerRaw(STREAM_ROUTES.events, (req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', connection: 'keep-alive', 'x-accel-buffering': 'no' });
      res.write('retry: 3000\n\n');
      res.write(`data: ${JSON.stringify({ type: 'status', status: this.opts.status() } satisfies EngineEvent)}\n\n`);
      this.sse.add(res);
      req.on('close', () => this.sse.delete(res));
      return true;
    });
    this.registerRaw(STREAM_ROUTES.metrics, (_req, res) => {
      const text = metricsText(this.opts.status(), this.ctx.catalog.laneCounts(), this.opts.startedAt);
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8', 'cache-control': 'no-store' });
      res.end(text);
      return true;
    });
    this.registerRaw(
      STREAM_ROUTES.health,
      (_req, res) => {
        sendJson(res, 200, { ok: true, version: process.env.npm_package_version ?? '0.1.0', uptime_s: Math.round((Date.now() - this.opts.startedAt) / 1000) });
        return true;
      },
      { auth: false },
    );
  }

  private authorized(req: IncomingMessage, url: URL, allowQueryToken: boolean): boolean {
    const h = req.headers.authorization;
    if (h?.startsWith('Bearer ') && safeEqual(h.slice(7).trim(), this.opts.token)) return true;
    const q = url.searchParams.get('access_token');
    return allowQueryToken && q !== null && safeEqual(q, this.opts.token);
  }

  private queryTokenAllowed(path: string): boolean {
    return (QUERY_TOKEN_ROUTES as readonly string[]).some((name) => {
      const p = (STREAM_ROUTES as Record<string, string>)[name];
      if (!p) return false;
      if (p.includes(':')) return new RegExp(`^${p.replace(/:[a-zA-Z_]+/g, '[^/]+')}$`).test(path);
      return p === path;
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = Date.now();
    const method = req.method ?? 'GET';
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://localhost');
    } catch {
      return sendJson(res, 400, { error: 'The request URL is malformed.', code: 'bad_request' });
    }
    res.on('finish', () => this.logAccess(req, res, url, started));
    res.setHeader('x-content-type-options', 'nosniff');
    // DNS rebinding: a page whose own name resolves to this computer is same-origin with it in the
    // browser's eyes; only the Host header tells it apart.
    const host = hostOf(req.headers.host);
    if (host !== undefined && !this.hostAllowed(host)) {
      return sendJson(res, 421, {
        error: `This address (${host.slice(0, 100)}) is not one the Triplicate console answers to. Open the console at ${this.url ?? 'http://127.0.0.1'}, or add the name to server.allowedHosts in config.json.`,
        code: 'misdirected',
      });
    }
    // The console is same-origin (the desktop window loads it from this port; `npm run dev` proxies
    // /api through the dev server): no CORS headers, so no other page may read an answer, and a
    // change sent by a page of another origin is refused before it runs.
    if (method === 'OPTIONS') {
      res.writeHead(204);
      return void res.end();
    }
    const origin = req.headers.origin;
    if (method !== 'GET' && method !== 'HEAD' && origin !== undefined && !sameOrigin(origin, req.headers.host)) {
      return sendJson(res, 403, {
        error: `A page of another web site (${origin.slice(0, 100)}) tried to change Triplicate's settings; it was refused. Use the console at ${this.url ?? 'http://127.0.0.1'}.`,
        code: 'foreign_origin',
      });
    }
    const ac = new AbortController();
    res.on('close', () => ac.abort());
    try {
      const path = url.pathname;
      // raw routes
      for (const r of this.raw) {
        const match = r.prefix.includes(':') ? new RegExp(`^${r.prefix.replace(/:[a-zA-Z_]+/g, '[^/]+')}$`).test(path) : path === r.prefix;
        if (!match) continue;
        if (r.auth && !this.authorized(req, url, this.queryTokenAllowed(path))) throw new HttpError(401, 'unauthorized', 'Sign in to the Triplicate console first (the token is missing or wrong).');
        const done = await r.fn(req, res, url);
        if (done !== false) return;
      }
      if (path.startsWith('/api/') || path === '/metrics') {
        const m = this.router.match(method, path);
        if (!m) throw new HttpError(404, 'not_found', `There is no API route ${method} ${path}.`);
        if ('allowed' in m) throw new HttpError(405, 'method_not_allowed', `${path} does not accept ${method}; use ${m.allowed.join(' or ')}.`);
        if (m.name !== 'login' && !this.authorized(req, url, false)) throw new HttpError(401, 'unauthorized', 'Sign in to the Triplicate console first (the token is missing or wrong).');
        if (!m.handler) throw new HttpError(404, 'not_available', 'This feature is not available in this version of the engine yet.');
        const query = Object.fromEntries(url.searchParams.entries());
        delete (query as Record<string, string>).access_token;
        // A form or text/plain body needs no preflight, so any page could send one blind: sign-in takes JSON only.
        if (m.name === 'login' && !/^application\/json\s*(;|$)/i.test(req.headers['content-type'] ?? '')) {
          throw new HttpError(415, 'json_only', 'Send the password as JSON (Content-Type: application/json), as the Triplicate console does.');
        }
        const body = routes[m.name].method === 'GET' ? undefined : await readJsonBody(req);
        const out = await m.handler({ params: m.params, query, body: body ?? {}, req, signal: ac.signal } as never);
        return sendJson(res, 200, out);
      }
      if (method === 'GET' || method === 'HEAD') return this.serveStatic(req, res, path);
      throw new HttpError(405, 'method_not_allowed', `${method} is not allowed here.`);
    } catch (e) {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      const he = toHttpError(e);
      if (he.status >= 500) log.error(`admin ${method} ${url.pathname}: ${errorText(e)}`);
      sendJson(res, he.status, he.body());
    }
  }

  /**
   * Sign in for a console bound beyond loopback: password -> token. Failures count per client
   * address, so a guesser locks out only itself, never the operator.
   */
  login(password: string, client = ''): { token: string } {
    const now = Date.now();
    const recent = (this.loginFailures.get(client) ?? []).filter((t) => now - t < LOGIN_WINDOW_MS);
    if (recent.length >= LOGIN_MAX_FAILURES) throw new HttpError(429, 'too_many_attempts', 'Too many wrong passwords from this computer. Wait a minute and try again.');
    const stored = this.ctx.config.get().server.adminPasswordHash;
    if (!stored) throw new HttpError(400, 'no_password', 'No console password is set. Open the console on the server itself (http://127.0.0.1) to set one.');
    if (typeof password !== 'string' || !verifyPassword(password, stored)) {
      if (!this.loginFailures.has(client) && this.loginFailures.size >= LOGIN_CLIENTS_MAX) this.loginFailures.delete(this.loginFailures.keys().next().value!);
      this.loginFailures.set(client, [...recent, now]);
      throw new HttpError(401, 'wrong_password', 'That password is not right.');
    }
    this.loginFailures.delete(client);
    return { token: this.opts.token };
  }

  /**
   * Names this console answers to: IP literals (a rebinding page has a name, never an address),
   * loopback names, this computer's name, the configured admin host and server.allowedHosts.
   */
  private hostAllowed(host: string): boolean {
    if (isIP(host) || host === 'localhost' || host.endsWith('.localhost')) return true;
    const cfg = this.ctx.config.get().server;
    const me = hostname().toLowerCase();
    const names = [me, `${me}.local`, cfg.adminHost.toLowerCase(), ...(cfg.allowedHosts ?? []).map((h) => h.toLowerCase())];
    return names.includes(host);
  }

  private serveStatic(req: IncomingMessage, res: ServerResponse, path: string): void {
    const root = this.webRoot;
    if (!root) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      return void res.end(
        '<!doctype html><meta charset="utf-8"><title>Triplicate</title><body style="font-family:sans-serif;max-width:40em;margin:3em auto">' +
          '<h1>Triplicate engine is running</h1><p>The web console has not been built. Run <code>npm run build</code> and reload this page. ' +
          'The admin API is available under <code>/api/</code>.</p></body>',
      );
    }
    let rel: string;
    try {
      rel = decodeURIComponent(path);
    } catch {
      throw new HttpError(400, 'bad_request', 'The path is malformed.');
    }
    const abs = resolve(root, normalize(`.${rel}`));
    if (abs !== root && !abs.startsWith(root + sep)) throw new HttpError(404, 'not_found', 'Not found.');
    let file = abs;
    let st = statSync(file, { throwIfNoEntry: false });
    if (!st || st.isDirectory()) {
      // single-page app: unknown paths get index.html
      file = join(root, 'index.html');
      st = statSync(file, { throwIfNoEntry: false });
      if (!st) throw new HttpError(404, 'not_found', 'Not found.');
    }
    const type = STATIC_TYPES[extname(file)] ?? 'application/octet-stream';
    const immutable = file.includes(`${sep}assets${sep}`);
    res.writeHead(200, { 'content-type': type, 'content-length': st.size, 'cache-control': immutable ? 'public, max-age=31536000, immutable' : 'no-cache' });
    if (req.method === 'HEAD') return void res.end();
    createReadStream(file).pipe(res);
  }

  private logAccess(req: IncomingMessage, res: ServerResponse, url: URL, started: number): void {
    if (!this.access) return;
    const u = new URL(url.toString());
    if (u.searchParams.has('access_token')) u.searchParams.set('access_token', 'redacted');
    this.access.write(
      `${JSON.stringify({ ts: new Date(started).toISOString(), method: req.method, path: u.pathname + u.search, status: res.statusCode, ms: Date.now() - started, ip: req.socket.remoteAddress })}\n`,
    );
  }
}

export function toHttpError(e: unknown): HttpError {
  if (e instanceof HttpError) return e;
  if (e instanceof ForbiddenSettingError) return new HttpError(403, 'forbidden_setting', e.message, undefined, e.fields);
  if (e instanceof ConfigChangedError) return new HttpError(409, 'config_changed', e.message, undefined, e.fields.length ? e.fields : undefined);
  if (e instanceof ConfigError) return new HttpError(400, 'invalid_config', e.message, undefined, e.fields.length ? e.fields : undefined);
  if (e instanceof KeyError) return new HttpError(400, 'bad_key', e.message);
  if (e instanceof ZodError) {
    const fields = describeIssues(e.issues);
    return new HttpError(400, 'invalid_input', `Please check ${fields.length === 1 ? 'this field' : 'these fields'}: ${fields.join('; ')}.`, undefined, fields);
  }
  return new HttpError(500, 'internal', 'Something went wrong inside the engine. The details are in the log; please send "Save diagnostics" to your support contact.', errorText(e));
}

/** The host name of a Host header, lower-case, without port or IPv6 brackets; undefined when absent. */
export function hostOf(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const h = header.trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(1, h.indexOf(']') > 0 ? h.indexOf(']') : undefined);
  const colon = h.lastIndexOf(':');
  return (colon >= 0 && h.indexOf(':') === colon ? h.slice(0, colon) : h).replace(/\.$/, '');
}

/** Is `origin` the console's own (the page was served from this Host)? */
function sameOrigin(origin: string, host: string | undefined): boolean {
  try {
    const o = new URL(origin);
    return o.protocol === 'http:' && host !== undefined && o.host === new URL(`http://${host}`).host;
  } catch {
    return false;
  }
}

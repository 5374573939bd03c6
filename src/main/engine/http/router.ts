// The admin API's routing, driven by the one contract in src/shared/api.ts: a handler is registered
// under a route name; the method and path come from the table. Registering a name twice, or a name
// the table does not know, is an error at start.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { assertRouteTable, routes, type ApiErrorBody, type BodyOf, type ParamsOf, type QueryOf, type ResOf, type RouteName } from '../../../shared/api';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly detail?: string,
    readonly fields?: string[],
  ) {
    super(message);
    this.name = 'HttpError';
  }
  body(): ApiErrorBody {
    const b: ApiErrorBody = { error: this.message, code: this.code };
    if (this.detail) b.detail = this.detail;
    if (this.fields) b.fields = this.fields;
    return b;
  }
}

export const badRequest = (msg: string, fields?: string[]) => new HttpError(400, 'bad_request', msg, undefined, fields);
export const notFound = (msg: string) => new HttpError(404, 'not_found', msg);
export const conflict = (msg: string) => new HttpError(409, 'conflict', msg);

export interface HandlerContext<N extends RouteName> {
  params: ParamsOf<N> extends undefined ? Record<string, string> : ParamsOf<N>;
  query: QueryOf<N> extends undefined ? Record<string, string> : QueryOf<N>;
  body: BodyOf<N> extends undefined ? unknown : BodyOf<N>;
  req: IncomingMessage;
  signal: AbortSignal;
}

export type Handler<N extends RouteName> = (ctx: HandlerContext<N>) => Promise<ResOf<N>> | ResOf<N>;
export type Handlers = { [N in RouteName]?: Handler<N> };

/** A raw (non-JSON) route: SSE, metrics, downloads, uploads. Return true when handled. */
export type RawHandler = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<boolean | void> | boolean | void;

/**
 * Where services put their admin API routes (the admin server is one; it imports no service).
 * Handlers that need several services are wired by the composition root.
 */
export interface ApiRegistry {
  /** JSON handlers of routes named in src/shared/api.ts (before or after start). */
  register(h: Handlers): void;
  /** A raw route; `path` matches exactly, or with `:name` segments. `auth` defaults to true. */
  registerRaw(path: string, fn: RawHandler, opts?: { auth?: boolean }): void;
}

interface Compiled {
  name: RouteName;
  method: string;
  re: RegExp;
  keys: string[];
}

export class Router {
  private readonly handlers = new Map<RouteName, Handler<RouteName>>();
  private readonly compiled: Compiled[];

  constructor() {
    assertRouteTable(routes);
    this.compiled = (Object.keys(routes) as RouteName[]).map((name) => {
      const def = routes[name];
      const keys: string[] = [];
      const re = new RegExp(
        `^${def.path
          .split('/')
          .map((seg) => {
            if (seg.startsWith(':')) {
              keys.push(seg.slice(1));
              return '([^/]+)';
            }
            return seg.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
          })
          .join('/')}$`,
      );
      return { name, method: def.method, re, keys };
    });
    // Literal paths win over parameterised ones (`/targets/test` before `/targets/:id`).
    this.compiled.sort((a, b) => a.keys.length - b.keys.length);
  }

  register(h: Handlers): void {
    for (const [name, fn] of Object.entries(h) as [RouteName, Handler<RouteName>][]) {
      if (!(name in routes)) throw new Error(`handler for unknown route "${name}"`);
      if (this.handlers.has(name)) throw new Error(`route "${name}" has two handlers`);
      this.handlers.set(name, fn);
    }
  }

  registered(): RouteName[] {
    return [...this.handlers.keys()];
  }

  missing(): RouteName[] {
    return (Object.keys(routes) as RouteName[]).filter((n) => !this.handlers.has(n));
  }

  /** Find the route for a request: the handler (if any), params, or the allowed methods for a 405. */
  match(method: string, path: string): { name: RouteName; handler?: Handler<RouteName>; params: Record<string, string> } | { allowed: string[] } | null {
    const allowed: string[] = [];
    for (const c of this.compiled) {
      const m = c.re.exec(path);
      if (!m) continue;
      if (c.method !== method) {
        allowed.push(c.method);
        continue;
      }
      const params: Record<string, string> = {};
      c.keys.forEach((k, i) => {
        try {
          params[k] = decodeURIComponent(m[i + 1]!);
        } catch {
          params[k] = m[i + 1]!;
        }
      });
      return { name: c.name, handler: this.handlers.get(c.name), params };
    }
    return allowed.length ? { allowed } : null;
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', ...extra });
  res.end(text);
}

export async function readJsonBody(req: IncomingMessage, limit = 1 << 20): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req as AsyncIterable<Buffer>) {
    size += c.length;
    if (size > limit) throw new HttpError(413, 'too_large', `The request body is larger than ${limit} bytes.`);
    chunks.push(c);
  }
  if (size === 0) return undefined;
  const text = Buffer.concat(chunks).toString('utf8');
  try {
    return JSON.parse(text);
  } catch (e) {
    throw badRequest(`The request body is not valid JSON: ${(e as Error).message}.`);
  }
}

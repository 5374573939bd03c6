// The typed client over the admin API: the UI, the CLI and the tests call through it.
// Uses only `fetch`, so it runs in the browser, in Electron's renderer and in Node.
import { buildPath, routes, type ApiErrorBody, type BodyOf, type ParamsOf, type QueryOf, type ResOf, type RouteName } from './api';

export class ApiError extends Error {
  constructor(
    public readonly status: number,
    public readonly body: ApiErrorBody,
  ) {
    super(body.error);
    this.name = 'ApiError';
  }
}

export interface ClientOptions {
  baseUrl: string;
  token?: string;
  fetch?: typeof fetch;
}

type Nothing = Record<never, never>;
type CallArgs<N extends RouteName> = (ParamsOf<N> extends undefined ? Nothing : { params: ParamsOf<N> }) &
  (QueryOf<N> extends undefined ? Nothing : { query?: QueryOf<N> }) &
  (BodyOf<N> extends undefined ? Nothing : { body?: BodyOf<N> });

export class ApiClient {
  private readonly f: typeof fetch;
  constructor(private readonly opts: ClientOptions) {
    this.f = opts.fetch ?? ((...a) => fetch(...a));
  }

  get baseUrl(): string {
    return this.opts.baseUrl;
  }

  headers(): Record<string, string> {
    return this.opts.token ? { authorization: `Bearer ${this.opts.token}` } : {};
  }

  async call<N extends RouteName>(name: N, args?: CallArgs<N>, signal?: AbortSignal): Promise<ResOf<N>> {
    const def = routes[name];
    const a = (args ?? {}) as { params?: Record<string, string>; query?: Record<string, unknown>; body?: unknown };
    let url = this.opts.baseUrl.replace(/\/$/, '') + buildPath(def.path, a.params);
    if (a.query) {
      const qs = new URLSearchParams();
      for (const [k, v] of Object.entries(a.query)) if (v !== undefined && v !== null && v !== '') qs.set(k, String(v));
      const s = qs.toString();
      if (s) url += `?${s}`;
    }
    const init: RequestInit = { method: def.method, headers: { ...this.headers() }, signal };
    if (def.method !== 'GET') {
      (init.headers as Record<string, string>)['content-type'] = 'application/json';
      init.body = JSON.stringify(a.body ?? {});
    }
    let res: Response;
    try {
      res = await this.f(url, init);
    } catch (e) {
      throw new ApiError(0, {
        error: 'The Triplicate engine is not answering. It may be starting or stopped; the window reconnects by itself.',
        code: 'unreachable',
        detail: e instanceof Error ? e.message : String(e),
      });
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (!res.ok) {
      const body = (json as ApiErrorBody | undefined) ?? { error: `The engine answered ${res.status}.`, code: 'internal', detail: text.slice(0, 500) };
      throw new ApiError(res.status, body);
    }
    return json as ResOf<N>;
  }
}

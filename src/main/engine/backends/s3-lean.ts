// The lean request path of the S3 backend: GetObject (with Range), HeadObject and single-part
// PutObject, signed with the SDK's own SigV4 signer (@smithy/signature-v4, same credentials,
// region, hash and path escaping as the client) and sent with node:http on the client's
// keep-alive agents. Why: each command through the @aws-sdk middleware stack costs ~1-1.4 ms of
// CPU, and on a small box that CPU is shared with the server and with hashing; these three
// requests are one per file on every upload (PUT + verifying HEAD) and every restore (GET).
//
// What stays the SDK's: the endpoint rules (the base URL comes from the client's own endpoint
// provider, so path-style vs virtual-hosted, custom endpoint paths and AWS regions match it), and
// everything else (list, copy, delete, multipart). Errors come out shaped like the SDK's
// (name = S3 error code, or "NotFound" for a bodiless 404; $metadata.httpStatusCode; code for
// network errors; "TimeoutError"; "AbortError"), so s3-errors.ts maps both paths the same way.
//
// GETs go through undici (Node's own fetch engine, used here through its Pool) rather than
// node:http: downloads and restores are GETs, and the download server's S3 fallback proxies one per
// visitor request. Measured on a 2-core box (32 clients, 200 KB objects from s3rver): 435-516 µs
// of client CPU per request with undici, 552-651 µs with node:http's agent. HEAD and PUT stay on
// node:http (a PUT streams its body through the same keep-alive agent as the SDK's multipart).
import http from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import { SignatureV4 } from '@smithy/signature-v4';
import type { S3Client } from '@aws-sdk/client-s3';
import { Pool } from 'undici';

export interface LeanConfig {
  bucket: string;
  region: string;
  endpoint?: string;
  forcePathStyle: boolean;
  credentials: { accessKeyId: string; secretAccessKey: string };
  httpAgent: http.Agent;
  httpsAgent: https.Agent;
  /** Connections per endpoint for GETs (the agents' maxSockets). */
  maxSockets: number;
  connectTimeoutMs: number;
  idleTimeoutMs: number;
}

export interface LeanRequest {
  method: 'GET' | 'HEAD' | 'PUT';
  key: string;
  /** Lower-case names. */
  headers?: Record<string, string>;
  /** PUT body with its exact length (sent as Content-Length). */
  body?: Readable;
  contentLength?: number;
  /** x-amz-content-sha256 for a body: its SHA-256 hex (the server checks it), or UNSIGNED-PAYLOAD. */
  payloadHash?: string;
  signal?: AbortSignal;
}

export interface LeanResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** The response body (empty for HEAD); the caller reads or destroys it. */
  body: Readable;
}

/** Where requests go, resolved once from the SDK's endpoint rules. */
export interface Base {
  protocol: 'http:' | 'https:';
  /** For the socket (IPv6 without brackets). */
  hostname: string;
  port?: number;
  /** The Host header (and the signed host): hostname[:port] as the SDK sends it. */
  host: string;
  /** Path prefix without a trailing slash: "" (virtual-hosted) or "/bucket" or "/s3/bucket". */
  pathPrefix: string;
  signingRegion: string;
  signingName: string;
}

/** SHA-256 of the empty string: the payload hash of a request without a body. */
const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

/** The error the SDK throws for an aborted request. */
export function sdkAbortError(): Error {
  return Object.assign(new Error('The operation was aborted.'), { name: 'AbortError' });
}

/**
 * S3's URI encoding of a key as the SDK's serializer does it for a greedy label ("{Key+}"):
 * every segment encodeURIComponent-ed plus !'()*, "/" kept as the separator.
 */
export function encodeKeyPath(key: string): string {
  return key
    .split('/')
    .map((s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`))
    .join('/');
}

/** The request path of a key: the base's path prefix, then the key S3-encoded. */
export function pathOf(base: Pick<Base, 'pathPrefix'>, key: string): string {
  return `${base.pathPrefix}/${encodeKeyPath(key)}`;
}

/**
 * Signed headers of a bodiless request (GET, HEAD) are reused for the same method, key and headers
 * for this long. A SigV4 signature stays valid for 15 minutes after its x-amz-date (S3, R2 and
 * MinIO refuse older ones), so a few seconds is far inside what every server accepts. Signing is
 * a good share of a proxied small download's CPU: a file downloaded by many visitors, or a
 * restore re-reading it, signs once per window.
 */
const SIGNED_REUSE_MS = 5_000;
const SIGNED_MAX = 2048;

export class LeanS3 {
  private base: Promise<Base | null> | null = null;
  private readonly signer: SignatureV4;
  private readonly signed = new Map<string, { at: number; headers: Record<string, string> }>();
  /** undici's connection pool for GETs, made at the first one. */
  private pool: Pool | null = null;

  constructor(
    private readonly client: S3Client,
    private readonly cfg: LeanConfig,
  ) {
    this.signer = new SignatureV4({
      credentials: cfg.credentials,
      region: cfg.region,
      service: 's3',
      // The S3 client's own settings: its Hash class and no double escaping of the path.
      sha256: client.config.sha256,
      uriEscapePath: false,
    });
  }

  /**
   * The base URL for this bucket, from the client's endpoint provider; null when the SDK would do
   * something the lean path does not (another auth scheme: S3 Express, SigV4a, ARNs), in which
   * case the caller uses the SDK.
   */
  resolve(): Promise<Base | null> {
    this.base ??= (async () => {
      const { bucket, region, endpoint, forcePathStyle } = this.cfg;
      if (bucket.includes(':') || bucket.endsWith('--x-s3')) return null;
      const ep = await this.client.config.endpointProvider({
        Bucket: bucket,
        Region: region,
        ForcePathStyle: forcePathStyle,
        Endpoint: endpoint,
        UseFIPS: false,
        UseDualStack: false,
        Accelerate: false,
      });
      const schemes = (ep.properties?.authSchemes ?? []) as { name?: string; signingName?: string; signingRegion?: string }[];
      const scheme = schemes[0];
      if (scheme && scheme.name !== 'sigv4') return null;
      const url = ep.url;
      if (url.search || (url.protocol !== 'http:' && url.protocol !== 'https:')) return null;
      const port = url.port ? Number(url.port) : undefined;
      return {
        protocol: url.protocol,
        hostname: url.hostname.replace(/^\[|\]$/g, ''),
        port,
        host: url.port ? `${url.hostname}:${url.port}` : url.hostname,
        pathPrefix: url.pathname.replace(/\/+$/, ''),
        signingRegion: scheme?.signingRegion ?? region,
        signingName: scheme?.signingName ?? 's3',
      } satisfies Base;
    })().catch(() => null);
    return this.base;
  }

  /** Send one signed request; resolves with the response once its headers are in (2xx only). */
  async send(r: LeanRequest, base: Base): Promise<LeanResponse> {
    if (r.signal?.aborted) throw sdkAbortError();
    const headers: Record<string, string> = { host: base.host, ...r.headers };
    if (r.body) {
      headers['content-length'] = String(r.contentLength ?? 0);
      headers['x-amz-content-sha256'] = r.payloadHash ?? 'UNSIGNED-PAYLOAD';
    } else {
      headers['x-amz-content-sha256'] = EMPTY_SHA256;
    }
    const path = pathOf(base, r.key);
    const signed = await this.sign(r, base, path, headers);
    if (r.signal?.aborted) throw sdkAbortError();
    if (r.method === 'GET') return this.transmitGet(r, base, path, signed);
    return this.transmit(r, base, path, signed);
  }

  /** SigV4 headers for the request; those of a bodiless one are reused for SIGNED_REUSE_MS. */
  private async sign(r: LeanRequest, base: Base, path: string, headers: Record<string, string>): Promise<Record<string, string>> {
    const reuse = !r.body;
    const key = reuse ? `${r.method} ${path}${r.headers ? ` ${JSON.stringify(r.headers)}` : ''}` : '';
    const now = Date.now();
    const have = reuse ? this.signed.get(key) : undefined;
    if (have && now - have.at < SIGNED_REUSE_MS) return have.headers;
    const out = await this.signer.sign(
      { method: r.method, protocol: base.protocol, hostname: base.hostname, port: base.port, path, query: {}, headers },
      { signingRegion: base.signingRegion, signingService: base.signingName },
    );
    if (reuse) {
      if (!have && this.signed.size >= SIGNED_MAX) this.signed.clear();
      this.signed.set(key, { at: now, headers: out.headers });
    }
    return out.headers;
  }

  /** Close the GET pool's connections (the agents are the backend's to destroy). */
  close(): void {
    void this.pool?.destroy().catch(() => undefined);
    this.pool = null;
  }

  private async transmitGet(r: LeanRequest, base: Base, path: string, headers: Record<string, string>): Promise<LeanResponse> {
    const { connectTimeoutMs, idleTimeoutMs } = this.cfg;
    this.pool ??= new Pool(`${base.protocol}//${base.host}`, {
      connections: this.cfg.maxSockets,
      connect: { timeout: connectTimeoutMs },
      // Idle timeouts, as the SDK's socketTimeout: no byte for this long fails the request.
      headersTimeout: idleTimeoutMs,
      bodyTimeout: idleTimeoutMs,
    });
    // undici's errors (UND_ERR_CONNECT_TIMEOUT, UND_ERR_SOCKET, …, or the signal's AbortError) go
    // out as they are: s3-errors.ts maps their codes, as it maps the SDK's.
    const res = await this.pool.request({ method: 'GET', path, headers, signal: r.signal });
    const status = res.statusCode;
    const h = res.headers as http.IncomingHttpHeaders;
    if (status >= 200 && status < 300) {
      // undici's body emits an error when destroyed without one (node:http's does not), and a
      // caller may destroy a body it no longer wants: never an uncaught error for that. The
      // caller's own listeners still see every error.
      res.body.on('error', () => undefined);
      return { status, headers: h, body: res.body };
    }
    throw errorFromResponse(status, h, await readSmall(res.body, 64 * 1024));
  }

  private transmit(r: LeanRequest, base: Base, path: string, headers: Record<string, string>): Promise<LeanResponse> {
    const { connectTimeoutMs, idleTimeoutMs } = this.cfg;
    return new Promise<LeanResponse>((resolve, reject) => {
      let settled = false;
      let connectTimer: NodeJS.Timeout | undefined;
      const req = (base.protocol === 'https:' ? https : http).request({
        agent: base.protocol === 'https:' ? this.cfg.httpsAgent : this.cfg.httpAgent,
        protocol: base.protocol,
        hostname: base.hostname,
        port: base.port,
        method: r.method,
        path,
        headers,
      });
      const onAbort = () => req.destroy(sdkAbortError());
      const cleanup = () => {
        clearTimeout(connectTimer);
        r.signal?.removeEventListener('abort', onAbort);
      };
      const fail = (e: unknown) => {
        if (settled) return;
        settled = true;
        cleanup();
        if (r.body) r.body.unpipe(req);
        reject(e);
      };
      r.signal?.addEventListener('abort', onAbort, { once: true });
      req.on('error', fail);
      req.on('socket', (socket) => {
        if (!socket.connecting) return;
        connectTimer = setTimeout(
          () => req.destroy(Object.assign(new Error(`Socket timed out without establishing a connection within ${connectTimeoutMs} ms`), { name: 'TimeoutError' })),
          connectTimeoutMs,
        );
        socket.once('connect', () => clearTimeout(connectTimer));
      });
      // An idle socket (no byte either way) fails the request, as the SDK's socketTimeout does;
      // it stays armed while the caller reads the body.
      req.setTimeout(idleTimeoutMs, () => req.destroy(Object.assign(new Error(`Connection timed out after ${idleTimeoutMs} ms`), { name: 'TimeoutError' })));
      req.on('response', (res) => {
        if (settled) {
          res.destroy();
          return;
        }
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) {
          settled = true;
          // The signal keeps aborting the request until the body is read (the caller's stream
          // wrapper also listens); unhook once the response is over.
          clearTimeout(connectTimer);
          res.once('close', () => r.signal?.removeEventListener('abort', onAbort));
          resolve({ status, headers: res.headers, body: res });
          return;
        }
        // An error answer, possibly before the body was all sent: stop sending, read the answer;
        // a request cut off mid-body cannot leave its socket for the next one.
        const cutOff = !!r.body && !req.writableFinished;
        if (r.body) r.body.unpipe(req);
        readSmall(res, 64 * 1024).then(
          (text) => {
            fail(errorFromResponse(status, res.headers, text));
            if (cutOff) req.destroy();
          },
          (e) => fail(e),
        );
      });
      if (r.body) {
        r.body.on('error', (e) => req.destroy(e));
        r.body.pipe(req);
      } else {
        req.end();
      }
    });
  }
}

function readSmall(res: Readable, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    res.on('data', (c: Buffer) => {
      if (n < limit) chunks.push(c);
      n += c.length;
    });
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', reject);
  });
}

function xmlField(text: string, name: string): string | undefined {
  const m = new RegExp(`<${name}>([^<]*)</${name}>`).exec(text);
  return m ? decodeXml(m[1]!) : undefined;
}

function decodeXml(s: string): string {
  return s.replace(/&(lt|gt|amp|quot|apos|#(\d+)|#x([0-9a-fA-F]+));/g, (all, name: string, dec?: string, hex?: string) => {
    if (dec) return String.fromCodePoint(Number(dec));
    if (hex) return String.fromCodePoint(parseInt(hex, 16));
    return ({ lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" } as Record<string, string>)[name] ?? all;
  });
}

/**
 * An S3 error answer as the SDK would throw it: name = the <Code> of the XML body ("NotFound"
 * for a 404 without one, "Unknown" otherwise), message = <Message> ("UnknownError" without),
 * $metadata with the status and request id.
 */
export function errorFromResponse(status: number, headers: http.IncomingHttpHeaders, text: string): Error {
  const code = xmlField(text, 'Code');
  const message = xmlField(text, 'Message');
  const requestId = (headers['x-amz-request-id'] as string | undefined) ?? xmlField(text, 'RequestId');
  const name = code ?? (status === 404 ? 'NotFound' : 'Unknown');
  return Object.assign(new Error(message ?? 'UnknownError'), {
    name,
    ...(code ? { Code: code } : {}),
    $fault: status >= 500 ? 'server' : 'client',
    $metadata: { httpStatusCode: status, requestId, extendedRequestId: headers['x-amz-id-2'] as string | undefined },
  });
}

/** Headers of a GET/HEAD answer in the shape of the SDK's output. */
export function outputFromHeaders(h: http.IncomingHttpHeaders): {
  ContentLength?: number;
  ContentRange?: string;
  Metadata: Record<string, string>;
  LastModified?: Date;
  ETag?: string;
  ContentType?: string;
} {
  const meta: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) {
    if (k.startsWith('x-amz-meta-') && v !== undefined) meta[k.slice(11)] = Array.isArray(v) ? v.join(', ') : v;
  }
  const len = h['content-length'];
  const lm = h['last-modified'];
  const date = lm ? new Date(lm) : undefined;
  return {
    ContentLength: len !== undefined && /^\d+$/.test(len) ? Number(len) : undefined,
    ContentRange: h['content-range'],
    Metadata: meta,
    LastModified: date && !Number.isNaN(date.getTime()) ? date : undefined,
    ETag: h.etag,
    ContentType: h['content-type'],
  };
}

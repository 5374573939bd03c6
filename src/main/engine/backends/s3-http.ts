// The S3 backend's HTTP client, one per target: one undici connection pool carries every request,
// so a target has one set of sockets, one connect timeout, one idle timeout and one way requests
// are aborted and fail.
//
// Two kinds of requests go through it:
// - GetObject (with Range), HeadObject and single-part PutObject, signed here with the SDK's own
//   SigV4 signer (same credentials, region, hash and path escaping as the client) and sent on the
//   pool directly. They are one per file on every upload, restore and download, and each command
//   through the AWS SDK's middleware stack costs about 1 ms more client CPU (bench/s3-requests.mjs);
// - everything else (multipart, list, delete, copy, HeadBucket) through the AWS SDK's S3Client,
//   whose request handler (sdkHandler) sends on the same pool. These are rare next to the three
//   above, and their XML requests and answers are the SDK's to get right.
//
// Errors come out shaped like the SDK's (name = S3 error code, or "NotFound" for a bodiless 404;
// $metadata.httpStatusCode; undici's UND_ERR_* codes and the signal's AbortError for the
// network), so s3-errors.ts maps both kinds the same way.
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import { S3Client } from '@aws-sdk/client-s3';
import { SignatureV4 } from '@smithy/signature-v4';
import type { HttpHandlerOptions, HttpRequest as SdkRequest, QueryParameterBag } from '@smithy/types';
import { Agent, type Dispatcher } from 'undici';
import { StorageError } from './types';

export interface S3HttpConfig {
  /** The target as the operator knows it, for messages: "NAS (http://nas:9000, bucket media)". */
  description: string;
  bucket: string;
  region: string;
  endpoint?: string;
  forcePathStyle: boolean;
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** Connections to the endpoint at most. */
  connections: number;
  connectTimeoutMs: number;
  /** No byte either way for this long fails a request (a stalled server), however long it runs. */
  idleTimeoutMs: number;
  onWarning?: (message: string, detail: string) => void;
}

export interface SignedRequest {
  method: 'GET' | 'HEAD' | 'PUT';
  key: string;
  /** Lower-case names. */
  headers?: Record<string, string>;
  /** PUT body with its exact length (sent as Content-Length): a stream, or a small file's bytes. */
  body?: Readable | Buffer;
  contentLength?: number;
  /** x-amz-content-sha256 for a body: its SHA-256 hex (the server checks it), or UNSIGNED-PAYLOAD. */
  payloadHash?: string;
  signal?: AbortSignal;
}

export interface S3Response {
  status: number;
  headers: IncomingHttpHeaders;
  /** The body of a GET, for the caller to read or destroy (a HEAD's or PUT's is read already). */
  body: Readable;
}

/** Where the bucket's requests go, from the SDK's endpoint rules. */
export interface Base {
  /** "http://host:port" */
  origin: string;
  protocol: 'http:' | 'https:';
  /** For the signer (IPv6 without brackets). */
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

/**
 * Signed headers of a bodiless request (GET, HEAD) are reused for the same method, key and headers
 * for this long. A SigV4 signature stays valid for 15 minutes after its x-amz-date (S3, R2 and
 * MinIO refuse older ones), so a few seconds is far inside what every server accepts. Signing is
 * a good share of a proxied small download's CPU: a file downloaded by many visitors, or a
 * restore re-reading it, signs once per window.
 */
const SIGNED_REUSE_MS = 5_000;
const SIGNED_MAX = 2048;

/**
 * A request body from the SDK (a multipart part) goes out in slices of this size: undici's idle
 * timeout is refreshed per slice written, while one big Buffer written at once counts its whole
 * transfer (a 16 MiB part on a slow line) as one wait.
 */
const BODY_SLICE = 256 * 1024;

/** S3's URI encoding (encodeURIComponent plus !'()*), as the SDK's serializer and signer do it. */
function escapeUri(s: string): string {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/** S3's URI encoding of a key, as the SDK does it for a greedy label ("{Key+}"): "/" kept. */
export function encodeKeyPath(key: string): string {
  return key.split('/').map(escapeUri).join('/');
}

/** The request path of a key: the base's path prefix, then the key S3-encoded. */
export function pathOf(base: Pick<Base, 'pathPrefix'>, key: string): string {
  return `${base.pathPrefix}/${encodeKeyPath(key)}`;
}

export class S3Http {
  /** The AWS SDK's client for the requests not signed here; it sends on this pool too. */
  readonly client: S3Client;
  /** The bucket's base URL, or null when it needs another sign-in than SigV4 (see baseOf). */
  readonly base: Base | null;
  private readonly pool: Agent;
  private readonly signer: SignatureV4;
  private readonly signed = new Map<string, { at: number; headers: Record<string, string> }>();

  constructor(private readonly cfg: S3HttpConfig) {
    this.pool = new Agent({
      connections: cfg.connections,
      connect: { timeout: cfg.connectTimeoutMs },
      // Idle timeouts, not totals: a multi-GB upload may take hours but never stalls a minute.
      headersTimeout: cfg.idleTimeoutMs,
      bodyTimeout: cfg.idleTimeoutMs,
    });
    this.client = new S3Client({
      region: cfg.region,
      endpoint: cfg.endpoint,
      forcePathStyle: cfg.forcePathStyle,
      credentials: cfg.credentials,
      // Many S3-compatible servers reject or mishandle the SDK's default CRC32 trailers; we
      // verify with our own SHA-256 (the payload hash, kept in the metadata) and the MD5 ETag.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
      // Retries are retry.ts's (it re-opens the body) and the multipart part loop's.
      maxAttempts: 1,
      // undici does not send "Expect: 100-continue"; the SDK's NodeHttpHandler did not wait for
      // the 100 either on our own agents.
      expectContinueHeader: false,
      logger: sdkLogger(cfg.onWarning),
      requestHandler: sdkHandler(this.pool),
    });
    this.signer = new SignatureV4({
      credentials: cfg.credentials,
      region: cfg.region,
      service: 's3',
      // The S3 client's own settings: its Hash class and no double escaping of the path.
      sha256: this.client.config.sha256,
      uriEscapePath: false,
    });
    this.base = this.baseOf();
  }

  /**
   * The bucket's base URL from the client's endpoint rules (path-style vs virtual-hosted, custom
   * endpoint paths, AWS regions as the SDK has them); null for what SigV4 alone cannot sign
   * (S3 Express directory buckets, access point ARNs).
   */
  private baseOf(): Base | null {
    const { bucket, region, endpoint, forcePathStyle } = this.cfg;
    if (bucket.includes(':') || bucket.endsWith('--x-s3')) return null;
    try {
      const ep = this.client.config.endpointProvider({
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
      const host = url.port ? `${url.hostname}:${url.port}` : url.hostname;
      return {
        origin: `${url.protocol}//${host}`,
        protocol: url.protocol,
        hostname: url.hostname.replace(/^\[|\]$/g, ''),
        port: url.port ? Number(url.port) : undefined,
        host,
        pathPrefix: url.pathname.replace(/\/+$/, ''),
        signingRegion: scheme?.signingRegion ?? region,
        signingName: scheme?.signingName ?? 's3',
      };
    } catch {
      return null;
    }
  }

  /** Send one request signed here; resolves once the headers of a 2xx answer are in. */
  async send(r: SignedRequest): Promise<S3Response> {
    if (r.signal?.aborted) throw abortError();
    const base = this.base;
    if (!base) {
      throw new StorageError(
        'no_bucket',
        `Triplicate cannot use the bucket "${this.cfg.bucket}" on ${this.cfg.description}: it needs a sign-in other than an access key (an S3 Express directory bucket or an access point). Use a general-purpose bucket.`,
        `${r.method} "${r.key}": no SigV4 endpoint for this bucket`,
      );
    }
    const headers: Record<string, string> = { host: base.host, ...r.headers };
    if (r.body) {
      headers['content-length'] = String(r.contentLength ?? 0);
      headers['x-amz-content-sha256'] = r.payloadHash ?? 'UNSIGNED-PAYLOAD';
    } else {
      headers['x-amz-content-sha256'] = EMPTY_SHA256;
    }
    const path = pathOf(base, r.key);
    const signed = await this.sign(r, base, path, headers);
    if (r.signal?.aborted) throw abortError();
    // undici's errors (UND_ERR_CONNECT_TIMEOUT, UND_ERR_SOCKET, …, or the signal's AbortError) go
    // out as they are: s3-errors.ts maps their codes.
    const res = await this.pool.request({ origin: base.origin, method: r.method, path, headers: signed, body: bodyOf(r.body), signal: r.signal, reset: keepAlive(r.method) });
    // undici's body emits an error when destroyed without one, and a caller may destroy a body it
    // no longer wants: never an uncaught error for that. The caller's listeners see every error.
    res.body.on('error', () => undefined);
    const h = res.headers as IncomingHttpHeaders;
    if (res.statusCode >= 200 && res.statusCode < 300) {
      // The caller of a HEAD or PUT wants only the headers: its (empty) body is read here, not
      // left to every caller to remember; a big one (not S3) closes the connection instead.
      if (r.method !== 'GET') await res.body.dump({ limit: 64 * 1024 });
      return { status: res.statusCode, headers: h, body: res.body };
    }
    throw errorFromResponse(res.statusCode, h, await readSmall(res.body, 64 * 1024));
  }

  /** SigV4 headers for the request; those of a bodiless one are reused for SIGNED_REUSE_MS. */
  private async sign(r: SignedRequest, base: Base, path: string, headers: Record<string, string>): Promise<Record<string, string>> {
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

  /** Close every connection (requests in flight fail) and the SDK client. */
  close(): void {
    this.client.destroy();
    void this.pool.destroy().catch(() => undefined);
  }
}

/**
 * The AWS SDK's request handler on our pool (the contract of @smithy/node-http-handler's
 * NodeHttpHandler: resolve with the response once its headers are in, the body a stream; reject
 * with the network error; abort on the signal).
 */
function sdkHandler(pool: Dispatcher) {
  return {
    metadata: { handlerProtocol: 'http/1.1' },
    async handle(req: SdkRequest, opts: HttpHandlerOptions = {}) {
      const headers: Record<string, string> = {};
      // undici refuses an Expect header; the client is told not to add one.
      for (const [k, v] of Object.entries(req.headers)) if (k.toLowerCase() !== 'expect') headers[k] = v;
      const host = req.hostname.includes(':') && !req.hostname.startsWith('[') ? `[${req.hostname}]` : req.hostname;
      const query = queryString(req.query);
      const res = await pool.request({
        origin: `${req.protocol}//${host}${req.port ? `:${req.port}` : ''}`,
        method: req.method as Dispatcher.HttpMethod,
        path: query ? `${req.path}?${query}` : req.path,
        headers,
        body: bodyOf(req.body),
        signal: opts.abortSignal as AbortSignal | undefined,
        reset: keepAlive(req.method),
      });
      res.body.on('error', () => undefined);
      const out: Record<string, string> = {};
      for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
      return { response: { statusCode: res.statusCode, headers: out, body: res.body } };
    },
    updateHttpClientConfig: () => undefined,
    httpHandlerConfigs: () => ({}),
    // The pool is S3Http's to close.
    destroy: () => undefined,
  };
}

/**
 * undici closes the connection after every HEAD unless told not to (for servers that send a body
 * with it); S3 servers do not, and a new connection per HEAD doubled its client CPU here.
 */
function keepAlive(method: string): false | undefined {
  return method === 'HEAD' ? false : undefined;
}

/** The query string as the SDK's NodeHttpHandler builds it: names sorted, a bare name for null. */
function queryString(q: QueryParameterBag = {}): string {
  const parts: string[] = [];
  for (const k of Object.keys(q).sort()) {
    const v = q[k];
    const name = escapeUri(k);
    if (Array.isArray(v)) for (const x of v) parts.push(`${name}=${escapeUri(x)}`);
    else parts.push(v === null || v === undefined ? name : `${name}=${escapeUri(v)}`);
  }
  return parts.join('&');
}

function bodyOf(body: unknown): string | Uint8Array | Readable | undefined {
  if (body instanceof Uint8Array && body.byteLength > BODY_SLICE) {
    const slices = (function* () {
      for (let off = 0; off < body.byteLength; off += BODY_SLICE) yield body.subarray(off, off + BODY_SLICE);
    })();
    // undici takes an Iterable body (its docs say so; its type declarations lag behind).
    return slices as unknown as Readable;
  }
  return body as string | Uint8Array | Readable | undefined;
}

/** The SDK logs to the console when it has no logger: keep it quiet, pass its warnings on. */
function sdkLogger(onWarning?: (message: string, detail: string) => void) {
  const noop = () => {};
  return {
    trace: noop,
    debug: noop,
    info: noop,
    error: noop,
    warn: (...args: unknown[]) => onWarning?.('The S3 client reported a problem.', args.map(String).join(' ').slice(0, 500)),
  };
}

/** The error the SDK throws for an aborted request. */
function abortError(): Error {
  return Object.assign(new Error('The operation was aborted.'), { name: 'AbortError' });
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
export function errorFromResponse(status: number, headers: IncomingHttpHeaders, text: string): Error {
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

/** What a GET or HEAD answer says about the object, in the shape of the SDK's output. */
export interface ObjectHeaders {
  ContentLength?: number;
  ContentRange?: string;
  Metadata: Record<string, string>;
  LastModified?: Date;
  ETag?: string;
  ContentType?: string;
  /** Object Lock retention of this version (S3 sends it to keys that may read it). */
  ObjectLockRetainUntilDate?: Date;
}

export function outputFromHeaders(h: IncomingHttpHeaders): ObjectHeaders {
  const meta: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) {
    if (k.startsWith('x-amz-meta-') && v !== undefined) meta[k.slice(11)] = Array.isArray(v) ? v.join(', ') : v;
  }
  const len = h['content-length'];
  const lm = h['last-modified'];
  const date = lm ? new Date(lm) : undefined;
  const lockHeader = h['x-amz-object-lock-retain-until-date'];
  const until = typeof lockHeader === 'string' ? new Date(lockHeader) : undefined;
  return {
    ContentLength: len !== undefined && /^\d+$/.test(len) ? Number(len) : undefined,
    ContentRange: h['content-range'],
    Metadata: meta,
    LastModified: date && !Number.isNaN(date.getTime()) ? date : undefined,
    ETag: h.etag,
    ContentType: h['content-type'],
    ObjectLockRetainUntilDate: until && !Number.isNaN(until.getTime()) ? until : undefined,
  };
}

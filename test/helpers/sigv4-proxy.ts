// A SigV4-checking proxy in front of s3rver (which checks only the access key id, not signatures).
// Every request is verified as S3 does it, from what arrived on the wire: the signed headers as
// received, the raw path and query, the x-amz-date; a payload hash in x-amz-content-sha256 (hex)
// must match the body. A request that fails gets S3's 403 SignatureDoesNotMatch (or 400
// XAmzContentSHA256Mismatch); the others go to s3rver unchanged. So the conformance suite runs
// with signatures checked, both the SDK's requests (which validate this checker) and the ones
// s3-http.ts signs itself.
import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignatureV4 } from '@smithy/signature-v4';

export interface SigV4Proxy {
  endpoint: string;
  /** Requests checked, and those refused (method path: reason). */
  checked: number;
  refused: string[];
  /** Every request whose signature held, as it arrived (s3rver ignores most headers: tests read them here). */
  seen: SeenRequest[];
  close(): Promise<void>;
}

export interface SeenRequest {
  method: string;
  /** Raw path and query. */
  url: string;
  headers: Record<string, string>;
  /** The header names the signature covers. */
  signed: string[];
}

export interface ProxyOptions {
  /**
   * Answer a request (its signature checked) instead of s3rver: for what s3rver cannot do, such as
   * GetObjectLockConfiguration (it answers 501) or a key refused deletes (it checks no policy).
   * Return undefined to pass the request on.
   */
  answer?: (req: SeenRequest, body: Buffer) => { status: number; body?: string; headers?: Record<string, string> } | undefined;
  /**
   * Headers added to s3rver's answer to a request passed on: for what s3rver stores but does not
   * say, such as the x-amz-version-id of a versioned bucket (it keeps no versions).
   */
  addHeaders?: (req: SeenRequest) => Record<string, string> | undefined;
}

function xmlError(res: ServerResponse, status: number, code: string, message: string): void {
  const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><RequestId>proxy</RequestId></Error>`;
  res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body), connection: 'close' });
  res.end(body);
}

/** Query string as the signer wants it: decoded names and values (a bare name has value ""). */
function parseQuery(q: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  if (!q) return out;
  for (const part of q.split('&')) {
    if (!part) continue;
    const i = part.indexOf('=');
    const k = decodeURIComponent(i < 0 ? part : part.slice(0, i));
    const v = i < 0 ? '' : decodeURIComponent(part.slice(i + 1));
    const prev = out[k];
    out[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  return out;
}

function bytes(d: string | ArrayBuffer | ArrayBufferView): string | Uint8Array {
  if (typeof d === 'string') return d;
  return ArrayBuffer.isView(d) ? new Uint8Array(d.buffer, d.byteOffset, d.byteLength) : new Uint8Array(d);
}

/** The signer's hash interface on node:crypto (independent of the client's own Hash class). */
class NodeSha256 {
  private readonly h: Hash | Hmac;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.h = secret === undefined ? createHash('sha256') : createHmac('sha256', bytes(secret));
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.h.update(bytes(data));
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.h.digest()));
  }
  reset(): void {}
}

async function verify(req: IncomingMessage, body: Buffer, secrets: Record<string, string>): Promise<string | null> {
  const auth = req.headers.authorization;
  if (!auth) return 'no Authorization header';
  const m = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(auth);
  if (!m) return `malformed Authorization: ${auth}`;
  const [, keyId, , region, service, signedList, signature] = m as unknown as string[];
  const secret = secrets[keyId!];
  if (secret === undefined) return null; // unknown key id: s3rver answers InvalidAccessKeyId itself
  const amzDate = req.headers['x-amz-date'];
  if (typeof amzDate !== 'string') return 'no x-amz-date';
  const signingDate = new Date(`${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 8)}T${amzDate.slice(9, 11)}:${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`);
  const signed = signedList!.split(';');
  if (!signed.includes('host') || !signed.includes('x-amz-date') || !signed.includes('x-amz-content-sha256')) return `signed headers lack host/x-amz-date/x-amz-content-sha256: ${signedList}`;
  const headers: Record<string, string> = {};
  for (const name of signed) {
    const v = req.headers[name];
    if (v === undefined) return `signed header ${name} was not sent`;
    headers[name] = Array.isArray(v) ? v.join(',') : v;
  }
  const payload = headers['x-amz-content-sha256']!;
  if (/^[0-9a-f]{64}$/.test(payload) && createHash('sha256').update(body).digest('hex') !== payload) return 'PAYLOAD';
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  const signer = new SignatureV4({ credentials: { accessKeyId: keyId!, secretAccessKey: secret }, region: region!, service: service!, sha256: NodeSha256, uriEscapePath: false });
  const expected = await signer.sign(
    { method: req.method ?? 'GET', protocol: 'http:', hostname: 'x', path: q < 0 ? url : url.slice(0, q), query: parseQuery(q < 0 ? '' : url.slice(q + 1)), headers },
    { signingDate, signableHeaders: new Set(signed) },
  );
  const got = /Signature=([0-9a-f]{64})/.exec(expected.headers.authorization ?? '')?.[1];
  const expectedList = /SignedHeaders=([^,]+)/.exec(expected.headers.authorization ?? '')?.[1];
  if (expectedList !== signedList) return `signed header list differs: ${expectedList} vs ${signedList}`;
  return got === signature ? null : 'SIGNATURE';
}

/** Start a checking proxy to `upstream` (s3rver's endpoint). `secrets`: key id -> secret. */
export async function startSigV4Proxy(upstream: string, secrets: Record<string, string>, opts: ProxyOptions = {}): Promise<SigV4Proxy> {
  const up = new URL(upstream);
  const state = { checked: 0, refused: [] as string[], seen: [] as SeenRequest[] };
  const srv: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      verify(req, body, secrets).then(
        (problem) => {
          state.checked++;
          if (problem) {
            state.refused.push(`${req.method} ${req.url}: ${problem}`);
            if (problem === 'PAYLOAD') return xmlError(res, 400, 'XAmzContentSHA256Mismatch', 'The provided x-amz-content-sha256 header does not match what was computed.');
            return xmlError(res, 403, 'SignatureDoesNotMatch', `The request signature we calculated does not match the signature you provided (${problem}).`);
          }
          const headers: Record<string, string> = {};
          for (const [k, v] of Object.entries(req.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(',') : v;
          const signedList = /SignedHeaders=([^,]+)/.exec(headers.authorization ?? '')?.[1];
          const seen: SeenRequest = { method: req.method ?? 'GET', url: req.url ?? '/', headers, signed: signedList ? signedList.split(';') : [] };
          state.seen.push(seen);
          const own = opts.answer?.(seen, body);
          if (own) {
            const text = own.body ?? '';
            res.writeHead(own.status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(text), ...own.headers });
            res.end(text);
            return;
          }
          const fwd = request({ hostname: up.hostname, port: up.port, method: req.method, path: req.url, headers: req.headers }, (ur) => {
            res.writeHead(ur.statusCode ?? 502, { ...ur.headers, ...opts.addHeaders?.(seen) });
            ur.pipe(res);
          });
          fwd.on('error', () => {
            if (!res.headersSent) xmlError(res, 502, 'BadGateway', 'upstream failed');
            else res.destroy();
          });
          fwd.end(body);
        },
        (e: Error) => xmlError(res, 500, 'InternalError', e.message),
      );
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return {
    endpoint: `http://127.0.0.1:${(srv.address() as AddressInfo).port}`,
    get checked() {
      return state.checked;
    },
    refused: state.refused,
    seen: state.seen,
    close: () =>
      new Promise<void>((r) => {
        srv.closeAllConnections();
        srv.close(() => r());
      }),
  };
}

// What only the S3 backend has: how every kind of server failure is classified and worded, and
// the defences against servers that bend the protocol. Failures come from real sockets on
// 127.0.0.1: a closed port, a server that never answers, small HTTP servers that answer what a
// misbehaving S3 endpoint answers (XML errors, HTML pages, ranges ignored), and s3rver.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copySourceOf, parseContentRange, S3Backend, type S3BackendOptions } from '../../src/main/engine/backends/s3';
import { StorageError } from '../../src/main/engine/backends/types';
import type { S3TargetConfig } from '../../src/shared/config';
import { startS3, type TestS3 } from '../helpers/s3';
import { bufferBody, MiB, randomData, readAll, sha256, slowBody, SMALL_MULTIPART } from './helpers';

const SECRET = 'sEcReT-never-in-messages-1234567890';

function target(endpoint: string, extra: Partial<S3TargetConfig> = {}): S3TargetConfig {
  return {
    id: 'cloud',
    label: 'Cloud',
    kind: 's3',
    preset: 'minio',
    endpoint,
    region: 'us-east-1',
    bucket: 'media',
    prefix: '',
    pathStyle: true,
    credentials: { accessKeyId: 'AKIATESTKEY', secretAccessKey: SECRET },
    priority: 10,
    enabled: true,
    concurrency: 2,
    versionsPrefix: '.triplicate/versions/',
    ...extra,
  };
}

async function failure(p: Promise<unknown>): Promise<StorageError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(StorageError);
    const err = e as StorageError;
    expect(`${err.message} ${err.detail}`).not.toContain(SECRET);
    return err;
  }
  throw new Error('expected the call to fail');
}

/** A small HTTP server answering every request with `handler`, after reading the request body. */
async function httpServer(handler: (req: IncomingMessage, res: ServerResponse, body: Buffer) => void): Promise<{ url: string; close: () => Promise<void>; requests: string[] }> {
  const requests: string[] = [];
  const srv: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      requests.push(`${req.method} ${req.url}`);
      handler(req, res, Buffer.concat(chunks));
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () =>
      new Promise<void>((r) => {
        srv.closeAllConnections();
        srv.close(() => r());
      }),
  };
}

function xmlError(res: ServerResponse, status: number, code: string, message = 'error'): void {
  const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><RequestId>req-1</RequestId></Error>`;
  res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

const quick: S3BackendOptions = { connectTimeoutMs: 1000, idleTimeoutMs: 500 };

describe('S3Backend error classification', () => {
  it('a closed port is "refused the connection", network, transient, target-level', async () => {
    // Grab a free port, then close it: nothing listens there.
    const tmp = createTcpServer();
    await new Promise<void>((r) => tmp.listen(0, '127.0.0.1', r));
    const port = (tmp.address() as AddressInfo).port;
    await new Promise<void>((r) => tmp.close(() => r()));
    const b = new S3Backend(target(`http://127.0.0.1:${port}`, { label: 'NAS' }), quick);
    try {
      const e = await failure(b.head('a.jpg'));
      expect(e.kind).toBe('network');
      expect(e.transient).toBe(true);
      expect(e.targetLevel).toBe(true);
      expect(e.message).toBe(`NAS (http://127.0.0.1:${port}, bucket media) refused the connection. Check that it is switched on and reachable; Triplicate keeps retrying.`);
      expect(e.detail).toMatch(/ECONNREFUSED/);
    } finally {
      b.close();
    }
  });

  it('a server that accepts but never answers is a timeout', async () => {
    const sockets: Socket[] = [];
    const tcp: TcpServer = createTcpServer((s) => sockets.push(s));
    await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
    const b = new S3Backend(target(`http://127.0.0.1:${(tcp.address() as AddressInfo).port}`), quick);
    try {
      const t0 = Date.now();
      const e = await failure(b.head('a.jpg'));
      expect(e.kind).toBe('timeout');
      expect(e.transient).toBe(true);
      expect(e.message).toMatch(/did not answer within/);
      expect(Date.now() - t0).toBeLessThan(5000);
    } finally {
      b.close();
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => tcp.close(() => r()));
    }
  });

  const cases: { name: string; status: number; code: string; kind: StorageError['kind']; text: RegExp }[] = [
    { name: 'internal error', status: 500, code: 'InternalError', kind: 'server', text: /internal error \(HTTP 500\)/ },
    { name: 'slow down', status: 503, code: 'SlowDown', kind: 'throttled', text: /slow down/ },
    { name: 'service unavailable', status: 503, code: 'ServiceUnavailable', kind: 'server', text: /HTTP 503/ },
    { name: 'wrong secret', status: 403, code: 'SignatureDoesNotMatch', kind: 'auth', text: /rejected the secret access key\. Check the key id and secret in Destinations\./ },
    { name: 'unknown key', status: 403, code: 'InvalidAccessKeyId', kind: 'auth', text: /does not know the access key id/ },
    { name: 'access denied', status: 403, code: 'AccessDenied', kind: 'auth', text: /refused access to the bucket "media"/ },
    { name: 'clock skew', status: 403, code: 'RequestTimeTooSkewed', kind: 'auth', text: /clock of this computer/ },
    { name: 'wrong region', status: 400, code: 'AuthorizationHeaderMalformed', kind: 'auth', text: /another region/ },
    { name: 'no bucket', status: 404, code: 'NoSuchBucket', kind: 'no_bucket', text: /The bucket "media" does not exist on Cloud \(.*\)\. Create it or fix the bucket name/ },
    { name: 'disk full (MinIO)', status: 507, code: 'XMinioStorageFull', kind: 'no_space', text: /full/ },
    { name: 'too large', status: 400, code: 'EntityTooLarge', kind: 'invalid', text: /larger than/ },
  ];
  for (const c of cases) {
    it(`${c.name}: ${c.code} -> ${c.kind}`, async () => {
      const srv = await httpServer((_req, res) => xmlError(res, c.status, c.code));
      const b = new S3Backend(target(srv.url), quick);
      try {
        const data = randomData(100);
        const e = await failure(b.put('a/b.jpg', bufferBody(data), { sha256: sha256(data), mtimeMs: 1 }));
        expect(e.kind).toBe(c.kind);
        expect(e.message).toMatch(c.text);
        expect(e.detail).toContain(c.code);
        expect(e.detail).toContain(`HTTP ${c.status}`);
        expect(srv.requests).toHaveLength(1); // maxAttempts 1: retries are retry.ts's job
      } finally {
        b.close();
        await srv.close();
      }
    });
  }

  it('an endpoint that is not an S3 API (a web page) is reported as such', async () => {
    const srv = await httpServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<!doctype html><html><body>MinIO Console</body></html>');
    });
    const b = new S3Backend(target(srv.url), quick);
    try {
      const e = await failure((async () => {
        for await (const _ of b.list('')) void _;
      })());
      expect(e.message).toMatch(/S3 API address/);
      expect(e.targetLevel).toBe(true);
      // An upload "accepted" by a web page must not count as stored.
      const data = randomData(10);
      const p = await failure(b.put('a.jpg', bufferBody(data), { sha256: sha256(data), mtimeMs: 1 }));
      expect(p.message).toMatch(/S3 API address/);
    } finally {
      b.close();
      await srv.close();
    }
  });

  it('a HEAD 403 (no body to read) is an auth error', async () => {
    const srv = await httpServer((_req, res) => {
      res.writeHead(403);
      res.end();
    });
    const b = new S3Backend(target(srv.url), quick);
    try {
      const e = await failure(b.head('x.jpg'));
      expect(e.kind).toBe('auth');
      expect(e.message).toMatch(/Destinations/);
    } finally {
      b.close();
      await srv.close();
    }
  });
});

describe('S3Backend against servers that bend the protocol', () => {
  it('a server that ignores Range still yields exactly the asked bytes', async () => {
    const data = randomData(5000);
    const srv = await httpServer((_req, res) => {
      res.writeHead(200, { 'content-length': data.length, 'x-amz-meta-sha256': sha256(data), etag: '"abc"' });
      res.end(data);
    });
    const b = new S3Backend(target(srv.url), quick);
    try {
      const r = await b.get('x.bin', { range: { start: 1000, end: 1999 } });
      expect(r.contentLength).toBe(1000);
      expect(r.totalSize).toBe(5000);
      expect((await readAll(r.body)).equals(data.subarray(1000, 2000))).toBe(true);
      await failure(b.get('x.bin', { range: { start: 6000 } }));
    } finally {
      b.close();
      await srv.close();
    }
  });

  it('a download cut short fails the stream instead of ending it quietly', async () => {
    const data = randomData(100_000);
    const srv = await httpServer((_req, res) => {
      res.writeHead(200, { 'content-length': data.length });
      res.write(data.subarray(0, 40_000));
      setTimeout(() => res.destroy(), 20);
    });
    const b = new S3Backend(target(srv.url), quick);
    try {
      const r = await b.get('x.bin');
      const e = await failure(readAll(r.body));
      expect(['network', 'timeout']).toContain(e.kind);
      expect(e.message).toMatch(/Cloud/);
    } finally {
      b.close();
      await srv.close();
    }
  });
});

describe('S3Backend on s3rver', () => {
  let s3: TestS3;
  beforeAll(async () => {
    s3 = await startS3();
  });
  afterAll(async () => {
    await s3.dispose();
  });

  it('a server dying mid-multipart reports the network failure promptly, not a hang', async () => {
    const b = new S3Backend(s3.target('nas', { label: 'NAS', ...SMALL_MULTIPART }), { connectTimeoutMs: 1000, idleTimeoutMs: 2000 });
    try {
      const data = randomData(12 * MiB);
      setTimeout(() => void s3.stop(), 250);
      const t0 = Date.now();
      const e = await failure(b.put('dying/big.bin', slowBody(data, MiB, 40), { sha256: sha256(data), mtimeMs: 1 }));
      expect(['network', 'timeout']).toContain(e.kind);
      expect(e.kind).not.toBe('aborted');
      expect(Date.now() - t0).toBeLessThan(8000);
    } finally {
      await s3.start();
      b.close();
    }
  });

  it('cleanupIncomplete says plainly that s3rver cannot list unfinished uploads', async () => {
    // s3rver answers ListMultipartUploads with NotImplemented: a known gap, reported, not faked.
    const b = new S3Backend(s3.target('nas', { label: 'NAS' }));
    try {
      const e = await failure(b.cleanupIncomplete('', 0));
      expect(e.kind).toBe('invalid');
      expect(e.message).toMatch(/lifecycle rule/);
      expect(e.detail).toMatch(/NotImplemented/);
    } finally {
      b.close();
    }
  });

  it('falls back to ListObjects v1 when v2 paging fails (s3rver on Node >= 17), once, with a warning', async () => {
    const warnings: string[] = [];
    const b = new S3Backend(s3.target('nas', { label: 'NAS' }), { listPageSize: 3, onWarning: (m) => warnings.push(m) });
    try {
      const one = randomData(1);
      const keys = Array.from({ length: 8 }, (_, i) => `v1/${i}.jpg`);
      for (const k of keys) await b.put(k, bufferBody(one), { sha256: sha256(one), mtimeMs: 1 });
      const seen: string[] = [];
      for await (const o of b.list('v1/')) seen.push(o.key);
      expect(seen).toEqual(keys);
      const again: string[] = [];
      for await (const o of b.list('v1/')) again.push(o.key);
      expect(again).toEqual(keys);
      expect(warnings.filter((w) => /ListObjects \(v1\)/.test(w))).toHaveLength(1);
    } finally {
      b.close();
    }
  });

  it('an aborted multipart upload on s3rver warns that the server kept it (no AbortMultipartUpload there)', async () => {
    const warnings: string[] = [];
    const b = new S3Backend(s3.target('nas', { label: 'NAS', ...SMALL_MULTIPART }), { onWarning: (m, d) => warnings.push(`${m} | ${d}`) });
    try {
      const data = randomData(12 * MiB);
      const ctl = new AbortController();
      const put = b.put('warn/big.bin', bufferBody(data), {
        sha256: sha256(data),
        mtimeMs: 1,
        signal: ctl.signal,
        onProgress: () => ctl.abort(),
      });
      expect((await failure(put)).kind).toBe('aborted');
      expect(warnings.some((w) => /could not be removed/.test(w) && /MethodNotAllowed/.test(w))).toBe(true);
    } finally {
      b.close();
    }
  });
});

describe('S3 helpers', () => {
  it('copy sources are URL-encoded per segment', () => {
    expect(copySourceOf('media', 'a b/ü😀+#?.jpg')).toBe('media/a%20b/%C3%BC%F0%9F%98%80%2B%23%3F.jpg');
    expect(copySourceOf('media', 'plain/key.jpg')).toBe('media/plain/key.jpg');
  });

  it('Content-Range parsing', () => {
    expect(parseContentRange('bytes 0-9/100')).toEqual({ start: 0, end: 9, total: 100 });
    expect(parseContentRange('bytes */100')).toBeUndefined();
    expect(parseContentRange(undefined)).toBeUndefined();
  });
});

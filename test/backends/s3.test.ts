// What only the S3 backend has: how every kind of server failure is classified and worded, and
// the defences against servers that bend the protocol. Failures come from real sockets on
// 127.0.0.1: a closed port, a server that never answers, small HTTP servers that answer what a
// misbehaving S3 endpoint answers (XML errors, HTML pages, ranges ignored), and s3rver.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect, createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { copySourceOf, parseContentRange, S3Backend, type S3BackendOptions } from '../../src/main/engine/backends/s3';
import { mapS3Error } from '../../src/main/engine/backends/s3-errors';
import { encodeKeyPath, pathOf, type S3Http } from '../../src/main/engine/backends/s3-http';
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
      // a GET says the same
      const g = await failure(b.get('a.jpg'));
      expect(g.kind).toBe('network');
      expect(g.message).toBe(e.message);
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
      const t1 = Date.now();
      const g = await failure(b.get('a.jpg'));
      expect(g.kind).toBe('timeout');
      expect(g.message).toBe(e.message);
      expect(Date.now() - t1).toBeLessThan(5000);
    } finally {
      b.close();
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => tcp.close(() => r()));
    }
  });

  it('a GET whose body stalls half-way fails the stream as a timeout (not a short file)', async () => {
    const srv = await httpServer((_req, res) => {
      res.writeHead(200, { 'content-length': '1000', 'content-type': 'application/octet-stream' });
      res.write(Buffer.alloc(400, 1)); // then nothing
    });
    const b = new S3Backend(target(srv.url), quick);
    try {
      const got = await b.get('a.jpg');
      const t0 = Date.now();
      let n = 0;
      const e = await (async () => {
        for await (const c of got.body) n += (c as Buffer).length;
      })().then(
        () => null,
        (x: unknown) => x,
      );
      expect(n).toBe(400);
      expect(e).toBeInstanceOf(StorageError);
      expect((e as StorageError).kind).toBe('timeout');
      expect(Date.now() - t0).toBeLessThan(5000);
    } finally {
      b.close();
      await srv.close();
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

describe('S3Backend refusals (issue 19)', () => {
  // Answers real servers give (AWS, MinIO), from a loopback server: a refused delete is that
  // object's ('refused'), never an auth failure of the destination; a write with Object Lock
  // headers to a bucket without Object Lock is the destination's problem, said with the fix.
  it('a delete refused for want of permission or because of a lock; Object Lock missing on the bucket', async () => {
    const answers: [number, string, string][] = [
      [403, 'AccessDenied', 'Access Denied'],
      [403, 'AccessDenied', 'Access Denied because object protected by object lock.'],
      [400, 'InvalidRequest', 'Object is WORM protected and cannot be overwritten'],
      [403, 'SignatureDoesNotMatch', 'The request signature we calculated does not match'],
    ];
    let i = 0;
    const srv = await httpServer((req, res) => {
      if (req.method === 'PUT') return xmlError(res, 400, 'InvalidRequest', 'Bucket is missing Object Lock Configuration');
      const [status, code, message] = answers[i++]!;
      xmlError(res, status, code, message);
    });
    const b = new S3Backend(target(srv.url, { label: 'NAS', immutableDays: 7 }), quick);
    try {
      const denied = await failure(b.delete('a.jpg'));
      expect([denied.kind, denied.locked, denied.targetLevel]).toEqual(['refused', false, false]);
      expect(denied.message).toBe(`NAS (${srv.url}, bucket media) refused to delete "a.jpg": this access key may not delete. It stays there.`);
      const locked = await failure(b.delete('a.jpg'));
      expect([locked.kind, locked.locked]).toEqual(['refused', true]);
      expect(locked.message).toBe(`NAS (${srv.url}, bucket media) refused to delete "a.jpg": it is locked (Object Lock or a bucket lock rule) until its retention date. It stays there until then.`);
      const worm = await failure(b.deleteVersion('a.jpg', 'v1'));
      expect([worm.kind, worm.locked]).toEqual(['refused', true]);
      // a wrong secret is still the destination's auth failure
      expect((await failure(b.delete('a.jpg'))).kind).toBe('auth');
      const put = await failure(b.put('a.jpg', bufferBody(Buffer.from('x')), { sha256: sha256(Buffer.from('x')), mtimeMs: 1 }));
      expect([put.kind, put.targetLevel]).toEqual(['no_bucket', true]);
      expect(put.message).toBe(
        `NAS (${srv.url}, bucket media) refuses copies that cannot be deleted: the bucket "media" does not have Object Lock on. Use a bucket with Object Lock on, or set "Undeletable for" to 0 days in Destinations.`,
      );
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

  it('every request of a target, signed here or by the SDK, goes over the same connections', async () => {
    // A TCP relay in front of s3rver notes which connection carried which request, and whether
    // the AWS SDK sent it (its user-agent) or the backend signed it itself.
    const seen: { conn: number; request: string; sdk: boolean }[] = [];
    let conns = 0;
    const relay: TcpServer = createTcpServer((client) => {
      const conn = ++conns;
      let text = '';
      client.on('data', (d: Buffer) => {
        text += d.toString('latin1');
        for (let m; (m = /(GET|HEAD|PUT|POST|DELETE) (\S+) HTTP\/1\.1\r\n([\s\S]*?)\r\n\r\n/.exec(text)); text = text.slice(m.index + m[0].length)) {
          seen.push({ conn, request: `${m[1]} ${m[2]}`, sdk: /^user-agent: .*aws-sdk-js/im.test(m[3]!) });
        }
      });
      const up = connect(s3.port, '127.0.0.1');
      client.pipe(up).pipe(client);
      client.on('error', () => up.destroy());
      up.on('error', () => client.destroy());
    });
    await new Promise<void>((r) => relay.listen(0, '127.0.0.1', r));
    const b = new S3Backend(s3.target('nas', { label: 'NAS', endpoint: `http://127.0.0.1:${(relay.address() as AddressInfo).port}` }));
    try {
      const data = Buffer.alloc(1000, 'a');
      // One after the other, a turn of the event loop apart: undici hands a request sent in the
      // same turn as the previous answer ended to another connection (its "drain" comes later).
      const steps: (() => Promise<unknown>)[] = [
        () => b.put('pool/a.bin', bufferBody(data), { sha256: sha256(data), mtimeMs: 1 }),
        () => b.head('pool/a.bin'),
        async () => readAll((await b.get('pool/a.bin')).body),
        async () => {
          for await (const o of b.list('pool/')) void o;
        },
        () => b.delete('pool/a.bin'),
      ];
      for (const step of steps) {
        await step();
        await new Promise((r) => setImmediate(r));
      }
      expect(seen.map((x) => `${x.request.split('?')[0]} ${x.sdk ? 'SDK' : 'signed here'}`)).toEqual([
        'PUT /triplicate/pool/a.bin signed here',
        'HEAD /triplicate/pool/a.bin signed here',
        'GET /triplicate/pool/a.bin signed here',
        'GET /triplicate/ SDK',
        'DELETE /triplicate/pool/a.bin SDK',
      ]);
      expect(new Set(seen.map((x) => x.conn))).toEqual(new Set([1]));
    } finally {
      b.close();
      await new Promise<void>((r) => relay.close(() => r()));
    }
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

describe('S3Backend requests signed by hand (GET, HEAD, single PUT without the SDK stack)', () => {
  const oddKeys = [
    'plain/key.jpg',
    'a b/ü😀+#?.jpg',
    "1+1=2 100% 50%25 %2F *'()!~.jpg",
    'Café'.normalize('NFD') + '/写真 サンプル.png',
    '(x)[y]{z}^`|\\<>"&=;,@$:.jpg',
    'trailing/',
  ];
  const endpoints: { name: string; endpoint?: string; pathStyle: boolean; region: string }[] = [
    { name: 'path-style IP endpoint', endpoint: 'http://127.0.0.1:9000', pathStyle: true, region: 'us-east-1' },
    { name: 'virtual-hosted custom endpoint (R2-like)', endpoint: 'https://abc123.r2.cloudflarestorage.com', pathStyle: false, region: 'auto' },
    { name: 'path-style endpoint with a path', endpoint: 'https://nas.local:9000/s3/', pathStyle: true, region: 'us-east-1' },
    { name: 'AWS, no endpoint', endpoint: undefined, pathStyle: false, region: 'eu-central-1' },
  ];
  for (const ep of endpoints) {
    it(`builds the URL the SDK would: ${ep.name}`, async () => {
      const b = new S3Backend(target(ep.endpoint ?? '', { endpoint: ep.endpoint, pathStyle: ep.pathStyle, region: ep.region, preset: 'other', bucket: 'my-bucket' }), quick);
      try {
        const base = (b as unknown as { http: S3Http }).http.base;
        expect(base).not.toBeNull();
        for (const key of oddKeys) {
          // The SDK's own request for the same key, caught before it is sent.
          let seen: { hostname: string; port?: number; path: string; headers: Record<string, string> } | undefined;
          b.client.middlewareStack.add(
            () => async (args) => {
              seen = args.request as typeof seen;
              throw new Error('captured');
            },
            { step: 'finalizeRequest', name: 'captureForTest', priority: 'low' },
          );
          await b.client.send(new HeadObjectCommand({ Bucket: 'my-bucket', Key: key })).catch(() => undefined);
          b.client.middlewareStack.remove('captureForTest');
          expect(seen, key).toBeDefined();
          expect(pathOf(base!, key), key).toBe(seen!.path);
          expect(base!.hostname, key).toBe(seen!.hostname);
          expect(base!.port, key).toBe(seen!.port);
          expect(base!.host, key).toBe(seen!.headers.host);
          // Signed for the same region and service as the SDK signs (R2's "auto" included).
          const scope = /Credential=[^/]+\/\d{8}\/([^/]+)\/([^/]+)\/aws4_request/.exec(seen!.headers.authorization ?? '');
          expect(scope, seen!.headers.authorization).not.toBeNull();
          expect([base!.signingRegion, base!.signingName]).toEqual([scope![1], scope![2]]);
        }
      } finally {
        b.close();
      }
    });
  }

  it('S3 encoding of keys: every segment encoded, "/" kept, !\'()* escaped', () => {
    expect(encodeKeyPath("a b/c+d%e?f#g*h'i(j)k!l~m.jpg")).toBe('a%20b/c%2Bd%25e%3Ff%23g%2Ah%27i%28j%29k%21l~m.jpg');
  });

  it('errors come out shaped like the SDK\'s, so s3-errors.ts words both the same', async () => {
    // For each answer: the error of a request signed here and of the SDK's own command for the
    // same request, through the same mapping, give the same kind and sentence.
    const answers: { status: number; code?: string }[] = [
      { status: 403, code: 'SignatureDoesNotMatch' },
      { status: 403, code: 'InvalidAccessKeyId' },
      { status: 403 },
      { status: 404, code: 'NoSuchKey' },
      { status: 404, code: 'NoSuchBucket' },
      { status: 400, code: 'AuthorizationHeaderMalformed' },
      { status: 500, code: 'InternalError' },
      { status: 503, code: 'SlowDown' },
      { status: 503 },
      { status: 416, code: 'InvalidRange' },
      { status: 400, code: 'XAmzContentSHA256Mismatch' },
    ];
    for (const a of answers) {
      const srv = await httpServer((req, res) => {
        if (a.code && req.method !== 'HEAD') xmlError(res, a.status, a.code);
        else {
          res.writeHead(a.status);
          res.end();
        }
      });
      const b = new S3Backend(target(srv.url), quick);
      const http = (b as unknown as { http: S3Http }).http;
      try {
        const data = randomData(100);
        const key = 'a/b.jpg';
        const ops: [string, () => Promise<unknown>, () => Promise<unknown>][] = [
          [
            'put',
            () => http.send({ method: 'PUT', key, body: bufferBody(data).open(), contentLength: data.length, payloadHash: sha256(data) }),
            () => b.client.send(new PutObjectCommand({ Bucket: 'media', Key: key, Body: data })),
          ],
          ['get', () => http.send({ method: 'GET', key, headers: { range: 'bytes=10-20' } }), () => b.client.send(new GetObjectCommand({ Bucket: 'media', Key: key, Range: 'bytes=10-20' }))],
          ['head', () => http.send({ method: 'HEAD', key }), () => b.client.send(new HeadObjectCommand({ Bucket: 'media', Key: key }))],
        ];
        for (const [op, ours, sdk] of ops) {
          const ctx = { target: b.description, bucket: 'media', host: '127.0.0.1', op, key, idleTimeoutMs: 500 };
          const [o, s] = await Promise.all([ours().then(() => null, (e: unknown) => e), sdk().then(() => null, (e: unknown) => e)]);
          expect(o, `${op} ${a.status} ${a.code ?? ''}`).not.toBeNull();
          const pick = (e: unknown) => {
            const m = mapS3Error(e, ctx);
            return { kind: m.kind, message: m.message };
          };
          expect(pick(o), `${op} ${a.status} ${a.code ?? ''}`).toEqual(pick(s));
        }
      } finally {
        b.close();
        await srv.close();
      }
    }
  });

  it('a GET or HEAD aborted while waiting for the answer rejects at once as aborted and drops the connection', async () => {
    // the connections that carry a request the server never answers
    const waiting = new Set<Socket>();
    const srv = createServer((req) => {
      const s = req.socket;
      waiting.add(s);
      s.on('close', () => waiting.delete(s));
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const b = new S3Backend(target(`http://127.0.0.1:${(srv.address() as AddressInfo).port}`), { ...quick, idleTimeoutMs: 10_000 });
    try {
      for (const op of [(s: AbortSignal) => b.get('x.bin', { signal: s }), (s: AbortSignal) => b.head('x.bin', s)]) {
        const ctl = new AbortController();
        const p = op(ctl.signal);
        await new Promise((r) => setTimeout(r, 100));
        expect(waiting.size).toBe(1);
        const t0 = Date.now();
        ctl.abort();
        expect((await failure(p)).kind).toBe('aborted');
        expect(Date.now() - t0).toBeLessThan(500);
        await new Promise((r) => setTimeout(r, 100));
        // the connection was closed, not left waiting for the answer (a pool may open a fresh,
        // idle one in its place)
        expect(waiting.size).toBe(0);
      }
    } finally {
      b.close();
      srv.closeAllConnections();
      await new Promise<void>((r) => srv.close(() => r()));
    }
  });

  it('a PUT answered with an error before its body is sent reports that error, not a broken connection', async () => {
    // Like S3 refusing a wrong key at once: answer 403 as soon as the headers are in.
    const srv = createServer((_req, res) => xmlError(res, 403, 'InvalidAccessKeyId'));
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
    const b = new S3Backend(target(`http://127.0.0.1:${(srv.address() as AddressInfo).port}`, { multipartThreshold: 64 * MiB }), quick);
    try {
      const data = randomData(8 * MiB);
      const e = await failure(b.put('big.bin', bufferBody(data), { sha256: sha256(data), mtimeMs: 1 }));
      expect(e.kind).toBe('auth');
      expect(e.message).toMatch(/does not know the access key id/);
    } finally {
      b.close();
      srv.closeAllConnections();
      await new Promise<void>((r) => srv.close(() => r()));
    }
  });

  it('sends the content SHA-256 as x-amz-content-sha256 and signed metadata headers', async () => {
    const heard: IncomingMessage[] = [];
    const srv = await httpServer((req, res) => {
      heard.push(req);
      res.writeHead(200, { etag: '"abc"' });
      res.end();
    });
    const b = new S3Backend(target(srv.url), quick);
    try {
      const data = randomData(1000);
      await b.put('dir/a b.jpg', bufferBody(data), { sha256: sha256(data), mtimeMs: 1234.4, contentType: 'image/jpeg' });
      const h = heard[0]!.headers;
      expect(heard[0]!.url).toBe('/media/dir/a%20b.jpg');
      expect(h['x-amz-content-sha256']).toBe(sha256(data));
      expect(h['x-amz-meta-sha256']).toBe(sha256(data));
      expect(h['x-amz-meta-mtime']).toBe('1234');
      expect(h['content-type']).toBe('image/jpeg');
      expect(h['content-length']).toBe('1000');
      expect(h.authorization).toMatch(/^AWS4-HMAC-SHA256 Credential=AKIATESTKEY\/\d{8}\/us-east-1\/s3\/aws4_request, SignedHeaders=content-length;content-type;host;x-amz-content-sha256;x-amz-date;x-amz-meta-mtime;x-amz-meta-sha256, Signature=[0-9a-f]{64}$/);
    } finally {
      b.close();
      await srv.close();
    }
  });

  it('a small body given whole (BodySource.whole) goes up as that one buffer, signed the same, its progress told once', async () => {
    const heard: { headers: IncomingMessage['headers']; body: Buffer }[] = [];
    const srv = await httpServer((req, res, body) => {
      heard.push({ headers: req.headers, body });
      res.writeHead(200, { etag: '"abc"' });
      res.end();
    });
    const b = new S3Backend(target(srv.url), quick);
    try {
      const data = randomData(300 * 1024); // more than one body slice (256 KiB)
      const progress: number[] = [];
      const body = { size: data.length, open: () => { throw new Error('the stream was opened: whole() should have been used'); }, whole: async () => data };
      const info = await b.put('a.jpg', body, { sha256: sha256(data), mtimeMs: 1, onProgress: (n) => progress.push(n) });
      expect(info).toMatchObject({ size: data.length, etag: 'abc', singlePart: true });
      expect(heard).toHaveLength(1);
      expect(heard[0]!.body.equals(data)).toBe(true);
      expect(heard[0]!.headers['content-length']).toBe(String(data.length));
      expect(heard[0]!.headers['x-amz-content-sha256']).toBe(sha256(data));
      expect(progress).toEqual([data.length]);
    } finally {
      b.close();
      await srv.close();
    }
  });

  it('a whole body of another length than announced (the file grew), or one that cannot be read, fails as local before any request', async () => {
    const srv = await httpServer((_req, res) => {
      res.writeHead(200, { etag: '"abc"' });
      res.end();
    });
    const b = new S3Backend(target(srv.url), quick);
    try {
      const data = randomData(1001);
      const grew = await failure(b.put('a.jpg', { size: 1000, open: () => bufferBody(data).open(), whole: async () => data }, { sha256: sha256(data), mtimeMs: 1 }));
      expect(grew.kind).toBe('local');
      const gone = Object.assign(new Error("ENOENT: no such file or directory, open '/media/a.jpg'"), { code: 'ENOENT' });
      const unreadable = await failure(b.put('a.jpg', { size: 1000, open: () => bufferBody(data).open(), whole: () => Promise.reject(gone) }, { sha256: sha256(data), mtimeMs: 1 }));
      expect(unreadable.kind).toBe('local');
      expect(srv.requests).toEqual([]);
    } finally {
      b.close();
      await srv.close();
    }
  });

  it('signed headers are reused for the very same GET or HEAD only: each range, key and method is signed as itself', async () => {
    const data = randomData(1000);
    const heard: { what: string; range?: string; auth: string; date: string }[] = [];
    const srv = await httpServer((req, res) => {
      heard.push({ what: `${req.method} ${req.url}`, range: req.headers.range, auth: req.headers.authorization!, date: String(req.headers['x-amz-date']) });
      const m = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
      const [start, end] = m ? [Number(m[1]), Number(m[2])] : [0, data.length - 1];
      const head = { 'content-length': end - start + 1, 'x-amz-meta-sha256': sha256(data), etag: '"abc"' };
      res.writeHead(m ? 206 : 200, m ? { ...head, 'content-range': `bytes ${start}-${end}/${data.length}` } : head);
      res.end(req.method === 'HEAD' ? undefined : data.subarray(start, end + 1));
    });
    const b = new S3Backend(target(srv.url), quick);
    try {
      const get = async (key: string, range?: { start: number; end: number }) => readAll((await b.get(key, range ? { range } : {})).body);
      expect((await get('x.bin')).equals(data)).toBe(true);
      await new Promise((r) => setTimeout(r, 1_100)); // a fresh signature would carry another x-amz-date
      expect((await get('x.bin')).equals(data)).toBe(true);
      expect((await get('x.bin', { start: 10, end: 19 })).equals(data.subarray(10, 20))).toBe(true);
      expect((await get('x.bin', { start: 20, end: 29 })).equals(data.subarray(20, 30))).toBe(true);
      expect((await get('y.bin')).equals(data)).toBe(true);
      expect(await b.head('x.bin')).toMatchObject({ size: 1000 });
      expect(heard.map((h) => [h.what, h.range])).toEqual([
        ['GET /media/x.bin', undefined],
        ['GET /media/x.bin', undefined],
        ['GET /media/x.bin', 'bytes=10-19'],
        ['GET /media/x.bin', 'bytes=20-29'],
        ['GET /media/y.bin', undefined],
        ['HEAD /media/x.bin', undefined],
      ]);
      // the repeated GET went out as signed the first time; every other request has its own signature
      expect([heard[1]!.date, heard[1]!.auth]).toEqual([heard[0]!.date, heard[0]!.auth]);
      expect(new Set(heard.slice(1).map((h) => h.auth)).size).toBe(5);
      for (const h of heard) expect(/SignedHeaders=[^,]*\brange\b/.test(h.auth), `${h.what} ${h.range}`).toBe(!!h.range);
    } finally {
      b.close();
      await srv.close();
    }
  });
});

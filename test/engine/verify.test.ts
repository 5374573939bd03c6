// How an upload is verified before its copy is marked synced, end to end: real engine, real
// s3rver, and a small HTTP proxy between them that counts requests and can rewrite ETags or
// damage a body in flight (what a bad middlebox does).
//
// A single-part upload whose ETag is the MD5 of the bytes sent needs no HEAD once one HEAD on the
// lane showed that the server keeps our metadata; anything else is HEADed; a damaged body is
// caught by its ETag, removed, and sent again.
import { createServer, request, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createBackend } from '../../src/main/engine/backends';
import { startS3 } from '../helpers/s3';
import { bytes, sha256, startEngine, waitForStatus, writeFile } from '../helpers/engine';
import { useTeardown } from '../helpers/teardown';

interface Proxy {
  endpoint: string;
  counts: Record<string, number>;
  /** Answer every single-part PUT with this ETag instead of the server's. */
  etag?: string;
  /** Flip one byte of the body of these single-part PUTs (1-based, in arrival order). */
  damage: Set<number>;
  close(): Promise<void>;
}

async function startProxy(upstream: string): Promise<Proxy> {
  const up = new URL(upstream);
  let puts = 0;
  const proxy: Proxy = {
    endpoint: '',
    counts: {},
    damage: new Set(),
    close: async () => {
      srv.closeAllConnections();
      await new Promise<void>((r) => srv.close(() => r()));
    },
  };
  const srv: Server = createServer((req: IncomingMessage, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body = Buffer.concat(chunks);
      const single = req.method === 'PUT' && !/[?&](uploadId|partNumber)=/.test(req.url ?? '') && !req.headers['x-amz-copy-source'];
      const kind = `${req.method}${single ? '' : req.url?.includes('uploadId') ? ' part' : ''}`;
      proxy.counts[kind] = (proxy.counts[kind] ?? 0) + 1;
      if (single && proxy.damage.has(++puts) && body.length) {
        body = Buffer.from(body);
        body[body.length >> 1]! ^= 0xff;
      }
      const fwd = request(
        { host: up.hostname, port: up.port, method: req.method, path: req.url, headers: { ...req.headers, 'content-length': String(body.length) } },
        (r) => {
          const headers = { ...r.headers };
          if (single && proxy.etag && r.statusCode === 200) headers.etag = proxy.etag;
          res.writeHead(r.statusCode ?? 502, headers);
          r.pipe(res);
        },
      );
      fwd.on('error', () => res.destroy());
      fwd.end(body);
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  proxy.endpoint = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
  return proxy;
}

const td = useTeardown();

async function run(setupProxy: (p: Proxy) => void, n = 12, opts: { big?: number; targetExtra?: Record<string, unknown> } = {}) {
  const base = td.dir('trip-verify-');
  const s3 = td.add(await startS3({ buckets: ['nas'] }));
  const proxy = td.add(await startProxy(s3.endpoint));
  setupProxy(proxy);
  const media = join(base, 'media');
  const files: Record<string, Buffer> = {};
  for (let i = 0; i < n; i++) files[`day/IMG_${i}.jpg`] = bytes(30_000 + i * 1000, i + 1);
  if (opts.big) files['video/clip.mp4'] = bytes(opts.big, 99);
  for (const [rel, b] of Object.entries(files)) writeFile(media, rel, b);
  const target = { ...s3.target('nas', { label: 'NAS', concurrency: 1, ...opts.targetExtra }), endpoint: proxy.endpoint };
  n = Object.keys(files).length;
  const engine = td.add(
    await startEngine(join(base, 'data'), {
      roots: [{ id: 'media', label: 'Media', path: media }],
      targets: [target],
      sync: { stabilityMs: 0, backoffSeconds: [0.2, 0.2, 0.2], leaseSeconds: 30, rescanIntervalMinutes: 0 },
    }),
  );
  await waitForStatus(engine, (s) => s.synced === n, 30_000, `${n} files synced`);
  // What the server holds, read straight from it (not through the proxy).
  const direct = createBackend(s3.target('nas'), { retry: false });
  for (const [rel, b] of Object.entries(files)) {
    const head = await direct.head(`media/${rel}`);
    expect(head?.sha256, rel).toBe(sha256(b));
    const got: Buffer[] = [];
    for await (const c of (await direct.get(`media/${rel}`)).body) got.push(c as Buffer);
    expect(sha256(Buffer.concat(got)), `${rel} content`).toBe(sha256(b));
  }
  direct.close?.();
  return { engine, proxy, lane: engine.lanes.get('nas')!, files };
}

describe('upload verification', () => {
  it('after one HEAD shows the server keeps our metadata, an ETag equal to the MD5 sent stands for the HEAD', async () => {
    const { proxy, lane } = await run(() => {});
    expect(lane.verifiedBy).toEqual({ head: 1, etag: 11 });
    expect(proxy.counts.PUT).toBe(12);
    // HEADs: the one verification, and at most one "already there?" per file before the listing is in.
    expect(proxy.counts.HEAD ?? 0).toBeLessThanOrEqual(1 + 12);
  });

  it('a server whose ETags are not MD5s gets a HEAD after every upload', async () => {
    const { proxy, lane } = await run((p) => {
      p.etag = '"0123456789abcdef-1"';
    });
    expect(lane.verifiedBy).toEqual({ head: 12, etag: 0 });
    expect(proxy.counts.HEAD).toBeGreaterThanOrEqual(12);
  });

  it('a multipart upload is verified by HEAD (its ETag is no MD5 of the content, even where it looks like one)', async () => {
    const MiB = 1024 * 1024;
    // s3rver answers a plain hex ETag for multipart uploads: taking it for the content's MD5 would
    // fail every such upload forever.
    const { lane, engine, proxy } = await run(() => {}, 11, { big: 6 * MiB + 5, targetExtra: { multipartThreshold: 5 * MiB, partSize: 5 * MiB } });
    expect(proxy.counts['PUT part']).toBeGreaterThanOrEqual(2);
    expect(lane.verifiedBy.head + lane.verifiedBy.etag).toBe(12);
    expect(lane.verifiedBy.head).toBeGreaterThanOrEqual(2);
    expect(engine.status().failed).toBe(0);
  });

  it('so is a multipart upload of a bandwidth-limited target (read from its throttled stream, MD5 computed)', async () => {
    const MiB = 1024 * 1024;
    const { lane, engine } = await run(() => {}, 3, { big: 6 * MiB + 5, targetExtra: { multipartThreshold: 5 * MiB, partSize: 5 * MiB, bandwidth: { defaultBytesPerSecond: 200 * MiB, schedule: [] } } });
    expect(lane.verifiedBy.head + lane.verifiedBy.etag).toBe(4);
    expect(lane.verifiedBy.head).toBeGreaterThanOrEqual(2);
    expect(engine.status().failed).toBe(0);
  });

  it('a body damaged on the way is caught by its ETag, removed and sent again; nothing damaged stays', async () => {
    const { proxy, lane, engine } = await run((p) => {
      // The 1st PUT is HEAD-verified (it establishes the ETag rule); damage the 4th and the 9th.
      p.damage = new Set([4, 9]);
    });
    // Two uploads went again, each after its damaged object was deleted.
    expect(proxy.counts.PUT).toBe(14);
    expect(proxy.counts.DELETE).toBe(2);
    expect(lane.verifiedBy.head + lane.verifiedBy.etag).toBe(12);
    const st = engine.status();
    expect(st.failed).toBe(0);
  });
});

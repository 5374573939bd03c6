// Copies that cannot be deleted (issue 19, `immutableDays`): what the S3 backend sends. s3rver
// ignores Object Lock headers, so the SigV4-checking proxy of the conformance suite records every
// request as it arrived (and checks its signature); the objects still land on s3rver, so each
// write is also read back.
import { createHash } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { S3Backend } from '../../src/main/engine/backends/s3';
import type { S3TargetConfig } from '../../src/shared/config';
import { startS3, type TestS3 } from '../helpers/s3';
import { startSigV4Proxy, type SeenRequest, type SigV4Proxy } from '../helpers/sigv4-proxy';
import { blockBody, bufferBody, MiB, randomData, sha256, SMALL_MULTIPART } from './helpers';

const DAY = 86_400_000;
const LOCK_HEADERS = ['x-amz-object-lock-mode', 'x-amz-object-lock-retain-until-date'];

describe('Object Lock on writes (immutableDays)', () => {
  let s3: TestS3;
  let proxy: SigV4Proxy;
  const built: S3Backend[] = [];
  beforeAll(async () => {
    s3 = await startS3();
    proxy = await startSigV4Proxy(s3.endpoint, { S3RVER: 'S3RVER' });
  });
  afterEach(() => {
    for (const b of built.splice(0)) b.close();
    // Every request of every test carried a valid signature, lock headers included.
    expect(proxy.refused).toEqual([]);
    proxy.seen.length = 0;
  });
  afterAll(async () => {
    await proxy.close();
    await s3.dispose();
  });

  const backend = (extra: Partial<S3TargetConfig> = {}) => {
    const b = new S3Backend(s3.target('nas', { label: 'NAS', endpoint: proxy.endpoint, ...SMALL_MULTIPART, ...extra }));
    built.push(b);
    return b;
  };
  /** The requests to a key (path ends with it), e.g. the PUT of a single upload. */
  const to = (key: string, method?: string) => proxy.seen.filter((r) => new URL(r.url, 'http://x').pathname.endsWith(`/${key}`) && (!method || r.method === method));
  const untilOf = (r: SeenRequest) => Date.parse(r.headers['x-amz-object-lock-retain-until-date']!);
  const expectLocked = (r: SeenRequest, days: number, t0: number, t1: number) => {
    expect(r.headers['x-amz-object-lock-mode']).toBe('COMPLIANCE');
    // ISO 8601 in whole seconds, as S3 writes it
    expect(r.headers['x-amz-object-lock-retain-until-date']).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(untilOf(r)).toBeGreaterThanOrEqual(Math.floor(t0 / 1000) * 1000 + days * DAY);
    expect(untilOf(r)).toBeLessThanOrEqual(Math.ceil(t1 / 1000) * 1000 + days * DAY);
    // signed, so that nothing on the way can strip them
    for (const h of LOCK_HEADERS) expect(r.signed).toContain(h);
  };

  it('a single PUT carries COMPLIANCE until now + immutableDays, with the SHA-256 checksum AWS requires, signed', async () => {
    const b = backend({ immutableDays: 30 });
    const data = randomData(64 * 1024);
    const t0 = Date.now();
    const info = await b.put('lock/one.jpg', bufferBody(data), { sha256: sha256(data), mtimeMs: 1 });
    const t1 = Date.now();
    const [put] = to('lock/one.jpg', 'PUT');
    expect(put).toBeDefined();
    expectLocked(put!, 30, t0, t1);
    expect(put!.headers['x-amz-checksum-sha256']).toBe(createHash('sha256').update(data).digest('base64'));
    expect(put!.headers['x-amz-sdk-checksum-algorithm']).toBe('SHA256');
    expect(put!.signed).toContain('x-amz-checksum-sha256');
    // what put() reports is the date it sent (the catalog keeps it for prune)
    expect(info.lockedUntil).toBe(untilOf(put!));
    expect((await b.head('lock/one.jpg'))?.sha256).toBe(sha256(data));
  });

  it('a multipart upload: CreateMultipartUpload carries the lock, each part its Content-MD5', async () => {
    const b = backend({ immutableDays: 7 });
    const data = randomData(11 * MiB);
    const t0 = Date.now();
    const info = await b.put('lock/big.mp4', blockBody(data), { sha256: sha256(data), mtimeMs: 1 });
    const t1 = Date.now();
    const reqs = to('lock/big.mp4');
    const create = reqs.filter((r) => r.method === 'POST' && /[?&]uploads(=|&|$)/.test(r.url));
    const parts = reqs.filter((r) => r.method === 'PUT' && /[?&]partNumber=/.test(r.url));
    expect(create).toHaveLength(1);
    expectLocked(create[0]!, 7, t0, t1);
    expect(parts).toHaveLength(3);
    for (const p of parts) {
      const n = Number(/partNumber=(\d+)/.exec(p.url)![1]);
      const part = data.subarray((n - 1) * 5 * MiB, Math.min(data.length, n * 5 * MiB));
      expect(p.headers['content-md5']).toBe(createHash('md5').update(part).digest('base64'));
    }
    expect(info.lockedUntil).toBe(untilOf(create[0]!));
    expect((await b.head('lock/big.mp4'))?.size).toBe(data.length);
  });

  it('a server-side copy (a kept version) gets its own lock', async () => {
    const b = backend({ immutableDays: 3 });
    const data = randomData(1000);
    await b.put('lock/src.jpg', bufferBody(data), { sha256: sha256(data), mtimeMs: 1 });
    const t0 = Date.now();
    await b.copy('lock/src.jpg', 'lock/.v/src.jpg');
    const t1 = Date.now();
    const [copy] = to('lock/.v/src.jpg', 'PUT');
    expect(copy?.headers['x-amz-copy-source']).toBeDefined();
    expectLocked(copy!, 3, t0, t1);
    expect((await b.head('lock/.v/src.jpg'))?.sha256).toBe(sha256(data));
  });

  it('without immutableDays (or for the unlocked probe, or on R2) no request carries lock headers', async () => {
    const plain = backend();
    const data = randomData(11 * MiB);
    const small = data.subarray(0, 1000);
    expect((await plain.put('plain/a.jpg', bufferBody(small), { sha256: sha256(small), mtimeMs: 1 })).lockedUntil).toBeUndefined();
    await plain.put('plain/b.mp4', blockBody(data), { sha256: sha256(data), mtimeMs: 1 });
    await plain.copy('plain/a.jpg', 'plain/c.jpg');
    // the probe of Test connection must stay deletable
    await backend({ immutableDays: 30 }).put('plain/probe', bufferBody(small), { sha256: sha256(small), mtimeMs: 1, unlocked: true });
    // R2 has no per-object lock: its bucket lock rule does it, and Triplicate only notes the date
    const r2 = backend({ immutableDays: 30, preset: 'r2' });
    const t0 = Date.now();
    const viaRule = await r2.put('plain/r2.jpg', bufferBody(small), { sha256: sha256(small), mtimeMs: 1 });
    expect(viaRule.lockedUntil).toBeGreaterThanOrEqual(t0 + 30 * DAY - 1000);
    expect(proxy.seen.length).toBeGreaterThan(6);
    for (const r of proxy.seen) {
      for (const h of [...LOCK_HEADERS, 'x-amz-checksum-sha256', 'content-md5']) expect(r.headers[h], `${r.method} ${r.url} ${h}`).toBeUndefined();
    }
  });
});

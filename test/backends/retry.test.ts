// The retry wrapper: which failures it retries, how long it waits, that it re-sends the body
// from the start, and that it stops at once when cancelled. Real backends throughout.
import { createServer as createTcpServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backoffDelay, withRetry } from '../../src/main/engine/backends/retry';
import { FolderBackend } from '../../src/main/engine/backends/folder';
import { S3Backend } from '../../src/main/engine/backends/s3';
import { StorageError, type BodySource } from '../../src/main/engine/backends/types';
import { startS3, type TestS3 } from '../helpers/s3';
import { bufferBody, folderTarget, randomData, sha256, tempDir } from './helpers';

async function closedPort(): Promise<number> {
  const tmp = createTcpServer();
  await new Promise<void>((r) => tmp.listen(0, '127.0.0.1', r));
  const port = (tmp.address() as AddressInfo).port;
  await new Promise<void>((r) => tmp.close(() => r()));
  return port;
}

async function kindOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    return e instanceof StorageError ? e.kind : String(e);
  }
}

describe('backoffDelay (full jitter)', () => {
  it('stays within [0, min(max, base * 2^(attempt-1)))', () => {
    expect(backoffDelay(1, 500, 10_000, () => 0)).toBe(0);
    expect(backoffDelay(1, 500, 10_000, () => 0.999)).toBe(499);
    expect(backoffDelay(3, 500, 10_000, () => 0.5)).toBe(1000); // ceiling 2000
    expect(backoffDelay(10, 500, 10_000, () => 0.999)).toBe(9990); // capped
    for (let i = 0; i < 200; i++) {
      const d = backoffDelay(1 + (i % 8), 100, 1000);
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThan(Math.min(1000, 100 * 2 ** (i % 8)));
    }
  });
});

describe('withRetry', () => {
  let s3: TestS3;
  beforeAll(async () => {
    s3 = await startS3();
  });
  afterAll(async () => {
    await s3.dispose();
  });

  it('retries a transient failure up to `attempts`, re-opening the body each time, then gives up', async () => {
    const inner = new S3Backend(s3.target('nas', { label: 'NAS', endpoint: `http://127.0.0.1:${await closedPort()}` }), { connectTimeoutMs: 500 });
    const waits: number[] = [];
    const b = withRetry(inner, { attempts: 3, baseMs: 20, maxMs: 40, onRetry: (r) => waits.push(r.delayMs) });
    let opens = 0;
    const data = randomData(100);
    const body: BodySource = { size: data.length, open: () => (opens++, Readable.from([data])) };
    try {
      expect(await kindOf(b.put('x.bin', body, { sha256: sha256(data), mtimeMs: 1 }))).toBe('network');
      expect(opens).toBe(3);
      expect(waits).toHaveLength(2);
      expect(waits.every((w) => w >= 0 && w < 40)).toBe(true);
    } finally {
      b.close?.();
    }
  });

  it('never retries what retrying cannot fix (auth, no_bucket, not_found, invalid, local, aborted)', async () => {
    const retries: string[] = [];
    const onRetry = (r: { op: string }) => retries.push(r.op);
    const data = randomData(10);
    const badKey = withRetry(new S3Backend(s3.target('nas', { credentials: { accessKeyId: 'NOPE', secretAccessKey: 'NOPE' } })), { onRetry });
    const noBucket = withRetry(new S3Backend(s3.target('nas', { bucket: 'absent-bucket' })), { onRetry });
    const good = withRetry(new S3Backend(s3.target('nas')), { onRetry });
    try {
      expect(await kindOf(badKey.put('a.bin', bufferBody(data), { sha256: sha256(data), mtimeMs: 1 }))).toBe('auth');
      expect(await kindOf(noBucket.head('a.bin'))).toBe('no_bucket');
      expect(await kindOf(good.get('absent.bin'))).toBe('not_found');
      expect(await kindOf(good.put('', bufferBody(data), { sha256: sha256(data), mtimeMs: 1 }))).toBe('invalid');
      expect(await kindOf(good.put('a.bin', { size: 99, open: bufferBody(data).open }, { sha256: sha256(data), mtimeMs: 1 }))).toBe('local');
      const ctl = new AbortController();
      ctl.abort();
      expect(await kindOf(good.head('a.bin', ctl.signal))).toBe('aborted');
      expect(retries).toEqual([]);
    } finally {
      badKey.close?.();
      noBucket.close?.();
      good.close?.();
    }
  });

  it('an abort during the backoff wait ends the call at once', async () => {
    const dir = tempDir('retry');
    try {
      // A folder that is not there: a transient, target-level failure.
      const b = withRetry(new FolderBackend(folderTarget(`${dir.path}/unmounted`)), { attempts: 10, baseMs: 5000, maxMs: 5000, random: () => 0.99 });
      const ctl = new AbortController();
      setTimeout(() => ctl.abort(), 100);
      const t0 = Date.now();
      expect(await kindOf(b.head('a.jpg', ctl.signal))).toBe('aborted');
      expect(Date.now() - t0).toBeLessThan(1000);
    } finally {
      dir.dispose();
    }
  });

  it('passes through what it does not wrap: description, prefix, cleanup', async () => {
    const inner = new S3Backend(s3.target('nas', { label: 'NAS', prefix: 'p/' }));
    const b = withRetry(inner);
    try {
      expect(b.description).toBe(inner.description);
      expect(b.prefix).toBe('p/');
      expect(b.kind).toBe('s3');
      expect(await kindOf(b.cleanupIncomplete!('p/', 0))).toBe('invalid'); // s3rver: not implemented, not retried
    } finally {
      b.close?.();
    }
  });
});

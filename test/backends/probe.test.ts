// "Test connection" against real targets: what it checks, what it says, what it leaves behind.
import { createServer as createTcpServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBackend } from '../../src/main/engine/backends';
import { FolderBackend } from '../../src/main/engine/backends/folder';
import { testConnection } from '../../src/main/engine/backends/probe';
import { S3Backend } from '../../src/main/engine/backends/s3';
import type { StorageBackend } from '../../src/main/engine/backends/types';
import { startS3, type TestS3 } from '../helpers/s3';
import { folderTarget, tempDir } from './helpers';

async function keysUnder(b: StorageBackend, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const o of b.list(prefix)) out.push(o.key);
  return out;
}

/** The real backend, with every put key recorded (instrumentation, not a substitute). */
function recording(b: StorageBackend): { backend: StorageBackend; puts: string[] } {
  const puts: string[] = [];
  const backend: StorageBackend = {
    id: b.id,
    kind: b.kind,
    description: b.description,
    prefix: b.prefix,
    put: (k, body, o) => (puts.push(k), b.put(k, body, o)),
    get: (k, o) => b.get(k, o),
    head: (k, s) => b.head(k, s),
    list: (p, o) => b.list(p, o),
    delete: (k, s) => b.delete(k, s),
    copy: (x, y, s) => b.copy(x, y, s),
  };
  return { backend, puts };
}

describe('testConnection', () => {
  let s3: TestS3;
  beforeAll(async () => {
    s3 = await startS3();
  });
  afterAll(async () => {
    await s3.dispose();
  });

  it('passes on a working S3 target: put, head, get, delete, timed, nothing left behind', async () => {
    const b = createBackend(s3.target('nas', { label: 'NAS', prefix: 'site-a/' }), { retry: false });
    const { backend, puts } = recording(b);
    try {
      const r = await testConnection(backend);
      expect(r.ok, r.message).toBe(true);
      expect(r.steps.map((s) => [s.step, s.ok])).toEqual([
        ['put', true],
        ['head', true],
        ['get', true],
        ['delete', true],
      ]);
      expect(r.steps.every((s) => typeof s.ms === 'number' && s.ms >= 0)).toBe(true);
      expect(r.message).toMatch(/^NAS \(.*\) works/);
      expect(puts).toHaveLength(1);
      expect(puts[0]).toMatch(/^site-a\/\.triplicate\/probe-[0-9a-f]{16}$/);
      expect(await keysUnder(b, '')).toEqual([]);
    } finally {
      b.close?.();
    }
  });

  it('passes on a folder target, and says "not connected" when the folder is gone', async () => {
    const dir = tempDir('probe');
    try {
      const ok = await testConnection(new FolderBackend(folderTarget(dir.path)), AbortSignal.timeout(10_000));
      expect(ok.ok, ok.message).toBe(true);
      expect((await keysUnder(new FolderBackend(folderTarget(dir.path)), '')).length).toBe(0);
      const gone = await testConnection(new FolderBackend(folderTarget(`${dir.path}/missing`)));
      expect(gone.ok).toBe(false);
      expect(gone.steps).toHaveLength(1);
      expect(gone.message).toMatch(/^Triplicate could not write a test file\. .*not connected/);
    } finally {
      dir.dispose();
    }
  });

  it('names the problem and the fix: unknown access key, missing bucket, server down', async () => {
    const badKey = new S3Backend(s3.target('nas', { label: 'NAS', credentials: { accessKeyId: 'NOPE', secretAccessKey: 'NOPE' } }));
    const r1 = await testConnection(badKey);
    badKey.close();
    expect(r1.ok).toBe(false);
    expect(r1.steps).toEqual([expect.objectContaining({ step: 'put', ok: false })]);
    expect(r1.steps[0]!.error).toMatch(/InvalidAccessKeyId/);
    expect(r1.message).toMatch(/^Triplicate could not write a test file\. NAS .* does not know the access key id\. Check the key id and secret in Destinations\.$/);

    const noBucket = new S3Backend(s3.target('nas', { label: 'NAS', bucket: 'not-there' }));
    const r2 = await testConnection(noBucket);
    noBucket.close();
    expect(r2.message).toMatch(/The bucket "not-there" does not exist .* Create it or fix the bucket name/);

    const down = new S3Backend(s3.target('nas', { label: 'NAS' }), { connectTimeoutMs: 1000 });
    await s3.stop();
    try {
      const r3 = await testConnection(down);
      expect(r3.ok).toBe(false);
      expect(r3.message).toMatch(/refused the connection|broke off/);
    } finally {
      await s3.start();
      down.close();
    }
  });

  it('catches a server that drops custom metadata, and cleans up its probe', async () => {
    const real = new S3Backend(s3.target('nas', { label: 'NAS' }));
    // A target that stores bytes but loses x-amz-meta-* (some gateways do): the real backend,
    // with the metadata removed from what HEAD returns.
    const lossy: StorageBackend = {
      ...recording(real).backend,
      head: async (k, s) => {
        const info = await real.head(k, s);
        return info && { ...info, sha256: undefined };
      },
    };
    try {
      const r = await testConnection(lossy);
      expect(r.ok).toBe(false);
      expect(r.steps.map((s) => [s.step, s.ok])).toEqual([
        ['put', true],
        ['head', false],
      ]);
      expect(r.message).toMatch(/does not keep custom metadata/);
      expect(await keysUnder(real, '.triplicate/')).toEqual([]);
    } finally {
      real.close();
    }
  });

  it('gives up after its time limit on a server that never answers', async () => {
    const sockets: Socket[] = [];
    const tcp = createTcpServer((s) => sockets.push(s));
    await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
    const b = new S3Backend(s3.target('nas', { label: 'NAS', endpoint: `http://127.0.0.1:${(tcp.address() as AddressInfo).port}` }));
    try {
      const t0 = Date.now();
      const r = await testConnection(b, { timeoutMs: 400 });
      expect(r.ok).toBe(false);
      expect(r.message).toMatch(/^NAS .* did not finish the test within 400 ms \(while trying to write a test file\)\. Check that it is switched on and reachable\.$/);
      expect(Date.now() - t0).toBeLessThan(3000);
    } finally {
      b.close();
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => tcp.close(() => r()));
    }
  });

  it('reports a cancelled test as cancelled', async () => {
    const b = new S3Backend(s3.target('nas', { label: 'NAS' }));
    try {
      const ctl = new AbortController();
      ctl.abort();
      const r = await testConnection(b, ctl.signal);
      expect(r.ok).toBe(false);
      expect(r.message).toBe('The test was cancelled.');
    } finally {
      b.close();
    }
  });
});

// "Test connection" against real targets: what it checks, what it says, what it leaves behind.
import { createServer as createTcpServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBackend } from '../../src/main/engine/backends';
import { FolderBackend } from '../../src/main/engine/backends/folder';
import { testConnection } from '../../src/main/engine/backends/probe';
import { S3Backend } from '../../src/main/engine/backends/s3';
import type { StorageBackend } from '../../src/main/engine/backends/types';
import type { TestConnectionResult } from '../../src/shared/api';
import { startS3, type TestS3 } from '../helpers/s3';
import { startSigV4Proxy, type ProxyOptions, type SigV4Proxy } from '../helpers/sigv4-proxy';
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
      // a folder has no key: the finding says what can delete there instead
      expect(ok.findings?.map((f) => f.message)).toEqual([expect.stringMatching(/^Any program on this computer can delete the backups in this folder/)]);
      expect(JSON.stringify(ok.findings)).not.toMatch(/key can delete|Anyone with this key/);
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

  // Issue 19: what the key could do to the backups, and Object Lock. s3rver checks no policy, keeps
  // no versions and answers GetObjectLockConfiguration with 501 NotImplemented, so the SigV4 proxy
  // (signatures checked) answers those requests itself, or adds a version id to s3rver's answer,
  // where a test needs another answer.
  describe('what a stolen key could do, and Object Lock', () => {
    const proxies: SigV4Proxy[] = [];
    afterAll(async () => {
      for (const p of proxies.splice(0)) await p.close();
    });
    const via = async (opts: ProxyOptions) => {
      const p = await startSigV4Proxy(s3.endpoint, { S3RVER: 'S3RVER' }, opts);
      proxies.push(p);
      return p;
    };
    const xml = (code: string, message: string) => `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message><RequestId>proxy</RequestId></Error>`;
    const refuseDeletes: ProxyOptions['answer'] = (req) => (req.method === 'DELETE' ? { status: 403, body: xml('AccessDenied', 'Access Denied') } : undefined);
    const lockAnswer =
      (status: number, body: string): ProxyOptions['answer'] =>
      (req) =>
        req.method === 'GET' && /[?&]object-lock(=|&|$)/.test(req.url) ? { status, body } : undefined;
    /** Every step worked, and the test file was not erased: the delete step says why. */
    const passedKeepingProbe = (r: TestConnectionResult, can: 'no' | 'hide', note: string) => {
      expect(r.ok, r.message).toBe(true);
      expect(r.can_delete).toBe(can);
      expect(r.steps.map((x) => [x.step, x.ok, x.note])).toEqual([
        ['put', true, undefined],
        ['head', true, undefined],
        ['get', true, undefined],
        ['delete', true, note],
      ]);
      expect(r.message).toMatch(/^NAS \(.*\) works: Triplicate wrote and read back a test file in \d+ ms\.$/);
    };
    let runs = 0;
    /** Each run under its own prefix: a probe a key could not delete stays. */
    const run = async (extra: Parameters<TestS3['target']>[1], proxy?: SigV4Proxy) => {
      const prefix = `p19-${++runs}/`;
      const t = s3.target('nas', { label: 'NAS', prefix, ...(proxy ? { endpoint: proxy.endpoint } : {}), ...extra });
      const b = createBackend(t, { retry: false });
      try {
        return { r: await testConnection(b, { target: t }), keys: await keysUnder(b, prefix), prefix };
      } finally {
        b.close?.();
      }
    };

    it('a key that can delete passes with a warning: what a stolen key could do, and the recipe for a better key', async () => {
      const { r, keys } = await run({});
      expect(r.ok, r.message).toBe(true);
      expect(r.can_delete).toBe('yes');
      expect(r.findings).toEqual([
        {
          level: 'warn',
          message: 'Anyone with this key can delete every backup in "triplicate": ransomware that finds it on this computer can erase the copies too. Give Triplicate a key that may write, read and list, but not delete.',
          link: { url: 'https://min.io/docs/minio/linux/administration/identity-access-management/policy-based-access-control.html', text: 'MinIO policies (mc admin policy)' },
          short: 'This key can delete the backups. Make a key that cannot:',
        },
      ]);
      expect(keys).toEqual([]);
    });

    it('a key that may not delete passes: the test says so, and its probe stays in .triplicate/', async () => {
      const proxy = await via({ answer: refuseDeletes });
      const { r, keys, prefix } = await run({}, proxy);
      passedKeepingProbe(r, 'no', 'refused: this key cannot delete');
      expect(keys).toHaveLength(1);
      expect(keys[0]).toMatch(/^p19-\d+\/\.triplicate\/probe-[0-9a-f]{16}$/);
      expect(r.findings).toEqual([
        {
          level: 'good',
          message: `This key cannot delete, so a stolen copy of it cannot erase the backups. Its test file stays at "${keys[0]}"; a lifecycle rule that removes "${prefix}.triplicate/probe-" files after a day clears such files.`,
        },
      ]);
      expect(proxy.refused).toEqual([]);
    });

    it('a key that can only hide files (a versioned bucket, no DeleteObjectVersion) passes: its versions stay', async () => {
      // s3rver keeps no versions: the proxy gives the probe's PUT the version id a versioned bucket
      // returns, refuses the delete of that version (the key may not), and answers the delete by
      // name as such a bucket does: 204 with a delete marker (the object's version stays).
      const version = '3HL4kqtJlcpXroDTDmJ-rmSpXd3dIbrH';
      const proxy = await via({
        addHeaders: (req) => (req.method === 'PUT' && /\/probe-[0-9a-f]{16}(\?|$)/.test(req.url) ? { 'x-amz-version-id': version } : undefined),
        answer: (req) => {
          if (req.method !== 'DELETE') return undefined;
          if (/[?&]versionId=/.test(req.url)) return { status: 403, body: xml('AccessDenied', 'Access Denied') };
          return { status: 204, headers: { 'x-amz-delete-marker': 'true', 'x-amz-version-id': 'marker-1' } };
        },
      });
      const { r } = await run({ preset: 'b2', region: 'eu-central-003' }, proxy);
      passedKeepingProbe(r, 'hide', 'hidden only: its version stays');
      const put = proxy.seen.find((x) => x.method === 'PUT' && x.url.includes('/probe-'))!;
      const key = decodeURIComponent(put.url.split('?')[0]!).replace(/^\/triplicate\//, '');
      expect(key).toMatch(/^p19-\d+\/\.triplicate\/probe-[0-9a-f]{16}$/);
      expect(r.findings).toEqual([
        {
          level: 'good',
          message: `This key can only hide files in "triplicate" (a delete marker): their earlier versions stay, so a stolen copy of it cannot erase the backups. The hidden test file stays at "${key}".`,
        },
      ]);
      // as a stolen key would: the version for good first, then by name
      const deletes = proxy.seen.filter((x) => x.method === 'DELETE').map((x) => new URL(x.url, 'http://x').searchParams.get('versionId'));
      expect(deletes).toEqual([version, null]);
      expect(proxy.refused).toEqual([]);
    });

    it('in a versioned bucket, a key that may erase the version can delete: the warning, and nothing left', async () => {
      const version = 'v-erasable';
      const proxy = await via({ addHeaders: (req) => (req.method === 'PUT' && /\/probe-[0-9a-f]{16}(\?|$)/.test(req.url) ? { 'x-amz-version-id': version } : undefined) });
      const { r, keys } = await run({ preset: 'b2', region: 'eu-central-003' }, proxy);
      expect(r.ok, r.message).toBe(true);
      expect(r.can_delete).toBe('yes');
      expect(r.findings?.[0]).toMatchObject({ level: 'warn', short: 'This key can delete the backups. Make a key that cannot:' });
      // the version itself was deleted (s3rver, which keeps none, removed the object): no delete by name
      const deletes = proxy.seen.filter((x) => x.method === 'DELETE').map((x) => new URL(x.url, 'http://x').searchParams.get('versionId'));
      expect(deletes).toEqual([version]);
      expect(keys).toEqual([]);
    });

    it('with immutableDays, a bucket with Object Lock on passes the lock step, and the probe itself is written unlocked', async () => {
      const on = '<?xml version="1.0" encoding="UTF-8"?>\n<ObjectLockConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><ObjectLockEnabled>Enabled</ObjectLockEnabled></ObjectLockConfiguration>';
      const proxy = await via({ answer: lockAnswer(200, on) });
      const { r, keys } = await run({ immutableDays: 30, preset: 'aws', region: 'us-east-1' }, proxy);
      expect(r.ok, r.message).toBe(true);
      expect(r.steps.map((x) => x.step)).toEqual(['lock', 'put', 'head', 'get', 'delete']);
      expect(r.steps[0]!.note).toBe('Object Lock is on');
      const put = proxy.seen.find((x) => x.method === 'PUT' && x.url.includes('/probe-'));
      expect(put?.headers['x-amz-object-lock-mode']).toBeUndefined();
      expect(r.findings?.[0]?.message).toBe(
        'This key can delete, but Object Lock keeps every copy in "triplicate" for 30 days after it is written: a stolen copy of the key cannot erase them before then. A key that cannot delete is safer still.',
      );
      expect(r.findings?.[0]?.short).toBe('This key can delete the backups once their 30 days of Object Lock are over. Make a key that cannot:');
      expect(keys).toEqual([]);
    });

    it('with immutableDays, a bucket without Object Lock fails first, with what to change, and nothing is written', async () => {
      const proxy = await via({ answer: lockAnswer(404, xml('ObjectLockConfigurationNotFoundError', 'Object Lock configuration does not exist for this bucket')) });
      const { r, keys } = await run({ immutableDays: 30, preset: 'wasabi', region: 'us-east-1' }, proxy);
      expect(r.ok).toBe(false);
      expect(r.steps.map((x) => [x.step, x.ok])).toEqual([['lock', false]]);
      expect(r.message).toBe(
        'The bucket "triplicate" does not have Object Lock on, so its copies could still be deleted. Wasabi turns Object Lock on only when a bucket is created (Create Bucket → Object Locking). Or set "Undeletable for" to 0 days.',
      );
      expect(keys).toEqual([]);
    });

    it('with immutableDays, a server without Object Lock (s3rver itself: 501) fails with a sentence', async () => {
      const { r } = await run({ immutableDays: 7 });
      expect(r.ok).toBe(false);
      expect(r.steps.map((x) => [x.step, x.ok])).toEqual([['lock', false]]);
      expect(r.message).toMatch(/^NAS \(.*\) does not support Object Lock, so copies there cannot be made undeletable\. Set "Undeletable for" to 0 days, or use a server that has it\.$/);
      expect(r.steps[0]!.error).toMatch(/unsupported; object-lock; NotImplemented; HTTP 501/);
    });

    it('on R2, whose locks are bucket rules, the test says it cannot check them', async () => {
      const { r, prefix } = await run({ immutableDays: 14, preset: 'r2', region: 'auto' });
      expect(r.ok, r.message).toBe(true);
      expect(r.steps.map((x) => x.step)).toEqual(['put', 'head', 'get', 'delete']);
      expect(r.findings?.map((f) => f.message)).toEqual([
        `Cloudflare R2 locks copies with bucket lock rules, which Triplicate cannot check: make sure a rule keeps "${prefix}" for at least 14 days.`,
        'Anyone with this key can delete every backup in "triplicate": Cloudflare R2 has no key that may write but not delete, so protect the copies with a bucket lock rule.',
      ]);
      expect(r.findings?.[0]?.link?.url).toBe('https://developers.cloudflare.com/r2/buckets/bucket-locks/');
      // no R2 key can do better, and a lock rule is asked for: nothing stays on the card
      expect(r.findings?.some((f) => f.short)).toBe(false);
      const unlocked = await run({ preset: 'r2', region: 'auto' });
      expect(unlocked.r.findings?.map((f) => f.short)).toEqual(['This key can delete the backups. Protect them with a bucket lock rule:']);
    });
  });
});

// Issue 19 with a real engine, real s3rver targets and the catalog: copies written with Object
// Lock (`immutableDays`) are left alone by retention until their date, and a destination whose key
// may not delete (the SigV4 proxy answers every DELETE with S3's 403 AccessDenied, as AWS does for
// a policy without s3:DeleteObject) keeps taking uploads while prune says what it could not delete.
import { unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Engine } from '../../src/main/engine/engine';
import { DAY_MS } from '../../src/main/engine/restore/retention';
import { bytes, writeFile } from '../helpers/engine';
import { startSigV4Proxy, type SigV4Proxy } from '../helpers/sigv4-proxy';
import { backendOf, change, engineFor, listAll, restoreOf, rig, synced, teardown, writeAll } from './helpers';

const proxies: SigV4Proxy[] = [];
afterEach(async () => {
  await teardown();
  for (const p of proxies.splice(0)) await p.close();
});

const lockedUntil = (e: Engine, sql: string): number[] => (e.catalog.db.prepare(sql).all() as { locked_until: number | null }[]).map((r) => r.locked_until ?? 0);

describe('retention and Object Lock', () => {
  it('leaves versions and deleted files alone until the date they were locked until, says so, and prunes them after', async () => {
    const r = await rig();
    r.nasT.immutableDays = 365;
    writeAll(r.media, { 'a.bin': bytes(2000, 1), 'gone.bin': bytes(2000, 2) });
    const t0 = Date.now();
    const engine = await engineFor(r, { watch: false });
    await synced(engine, 2);
    await change(engine, r.media, 'a.bin', bytes(2100, 3), 2);
    const t1 = Date.now();
    // the dates the uploads asked for are in the catalog: copies on NAS and the kept version
    for (const u of [...lockedUntil(engine, `SELECT locked_until FROM copies WHERE target_id = 'nas'`), ...lockedUntil(engine, `SELECT locked_until FROM versions WHERE target_id = 'nas' AND reason = 'overwritten'`)]) {
      expect(u).toBeGreaterThanOrEqual(t0 + 365 * DAY_MS - 1000);
      expect(u).toBeLessThanOrEqual(t1 + 365 * DAY_MS + 1000);
    }
    // the cloud (no immutableDays) has none
    expect(lockedUntil(engine, `SELECT locked_until FROM copies WHERE target_id = 'cloud'`)).toEqual([0, 0]);
    unlinkSync(join(r.media, 'gone.bin'));
    await engine.scanAll();
    const nas = backendOf(r.nasT);
    const svc = restoreOf(engine);

    // 100 days on: the version is past keepAllDays and no restore point needs it, gone.bin past deletedDays
    const soon = Date.now() + 100 * DAY_MS;
    const dry = await svc.pruneNow({ now: soon, dryRun: true, target: 'nas' });
    expect(dry.targets[0]).toMatchObject({ versions_deleted: 0, files_expired: 0, versions_locked: 1, files_locked: 1 });
    const held = await svc.pruneNow({ now: soon, target: 'nas' });
    expect(held.targets[0]).toMatchObject({ versions_deleted: 0, files_expired: 0, versions_locked: 1, files_locked: 1, delete_refused: 0 });
    const until = new Date(held.targets[0]!.locked_until!).toISOString().slice(0, 10);
    expect(held.summary).toContain(`1 old version and 1 deleted file on NAS are locked (Object Lock) until ${until} at the latest and stay until then.`);
    expect(await listAll(nas, '.triplicate/versions/')).toHaveLength(1);
    expect(await listAll(nas, 'media/')).toEqual(['media/a.bin', 'media/gone.bin']);
    // the cloud, without locks, was pruned as usual
    const cloud = await svc.pruneNow({ now: soon, target: 'cloud' });
    expect(cloud.targets[0]).toMatchObject({ versions_deleted: 1, files_expired: 1, versions_locked: 0, files_locked: 0 });

    // past the date, both go
    const later = Date.now() + 400 * DAY_MS;
    const done = await svc.pruneNow({ now: later, target: 'nas' });
    expect(done.targets[0]).toMatchObject({ versions_deleted: 1, files_expired: 1, versions_locked: 0, files_locked: 0 });
    expect(done.summary).not.toMatch(/locked/);
    expect(await listAll(nas, '.triplicate/versions/')).toEqual([]);
    expect(await listAll(nas, 'media/')).toEqual(['media/a.bin']);
  });
});

describe('a destination whose key may not delete', () => {
  it('keeps uploading, never goes into backoff, and prune says what it could not delete', async () => {
    const r = await rig();
    let refusedDeletes = 0;
    const proxy = await startSigV4Proxy(
      r.nas.endpoint,
      { S3RVER: 'S3RVER' },
      {
        answer: (req) => {
          if (req.method !== 'DELETE' || /[?&]uploadId=/.test(req.url)) return undefined;
          refusedDeletes++;
          return { status: 403, body: '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>Access Denied</Message><RequestId>proxy</RequestId></Error>' };
        },
      },
    );
    proxies.push(proxy);
    r.nasT.endpoint = proxy.endpoint;
    writeAll(r.media, { 'a.bin': bytes(2000, 1), 'b.bin': bytes(2000, 2), 'c.bin': bytes(2000, 3) });
    const engine = await engineFor(r, { watch: false });
    await synced(engine, 3);
    await change(engine, r.media, 'a.bin', bytes(2100, 4), 3);
    await change(engine, r.media, 'b.bin', bytes(2100, 5), 3);
    const svc = restoreOf(engine);

    const soon = Date.now() + 100 * DAY_MS;
    const report = await svc.pruneNow({ now: soon, target: 'nas' });
    // one delete tried and refused; the second version is not tried but counted
    expect(refusedDeletes).toBe(1);
    expect(report.targets[0]).toMatchObject({ versions_deleted: 0, delete_refused: 2 });
    expect(report.targets[0]!.error).toBeUndefined();
    expect(report.summary).toContain('NAS refused to delete 2 objects: its key may not delete, so they stay (a lifecycle rule on the bucket can remove old versions instead).');
    // the versions are still listed and restorable
    expect(svc.store.versionsOfTarget('nas').filter((v) => v.reason === 'overwritten')).toHaveLength(2);
    expect(await listAll(backendOf({ ...r.nasT, endpoint: r.nas.endpoint }), '.triplicate/versions/')).toHaveLength(2);
    const events = engine.catalog.events(0, 100).filter((e) => e.kind === 'prune-done' && e.target_id === 'nas');
    expect(events.at(-1)).toMatchObject({ level: 'warn' });
    expect(events.at(-1)!.message).toContain('NAS refused to delete 2 objects');

    // Browse's delete is refused with the destination's sentence, not an engine error
    const res = await fetch(`${engine.endpoints.adminUrl}/api/admin/targets/nas/delete-object`, {
      method: 'POST',
      headers: { authorization: `Bearer ${engine.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ key: 'media/c.bin' }),
    });
    expect(res.status).toBe(403);
    expect(((await res.json()) as { error: string }).error).toMatch(/^NAS \(.*\) refused to delete "media\/c\.bin": this access key may not delete\. It stays there\.$/);

    // the destination is online and takes new files
    expect(engine.status().targets.nas?.state).toBe('online');
    writeFile(r.media, 'd.bin', bytes(3000, 6));
    await engine.scanAll();
    await synced(engine, 4);
    expect(engine.status().targets.nas?.state).toBe('online');
    expect(proxy.refused).toEqual([]);
  });
});

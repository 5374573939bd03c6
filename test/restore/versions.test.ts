// Versions with real s3rver targets and a real engine: every previous content is listed and
// restorable, "this folder as it was on <date>" picks the content live then (deleted files
// included, files created later left out), and the retention prune removes exactly the version
// objects the policy says, on a simulated clock.
import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Readable } from 'node:stream';
import { ApiClient } from '../../src/shared/client';
import { DEFAULT_RETENTION } from '../../src/shared/config';
import { versionKey } from '../../src/shared/keys';
import { DAY_MS, planPrune } from '../../src/main/engine/restore/retention';
import { bytes, sha256, waitFor } from '../helpers/engine';
import { backendOf, change, engineFor, listAll, restoreOf, rig, synced, teardown, tree, writeAll } from './helpers';

afterEach(teardown);

const tick = () => new Promise((r) => setTimeout(r, 20));

describe('versions', () => {
  it('overwrite a file twice: list every version on each target and restore each one', async () => {
    const r = await rig();
    const v1 = bytes(40_000, 1);
    const v2 = bytes(50_000, 2);
    const v3 = bytes(45_000, 3);
    writeAll(r.media, { 'a.jpg': v1 });
    const engine = await engineFor(r, { watch: false });
    await synced(engine, 1);
    await change(engine, r.media, 'a.jpg', v2, 1);
    await change(engine, r.media, 'a.jpg', v3, 1);

    const client = new ApiClient({ baseUrl: engine.endpoints.adminUrl!, token: engine.token });
    const { versions } = await client.call('listVersions', { query: { key: 'media/a.jpg' } });
    for (const t of ['nas', 'cloud']) {
      const mine = versions.filter((x) => x.target_id === t);
      expect(mine.map((x) => x.sha256)).toEqual([sha256(v3), sha256(v2), sha256(v1)]);
      expect(mine.map((x) => x.current)).toEqual([true, false, false]);
      expect(mine.every((x) => !x.deleted)).toBe(true);
      expect(mine[1]!.saved_at).toBeGreaterThan(mine[2]!.saved_at);
    }
    // the version objects are browsable: <versions prefix><root>/<path>/<ISO time>_<sha16>
    const keys = await listAll(backendOf(r.nasT), '.triplicate/versions/');
    expect(keys).toHaveLength(2);
    for (const k of keys) expect(k).toMatch(/^\.triplicate\/versions\/media\/a\.jpg\/\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}Z_[0-9a-f]{16}$/);

    // each version, to another folder, from each target
    const svc = restoreOf(engine);
    for (const [content, t] of [[v1, 'nas'], [v2, 'cloud'], [v1, 'cloud'], [v3, 'nas']] as const) {
      const id = versions.find((x) => x.target_id === t && x.sha256 === sha256(content))!.id;
      const out = join(r.base, `out-${id.replace(':', '-')}`);
      const p = await svc.waitFor((await client.call('restoreVersion', { body: { key: 'media/a.jpg', version_id: id, to: out } })).id, { timeoutMs: 20_000 });
      expect(p.files_done, id).toBe(1);
      expect(sha256(readFileSync(join(out, 'media', 'a.jpg')))).toBe(sha256(content));
    }
    expect(sha256(readFileSync(join(r.media, 'a.jpg')))).toBe(sha256(v3)); // untouched

    // v1 back in place: it becomes the current content; v3 is kept as a version
    const id1 = versions.find((x) => x.target_id === 'nas' && x.sha256 === sha256(v1))!.id;
    const p = await svc.waitFor(svc.restoreVersion('media/a.jpg', id1).id, { timeoutMs: 20_000 });
    expect(p.files_done).toBe(1);
    expect(sha256(readFileSync(join(r.media, 'a.jpg')))).toBe(sha256(v1));
    await waitFor(() => engine.file('media/a.jpg')?.sha256 === sha256(v1), 20_000, 'v1 recorded');
    await synced(engine, 1);
    const after = svc.listVersions('media/a.jpg').filter((x) => x.target_id === 'nas');
    expect(after[0]!.current && after[0]!.sha256).toBe(sha256(v1));
    expect(after.filter((x) => !x.current).map((x) => x.sha256)).toContain(sha256(v3));

    // in place over a file that is not backed up: refused, nothing lost
    const mine = Buffer.from('edited by a volunteer, not backed up yet');
    writeFileSync(join(r.media, 'a.jpg'), mine);
    const q = await svc.waitFor(svc.restoreVersion('media/a.jpg', 'cloud:current').id, { timeoutMs: 20_000 });
    expect(q.files_skipped).toBe(1);
    const id2 = versions.find((x) => x.target_id === 'nas' && x.sha256 === sha256(v2))!.id;
    const q2 = await svc.waitFor(svc.restoreVersion('media/a.jpg', id2).id, { timeoutMs: 20_000 });
    expect(q2.files_skipped).toBe(1);
    expect(readFileSync(join(r.media, 'a.jpg')).equals(mine)).toBe(true);
  });

  it('restores a folder as it was on a date: changed, deleted and new files each as they were', async () => {
    const r = await rig();
    const A1 = bytes(10_000, 11), A2 = bytes(11_000, 12), A3 = bytes(12_000, 13);
    const B1 = bytes(20_000, 21), B2 = bytes(21_000, 22);
    const C1 = bytes(30_000, 31), C2 = bytes(31_000, 32);
    const D1 = bytes(40_000, 41);
    writeAll(r.media, { 'f/a.jpg': A1, 'f/b.jpg': B1, 'f/c.jpg': C1 });
    const engine = await engineFor(r, { watch: false });
    await synced(engine, 3);
    await tick();
    const T1 = Date.now();
    await tick();
    await change(engine, r.media, 'f/a.jpg', A2, 3);
    unlinkSync(join(r.media, 'f/b.jpg'));
    await engine.scanAll();
    await change(engine, r.media, 'f/d.jpg', D1, 4); // b is still safe on the targets
    await tick();
    const T2 = Date.now();
    await tick();
    await change(engine, r.media, 'f/a.jpg', A3, 4);
    await change(engine, r.media, 'f/c.jpg', C2, 4);
    await change(engine, r.media, 'f/b.jpg', B2, 4); // a new file under the deleted one's name
    await tick();
    const T3 = Date.now();

    const svc = restoreOf(engine);
    const at = async (t: number, name: string, from?: string) => {
      const out = join(r.base, name);
      const p = await svc.waitFor(svc.restoreFiles({ prefix: 'media/f/', at: t, to: out, from }).id, { timeoutMs: 30_000 });
      expect(p.files_failed).toBe(0);
      return Object.fromEntries(Object.entries(tree(out)).map(([k, c]) => [k, sha256(c)]));
    };
    const h = (x: Buffer) => sha256(x);
    const want1 = { 'media/f/a.jpg': h(A1), 'media/f/b.jpg': h(B1), 'media/f/c.jpg': h(C1) };
    const want2 = { 'media/f/a.jpg': h(A2), 'media/f/c.jpg': h(C1), 'media/f/d.jpg': h(D1) };
    const want3 = { 'media/f/a.jpg': h(A3), 'media/f/b.jpg': h(B2), 'media/f/c.jpg': h(C2), 'media/f/d.jpg': h(D1) };
    expect(await at(T1, 'at-t1')).toEqual(want1);
    expect(await at(T2, 'at-t2')).toEqual(want2);
    expect(await at(T3, 'at-t3')).toEqual(want3);
    // the same from the cloud alone (its own saved_at times)
    expect(await at(T1, 'at-t1-cloud', 'cloud')).toEqual(want1);
    expect(await at(T2, 'at-t2-cloud', 'cloud')).toEqual(want2);
    // before the first backup: nothing
    expect(await at(T1 - 3_600_000, 'at-before')).toEqual({});
    // b's versions: its first content is listed as deleted
    const bv = svc.listVersions('media/f/b.jpg').filter((x) => x.target_id === 'nas');
    expect(bv[0]!.current && bv[0]!.sha256).toBe(h(B2));
    expect(bv.some((x) => x.deleted && x.sha256 === h(B1))).toBe(true);

    // in place, as it was at T1: b missing locally? no, b has new content: skipped unless asked
    const p = await svc.waitFor(svc.restoreFiles({ prefix: 'media/f/', at: T1 }).id, { timeoutMs: 30_000 });
    expect(p.files_skipped).toBe(3); // a, b, c hold other (backed-up) content; d did not exist then
    const p2 = await svc.waitFor(svc.restoreFiles({ prefix: 'media/f/', at: T1, overwrite: true }).id, { timeoutMs: 30_000 });
    expect(p2.files_done).toBe(3);
    const now = tree(r.media);
    expect(sha256(now['f/a.jpg']!)).toBe(h(A1));
    expect(sha256(now['f/b.jpg']!)).toBe(h(B1));
    expect(sha256(now['f/d.jpg']!)).toBe(h(D1)); // a file created later is left alone
  });

  it('a deleted file stays listed and restorable, with its deletion time', async () => {
    const r = await rig();
    const X = bytes(5000, 5);
    writeAll(r.media, { 'x.jpg': X });
    const engine = await engineFor(r, { watch: false });
    await synced(engine, 1);
    unlinkSync(join(r.media, 'x.jpg'));
    const before = Date.now();
    await engine.scanAll();
    const vs = restoreOf(engine).listVersions('media/x.jpg');
    expect(vs.filter((x) => x.target_id === 'nas')).toEqual([expect.objectContaining({ id: 'nas:current', current: true, deleted: true, sha256: sha256(X) })]);
    const row = engine.catalog.db.prepare(`SELECT saved_at FROM versions WHERE reason = 'deleted' AND target_id = 'nas'`).get() as { saved_at: number };
    expect(row.saved_at).toBeGreaterThanOrEqual(before);
    const p = await restoreOf(engine).waitFor(restoreOf(engine).restoreVersion('media/x.jpg', 'cloud:current').id, { timeoutMs: 20_000 });
    expect(p.files_done).toBe(1);
    expect(sha256(readFileSync(join(r.media, 'x.jpg')))).toBe(sha256(X));
  });
});

describe('retention prune on s3rver, simulated clock', () => {
  it('deletes exactly the version objects the policy says, never a current object, and expires old deletions', async () => {
    const r = await rig();
    const files = { 'keep.jpg': bytes(1000, 1), 'gone.jpg': bytes(1000, 2) };
    writeAll(r.media, files);
    const engine = await engineFor(r, { watch: false });
    await synced(engine, 2);
    const nas = backendOf(r.nasT);
    const now = Date.UTC(2030, 0, 15, 12, 0, 0);
    // 60 versions of keep.jpg, one every 2 days going back 120 days, as the uploader would leave them
    const rows: { id: number; key: string; saved_at: number }[] = [];
    for (let i = 1; i <= 60; i++) {
      const savedAt = now - i * 2 * DAY_MS + 5 * 3600_000;
      const content = bytes(300, 1000 + i);
      const key = versionKey('', '.triplicate/versions/', 'media', 'keep.jpg', savedAt, sha256(content));
      await nas.put(key, { size: content.length, open: () => Readable.from([content]) }, { sha256: sha256(content), mtimeMs: savedAt });
      engine.catalog.addVersion({ target_id: 'nas', root_id: 'media', rel_path: 'keep.jpg', object_key: key, sha256: sha256(content), size: content.length, mtime_ms: savedAt, saved_at: savedAt, reason: 'overwritten' });
    }
    // gone.jpg deleted locally 100 days before `now`
    unlinkSync(join(r.media, 'gone.jpg'));
    await engine.scanAll();
    engine.catalog.db.prepare(`UPDATE versions SET saved_at = ? WHERE reason = 'deleted'`).run(now - 100 * DAY_MS);
    engine.catalog.db.prepare(`UPDATE files SET first_seen = 0`).run();

    const svc = restoreOf(engine);
    const versionRows = svc.store.versionsOfTarget('nas').filter((x) => x.reason === 'overwritten');
    for (const x of versionRows) rows.push({ id: x.id, key: x.object_key, saved_at: x.saved_at });
    const plan = planPrune(svc.store.versionsOfTarget('nas').map((x) => ({ ...x, key: `${x.root_id}/${x.rel_path}` })), now, DEFAULT_RETENTION, new Map([['media/keep.jpg', { present: true, currentSynced: true, firstSeen: 0 }]]));
    const expectKeep = new Set(plan.keep.map((x) => x.object_key));
    // sanity: the policy keeps the 14 versions under 30 days (every 2 days) and some restore points, not all
    expect(expectKeep.size).toBeGreaterThan(14);
    expect(expectKeep.size).toBeLessThan(60);

    const dry = await svc.pruneNow({ now, dryRun: true, target: 'nas' });
    expect(dry.targets[0]!.versions_deleted).toBe(60 - expectKeep.size);
    expect((await listAll(nas, '.triplicate/versions/')).length).toBe(60); // dry run touched nothing

    const report = await svc.pruneNow({ now, target: 'nas' });
    expect(report.targets[0]!.versions_deleted).toBe(60 - expectKeep.size);
    expect(report.targets[0]!.files_expired).toBe(1);
    expect(new Set(await listAll(nas, '.triplicate/versions/'))).toEqual(expectKeep);
    const current = await listAll(nas, 'media/');
    expect(current).toEqual(['media/keep.jpg']); // gone.jpg expired (deleted 100 days ago), keep.jpg untouched
    expect(await listAll(backendOf(r.cloudT), 'media/')).toEqual(['media/gone.jpg', 'media/keep.jpg']); // the cloud was not pruned
    expect(engine.file('media/gone.jpg')!.copies.map((c) => c.target_id)).toEqual(['cloud']);
    // a second run on the same clock removes nothing more
    const again = await svc.pruneNow({ now, target: 'nas' });
    expect(again.targets[0]!.versions_deleted).toBe(0);
    void rows;
  });
});

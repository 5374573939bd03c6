// Verification against real s3rver targets: a damaged or missing object is found (by HEAD when its
// metadata no longer matches, by re-reading when only its bytes changed), uploaded again from the
// local file, and reported; the read sample rolls through the copies within its byte budget.
import { readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiClient } from '../../src/shared/client';
import { bytes, sha256, waitForStatus } from '../helpers/engine';
import { backendOf, engineFor, readAll, restoreOf, rig, s3rverObjectPath, synced, teardown, writeAll } from './helpers';

afterEach(teardown);

describe('verify', () => {
  it('finds a corrupted, a replaced and a missing object, re-queues their uploads and tells the operator', async () => {
    const r = await rig();
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 8; i++) files[`p/${i}.jpg`] = bytes(64_000 + i, 10 + i);
    writeAll(r.media, files);
    const engine = await engineFor(r, { watch: false });
    await synced(engine, 8);
    const nas = backendOf(r.nasT);
    const cloud = backendOf(r.cloudT);

    // NAS p/1: bytes flipped on disk (size and metadata unchanged: only a read finds it)
    const obj = s3rverObjectPath(r.nas, 'media/p/1.jpg');
    const buf = readFileSync(obj);
    buf[10] = buf[10]! ^ 0x55;
    writeFileSync(obj, buf);
    rmSync(`${obj}.md5`, { force: true });
    // NAS p/2: replaced by other bytes of another size, with the sha256 metadata kept (HEAD finds it)
    const evil = bytes(1000, 99);
    await nas.put('media/p/2.jpg', { size: evil.length, open: () => Readable.from([evil]) }, { sha256: sha256(files['p/2.jpg']!), mtimeMs: 1 });
    // cloud p/3: gone
    await cloud.delete('media/p/3.jpg');
    // p/4 is deleted locally, and its NAS copy damaged too: it cannot be uploaded again
    unlinkSync(join(r.media, 'p/4.jpg'));
    await engine.scanAll();
    const obj4 = s3rverObjectPath(r.nas, 'media/p/4.jpg');
    const b4 = readFileSync(obj4);
    b4[0] = b4[0]! ^ 1;
    writeFileSync(obj4, b4);

    const client = new ApiClient({ baseUrl: engine.endpoints.adminUrl!, token: engine.token });
    const report = await client.call('verifyNow', { body: { full: true } });
    expect(report.ok).toBe(false);
    const n = report.targets.find((t) => t.target_id === 'nas')!;
    const c = report.targets.find((t) => t.target_id === 'cloud')!;
    expect(n.checked).toBe(8);
    expect(n.damaged).toBe(3);
    expect(n.missing).toBe(0);
    expect(n.requeued).toBe(3); // p/4 from the cloud's good copy
    expect(n.files_read).toBe(7); // everything but the one HEAD already found
    expect(c.missing).toBe(1);
    expect(c.damaged).toBe(0);
    expect(c.requeued).toBe(1);
    expect(n.problems.map((p) => p.key).sort()).toEqual(['media/p/1.jpg', 'media/p/2.jpg', 'media/p/4.jpg']);
    expect(n.problems.find((p) => p.key === 'media/p/4.jpg')!.problem).toMatch(/no longer on this computer: Triplicate copies it again from another destination/);
    expect(report.summary).toMatch(/4 copies damaged or missing/);
    const ev = engine.catalog.events(0, 500).filter((e) => e.kind === 'verify-problem');
    expect(ev).toHaveLength(4);
    expect(ev.every((e) => e.level === 'error')).toBe(true);

    // the uploads run again by themselves and repair the targets
    // (p/4, gone from this computer, is copied from the cloud)
    await waitForStatus(engine, (s) => s.targets.nas!.synced_count === 8 && s.targets.cloud!.synced_count === 8 && s.pending === 0 && s.uploading === 0, 30_000, 'repaired');
    for (const k of ['p/1.jpg', 'p/2.jpg', 'p/4.jpg']) expect(sha256(await readAll(nas, `media/${k}`))).toBe(sha256(files[k]!));
    expect(sha256(await readAll(cloud, 'media/p/3.jpg'))).toBe(sha256(files['p/3.jpg']!));
    expect(engine.file('media/p/4.jpg')!.copies.find((x) => x.target_id === 'nas')!.state).toBe('synced');
    // and the next check is clean for what could be repaired
    const again = await restoreOf(engine).verifyNow({ full: true, target: 'cloud' });
    expect(again.ok).toBe(true);
  });

  it('reads a rolling sample within the byte budget, the longest-unread copies first', async () => {
    const r = await rig();
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 6; i++) files[`s/${i}.jpg`] = bytes(100_000, 40 + i);
    writeAll(r.media, files);
    // budget: two files per check
    const engine = await engineFor(r, { watch: false }, { ...r.cfg, targets: [r.nasT], restore: { verifyReadBytes: 200_000 } });
    await synced(engine, 6);
    const svc = restoreOf(engine);
    const readOrder: number[] = [];
    for (let round = 0; round < 3; round++) {
      const rep = await svc.verifyNow({});
      expect(rep.ok).toBe(true);
      expect(rep.targets[0]!.checked).toBe(6);
      expect(rep.targets[0]!.files_read).toBe(2);
      expect(rep.targets[0]!.bytes_read).toBe(200_000);
      const rows = engine.catalog.db.prepare(`SELECT file_id, read_at FROM copies WHERE target_id = 'nas' AND read_at IS NOT NULL ORDER BY read_at, file_id`).all() as { file_id: number }[];
      expect(rows).toHaveLength(Math.min(6, (round + 1) * 2));
      await new Promise((res) => setTimeout(res, 5));
      for (const x of rows) if (!readOrder.includes(x.file_id)) readOrder.push(x.file_id);
    }
    expect(new Set(readOrder).size).toBe(6); // three checks covered every copy once
    // the fourth starts over with the ones read longest ago
    const first = readOrder.slice(0, 2);
    await svc.verifyNow({});
    const newest = engine.catalog.db.prepare(`SELECT file_id FROM copies WHERE target_id = 'nas' ORDER BY read_at DESC, file_id LIMIT 2`).all() as { file_id: number }[];
    expect(newest.map((x) => x.file_id).sort()).toEqual(first.sort());
  });
});

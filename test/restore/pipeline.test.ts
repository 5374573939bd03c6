// A restore worker fetches its next file while the previous one finishes (fsync, rename, catalog):
// with restore.concurrency 1 a second job is under way when the first is counted, the transfers
// themselves never overlap, and every file still arrives whole and checked. The restore's progress
// counts the files being fetched, not those being finished (RestoreProgress.restoring).
import { unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { bytes, sha256 } from '../helpers/engine';
import { engineFor, restoreOf, rig, synced, teardown, tree, writeAll } from './helpers';

afterEach(teardown);

describe('restore worker pipeline', () => {
  it('starts the next file while the last one is being finished, one transfer at a time', async () => {
    const r = await rig();
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 6; i++) files[`p/${i}.jpg`] = bytes(200_000 + i, 300 + i);
    writeAll(r.media, files);
    const engine = await engineFor(r, { watch: false }, { ...r.cfg, restore: { concurrency: 1 } });
    await synced(engine, 6);
    for (const k of Object.keys(files)) unlinkSync(join(r.media, k));
    await engine.scanAll();

    const svc = restoreOf(engine);
    const inflight = (svc as unknown as { inflight: Map<number, { finishing: boolean }> }).inflight;
    const seen: { total: number; transferring: number; restoring?: { now: number; chosen: number; max: number } }[] = [];
    svc.onOutcome = () => {
      const all = [...inflight.values()];
      seen.push({ total: all.length, transferring: all.filter((j) => !j.finishing).length, restoring: svc.status().current?.restoring });
    };
    const done = await svc.waitFor((await svc.restoreMissing({})).id, { timeoutMs: 30_000 });
    expect(done.files_done).toBe(6);
    expect(Math.max(...seen.map((s) => s.total))).toBe(2); // one finishing, the next under way
    expect(Math.max(...seen.map((s) => s.transferring))).toBeLessThanOrEqual(1);
    // what the Restore page shows: the files being fetched, of the one the lane may run at once
    for (const s of seen) expect(s.restoring).toEqual({ now: s.transferring, chosen: 1, max: 1 });
    const now = tree(r.media);
    for (const [k, c] of Object.entries(files)) expect(sha256(now[k]!), k).toBe(sha256(c));
  });
});

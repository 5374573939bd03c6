// The server's "slow down" reaches the lane that heard it (jobs/adaptive.ts, core/targets.ts
// onFailure): a real engine sends to a real s3rver through the SigV4-checking proxy, which answers
// chosen requests itself with 503 SlowDown. Each lane's number of files at once is read before
// and after: a single-file run measures no epoch, so only a halving can move it.
import { unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { START_CONCURRENCY } from '../../src/main/engine/backends/presets';
import type { Engine } from '../../src/main/engine/engine';
import type { RestoreService } from '../../src/main/engine/restore/service';
import type { TargetLane } from '../../src/main/engine/sync/uploader';
import type { SyncService } from '../../src/main/engine/sync/service';
import { RESTORE_CEILING } from '../../src/shared/config';
import { bytes, FAST_SYNC, sha256, startEngine, waitForStatus, writeFile } from '../helpers/engine';
import { startS3 } from '../helpers/s3';
import { startSigV4Proxy, type SeenRequest } from '../helpers/sigv4-proxy';
import { useTeardown } from '../helpers/teardown';

const MiB = 1024 * 1024;
const td = useTeardown();

const SLOW_DOWN = { status: 503, body: '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>' };

/** An engine whose one destination ("nas") sits behind the proxy; `refuse` picks the requests answered 503 SlowDown (each once). */
async function rig(files: Record<string, Buffer>, extra: { multipartThreshold?: number; partSize?: number } = {}) {
  const base = td.dir('trip-congestion-');
  const s3 = td.add(await startS3({ buckets: ['nas'] }));
  const refused: string[] = [];
  const rule: { refuse: (req: SeenRequest) => boolean } = { refuse: () => false };
  const proxy = td.add(
    await startSigV4Proxy(s3.endpoint, { S3RVER: 'S3RVER' }, {
      answer: (req) => {
        const what = `${req.method} ${req.url}`;
        if (refused.includes(what) || !rule.refuse(req)) return undefined;
        refused.push(what);
        return SLOW_DOWN;
      },
    }),
  );
  const media = join(base, 'media');
  for (const [rel, b] of Object.entries(files)) writeFile(media, rel, b);
  const nas = { ...s3.target('nas', { label: 'NAS', ...extra }), endpoint: proxy.endpoint };
  const engine: Engine = td.add(await startEngine(join(base, 'data'), { roots: [{ id: 'media', label: 'Media', path: media }], targets: [nas], sync: FAST_SYNC }));
  const lane: TargetLane = engine.service<SyncService>('sync')!.lanes.get('nas')!;
  return { engine, media, lane, restore: engine.service<RestoreService>('restore')!, rule, refused };
}

describe('congestion heard by the lanes', () => {
  it('a part of a multipart upload answered 503 SlowDown halves the upload lane, and the upload goes through', async () => {
    const r = await rig({}, { multipartThreshold: 5 * MiB, partSize: 5 * MiB });
    expect(r.lane.adapt.level).toBe(START_CONCURRENCY);
    r.rule.refuse = (req) => req.method === 'PUT' && /[?&]partNumber=2(&|$)/.test(req.url);
    writeFile(r.media, 'big.bin', bytes(12 * MiB, 7));
    await r.engine.scanAll();
    await waitForStatus(r.engine, (s) => s.safe_files === 1, 60_000, 'the 12 MiB file backed up');
    expect(r.refused).toHaveLength(1); // part 2 was sent again, and taken
    expect(r.lane.adapt.level).toBe(START_CONCURRENCY / 2);
  }, 120_000);

  it("a 503 slows the lane whose request it answered: a restore's the restore workers, an upload's the upload lane, a visitor's download neither", async () => {
    const files = { 'r/back.bin': bytes(256 * 1024, 1), 'd/share.bin': bytes(256 * 1024, 2) };
    const r = await rig(files);
    await waitForStatus(r.engine, (s) => s.safe_files === 2, 60_000, 'two files backed up');
    // both gone from here: one comes back by a restore, the other is downloaded from the NAS
    for (const rel of Object.keys(files)) unlinkSync(join(r.media, rel));
    await r.engine.scanAll();
    await waitForStatus(r.engine, (s) => s.missing_local_files === 2, 30_000, 'two files missing here');
    const levels = () => ({ upload: r.lane.adapt.level, restore: r.restore.adapt.level });
    expect(levels()).toEqual({ upload: START_CONCURRENCY, restore: RESTORE_CEILING });
    // each request below is refused once, then taken
    r.rule.refuse = (req) => (req.method === 'GET' && req.url.startsWith('/nas/media/')) || (req.method === 'PUT' && req.url.includes('/u/up.bin'));

    const res = await fetch(`${r.engine.endpoints.adminUrl}/api/admin/download?key=${encodeURIComponent('media/d/share.bin')}&access_token=${r.engine.token}`);
    expect(res.status).toBe(200);
    expect(sha256(Buffer.from(await res.arrayBuffer()))).toBe(sha256(files['d/share.bin']));
    expect(r.refused).toEqual([expect.stringMatching(/^GET \/nas\/media\/d\/share\.bin/)]);
    expect(levels()).toEqual({ upload: START_CONCURRENCY, restore: RESTORE_CEILING });

    const run = r.restore.restoreFiles({ keys: ['media/r/back.bin'] });
    expect((await r.restore.waitFor(run.id, { timeoutMs: 60_000 })).state).toBe('done');
    expect(r.refused[1]).toMatch(/^GET \/nas\/media\/r\/back\.bin/);
    expect(levels()).toEqual({ upload: START_CONCURRENCY, restore: RESTORE_CEILING / 2 });

    writeFile(r.media, 'u/up.bin', bytes(64 * 1024, 3));
    await r.engine.scanAll();
    await waitForStatus(r.engine, (s) => s.safe_files === 3, 60_000, 'the new file backed up');
    expect(r.refused.filter((x) => x.startsWith('PUT '))).toHaveLength(1);
    expect(levels()).toEqual({ upload: START_CONCURRENCY / 2, restore: RESTORE_CEILING / 2 });
  }, 120_000);
});

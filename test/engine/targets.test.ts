// One backend per target, shared by uploads, restores, downloads and verification: one connection
// pool and one bandwidth budget. Measured on the wire: a counting TCP proxy sits between the
// engine and a real s3rver, and every byte either way goes through it.
import { unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { s3BackendsBuilt } from '../../src/main/engine/backends/s3';
import type { Engine } from '../../src/main/engine/engine';
import type { RestoreService } from '../../src/main/engine/restore/service';
import type { S3TargetConfig } from '../../src/shared/config';
import { FaultProxy } from '../robustness/fault-proxy';
import { bytes, FAST_SYNC, sha256, startEngine, waitFor, waitForStatus, writeFile } from '../helpers/engine';
import { useTeardown } from '../helpers/teardown';
import { startS3 } from '../helpers/s3';

const MiB = 1024 * 1024;
const td = useTeardown();

async function rig(): Promise<{ engine: Engine; proxy: FaultProxy; media: string; nas: S3TargetConfig; restore: RestoreService; files: Record<string, Buffer> }> {
  const base = td.dir('trip-targets-');
  const s3 = td.add(await startS3({ buckets: ['nas'] }));
  const proxy = td.add(new FaultProxy(s3.port));
  await proxy.start();
  const media = join(base, 'media');
  // big enough to be several seconds at the budget, under the multipart cutoff (one request each)
  const files = { 'r/back.bin': bytes(4 * MiB, 1), 'd/share.bin': bytes(4 * MiB, 2) };
  for (const [rel, b] of Object.entries(files)) writeFile(media, rel, b);
  const nas = { ...s3.target('nas', { label: 'NAS', priority: 1 }), endpoint: proxy.endpoint };
  const engine = td.add(await startEngine(join(base, 'data'), { roots: [{ id: 'media', label: 'Media', path: media }], targets: [nas], sync: FAST_SYNC }));
  await waitForStatus(engine, (s) => s.safe_files === 2, 60_000, 'two files backed up');
  // both gone from here: one comes back by a restore, the other is downloaded from the NAS
  for (const rel of Object.keys(files)) unlinkSync(join(media, rel));
  await engine.scanAll();
  await waitForStatus(engine, (s) => s.missing_local_files === 2, 30_000, 'two files missing here');
  return { engine, proxy, media, nas, restore: engine.service<RestoreService>('restore')!, files };
}

/** An upload, a restore and a download of the same target, all at once; resolves when all three are done. */
async function allThree(r: Awaited<ReturnType<typeof rig>>, up: Buffer): Promise<void> {
  const { engine, media, restore, files } = r;
  writeFile(media, 'u/up.bin', up);
  const scanned = engine.scanAll();
  const run = await restore.restoreFiles({ keys: ['media/r/back.bin'] });
  const download = fetch(`${engine.endpoints.adminUrl}/api/admin/download?key=${encodeURIComponent('media/d/share.bin')}&access_token=${engine.token}`).then(async (res) => {
    expect(res.status).toBe(200);
    return Buffer.from(await res.arrayBuffer());
  });
  await scanned;
  const [got, done] = await Promise.all([download, restore.waitFor(run.id, { timeoutMs: 120_000 })]);
  await waitForStatus(engine, (s) => s.safe_files === 3 && s.pending === 0 && s.uploading === 0, 120_000, 'the upload done');
  expect(sha256(got)).toBe(sha256(files['d/share.bin']!));
  expect(done.state).toBe('done');
  expect(done.files_done).toBe(1);
}

describe('one backend per target', () => {
  it('a 2 MB/s budget holds for an upload, a restore and a download at once', async () => {
    const r = await rig();
    const RATE = 2 * MiB;
    // the budget comes with a config change, as an operator sets it
    await r.engine.applyConfig({ ...r.engine.cfg, targets: [{ ...r.nas, bandwidth: { defaultBytesPerSecond: RATE, schedule: [] } }] });
    const before = r.proxy.stats.bytesUp + r.proxy.stats.bytesDown;
    const t0 = performance.now();
    await allThree(r, bytes(4 * MiB, 3));
    const seconds = (performance.now() - t0) / 1000;
    const moved = r.proxy.stats.bytesUp + r.proxy.stats.bytesDown - before;
    const rate = moved / seconds;
    console.log(`shared budget: ${(moved / MiB).toFixed(1)} MiB in ${seconds.toFixed(2)} s = ${(rate / MiB).toFixed(2)} MiB/s (${(rate / RATE).toFixed(2)}x the budget)`);
    // the three transfers went over the wire (12 MiB of bodies): the test measures something
    expect(moved).toBeGreaterThanOrEqual(12 * MiB);
    // one budget for all three: a loaded machine only makes this smaller
    expect(rate).toBeLessThanOrEqual(1.3 * RATE);
  }, 180_000);

  it('uploads, restores, downloads and verification use the one backend the engine built for the target', async () => {
    const r = await rig();
    await waitFor(() => (s3BackendsBuilt.get('nas') ?? 0) > 0, 10_000, 'the backend of the NAS');
    const built = s3BackendsBuilt.get('nas');
    await allThree(r, bytes(1 * MiB, 4));
    const report = await r.restore.verifyNow({ full: true });
    expect(report.ok).toBe(true);
    // nothing built another backend (another pool, another throttle) for the NAS
    expect(s3BackendsBuilt.get('nas')).toBe(built);
    expect(r.engine.ctx.targets.builtFor('nas')).toBe(1);
  }, 180_000);
});

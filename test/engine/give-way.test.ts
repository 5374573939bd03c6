// A cloud destination gives way to a nearby one while the engine's one thread cannot keep up with
// both (sync/service.ts givesWayTo, issue 20 (d)): the NAS's uploads are limited by this computer,
// the cloud's by its link, so the cloud keeps one file in flight and the NAS goes first. Real
// engine, two s3rvers; the thread is really kept busy (a spin between its callbacks), and the NAS
// is kept sending by a bandwidth budget, so "both busy" lasts long enough to be seen.
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import type { SyncService } from '../../src/main/engine/sync/service';
import { GIVE_WAY_LEVEL } from '../../src/main/engine/sync/uploader';
import type { TargetStatus } from '../../src/shared/api';
import { bytes, FAST_SYNC, startEngine, waitFor, waitForStatus, writeFile } from '../helpers/engine';
import { startS3 } from '../helpers/s3';
import { useTeardown } from '../helpers/teardown';

const td = useTeardown();
const FILES = 24;

describe('a cloud destination gives way to a nearby one', () => {
  it('sends one file at a time while the NAS sends and the engine thread is saturated, says so, and catches up after', async () => {
    const base = td.dir('trip-give-way-');
    const nasS3 = td.add(await startS3({ buckets: ['nas'] }));
    const cloudS3 = td.add(await startS3({ buckets: ['cloud'] }));
    const media = join(base, 'media');
    for (let i = 0; i < FILES; i++) writeFile(media, `shoot/${String(i).padStart(2, '0')}.jpg`, bytes(32 * 1024, i + 1));
    // 24 x 32 KB at 64 KB/s: the NAS lane has uploads in flight for about 12 s
    const nas = nasS3.target('nas', { label: 'NAS', preset: 'minio', bandwidth: { defaultBytesPerSecond: 64_000, schedule: [] } });
    const cloud = cloudS3.target('cloud', { label: 'Cloud', preset: 'other' });
    const engine = td.add(await startEngine(join(base, 'data'), { roots: [{ id: 'media', label: 'Media', path: media }], targets: [nas], sync: FAST_SYNC }));
    const sync = engine.service<SyncService>('sync')!;
    await waitFor(() => (sync.lanes.get('nas')?.activeUploads ?? 0) > 0, 30_000, 'the NAS sending');

    // the engine's thread saturated: a spin fills nearly all the time between its callbacks
    const watch = { on: false, sawCloud: 0, most: 0 };
    const spinner = setInterval(() => {
      const end = performance.now() + 40;
      while (performance.now() < end);
      const nasBusy = (sync.lanes.get('nas')?.activeUploads ?? 0) > 0;
      const c = sync.lanes.get('cloud')?.activeUploads ?? 0;
      if (watch.on && nasBusy && c > 0) {
        watch.sawCloud++;
        watch.most = Math.max(watch.most, c);
      }
    }, 1);
    let said: TargetStatus['sending'] | undefined;
    try {
      // the cloud is added while the NAS sends; its first claims come before the load was measured
      // (the question starts the measuring), so it gives way once a window said "saturated" and
      // the files it had begun are up
      await engine.applyConfig({ ...engine.cfg, targets: [nas, cloud] }, { base: engine.cfg });
      await waitFor(
        () => {
          said = sync.status().targets.cloud?.sending;
          return (said?.after !== undefined && said.now === GIVE_WAY_LEVEL) || (sync.lanes.get('nas')?.activeUploads ?? 0) === 0;
        },
        60_000,
        'the cloud giving way',
      );
      expect(said).toMatchObject({ now: 1, after: 'NAS' });
      // from then on, while the NAS sends, the cloud goes on one file at a time
      watch.on = true;
      await waitFor(() => watch.sawCloud >= 3 || (sync.lanes.get('nas')?.activeUploads ?? 0) === 0, 60_000, 'the cloud sending while the NAS does');
    } finally {
      clearInterval(spinner);
    }
    expect(watch.sawCloud).toBeGreaterThanOrEqual(3);
    expect(watch.most).toBe(GIVE_WAY_LEVEL);

    // once the thread is free again, both finish every file
    await waitForStatus(engine, (s) => s.targets.nas?.synced_count === FILES && s.targets.cloud?.synced_count === FILES, 120_000, 'every file on both');
    expect(sync.status().targets.cloud?.sending?.after).toBeUndefined();
  }, 180_000);
});

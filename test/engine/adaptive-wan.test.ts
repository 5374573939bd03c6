// An upload lane's number of files in flight (jobs/adaptive.ts) on a far link: the engine sends
// small photos through the benchmarks' WAN model (bench/lib/wan-proxy.mjs: a round-trip time on
// every request) to a real s3rver. Each file waits a round trip, so more files in flight carry
// more: the level rises above where it starts. Then the server answers every other upload with
// 503 SlowDown (a fault proxy between the WAN model and s3rver): the level comes down to half or
// less; once the server takes everything again, every file arrives.
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startWanProxy } from '../../bench/lib/wan-proxy.mjs';
import { START_CONCURRENCY } from '../../src/main/engine/backends/presets';
import type { SyncService } from '../../src/main/engine/sync/service';
import { FaultProxy } from '../robustness/fault-proxy';
import { bytes, cleanup, startEngine, tempDir, waitFor, waitForStatus, writeFile } from '../helpers/engine';
import { startS3 } from '../helpers/s3';

const closers: (() => Promise<unknown> | void)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

/** `n` photos of 8 KB under media/<dir>/. */
function photos(media: string, dir: string, n: number, seed: number): void {
  for (let i = 0; i < n; i++) writeFile(media, `${dir}/IMG_${i}.jpg`, bytes(8 * 1024, seed + i));
}

describe('adaptive concurrency through the WAN model', () => {
  it('rises above its start on a far link, and comes down when the server answers 503 SlowDown', async () => {
    const base = tempDir('trip-adapt-wan-');
    closers.push(() => cleanup(base));
    const s3 = await startS3({ buckets: ['cloud'] });
    closers.push(() => s3.dispose());
    const fault = new FaultProxy(s3.port);
    await fault.start();
    closers.push(() => fault.stop());
    // far (200 ms a round trip) and wide: the round trips, not the link's rate, are the limit
    const wan = await startWanProxy({ upstreamPort: fault.port, link: { name: 'far', rttMs: 200, upBytesPerSecond: 100e6, downBytesPerSecond: 100e6 } });
    closers.push(() => wan.close());
    const media = join(base, 'media');
    photos(media, 'a', 300, 1);
    // the cap keeps this test's s3rver and proxy light; the lane chooses below it
    const cloud = { ...s3.target('cloud', { label: 'Cloud', concurrency: 16 }), endpoint: wan.endpoint };
    const engine = await startEngine(join(base, 'data'), { roots: [{ id: 'media', label: 'Media', path: media }], targets: [cloud] }, { watch: false });
    closers.push(() => engine.stop());
    const lane = engine.service<SyncService>('sync')!.lanes.get('cloud')!;
    let highest = lane.adapt.level;
    engine.bus.on((e) => {
      if (e.type === 'copy') highest = Math.max(highest, lane.adapt.level);
    });
    expect(lane.adapt.level).toBe(START_CONCURRENCY);
    await waitForStatus(engine, (s) => s.safe_files === 300, 120_000, '300 photos backed up');
    expect(highest).toBeGreaterThan(START_CONCURRENCY);
    // the status says it, with the cap
    const st = engine.service<SyncService>('sync')!.status().targets.cloud!;
    expect(st.sending).toMatchObject({ chosen: lane.adapt.level, max: 16 });

    // every other upload is refused with 503 SlowDown
    await fault.setMode({ kind: 'http5xx', status: 503, every: 2, match: /^PUT / });
    const before = lane.adapt.level;
    let lowest = before;
    engine.bus.on((e) => {
      if (e.type === 'copy') lowest = Math.min(lowest, lane.adapt.level);
    });
    photos(media, 'b', 200, 1000);
    await engine.scanAll();
    await waitFor(() => lowest <= Math.floor(before / 2), 120_000, `the level to come down from ${before}`);
    expect(fault.stats.injected5xx).toBeGreaterThan(0);
    // the server recovers: every file arrives
    await fault.setMode({ kind: 'pass' });
    await waitForStatus(engine, (s) => s.safe_files === 500, 120_000, 'the 200 new photos backed up too');
  }, 300_000);
});

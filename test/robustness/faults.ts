// Network faults between the engine and its targets: a FaultProxy in front of each s3rver.
//   - one target down (refused; in the full mode also blackholed, answering 503, and trickling at
//     50 KB/s) for a while: the other keeps >= 80% of the throughput it had with both up, and the
//     down one catches up by itself once the link is back;
//   - a flapping link (up and down every few seconds, with resets) while files sync;
//   - a reset in the middle of every multipart upload, on both targets;
//   - 503 answers to every fourth request.
// Each scenario ends with every file read back from both targets (GET + sha256) and no copy failed.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { SyncStatus } from '../../src/shared/api';
import type { S3TargetConfig } from '../../src/shared/config';
import { defaultConfigPath, saveConfig } from '../../src/main/engine/config/config';
import { FaultProxy, type FaultMode } from './fault-proxy';
import { MiB, ServeChild, content, few, multipartLeftovers, rm, rng, s3Target, sleep, startS3Child, tempDir, until, verifyTree, type S3Child, type SuiteContext } from './lib';

const SUITE = 'faults';

interface Rig {
  base: string;
  media: string;
  data: string;
  s3: S3Child[];
  proxies: FaultProxy[];
  targets: S3TargetConfig[];
  child: ServeChild;
  seq: number;
}

async function rig(ctx: SuiteContext, name: string): Promise<Rig> {
  const base = tempDir(`trip-rb-${name}-`);
  const media = join(base, 'media');
  mkdirSync(media, { recursive: true });
  const data = join(base, 'data');
  const s3 = [await startS3Child(join(base, 's3a'), ['nas']), await startS3Child(join(base, 's3b'), ['cloud'])];
  const proxies = [new FaultProxy(s3[0]!.port, '127.0.0.1', ctx.seed), new FaultProxy(s3[1]!.port, '127.0.0.1', ctx.seed + 1)];
  for (const p of proxies) await p.start();
  const targets = [
    s3Target('nas', proxies[0]!.endpoint, 'nas', { priority: 1 }),
    s3Target('cloud', proxies[1]!.endpoint, 'cloud', { priority: 2, preset: 'r2', region: 'auto' }),
  ];
  saveConfig(defaultConfigPath(data), {
    roots: [{ id: 'media', label: 'Media', path: media }],
    targets,
    sync: { stabilityMs: 300, backoffSeconds: [1, 2, 2, 3, 3], leaseSeconds: 30, rescanIntervalMinutes: 0, guard: { enabled: false } },
    media: { transcode: false },
    restore: { verifyIntervalHours: 0, pruneIntervalHours: 0 },
    server: { adminPort: 0, downloadPort: 0 },
  });
  const child = new ServeChild(data);
  await child.waitReady();
  return { base, media, data, s3, proxies, targets, child, seq: 0 };
}

async function teardown(r: Rig | undefined, ctx: SuiteContext): Promise<void> {
  if (!r) return;
  if (r.child.alive()) await r.child.stop(15_000);
  for (const p of r.proxies) await p.stop();
  for (const s of r.s3) await s.stop();
  if (!ctx.keep) rm(r.base);
}

/** Write n files of `size` bytes (+ a little) under dir; returns the bytes written. */
function batch(r: Rig, dir: string, n: number, size: number): number {
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    const p = join(r.media, dir, `f-${String(i).padStart(4, '0')}.dat`);
    mkdirSync(dirname(p), { recursive: true });
    const sz = size + (i % 7) * 1024;
    writeFileSync(p, content(sz, ++r.seq * 31 + 7));
    bytes += sz;
  }
  return bytes;
}

async function status(r: Rig): Promise<SyncStatus> {
  return r.child.client.call('status');
}

/** Seconds until target `id` has `count` synced copies (bounded). */
async function timeUntilSynced(r: Rig, id: string, count: number, timeoutMs: number): Promise<number> {
  const t0 = Date.now();
  await until(async () => ((await status(r)).targets[id]?.synced_count ?? 0) >= count, timeoutMs, `${id} to hold ${count} copies`, 100);
  return (Date.now() - t0) / 1000;
}

async function idle(r: Rig, timeoutMs: number): Promise<SyncStatus> {
  let stable = 0;
  return until(
    async () => {
      const s = await status(r);
      stable = s.pending + s.uploading === 0 && !s.scanning ? stable + 1 : 0;
      return stable >= 3 ? s : undefined;
    },
    timeoutMs,
    'the engine to finish',
    300,
  );
}

async function verifyAll(ctx: SuiteContext, r: Rig, what: string): Promise<number> {
  const s = await idle(r, ctx.mode === 'full' ? 600_000 : 120_000);
  ctx.report.check(SUITE, `${what}: everything synced, nothing failed`, s.failed === 0 && s.pending === 0, `${s.safe_files} files safe; ${s.summary}`);
  for (const p of r.proxies) await p.setMode({ kind: 'pass' });
  const v = await verifyTree(r.media, 'media', r.targets);
  ctx.report.check(SUITE, `${what}: every file read back byte-exact from both targets`, v.problems.length === 0, v.problems.length ? few(v.problems) : `${v.files} files, ${(v.bytes / MiB).toFixed(1)} MiB`);
  const orphans = [multipartLeftovers(r.s3[0]!.dir, 'nas'), multipartLeftovers(r.s3[1]!.dir, 'cloud')].flatMap((l) => l.orphans);
  ctx.report.check(SUITE, `${what}: no unfinished multipart upload left`, orphans.length === 0, orphans.length ? few(orphans) : undefined);
  return v.bytes;
}

function injected(r: Rig): number {
  return r.proxies.reduce((a, p) => a + p.stats.refused + p.stats.resets + p.stats.injected5xx, 0);
}

export interface FaultFigures {
  faults_injected: number;
  scenarios: number;
  bytes_verified: number;
  throughput_ratio: Record<string, number>;
}

export async function networkFaults(ctx: SuiteContext): Promise<void> {
  const { report, mode } = ctx;
  const full = mode === 'full';
  const fig: FaultFigures = { faults_injected: 0, scenarios: 0, bytes_verified: 0, throughput_ratio: {} };
  report.log('\n== network faults (a TCP fault proxy in front of each target)');

  // ---- one target down: the other keeps its pace, the down one catches up -----------------------
  const downModes: { name: string; mode: FaultMode; minDownS: number }[] = [{ name: 'refused', mode: { kind: 'refuse' }, minDownS: full ? 120 : 0 }];
  if (full) {
    downModes.push({ name: 'blackholed', mode: { kind: 'blackhole' }, minDownS: 90 });
    downModes.push({ name: 'answering 503', mode: { kind: 'http5xx', status: 503, probability: 1 }, minDownS: 30 });
    downModes.push({ name: 'trickling at 50 KB/s', mode: { kind: 'trickle', bytesPerSecond: 50_000 }, minDownS: 30 });
  }
  const n = full ? 240 : 80;
  const size = 512 * 1024;
  for (const dm of downModes) {
    let r: Rig | undefined;
    try {
      r = await rig(ctx, 'down');
      // warm-up so both phases start from a running engine with open connections
      batch(r, 'warm', 10, 64 * 1024);
      await timeUntilSynced(r, 'cloud', 10, 60_000);
      await timeUntilSynced(r, 'nas', 10, 60_000);
      // phase 1: both up
      batch(r, 'both-up', n, size);
      const tBoth = await timeUntilSynced(r, 'nas', 10 + n, 300_000);
      await timeUntilSynced(r, 'cloud', 10 + n, 300_000);
      // phase 2: cloud down
      await r.proxies[1]!.setMode(dm.mode);
      const downAt = Date.now();
      batch(r, 'one-down', n, size);
      const tDown = await timeUntilSynced(r, 'nas', 10 + 2 * n, 300_000);
      const ratio = tBoth / tDown;
      fig.throughput_ratio[dm.name] = Math.round(ratio * 100) / 100;
      report.check(
        SUITE,
        `cloud ${dm.name}: the NAS keeps >= 80% of its throughput`,
        ratio >= 0.8,
        `${n} files of ${size / 1024} KiB to the NAS: ${tBoth.toFixed(1)} s with both up, ${tDown.toFixed(1)} s with the cloud ${dm.name} (${(ratio * 100).toFixed(0)}%)`,
      );
      const s = await status(r);
      const cloudSynced = s.targets.cloud?.synced_count ?? 0;
      report.check(SUITE, `cloud ${dm.name}: its files wait, none is charged or failed`, s.failed === 0 && cloudSynced <= 10 + n + (dm.mode.kind === 'trickle' ? n : 0), `cloud ${s.targets.cloud?.state}, ${cloudSynced} synced; "${s.summary}"`);
      const left = dm.minDownS * 1000 - (Date.now() - downAt);
      if (left > 0) await sleep(left);
      const downFor = (Date.now() - downAt) / 1000;
      await r.proxies[1]!.setMode({ kind: 'pass' });
      const tCatch = await timeUntilSynced(r, 'cloud', 10 + 2 * n, full ? 300_000 : 120_000).catch(() => NaN);
      report.check(SUITE, `cloud ${dm.name} for ${downFor.toFixed(0)} s: it catches up by itself once back`, Number.isFinite(tCatch), Number.isFinite(tCatch) ? `caught up ${n} files in ${tCatch.toFixed(1)} s` : 'it did not');
      fig.bytes_verified += await verifyAll(ctx, r, `cloud ${dm.name}`);
      fig.faults_injected += injected(r) + (dm.mode.kind === 'blackhole' || dm.mode.kind === 'trickle' ? 1 : 0);
      fig.scenarios++;
    } catch (e) {
      report.check(SUITE, `cloud ${dm.name}`, false, (e as Error).message);
    } finally {
      await teardown(r, ctx);
    }
  }

  // ---- a flapping link ------------------------------------------------------------------------
  {
    let r: Rig | undefined;
    try {
      r = await rig(ctx, 'flap');
      const rr = rng(ctx.seed + 5);
      batch(r, 'flap', full ? 300 : 100, 128 * 1024);
      for (let i = 0; i < 2; i++) writeFileSync(join(r.media, 'flap', `big-${i}.mp4`), content(12 * MiB + i, 900 + i));
      const flapFor = full ? 60_000 : 20_000;
      const end = Date.now() + flapFor;
      let flaps = 0;
      while (Date.now() < end) {
        await sleep(rr.int(1000, 3000));
        const bad: FaultMode = rr.pick([{ kind: 'refuse' }, { kind: 'reset', afterBytes: rr.int(1000, 300_000) }, { kind: 'http5xx', probability: 0.5 }] as FaultMode[]);
        const which = rr.pick([[0], [1], [0, 1]]);
        for (const i of which) await r.proxies[i]!.setMode(bad);
        if (rr.chance(0.5)) for (const i of which) r.proxies[i]!.resetAll();
        flaps++;
        await sleep(rr.int(500, 2000));
        for (const p of r.proxies) await p.setMode({ kind: 'pass' });
      }
      report.log(`  flapped ${flaps} times in ${flapFor / 1000} s`);
      fig.bytes_verified += await verifyAll(ctx, r, `a link flapping ${flaps} times`);
      fig.faults_injected += injected(r) + flaps;
      fig.scenarios++;
    } catch (e) {
      report.check(SUITE, 'a flapping link', false, (e as Error).message);
    } finally {
      await teardown(r, ctx);
    }
  }

  // ---- a reset in the middle of every multipart upload -------------------------------------------
  {
    let r: Rig | undefined;
    try {
      r = await rig(ctx, 'mpu');
      for (const p of r.proxies) p.resetMultipartOnce(2 * MiB);
      const k = full ? 6 : 3;
      for (let i = 0; i < k; i++) {
        mkdirSync(join(r.media, 'video'), { recursive: true });
        writeFileSync(join(r.media, 'video', `clip-${i}.mp4`), content((full ? 8 + 4 * i : 11) * MiB + i * 777, 4000 + i));
      }
      fig.bytes_verified += await verifyAll(ctx, r, `a reset in the middle of each of ${k} multipart uploads`);
      const resets = r.proxies.map((p) => p.stats.multipartResets);
      report.check(SUITE, 'every multipart upload was cut once on each target', resets.every((x) => x === k), `resets: NAS ${resets[0]}, cloud ${resets[1]} (of ${k} each)`);
      fig.faults_injected += injected(r);
      fig.scenarios++;
    } catch (e) {
      report.check(SUITE, 'a reset in the middle of every multipart upload', false, (e as Error).message);
    } finally {
      await teardown(r, ctx);
    }
  }

  // ---- 503 for every fourth request ---------------------------------------------------------------
  {
    let r: Rig | undefined;
    try {
      r = await rig(ctx, '5xx');
      for (const p of r.proxies) await p.setMode({ kind: 'http5xx', status: 503, every: 4 });
      batch(r, 'slow-down', full ? 200 : 60, 32 * 1024);
      writeFileSync(join(r.media, 'slow-down', 'big.mp4'), content(11 * MiB, 77));
      await idle(r, full ? 300_000 : 120_000);
      const n503 = r.proxies.reduce((a, p) => a + p.stats.injected5xx, 0);
      fig.bytes_verified += await verifyAll(ctx, r, `503 on every fourth request (${n503} injected)`);
      fig.faults_injected += injected(r);
      fig.scenarios++;
    } catch (e) {
      report.check(SUITE, '503 on every fourth request', false, (e as Error).message);
    } finally {
      await teardown(r, ctx);
    }
  }

  for (const [k, v] of Object.entries(fig)) report.figure(SUITE, k, v);
}

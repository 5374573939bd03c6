// Scale: many tiny files in one folder. Measures the first scan, an unchanged rescan against
// `find` listing the same tree, idle CPU while watching, the status endpoint and the Activity
// listing (admin API) latency, and, with fullSync, the engine's memory (RSS) during a full sync to
// two s3rver targets. Used by bench/scale.mjs (100,000 files, full sync) and by the robustness full
// mode (20,000 files, no full sync).
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultConfigPath, saveConfig } from '../../src/main/engine/config/config';
import { createEngine } from '../../src/main/engine/engine';
import { silenceConsole } from '../../src/main/engine/log';
import type { MediaService } from '../../src/main/engine/media/service';
import { ApiClient } from '../../src/shared/client';
import { ServeChild, few, percentiles, rm, s3Target, sleep, startS3Child, tempDir, until, type S3Child, type SuiteContext } from './lib';

/** A JPEG's first bytes: the burst guard holds back a .jpg without them as a damaged photo. */
const JPEG_START = Buffer.from([0xff, 0xd8, 0xff, 0xe0]);

export interface ScaleOptions {
  files: number;
  fullSync: boolean;
  log?: (line: string) => void;
  keep?: boolean;
}

export interface Latency {
  p50: number;
  p95: number;
  max: number;
  n: number;
}

export interface ScaleResult {
  files: number;
  generate_s: number;
  first_scan_s: number;
  /** The media service's picture reading (sharp metadata) left after the first scan. */
  media_read_s: number;
  rescan_s: number;
  find_s: number;
  rescan_vs_find: number;
  idle_cpu_pct: number;
  status_ms: Latency;
  activity_ms: Record<string, Latency>;
  sync?: { seconds: number; files_per_s: number; rss_peak_mb: number; rss_samples: number; status_busy_ms: Latency; activity_busy_ms: Latency; done: boolean };
}

const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function lat(xs: number[]): Latency {
  const p = percentiles(xs);
  return { p50: round(p.p50, 1), p95: round(p.p95, 1), max: round(p.max, 1), n: p.n };
}

async function timeIt<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t = performance.now();
  const value = await fn();
  return { ms: performance.now() - t, value };
}

/** Latency of one admin API call, measured end to end over HTTP. */
async function sampleCalls(client: ApiClient, n: number, gapMs: number, call: (c: ApiClient) => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    out.push((await timeIt(() => call(client))).ms);
    if (gapMs) await sleep(gapMs);
  }
  return out;
}

/** N tiny files, 1,000 per folder, written as fast as the file system takes them. */
export function generateTree(root: string, n: number): void {
  for (let d = 0; d * 1000 < n; d++) {
    const dir = join(root, `${2000 + Math.floor(d / 12)}`, `${String((d % 12) + 1).padStart(2, '0')}-event-${d}`);
    mkdirSync(dir, { recursive: true });
    for (let i = d * 1000; i < Math.min(n, (d + 1) * 1000); i++) writeFileSync(join(dir, `IMG_${String(i).padStart(6, '0')}.jpg`), Buffer.concat([JPEG_START, Buffer.from(`tiny photo ${i}\n`)]));
  }
}

const ACTIVITY_QUERIES: Record<string, (n: number) => Record<string, string | number>> = {
  'newest 100': () => ({ limit: 100 }),
  'pending on nas': () => ({ limit: 100, state: 'pending', target: 'nas' }),
  'synced anywhere': () => ({ limit: 100, state: 'synced' }),
  'search "IMG_0042"': () => ({ limit: 100, q: 'IMG_0042' }),
  'present, page in the middle': (n) => ({ limit: 100, local: 'present', offset: Math.floor(n / 2) }),
};

export async function measureScale(opts: ScaleOptions): Promise<ScaleResult> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const base = tempDir('trip-scale-');
  const media = join(base, 'media');
  const data = join(base, 'data');
  let s3: S3Child[] = [];
  try {
    const t = performance.now();
    generateTree(media, opts.files);
    const generate_s = (performance.now() - t) / 1000;
    log(`  ${opts.files.toLocaleString('en-US')} files written in ${generate_s.toFixed(1)} s`);
    s3 = [await startS3Child(join(base, 's3a'), ['nas']), await startS3Child(join(base, 's3b'), ['cloud'])];
    saveConfig(defaultConfigPath(data), {
      roots: [{ id: 'media', label: 'Media', path: media }],
      targets: [s3Target('nas', s3[0]!.endpoint, 'nas', { priority: 1, concurrency: 8 }), s3Target('cloud', s3[1]!.endpoint, 'cloud', { priority: 2, concurrency: 8 })],
      sync: { stabilityMs: 0, rescanIntervalMinutes: 0, guard: { enabled: false } },
      media: { transcode: false },
      restore: { verifyIntervalHours: 0, pruneIntervalHours: 0 },
      server: { adminPort: 0, downloadPort: 0 },
    });

    // ---- in this process: scans, idle CPU, API latency (uploads paused: only the catalog works) ----
    silenceConsole();
    const engine = createEngine({ dataDir: data, adminPort: 0, downloadPort: 0, scanOnStart: false });
    engine.setPausedAll(true);
    let first_scan_s = 0;
    let media_read_s = 0;
    let rescan_s = 0;
    let find_s = 0;
    let idle_cpu_pct = 0;
    let status_ms: Latency;
    const activity_ms: Record<string, Latency> = {};
    try {
      const ep = await engine.start();
      first_scan_s = (await timeIt(() => engine.scanAll())).ms / 1000;
      log(`  first scan (hash, catalog, queue for 2 destinations): ${first_scan_s.toFixed(1)} s`);
      // The first scan leaves the media service reading every new picture's size and capture date
      // (sharp) in the background. An unchanged rescan is what a quiet engine does every few hours:
      // measure it once that backlog is done, not while it competes for the same 2 cores.
      media_read_s = (await timeIt(() => engine.service<MediaService>('media')!.probesDrained())).ms / 1000;
      log(`  pictures read for the browse views (size, capture date) after the scan: ${media_read_s.toFixed(1)} s more`);
      // and let the first scan's aftermath settle (its garbage, the WAL checkpoint) before timing
      await sleep(2000);
      const rescans: number[] = [];
      const finds: number[] = [];
      for (let i = 0; i < 5; i++) {
        // alternate, so neither side always runs on the warmer cache
        const f = () => {
          const t0 = performance.now();
          const r = spawnSync('sh', ['-c', `find "$1" -type f -printf '%s %T@\\n' > /dev/null`, 'sh', media]);
          if (r.status !== 0) throw new Error(`find failed: ${r.stderr}`);
          finds.push((performance.now() - t0) / 1000);
        };
        if (i % 2) f();
        const rep = await timeIt(() => engine.scanAll());
        rescans.push(rep.ms / 1000);
        if (rep.value[0]!.files_new + rep.value[0]!.files_changed !== 0) throw new Error('the unchanged rescan found changes');
        if (!(i % 2)) f();
      }
      rescan_s = med(rescans);
      find_s = med(finds);
      log(`  unchanged rescan ${rescan_s.toFixed(2)} s, find ${find_s.toFixed(2)} s (${(rescan_s / find_s).toFixed(2)}x)`);

      await sleep(2000);
      const c0 = process.cpuUsage();
      const w0 = performance.now();
      await sleep(10_000);
      const c = process.cpuUsage(c0);
      idle_cpu_pct = ((c.user + c.system) / 1000 / (performance.now() - w0)) * 100;
      log(`  idle CPU while watching ${opts.files.toLocaleString('en-US')} files: ${idle_cpu_pct.toFixed(2)}% of one core`);

      const client = new ApiClient({ baseUrl: ep.adminUrl, token: ep.token });
      // 260 ms apart: past the status cache (250 ms), so every call computes
      status_ms = lat(await sampleCalls(client, 30, 260, (cl) => cl.call('status')));
      log(`  status endpoint: p50 ${status_ms.p50} ms, p95 ${status_ms.p95} ms`);
      for (const [name, q] of Object.entries(ACTIVITY_QUERIES)) {
        activity_ms[name] = lat(await sampleCalls(client, 12, 0, (cl) => cl.call('queue', { query: q(opts.files) as never })));
        log(`  Activity "${name}": p50 ${activity_ms[name]!.p50} ms, p95 ${activity_ms[name]!.p95} ms`);
      }
    } finally {
      await engine.stop();
    }
    const result: ScaleResult = {
      files: opts.files,
      generate_s: round(generate_s, 1),
      first_scan_s: round(first_scan_s, 1),
      media_read_s: round(media_read_s, 1),
      rescan_s: round(rescan_s),
      find_s: round(find_s),
      rescan_vs_find: round(rescan_s / find_s),
      idle_cpu_pct: round(idle_cpu_pct),
      status_ms,
      activity_ms,
    };

    // ---- a full sync by `triplicate serve`: RSS, and API latency while it works ----------------
    if (opts.fullSync) {
      const child = new ServeChild(data);
      await child.waitReady();
      let peak = 0;
      let samples = 0;
      const sampler = setInterval(() => {
        peak = Math.max(peak, child.rss());
        samples++;
      }, 250);
      const t0 = performance.now();
      await child.client.call('resumeAll', { body: {} });
      const busyStatus: number[] = [];
      const busyActivity: number[] = [];
      let done = false;
      try {
        await until(
          async () => {
            busyStatus.push((await timeIt(() => child.client.call('status'))).ms);
            busyActivity.push((await timeIt(() => child.client.call('queue', { query: { limit: 100, state: 'pending' } as never }))).ms);
            const s = await child.client.call('status');
            if (busyStatus.length % 40 === 0) log(`    … ${s.safe_files.toLocaleString('en-US')} of ${opts.files.toLocaleString('en-US')} safe, RSS peak ${(peak / 1048576).toFixed(0)} MB`);
            return s.safe_files >= opts.files && s.pending + s.uploading === 0;
          },
          3_600_000,
          'the full sync',
          1000,
        );
        done = true;
      } catch (e) {
        log(`  ${(e as Error).message}`);
      } finally {
        clearInterval(sampler);
      }
      const seconds = (performance.now() - t0) / 1000;
      await child.stop();
      result.sync = {
        seconds: round(seconds, 1),
        files_per_s: round(opts.files / seconds, 0),
        rss_peak_mb: round(peak / 1048576, 0),
        rss_samples: samples,
        status_busy_ms: lat(busyStatus),
        activity_busy_ms: lat(busyActivity),
        done,
      };
      log(`  full sync to 2 destinations: ${seconds.toFixed(0)} s, RSS peak ${result.sync.rss_peak_mb} MB; status while busy p95 ${result.sync.status_busy_ms.p95} ms`);
    }
    return result;
  } finally {
    for (const s of s3) await s.stop();
    if (!opts.keep) rm(base);
  }
}

/** The robustness full mode's reduced scale run: 20,000 files, no full sync, goals checked. */
export async function scaleSuite(ctx: SuiteContext): Promise<void> {
  const { report } = ctx;
  const files = 20_000;
  report.log(`\n== scale: ${files.toLocaleString('en-US')} files in one folder`);
  const r = await measureScale({ files, fullSync: false, log: (l) => report.log(l), keep: ctx.keep });
  report.check('scale', 'an unchanged rescan takes at most 3x `find` listing the same tree', r.rescan_vs_find <= 3, `${r.rescan_s} s vs ${r.find_s} s (${r.rescan_vs_find}x)`);
  report.check('scale', 'the status endpoint answers in under 50 ms (p95)', r.status_ms.p95 < 50, `p50 ${r.status_ms.p50} ms, p95 ${r.status_ms.p95} ms`);
  const slow = Object.entries(r.activity_ms).filter(([, l]) => l.p95 >= 100);
  report.check('scale', 'every Activity listing answers in under 100 ms (p95)', slow.length === 0, slow.length ? few(slow.map(([k, l]) => `${k}: ${l.p95} ms`)) : undefined);
  report.check('scale', 'watching is idle: under 2% of one core', r.idle_cpu_pct < 2, `${r.idle_cpu_pct}%`);
  for (const [k, v] of Object.entries(r)) report.figure('scale', k, v);
}

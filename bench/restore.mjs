// Restore throughput: Triplicate's restore-missing vs `rclone copy` from the same s3rver (in its own
// process) to an empty folder, same file set, same parallelism, in one run, alternating order.
// Also times the no-catalog disaster recovery (`triplicate restore --all --from nas` with an empty
// data dir and the same config) of the same set.
//
//   node --import tsx bench/restore.mjs [--small 200] [--small-kb 256] [--large 4] [--large-mb 32] [--rounds 3]
//        [--concurrency 4] [--ours-concurrency N] [--no-watch]
//
// --concurrency sets both rclone's --transfers and our restore.concurrency (same parallelism);
// --ours-concurrency overrides ours (e.g. our shipped default 6 against rclone's default 4).
// Goal (issue 5): ours >= 1.0x rclone.
// Each round of ours also prints the engine's CPU and its collections (scavenges, mark-compacts,
// pause time) per 100 MB restored: `node --trace-gc` tells more.
import { spawn } from 'node:child_process';
import { copyFileSync, createReadStream, mkdirSync, readdirSync, statSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join, relative, sep } from 'node:path';
import { parseArgs } from 'node:util';
import { PerformanceObserver, constants as perfConstants } from 'node:perf_hooks';
import { ensureApt, makeDataset, mbps, median, rm, startS3rverProcess, table, tempDir, timed, writeResult } from './lib/common.mjs';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
const { values } = parseArgs({
  options: {
    small: { type: 'string', default: '200' },
    'small-kb': { type: 'string', default: '256' },
    large: { type: 'string', default: '4' },
    'large-mb': { type: 'string', default: '32' },
    rounds: { type: 'string', default: '3' },
    concurrency: { type: 'string', default: '4' },
    'ours-concurrency': { type: 'string' },
    'no-watch': { type: 'boolean', default: false },
  },
});
const CONC = Number(values.concurrency);
const OURS = Number(values['ours-concurrency'] ?? values.concurrency);
const ROUNDS = Number(values.rounds);

const { createEngine } = await import('../src/main/engine/engine.ts');
const { saveConfig, defaultConfigPath } = await import('../src/main/engine/config/config.ts');
const { silenceConsole } = await import('../src/main/engine/log.ts');

const hasRclone = ensureApt('rclone');
const base = tempDir('trip-bench-restore-');
const media = join(base, 'media');
const total = makeDataset(media, { small: Number(values.small), smallSize: Number(values['small-kb']) * 1024, large: Number(values.large), largeSize: Number(values['large-mb']) * 1024 * 1024 });

function walk(dir) {
  const out = [];
  (function w(d) {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) w(p);
      else if (e.isFile()) out.push({ abs: p, rel: relative(dir, p).split(sep).join('/'), size: statSync(p).size });
    }
  })(dir);
  return out.sort((a, b) => (a.rel < b.rel ? -1 : 1));
}
async function shaOf(path) {
  const h = createHash('sha256');
  for await (const c of createReadStream(path)) h.update(c);
  return h.digest('hex');
}
const files = walk(media);
const N = files.length;
const want = new Map();
for (const f of files) want.set(f.rel, await shaOf(f.abs));
console.log(`dataset: ${N} files, ${(total / 1e6).toFixed(1)} MB; rclone --transfers ${CONC}, ours ${OURS} at a time; ${ROUNDS} rounds; engine watchers ${values['no-watch'] ? 'off' : 'on'}`);

/** Every file of the set under dir, byte-exact. */
async function check(dir, what) {
  const got = walk(dir);
  if (got.length !== N) throw new Error(`${what}: ${got.length} files instead of ${N}`);
  for (const f of got) if ((await shaOf(f.abs)) !== want.get(f.rel)) throw new Error(`${what}: ${f.rel} differs`);
}

const s3 = await startS3rverProcess(join(base, 's3'), ['nas']);
const creds = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
const target = { id: 'nas', label: 'NAS', kind: 's3', preset: 'minio', endpoint: s3.endpoint, region: 'us-east-1', bucket: 'nas', pathStyle: true, credentials: creds, concurrency: CONC, priority: 1 };
const configFor = (rootPath) => ({
  roots: [{ id: 'media', label: 'Media', path: rootPath }],
  targets: [target],
  sync: { stabilityMs: 2000, rescanIntervalMinutes: 0 },
  server: { adminPort: 0, downloadPort: 0, downloadHost: '127.0.0.1' },
  restore: { concurrency: OURS, verifyIntervalHours: 0, pruneIntervalHours: 0 },
});

// 1. back the set up once with the engine (objects with their sha256 + mtime metadata); keep its catalog
const seedData = join(base, 'seed-data');
saveConfig(defaultConfigPath(seedData), configFor(media));
{
  const engine = createEngine({ dataDir: seedData, watch: false });
  silenceConsole();
  await engine.start();
  const t = await timed(async () => {
    while (engine.status().safe_files < N) await new Promise((r) => setTimeout(r, 50));
  });
  await engine.stop();
  console.log(`backed up to s3rver in ${t.seconds.toFixed(1)} s`);
}

function rclone(dest) {
  const env = {
    ...process.env,
    RCLONE_CONFIG_BENCH_TYPE: 's3',
    RCLONE_CONFIG_BENCH_PROVIDER: 'Other',
    RCLONE_CONFIG_BENCH_ENDPOINT: s3.endpoint,
    RCLONE_CONFIG_BENCH_ACCESS_KEY_ID: 'S3RVER',
    RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY: 'S3RVER',
    RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE: 'true',
    RCLONE_CONFIG_BENCH_REGION: 'us-east-1',
  };
  delete env.AWS_CA_BUNDLE; // breaks rclone 1.60 against http endpoints
  // rclone reads "mtime" metadata as its own format (seconds); ours is ms: use the server's time
  return new Promise((resolve, reject) => {
    const c = spawn('rclone', ['copy', 'bench:nas/media', dest, '--transfers', String(CONC), '--checkers', String(CONC * 2), '--use-server-modtime'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    c.stderr.on('data', (d) => (err += d));
    c.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`rclone failed: ${err}`))));
  });
}

/** Collections in this process (the engine's), to tell collector work from the restore's own. */
const gcSeen = { minor: 0, major: 0, ms: 0 };
new PerformanceObserver((l) => {
  for (const e of l.getEntries()) {
    gcSeen.ms += e.duration;
    if (e.detail?.kind === perfConstants.NODE_PERFORMANCE_GC_MINOR) gcSeen.minor++;
    else if (e.detail?.kind === perfConstants.NODE_PERFORMANCE_GC_MAJOR) gcSeen.major++;
  }
}).observe({ entryTypes: ['gc'] });

/** Ours: a running engine whose folder lost every file; one "restore missing"; wait until done. */
async function ours(round) {
  const dataDir = join(base, `ours-data-${round}`);
  const dest = join(base, `ours-${round}`);
  mkdirSync(dest, { recursive: true });
  mkdirSync(dataDir, { recursive: true });
  copyFileSync(join(seedData, 'catalog.db'), join(dataDir, 'catalog.db'));
  saveConfig(defaultConfigPath(dataDir), configFor(dest));
  const engine = createEngine({ dataDir, watch: !values['no-watch'] });
  silenceConsole();
  await engine.start();
  await engine.initialScanDone();
  const svc = engine.service('restore');
  const gc0 = { ...gcSeen };
  const cpu0 = process.cpuUsage();
  const t = await timed(async () => {
    const p = await svc.restoreMissing({});
    if (p.files_total !== N) throw new Error(`restore planned ${p.files_total} files, not ${N}`);
    const done = await svc.waitFor(p.id);
    if (done.files_done !== N) throw new Error(`restored ${done.files_done} of ${N}: ${done.message}`);
  });
  const cpu = process.cpuUsage(cpu0);
  await new Promise((r) => setImmediate(r)); // the observer's last entries
  // The engine's CPU (its helper threads too) and collections during the restore, per 100 MB restored
  const per = 1e8 / total;
  console.log(`    engine CPU ${(((cpu.user + cpu.system) / 1e6) * per).toFixed(2)} s, ${((gcSeen.minor - gc0.minor) * per).toFixed(1)} scavenges, ${((gcSeen.major - gc0.major) * per).toFixed(1)} mark-compacts, GC pauses ${((gcSeen.ms - gc0.ms) * per).toFixed(0)} ms per 100 MB`);
  await engine.stop();
  return { seconds: t.seconds, dest, dataDir };
}

/** The CLI, no catalog: `triplicate restore --all --from nas --data-dir <empty>`. */
async function disasterRecovery() {
  const dataDir = join(base, 'dr-data');
  const dest = join(base, 'dr-disk');
  mkdirSync(dest, { recursive: true });
  saveConfig(defaultConfigPath(dataDir), configFor(dest));
  let out = '';
  let err = '';
  const t = await timed(
    () =>
      new Promise((resolve, reject) => {
        const c = spawn(process.execPath, [join(import.meta.dirname, '..', 'bin', 'triplicate.mjs'), 'restore', '--all', '--from', 'nas', '--data-dir', dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
        c.stdout.on('data', (d) => (out += d));
        c.stderr.on('data', (d) => (err += d));
        c.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`restore --all failed (${code}): ${err}`))));
      }),
  );
  const lines = out.split('\n').filter(Boolean).map((l) => JSON.parse(l));
  const rebuild = lines.find((l) => l.event === 'rebuild');
  const done = lines.find((l) => l.event === 'restore-done');
  await check(dest, 'disaster recovery');
  return { seconds: t.seconds, rebuildSeconds: rebuild.seconds, restored: done.files_done, dest, dataDir };
}

const times = { rclone: [], ours: [] };
for (let r = 0; r < ROUNDS; r++) {
  const order = r % 2 === 0 ? ['rclone', 'ours'] : ['ours', 'rclone'];
  for (const what of order) {
    if (what === 'rclone' && !hasRclone) continue;
    let seconds;
    if (what === 'rclone') {
      const dest = join(base, `rclone-${r}`);
      mkdirSync(dest, { recursive: true });
      seconds = (await timed(() => rclone(dest))).seconds;
      await check(dest, 'rclone');
      rm(dest);
    } else {
      const o = await ours(r);
      seconds = o.seconds;
      await check(o.dest, 'triplicate');
      rm(o.dest);
      rm(o.dataDir);
    }
    times[what].push(seconds);
    console.log(`  round ${r + 1}: ${what.padEnd(7)} ${seconds.toFixed(2)} s  ${mbps(total, seconds).toFixed(1)} MB/s`);
  }
}
const dr = await disasterRecovery();
console.log(`  disaster recovery (no catalog, CLI): ${dr.seconds.toFixed(2)} s (listing + HEAD rebuild ${dr.rebuildSeconds.toFixed(2)} s), ${dr.restored} files`);

await s3.stop();
rm(base);

const m = { rclone: times.rclone.length ? median(times.rclone) : NaN, ours: median(times.ours) };
const rows = [
  ['rclone copy', hasRclone ? m.rclone.toFixed(2) : 'n/a', hasRclone ? mbps(total, m.rclone).toFixed(1) : 'n/a'],
  ['triplicate restore-missing', m.ours.toFixed(2), mbps(total, m.ours).toFixed(1)],
  ['triplicate restore --all (no catalog)', dr.seconds.toFixed(2), mbps(total, dr.seconds).toFixed(1)],
];
console.log(`\n${table(rows, ['what', 'seconds (median)', 'MB/s'])}`);
const ratios = {
  'restore: ours / rclone throughput': hasRclone ? m.rclone / m.ours : NaN,
  'restore: disaster recovery seconds': dr.seconds,
};
console.log('');
console.log(`restore: ours / rclone throughput: ${ratios['restore: ours / rclone throughput'].toFixed(2)}x`);
console.log(`restore: disaster recovery (no catalog) of the same set: ${dr.seconds.toFixed(2)} s`);
console.log('goal: ours/rclone >= 1.00');
writeResult('restore', ratios);

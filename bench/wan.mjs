// Sites as they really are (issue #20): the engine and its peers against s3rver behind the WAN
// model (bench/lib/wan-proxy.mjs: a round-trip time, one rate per direction shared by every
// connection, the handshake, slow start), each contender on the same proxy in one run.
//
//   node --import tsx bench/wan.mjs [--photos 5000] [--photo-kb 200] [--video-mb 200] [--rounds 1]
//        [--only a,b,c,d,e] [--budget-mb 4] [--e-mb 40]
//
// (a) the photos up through `cloud`: triplicate vs `rclone copy` (its defaults) vs `rclone copy --transfers 32`
// (b) one video up through `dsl`: its rate / the link's up rate
// (c) the photos restored from `cloud`: triplicate restore-missing vs the two rclone runs
// (d) the photos to a NAS on `lan` and a cloud on `cloud` at once: the NAS's time / its time alone
// (e) a budget of --budget-mb MB/s on the `cloud` destination with uploads, a restore and a
//     download served from it at once: the link's total rate (both directions, from the proxy's
//     counters) while all three run / the budget
// The engine runs as shipped (files at once chosen by the engine up to its defaults); rclone with
// its defaults (4 transfers, 8 checkers) and with --transfers 32. s3rver and each proxy run in
// processes of their own; all share this machine's CPUs (a real site's NAS and cloud do not).
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, setPriority } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { mediaContent, ensureApt, makeDataset, mbps, median, rm, startS3rverProcess, table, tempDir, writeResult } from './lib/common.mjs';
import { startWanProxyProcess } from './lib/wan-proxy.mjs';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
const { values } = parseArgs({
  options: {
    photos: { type: 'string', default: '5000' },
    'photo-kb': { type: 'string', default: '200' },
    'video-mb': { type: 'string', default: '200' },
    rounds: { type: 'string', default: '1' },
    only: { type: 'string', default: 'a,b,c,d,e' },
    'budget-mb': { type: 'string', default: '4' },
    'e-mb': { type: 'string', default: '40' },
  },
});
const PHOTOS = Number(values.photos);
const PHOTO = Number(values['photo-kb']) * 1000;
const VIDEO = Number(values['video-mb']) * 1e6;
const ROUNDS = Number(values.rounds);
const ONLY = new Set(values.only.split(','));
const BUDGET = Number(values['budget-mb']) * 1e6;
/** (e): MB of each of the three activities (uploads, restore, download). */
const E_BYTES = Number(values['e-mb']) * 1e6;
const MAX_WAIT_MS = 30 * 60_000;

const { createEngine } = await import('../src/main/engine/engine.ts');
const { saveConfig, defaultConfigPath } = await import('../src/main/engine/config/config.ts');
const { silenceConsole } = await import('../src/main/engine/log.ts');

const hasRclone = ensureApt('rclone');
const load0 = loadavg();
const base = tempDir('trip-bench-wan-');
const creds = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const now = () => performance.now();

function filesUnder(dir) {
  const out = [];
  (function walk(d) {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.push({ path: p, size: statSync(p).size });
    }
  })(dir);
  return out;
}
function bytesUnder(dir) {
  return filesUnder(dir).reduce((n, f) => n + f.size, 0);
}

// ---- data
const photos = join(base, 'photos');
const photoBytes = makeDataset(photos, { small: PHOTOS, smallSize: PHOTO, large: 0, largeSize: 0 });
const video = join(base, 'video');
if (ONLY.has('b')) makeDataset(video, { small: 0, smallSize: 0, large: 1, largeSize: VIDEO });
console.log(`photos: ${PHOTOS} x ${PHOTO / 1000} KB (${(photoBytes / 1e6).toFixed(0)} MB); video ${VIDEO / 1e6} MB; ${ROUNDS} round(s); load ${load0.map((x) => x.toFixed(1)).join(' ')}`);

// ---- servers: a NAS and a cloud (s3rver each), with the links in front of them
const buckets = ['e-budget'];
for (let r = 0; r < ROUNDS; r++) buckets.push(`a-ours-${r}`, `a-rclone-${r}`, `a-rclone32-${r}`, `b-ours-${r}`, `d-cloud-${r}`);
const cloudS3 = await startS3rverProcess(join(base, 's3-cloud'), buckets);
const nasS3 = await startS3rverProcess(join(base, 's3-nas'), Array.from({ length: ROUNDS }, (_, r) => [`d-alone-${r}`, `d-both-${r}`]).flat());
// a run that throws leaves no server behind (the proxies leave with their IPC channel)
let finished = false;
process.on('exit', () => {
  if (finished) return;
  for (const s of [cloudS3, nasS3]) try { process.kill(s.pid); } catch {}
  rm(base);
});
const cloud = await startWanProxyProcess(cloudS3.port, 'cloud');
const dsl = await startWanProxyProcess(cloudS3.port, 'dsl');
const lan = await startWanProxyProcess(nasS3.port, 'lan');

// the NAS as a MinIO, the cloud as a cloud service ("other": s3rver takes no R2 region): each
// with its preset's ceiling of files at once (backends/presets.ts)
const target = (id, endpoint, bucket, extra = {}) => ({ id, label: id, kind: 's3', preset: id === 'nas' ? 'minio' : 'other', endpoint, region: 'us-east-1', bucket, pathStyle: true, credentials: { ...creds }, ...extra });
function configure(dataDir, rootPath, targets) {
  saveConfig(defaultConfigPath(dataDir), {
    roots: [{ id: 'media', label: 'Media', path: rootPath }],
    targets,
    // random bytes under a .bin name are what the burst guard holds back as encrypted; this bench
    // measures transfers, not the guard
    sync: { stabilityMs: 0, rescanIntervalMinutes: 0, guard: { enabled: false } },
    media: { transcode: false },
    server: { adminPort: 0, downloadPort: 0, downloadHost: '127.0.0.1' },
    restore: { verifyIntervalHours: 0, pruneIntervalHours: 0 },
  });
}

/**
 * The engine backs `rootPath` up to `targets`; resolves when every file is synced to each target of
 * `waitFor` (seconds from start, per target). Keeps the data dir (its catalog) unless told.
 */
async function upload(rootPath, targets, { waitFor = targets.map((t) => t.id), keep = false, onDone } = {}) {
  const n = filesUnder(rootPath).length;
  const dataDir = tempDir('trip-bench-wan-data-');
  configure(dataDir, rootPath, targets);
  const engine = createEngine({ dataDir, watch: false });
  silenceConsole();
  const synced = Object.fromEntries(targets.map((t) => [t.id, new Set()]));
  const doneAt = {};
  // the files at once each lane chose (jobs/adaptive.ts), as it changed
  const levels = Object.fromEntries(targets.map((t) => [t.id, levelSteps()]));
  const lanes = engine.service('sync').lanes;
  const t0 = now();
  const look = setInterval(() => {
    for (const t of targets) levels[t.id].note(lanes.get(t.id)?.adapt.level ?? 0, t0);
  }, 100);
  const done = new Promise((resolve) => {
    engine.bus.on((e) => {
      if (e.type !== 'copy' || e.state !== 'synced' || !synced[e.target_id]) return;
      if (synced[e.target_id].add(e.file_key).size === n && doneAt[e.target_id] === undefined) {
        doneAt[e.target_id] = (now() - t0) / 1000;
        onDone?.(e.target_id);
        if (waitFor.every((id) => doneAt[id] !== undefined)) resolve();
      }
    });
  });
  await engine.start();
  // with a NAS and a cloud ((d)): while the NAS runs, how often the cloud gives way to it (its
  // card's "while NAS goes first"), read from the status as the console reads it, twice a second
  const gaveWay = { asked: 0, yes: 0 };
  const gw = synced.nas && synced.cloud
    ? setInterval(() => {
        const s = doneAt.nas === undefined ? engine.service('sync').status().targets.cloud?.sending : undefined;
        if (!s) return;
        gaveWay.asked++;
        if (s.after) gaveWay.yes++;
      }, 500)
    : undefined;
  await Promise.race([done, sleep(MAX_WAIT_MS)]);
  clearInterval(gw);
  clearInterval(look);
  await engine.stop();
  for (const id of waitFor) if (doneAt[id] === undefined) throw new Error(`only ${synced[id].size} of ${n} files synced to ${id}`);
  if (!keep) rm(dataDir);
  return { doneAt, dataDir, levels, gaveWay };
}

/** A lane's files at once as it changed: "8 16@0.4 32@1.1" (level@seconds in). */
function levelSteps() {
  const steps = [];
  return {
    note(l, t0) {
      if (l && l !== steps.at(-1)?.l) steps.push({ l, t: (now() - t0) / 1000 });
    },
    toString() {
      return steps.map((x, i) => (i ? `${x.l}@${x.t.toFixed(1)}` : `${x.l}`)).join(' ');
    },
  };
}

function rclone(args, endpoint) {
  const env = { ...process.env, RCLONE_CONFIG_BENCH_TYPE: 's3', RCLONE_CONFIG_BENCH_PROVIDER: 'Other', RCLONE_CONFIG_BENCH_ENDPOINT: endpoint, RCLONE_CONFIG_BENCH_ACCESS_KEY_ID: 'S3RVER', RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY: 'S3RVER', RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE: 'true', RCLONE_CONFIG_BENCH_REGION: 'us-east-1' };
  delete env.AWS_CA_BUNDLE; // breaks rclone 1.60 against http endpoints
  const t0 = now();
  return new Promise((resolve, reject) => {
    // through bash, whose `times` says the CPU rclone used (its last line: the children's user and system time)
    const c = spawn('bash', ['-c', 'rclone "$@"; s=$?; times >&2; exit $s', 'bash', 'copy', ...args], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    c.stderr.on('data', (d) => (err += d));
    c.once('exit', (code) => {
      if (code !== 0) return reject(new Error(`rclone failed: ${err}`));
      const times = err.trim().split('\n').at(-1).match(/(\d+)m([\d.]+)s (\d+)m([\d.]+)s/);
      lastRcloneCpu = times ? Number(times[1]) * 60 + Number(times[2]) + Number(times[3]) * 60 + Number(times[4]) : NaN;
      resolve((now() - t0) / 1000);
    });
  });
}
/** CPU seconds the last rclone run used. */
let lastRcloneCpu = NaN;

/** An engine with the catalog of `catalogDir` and an empty folder: restore-missing (prefix), timed. */
async function restore(catalogDir, cloudTarget, { prefix } = {}) {
  const dataDir = tempDir('trip-bench-wan-data-');
  const dest = tempDir('trip-bench-wan-dest-');
  copyFileSync(join(catalogDir, 'catalog.db'), join(dataDir, 'catalog.db'));
  configure(dataDir, dest, [cloudTarget]);
  const engine = createEngine({ dataDir, watch: false });
  silenceConsole();
  await engine.start();
  await engine.initialScanDone();
  const svc = engine.service('restore');
  const t0 = now();
  const cpu0 = process.cpuUsage();
  const p = await svc.restoreMissing(prefix ? { prefix } : {});
  const planned = (now() - t0) / 1000;
  // the files at once the restore workers chose, as it changed
  const level = levelSteps();
  const look = setInterval(() => level.note(svc.adapt?.level ?? 0, t0), 100);
  const r = await svc.waitFor(p.id);
  clearInterval(look);
  const seconds = (now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await engine.stop();
  if (r.files_done !== p.files_total) throw new Error(`restored ${r.files_done} of ${p.files_total}: ${r.message}`);
  const bytes = bytesUnder(dest);
  rm(dataDir);
  rm(dest);
  return { seconds, files: r.files_done, bytes, level, planned, cpu: (cpu.user + cpu.system) / 1e6 };
}

/** CPU seconds (user + system) a process has used so far, from /proc (Linux); NaN elsewhere. */
function cpuSeconds(pid) {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
  } catch {
    return NaN;
  }
}

/** CPU seconds used from now on by this process (the engine) and the processes named: call the result to read them. */
function cpuFrom(others) {
  const read = () => ({ engine: process.cpuUsage(), ...Object.fromEntries(Object.entries(others).map(([k, p]) => [k, [p].flat().reduce((n, x) => n + cpuSeconds(x), 0)])) });
  const c0 = read();
  return () => {
    const c1 = read();
    const e = process.cpuUsage(c0.engine);
    return { engine: (e.user + e.system) / 1e6, ...Object.fromEntries(Object.keys(others).map((k) => [k, c1[k] - c0[k]])) };
  };
}
const cpuText = (used) => Object.entries(used).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ');

const results = {};
const put = (k, v) => (results[k] ??= []).push(v);

// ---- (a) photos up through `cloud`; (c) the same photos restored from it
let catalogA = null;
let bucketA = null;
if (ONLY.has('a') || ONLY.has('c')) {
  for (let r = 0; r < ROUNDS; r++) {
    const order = ['ours', 'rclone', 'rclone32'];
    if (r % 2) order.reverse();
    for (const what of order) {
      // (c) alone needs the photos up once
      if (!ONLY.has('a') && (what !== 'ours' || catalogA)) continue;
      if (what !== 'ours' && !hasRclone) continue;
      const bucket = `a-${what}-${r}`;
      let seconds;
      let note = '';
      if (what === 'ours') {
        const keep = catalogA === null && ONLY.has('c');
        const u = await upload(photos, [target('cloud', cloud.endpoint, bucket)], { keep });
        seconds = u.doneAt.cloud;
        note = `  (files at once: ${u.levels.cloud})`;
        if (keep) [catalogA, bucketA] = [u.dataDir, bucket];
      } else seconds = await rclone([photos, `bench:${bucket}/media`, ...(what === 'rclone32' ? ['--transfers', '32'] : [])], cloud.endpoint);
      if (ONLY.has('a')) put(`a-${what}`, seconds);
      console.log(`  (a) round ${r + 1}: ${what.padEnd(9)} ${seconds.toFixed(1)} s  ${mbps(photoBytes, seconds).toFixed(1)} MB/s${note}`);
    }
  }
}
if (ONLY.has('c')) {
  for (let r = 0; r < ROUNDS; r++) {
    const order = ['ours', 'rclone', 'rclone32'];
    if (r % 2) order.reverse();
    for (const what of order) {
      if (what !== 'ours' && !hasRclone) continue;
      let seconds;
      let note = '';
      const cpu = cpuFrom({ s3rver: cloudS3.pid, proxy: cloud.pid });
      if (what === 'ours') {
        const o = await restore(catalogA, target('cloud', cloud.endpoint, bucketA));
        if (o.files !== PHOTOS || o.bytes !== photoBytes) throw new Error(`(c) restored ${o.files} files, ${o.bytes} bytes`);
        seconds = o.seconds;
        note = `  (files at once: ${o.level}; planned in ${o.planned.toFixed(2)} s); the restore itself ${o.cpu.toFixed(1)} s of CPU`;
      } else {
        const dest = tempDir('trip-bench-wan-rclone-');
        seconds = await rclone([`bench:${bucketA}/media`, dest, '--use-server-modtime', ...(what === 'rclone32' ? ['--transfers', '32'] : [])], cloud.endpoint);
        if (bytesUnder(dest) !== photoBytes) throw new Error(`(c) rclone restored ${bytesUnder(dest)} bytes`);
        rm(dest);
      }
      // CPU seconds meanwhile: ours is the engine (this process), rclone's its own
      const used = cpu();
      if (what !== 'ours') used.engine = lastRcloneCpu;
      put(`c-${what}`, seconds);
      console.log(`  (c) round ${r + 1}: ${what.padEnd(9)} ${seconds.toFixed(1)} s  ${mbps(photoBytes, seconds).toFixed(1)} MB/s${note}; CPU s: ${cpuText(used).replace('engine', what === 'ours' ? 'engine' : 'rclone')}`);
    }
  }
}
if (catalogA) rm(catalogA);

// ---- (b) one video up through `dsl`
if (ONLY.has('b')) {
  for (let r = 0; r < ROUNDS; r++) {
    const before = (await dsl.stats()).up;
    const u = await upload(video, [target('cloud', dsl.endpoint, `b-ours-${r}`)]);
    const after = (await dsl.stats()).up;
    put('b-ours', u.doneAt.cloud);
    // where the time went: the link busy sending, and the span from its first byte to its last
    const busy = (after.busyMs - before.busyMs) / 1000;
    const span = before.firstStartMs === null ? `of the ${((after.lastEndMs - after.firstStartMs) / 1000).toFixed(1)} s from its first byte to its last` : '';
    console.log(`  (b) round ${r + 1}: ${u.doneAt.cloud.toFixed(1)} s  ${mbps(VIDEO, u.doneAt.cloud).toFixed(2)} MB/s (link ${(dsl.link.upBytesPerSecond / 1e6).toFixed(2)} MB/s); link busy ${busy.toFixed(1)} s ${span}`);
  }
}

// ---- (d) a NAS on `lan` alone, then with a cloud on `cloud` at once: the NAS's time
// and where this machine's CPU went meanwhile: at a site the NAS and the cloud are other machines,
// here the two s3rvers and the proxies share the 2 cores with the engine. The cloud's s3rver runs
// at the lowest priority (nice 19) meanwhile: at a site it takes none of this computer's CPU, here
// it takes what the engine and the NAS leave (it is still counted below).
if (ONLY.has('d')) {
  const others = { 'NAS s3rver': nasS3.pid, 'cloud s3rver': cloudS3.pid, proxies: [lan.pid, cloud.pid] };
  setPriority(cloudS3.pid, 19);
  for (let r = 0; r < ROUNDS; r++) {
    const order = r % 2 ? ['both', 'alone'] : ['alone', 'both'];
    for (const what of order) {
      const nas = target('nas', lan.endpoint, `d-${what}-${r}`, { priority: 1 });
      const targets = what === 'alone' ? [nas] : [nas, target('cloud', cloud.endpoint, `d-cloud-${r}`, { priority: 2 })];
      const cpu = cpuFrom(others);
      // the CPU until the NAS is done; the cloud's own time too (what the NAS going first costs it)
      let used;
      const u = await upload(photos, targets, { onDone: (id) => id === 'nas' && (used = cpu()) });
      const total = Object.values(used).reduce((a, b) => a + b, 0);
      put(`d-${what}`, u.doneAt.nas);
      console.log(`  (d) round ${r + 1}: NAS ${what === 'alone' ? 'alone    ' : '+ cloud  '} ${u.doneAt.nas.toFixed(1)} s; CPU s: ${cpuText(used)} (${(total / u.doneAt.nas).toFixed(2)} of ${availableParallelism()} cores busy)`);
      if (u.doneAt.cloud) console.log(`      the cloud done at ${u.doneAt.cloud.toFixed(1)} s; it gave way to the NAS in ${u.gaveWay.yes} of ${u.gaveWay.asked} looks at the status while the NAS ran`);
      console.log(`      files at once: NAS ${u.levels.nas}${u.levels.cloud ? `; cloud ${u.levels.cloud}` : ''}`);
    }
  }
  try {
    setPriority(cloudS3.pid, 0); // back, for (e) (only a privileged user may raise it again)
  } catch {}
}

// ---- (e) a budget on the cloud destination: uploads, a restore and a download at once
if (ONLY.has('e')) {
  const eSeed = join(base, 'e-seed');
  const eRoot = join(base, 'e-root');
  const piece = 2_000_000;
  // restore set and the shared file exist on the cloud only (seeded straight to s3rver); the new photos only here
  for (let i = 0; i * piece < E_BYTES; i++) writeBin(join(eSeed, 'restore', `r-${i}.bin`), Math.min(piece, E_BYTES - i * piece), 500 + i);
  writeBin(join(eSeed, 'share', 'film.bin'), E_BYTES, 900);
  for (let i = 0; i * PHOTO < E_BYTES; i++) writeBin(join(eRoot, 'new', `IMG_${i}.jpg`), PHOTO, 1000 + i);
  const seed = await upload(eSeed, [target('cloud', cloudS3.endpoint, 'e-budget')], { keep: true });
  rm(eSeed);
  console.log(`  (e) seeded ${(2 * E_BYTES / 1e6).toFixed(0)} MB to the cloud in ${seed.doneAt.cloud.toFixed(1)} s`);
  put('e', await budgetRun(seed.dataDir, eRoot));
  rm(seed.dataDir);
}

function writeBin(path, size, seed) {
  mkdirSync(join(path, '..'), { recursive: true });
  writeFileSync(path, mediaContent(path, size, seed));
}

/** (e): the link's total rate while uploads, a restore and a download from the destination all run. */
async function budgetRun(catalogDir, rootPath) {
  const dataDir = tempDir('trip-bench-wan-data-');
  copyFileSync(join(catalogDir, 'catalog.db'), join(dataDir, 'catalog.db'));
  const nNew = filesUnder(rootPath).length;
  configure(dataDir, rootPath, [target('cloud', cloud.endpoint, 'e-budget', { bandwidth: { defaultBytesPerSecond: BUDGET, schedule: [] } })]);
  const engine = createEngine({ dataDir, watch: false });
  silenceConsole();
  const samples = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const s = await cloud.stats();
      samples.push({ t: now(), bytes: s.up.bytes + s.down.bytes, up: s.up.bytes, down: s.down.bytes });
      await sleep(250);
    }
  })();
  const t0 = now();
  const ends = {};
  const synced = new Set();
  const uploads = new Promise((resolve) => {
    engine.bus.on((e) => {
      if (e.type === 'copy' && e.state === 'synced' && synced.add(e.file_key).size === nNew) resolve();
    });
  }).then(() => (ends.upload = now()));
  await engine.start();
  await engine.initialScanDone();
  const starts = { upload: t0 };
  const svc = engine.service('restore');
  starts.restore = now();
  const plan = await svc.restoreMissing({ prefix: 'media/restore/' });
  const restored = svc.waitFor(plan.id).then((r) => {
    ends.restore = now();
    return r;
  });
  const link = await (
    await fetch(`${engine.endpoints.adminUrl}/api/admin/links`, {
      method: 'POST',
      headers: { authorization: `Bearer ${engine.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ key: 'media/share/film.bin', ttl_seconds: 3600 }),
    })
  ).json();
  starts.download = now();
  const downloaded = fetch(link.url).then(async (res) => {
    let n = 0;
    for await (const c of res.body) n += c.length;
    ends.download = now();
    if (res.status !== 200 || n !== E_BYTES) throw new Error(`(e) download: status ${res.status}, ${n} bytes`);
  });
  await Promise.race([Promise.all([uploads, restored, downloaded]), sleep(MAX_WAIT_MS)]);
  sampling = false;
  await sampler;
  await engine.stop();
  rm(dataDir);
  const r = await restored;
  if (r.files_done !== plan.files_total) throw new Error(`(e) restored ${r.files_done} of ${plan.files_total}`);
  // the window in which all three ran: from the last start to the first end
  const from = Math.max(...Object.values(starts));
  const to = Math.min(...Object.values(ends));
  const inWin = samples.filter((s) => s.t >= from && s.t <= to);
  const a = inWin[0];
  const b = inWin.at(-1);
  const all = { first: samples[0], last: samples.at(-1) };
  const span = (x, y) => (y && x && y.t > x.t ? { seconds: (y.t - x.t) / 1000, rate: (y.bytes - x.bytes) / ((y.t - x.t) / 1000), up: (y.up - x.up) / ((y.t - x.t) / 1000), down: (y.down - x.down) / ((y.t - x.t) / 1000) } : null);
  const sec = (t) => ((t - t0) / 1000).toFixed(1);
  console.log(`  (e) started upload 0 s, restore ${sec(starts.restore)} s, download ${sec(starts.download)} s; done upload ${sec(ends.upload)} s, restore ${sec(ends.restore)} s, download ${sec(ends.download)} s`);
  const w = span(a, b);
  const whole = span(all.first, all.last);
  console.log(`  (e) all three at once: ${w ? `${w.seconds.toFixed(1)} s at ${(w.rate / 1e6).toFixed(2)} MB/s (up ${(w.up / 1e6).toFixed(2)}, down ${(w.down / 1e6).toFixed(2)})` : 'never (one ended before the others started)'}; whole run ${(whole.rate / 1e6).toFixed(2)} MB/s`);
  return { window: w, whole };
}

await cloud.stop();
await dsl.stop();
await lan.stop();
await cloudS3.stop();
await nasS3.stop();
finished = true;
rm(base);
const load1 = loadavg();

// ---- the table
const m = (k) => (results[k]?.length ? median(results[k].filter((x) => typeof x === 'number')) : NaN);
const spread = (k) => (results[k]?.length > 1 ? `${Math.min(...results[k]).toFixed(1)}–${Math.max(...results[k]).toFixed(1)}` : '');
const fmt = (x, d = 2) => (Number.isFinite(x) ? x.toFixed(d) : 'n/a');
const rows = [];
const ratios = {};
const row = (what, seconds, rate, key, value, goal, sp = '') => {
  rows.push([what, fmt(seconds, 1), sp, rate, fmt(value), goal ?? '', goal ? (met(value, goal) ? 'yes' : 'NO') : '']);
  if (key) ratios[goal ? `${key} (goal ${goal.replace(' ', '')})` : key] = value;
};
function met(v, goal) {
  const [op, x] = [goal.slice(0, 2), Number(goal.slice(2))];
  return Number.isFinite(v) && (op === '>=' ? v >= x : v <= x);
}
if (ONLY.has('a')) {
  const [o, d, t] = [m('a-ours'), m('a-rclone'), m('a-rclone32')];
  row('(a) photos up, cloud: rclone copy (defaults)', d, `${fmt(mbps(photoBytes, d), 1)} MB/s`, null, NaN, null, spread('a-rclone'));
  row('(a) photos up, cloud: rclone copy --transfers 32', t, `${fmt(mbps(photoBytes, t), 1)} MB/s`, null, NaN, null, spread('a-rclone32'));
  row('(a) photos up, cloud: triplicate', o, `${fmt(mbps(photoBytes, o), 1)} MB/s`, null, NaN, null, spread('a-ours'));
  row('    triplicate / rclone defaults', NaN, '', 'wan: photos up through cloud, ours / rclone defaults', d / o, '>= 2.5');
  row('    triplicate / rclone --transfers 32', NaN, '', 'wan: photos up through cloud, ours / rclone --transfers 32', t / o, '>= 1.0');
  row('    triplicate / the link (up)', NaN, '', 'wan: photos up through cloud, ours / link rate', mbps(photoBytes, o) / (cloud.link.upBytesPerSecond / 1e6), null);
}
if (ONLY.has('b')) {
  const b = m('b-ours');
  row('(b) one video up, dsl: triplicate', b, `${fmt(mbps(VIDEO, b), 2)} MB/s`, null, NaN, null, spread('b-ours'));
  row('    triplicate / the link (up)', NaN, '', 'wan: video up through dsl, ours / link rate', mbps(VIDEO, b) / (dsl.link.upBytesPerSecond / 1e6), '>= 0.95');
}
if (ONLY.has('c')) {
  const [o, d, t] = [m('c-ours'), m('c-rclone'), m('c-rclone32')];
  row('(c) photos restored, cloud: rclone copy (defaults)', d, `${fmt(mbps(photoBytes, d), 1)} MB/s`, null, NaN, null, spread('c-rclone'));
  row('(c) photos restored, cloud: rclone copy --transfers 32', t, `${fmt(mbps(photoBytes, t), 1)} MB/s`, null, NaN, null, spread('c-rclone32'));
  row('(c) photos restored, cloud: triplicate', o, `${fmt(mbps(photoBytes, o), 1)} MB/s`, null, NaN, null, spread('c-ours'));
  row('    triplicate / rclone defaults', NaN, '', 'wan: photos restored from cloud, ours / rclone defaults', d / o, '>= 2.5');
  row('    triplicate / rclone --transfers 32', NaN, '', 'wan: photos restored from cloud, ours / rclone --transfers 32', t / o, '>= 1.0');
}
if (ONLY.has('d')) {
  const [alone, both] = [m('d-alone'), m('d-both')];
  row('(d) photos to the NAS (lan) alone', alone, `${fmt(mbps(photoBytes, alone), 1)} MB/s`, null, NaN, null, spread('d-alone'));
  row('(d) photos to the NAS (lan) + cloud at once: NAS', both, `${fmt(mbps(photoBytes, both), 1)} MB/s`, null, NaN, null, spread('d-both'));
  row('    NAS time with the cloud / alone', NaN, '', 'wan: NAS on lan with a cloud at once, NAS time / NAS alone', both / alone, '<= 1.1');
}
if (ONLY.has('e')) {
  const e = results.e?.[0];
  const w = e?.window;
  row(`(e) ${BUDGET / 1e6} MB/s budget: uploads + restore + download at once`, w?.seconds ?? NaN, w ? `${fmt(w.rate / 1e6)} MB/s` : 'n/a', null, NaN, null);
  row('    total rate / budget', NaN, '', 'wan: budget with uploads, restore and download, total rate / budget', w ? w.rate / BUDGET : NaN, null);
  row('    |total rate / budget - 1|', NaN, '', 'wan: budget with uploads, restore and download, |rate / budget - 1|', w ? Math.abs(w.rate / BUDGET - 1) : NaN, '<= 0.05');
}
console.log(`\n${table(rows, ['what', 'seconds', 'spread', 'rate', 'ratio', 'goal', 'met'])}`);
console.log(`\nload average: ${load0.map((x) => x.toFixed(1)).join(' ')} at the start, ${load1.map((x) => x.toFixed(1)).join(' ')} at the end (2 cores)`);
if (values.only === 'a,b,c,d,e') writeResult('wan', ratios); // a subset is a probe, not the benchmark's result
process.exit(0); // engines' and fetch's kept-alive sockets would hold the process open

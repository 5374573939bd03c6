// Shared pieces of the benchmarks: S3 servers in child processes, datasets, timing, tables.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';

export const here = (p) => join(import.meta.dirname, '..', p);

export function tempDir(prefix) {
  return mkdtempSync(join(tmpdir(), prefix));
}

export async function startS3rverProcess(dir, buckets) {
  mkdirSync(dir, { recursive: true });
  const child = spawn(process.execPath, [join(import.meta.dirname, 's3rver-child.mjs'), dir, buckets.join(',')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const rl = createInterface({ input: child.stdout });
  const line = await new Promise((resolve, reject) => {
    rl.once('line', resolve);
    child.once('exit', (c) => reject(new Error(`s3rver exited ${c}`)));
  });
  const { port } = JSON.parse(line);
  return {
    endpoint: `http://127.0.0.1:${port}`,
    port,
    pid: child.pid,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
}

/** Pseudo-random content (incompressible enough), deterministic. */
export function content(n, seed) {
  const b = Buffer.allocUnsafe(n);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n; i += 4) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0;
    b.writeUInt32LE(x, Math.min(i, n - 4));
  }
  return b;
}

/** What a photo and a video start with, so the burst guard (sync/sniff.ts) sees real media, not noise. */
const MEDIA_HEADERS = {
  jpg: Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, 0x4a, 0x46, 0x49, 0x46, 0x00]),
  mp4: Buffer.from([0x00, 0x00, 0x00, 0x18, 0x66, 0x74, 0x79, 0x70, 0x69, 0x73, 0x6f, 0x6d]),
};

/** content(n, seed) under the header its name's extension needs (.jpg, .mp4); other names as they are. */
export function mediaContent(name, n, seed) {
  const b = content(n, seed);
  const h = MEDIA_HEADERS[name.slice(name.lastIndexOf('.') + 1).toLowerCase()];
  if (h) h.copy(b, 0, 0, Math.min(h.length, n));
  return b;
}

/** A tree of `small` files of `smallSize` and `large` files of `largeSize`. Returns total bytes. */
export function makeDataset(dir, { small, smallSize, large, largeSize }) {
  let total = 0;
  for (let i = 0; i < small; i++) {
    const p = join(dir, `day-${String(i % 10).padStart(2, '0')}`, `IMG_${String(i).padStart(5, '0')}.jpg`);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, mediaContent(p, smallSize, i + 1));
    total += smallSize;
  }
  for (let i = 0; i < large; i++) {
    const p = join(dir, 'video', `clip-${i}.mp4`);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, mediaContent(p, largeSize, 10_000 + i));
    total += largeSize;
  }
  return total;
}

export async function timed(fn) {
  const t0 = process.hrtime.bigint();
  const r = await fn();
  return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, result: r };
}

export function which(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).stdout.trim() || null;
}

export function ensureApt(pkg, cmd = pkg) {
  if (which(cmd)) return true;
  console.error(`installing ${pkg} (apt-get)…`);
  spawnSync('sh', ['-c', `apt-get install -y -qq ${pkg} >/dev/null 2>&1 || (apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq ${pkg} >/dev/null 2>&1)`], { stdio: 'inherit' });
  return !!which(cmd);
}

export function mbps(bytes, seconds) {
  return bytes / 1e6 / seconds;
}

export function table(rows, headers) {
  const cols = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (r) => r.map((c, i) => String(c).padEnd(cols[i])).join('  ');
  return [line(headers), line(cols.map((n) => '-'.repeat(n))), ...rows.map(line)].join('\n');
}

export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** Benchmarks write their ratios here so `npm run bench` can print one table. */
export function writeResult(name, ratios) {
  const f = process.env.TRIPLICATE_BENCH_RESULTS;
  if (!f) return;
  mkdirSync(dirname(f), { recursive: true });
  writeFileSync(`${f}.${name}.json`, JSON.stringify({ name, ratios }));
}

export function rm(dir) {
  rmSync(dir, { recursive: true, force: true });
}

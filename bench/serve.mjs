// Download server benchmark: Triplicate's public download server against nginx serving the same
// folder, and its S3 fallback path against a direct GET from the same s3rver, all on loopback,
// measured with wrk in one run. Prints a table with ratios and one JSON line.
//
//   node --import tsx bench/serve.mjs            (BENCH_DURATION=5s by default; BENCH_CONNECTIONS=32)
//
// Needs wrk and nginx (Debian/Ubuntu: apt-get install -y wrk nginx). nginx runs in the foreground
// from a config in a temp dir on a free loopback port and is stopped at the end. s3rver runs in its
// own process so that it does not share the engine's event loop.
// Goals (issue 3): >= 0.7x nginx requests/s on 200 KB files, >= 0.9x nginx MB/s on 100 MB files,
// >= 0.9x direct-S3 throughput on the fallback path (local copy absent).
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, openSync, closeSync, writeSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const DURATION = process.env.BENCH_DURATION ?? '5s';
const CONNS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const SMALL = 200 * 1024;
const LARGE = 100 * 1024 * 1024;
const N_SMALL = 64;

function which(bin) {
  try {
    return execFileSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
}

const wrkBin = which('wrk');
const nginxBin = which('nginx') ?? ['/usr/sbin/nginx', '/usr/local/sbin/nginx'].find((p) => { try { execFileSync(p, ['-v'], { stdio: 'ignore' }); return true; } catch { return false; } });
if (!wrkBin || !nginxBin) {
  process.stderr.write(`This benchmark needs wrk and nginx. Install them (Debian/Ubuntu: sudo apt-get install -y wrk nginx) and run it again.\n`);
  process.exit(2);
}

const freePort = () =>
  new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => res(p));
    });
  });

async function waitHttp(url, ms = 20_000) {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    try {
      const r = await fetch(url);
      await r.arrayBuffer();
      return;
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not answer`);
}

/** Write `size` bytes of incompressible data, from a random block repeated with a varying prefix. */
function writeData(path, size, seed) {
  const block = randomBytes(1 << 20);
  const fd = openSync(path, 'w');
  try {
    for (let off = 0, i = 0; off < size; off += block.length, i++) {
      block.writeUInt32LE(seed * 100_003 + i, 0);
      writeSync(fd, block, 0, Math.min(block.length, size - off));
    }
  } finally {
    closeSync(fd);
  }
}

function parseWrk(out) {
  const num = (re) => {
    const m = re.exec(out);
    return m ? Number(m[1]) : NaN;
  };
  const unit = { B: 1, KB: 1024, MB: 1024 ** 2, GB: 1024 ** 3 };
  const t = /Transfer\/sec:\s+([\d.]+)(B|KB|MB|GB)/.exec(out);
  return {
    rps: num(/Requests\/sec:\s+([\d.]+)/),
    mbps: t ? (Number(t[1]) * unit[t[2]]) / 1024 ** 2 : NaN,
    non2xx: num(/Non-2xx or 3xx responses:\s+(\d+)/) || 0,
    socketErrors: /Socket errors: (.*)/.exec(out)?.[1] ?? '',
    p99: /99%\s+([\d.]+\w+)/.exec(out)?.[1] ?? '',
  };
}

/** Run wrk without blocking this process's event loop (the engine under test runs in it). */
async function wrk(url, { script, conns = CONNS, duration = DURATION } = {}) {
  const args = ['-t1', `-c${conns}`, `-d${duration}`, '--latency'];
  if (script) args.push('-s', script);
  args.push(url);
  const out = await new Promise((res, rej) => {
    const p = spawn(wrkBin, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    p.stdout.on('data', (d) => (text += d));
    p.once('error', rej);
    p.once('exit', (code) => (code === 0 ? res(text) : rej(new Error(`wrk exited with ${code}`))));
  });
  const r = parseWrk(out);
  if (r.non2xx || r.socketErrors) process.stderr.write(`  (wrk ${url.slice(0, 60)}: ${r.non2xx} non-2xx, socket errors: ${r.socketErrors || 'none'})\n`);
  return r;
}

function luaPaths(file, paths) {
  writeFileSync(
    file,
    `local paths = {${paths.map((p) => JSON.stringify(p)).join(',')}}\nlocal i = 0\nrequest = function()\n  i = i % #paths + 1\n  return wrk.format(nil, paths[i])\nend\n`,
  );
  return file;
}

const base = mkdtempSync(join(tmpdir(), 'trip-bench-serve-'));
const media = join(base, 'media');
const children = [];
let engine;
const cleanup = async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  await engine?.stop().catch(() => undefined);
  rmSync(base, { recursive: true, force: true });
};
process.on('SIGINT', () => void cleanup().then(() => process.exit(130)));

try {
  process.stderr.write(`Benchmark folder ${base}\n  - writing ${N_SMALL} x 200 KB and 100 MB files (local and for the S3 fallback)…\n`);
  for (const d of ['small', 'large', 'fallback']) mkdirSync(join(media, d), { recursive: true });
  for (let i = 0; i < N_SMALL; i++) {
    writeData(join(media, 'small', `s-${i}.bin`), SMALL, i + 1);
    writeData(join(media, 'fallback', `s-${i}.bin`), SMALL, 1000 + i);
  }
  writeData(join(media, 'large', 'big.bin'), LARGE, 7);
  writeData(join(media, 'fallback', 'big.bin'), LARGE, 8);

  // s3rver in its own process
  const s3dir = join(base, 's3');
  mkdirSync(s3dir);
  const s3port = await freePort();
  const s3 = spawn(
    process.execPath,
    ['--input-type=module', '-e', `import S3rver from 's3rver'; await new S3rver({ address: '127.0.0.1', port: ${s3port}, silent: true, directory: ${JSON.stringify(s3dir)}, configureBuckets: [{ name: 'bench' }], vhostBuckets: false }).run(); console.log('ready');`],
    { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  children.push(s3);
  await waitHttp(`http://127.0.0.1:${s3port}/bench/`);

  // the engine, in this process
  const { saveConfig, defaultConfigPath } = await import('../src/main/engine/config/config.ts');
  const { createEngine } = await import('../src/main/engine/engine.ts');
  const { silenceConsole } = await import('../src/main/engine/log.ts');
  const dataDir = join(base, 'data');
  mkdirSync(dataDir);
  saveConfig(defaultConfigPath(dataDir), {
    roots: [{ id: 'media', label: 'Media', path: media }],
    targets: [
      {
        id: 'nas', label: 'NAS', kind: 's3', preset: 'minio', endpoint: `http://127.0.0.1:${s3port}`, region: 'us-east-1', bucket: 'bench', pathStyle: true,
        credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }, priority: 1,
      },
    ],
    sync: { stabilityMs: 200, rescanIntervalMinutes: 0 },
    media: { transcode: false },
    server: { adminPort: 0, downloadPort: 0, downloadHost: '127.0.0.1', maxConcurrentDownloads: 256 },
  });
  engine = createEngine({ dataDir, watch: false });
  silenceConsole();
  await engine.start();
  process.stderr.write('  - uploading everything to s3rver…\n');
  const total = 2 * N_SMALL + 2;
  for (let i = 0; ; i++) {
    const s = engine.status();
    if (s.total_files === total && s.safe_files === total) break;
    if (i > 3000) throw new Error(`sync did not finish: ${s.summary}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  rmSync(join(media, 'fallback'), { recursive: true }); // the fallback files now exist on S3 only
  const dl = engine.endpoints.downloadUrl;
  const link = await (
    await fetch(`${engine.endpoints.adminUrl}/api/admin/links`, {
      method: 'POST',
      headers: { authorization: `Bearer ${engine.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ key: 'media/', ttl_seconds: 3600 }),
    })
  ).json();
  const q = `?token=${new URL(link.url).searchParams.get('token')}`;

  // nginx serving the same folder
  const ngPrefix = join(base, 'nginx');
  mkdirSync(ngPrefix);
  const ngPort = await freePort();
  const startNginx = async (workers) => {
    const conf = join(ngPrefix, `nginx-${workers}.conf`);
    writeFileSync(
      conf,
      `${process.getuid?.() === 0 ? 'user root;\n' : ''}worker_processes ${workers};
daemon off;
pid ${ngPrefix}/nginx.pid;
error_log ${ngPrefix}/error.log warn;
events { worker_connections 4096; }
http {
  access_log ${ngPrefix}/access.log;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  client_body_temp_path ${ngPrefix}/body;
  proxy_temp_path ${ngPrefix}/proxy;
  fastcgi_temp_path ${ngPrefix}/fastcgi;
  uwsgi_temp_path ${ngPrefix}/uwsgi;
  scgi_temp_path ${ngPrefix}/scgi;
  default_type application/octet-stream;
  server {
    listen 127.0.0.1:${ngPort};
    root ${media};
    location / { }
  }
}
`,
    );
    const p = spawn(nginxBin, ['-p', ngPrefix, '-c', conf], { stdio: ['ignore', 'ignore', 'inherit'] });
    children.push(p);
    await waitHttp(`http://127.0.0.1:${ngPort}/small/s-0.bin`);
    return async () => {
      p.kill('SIGQUIT');
      await new Promise((r) => (p.exitCode !== null ? r() : p.once('exit', r)));
    };
  };

  const smallPaths = Array.from({ length: N_SMALL }, (_, i) => `/small/s-${i}.bin`);
  const fbPaths = Array.from({ length: N_SMALL }, (_, i) => `/fallback/s-${i}.bin`);
  const scripts = {
    nginxSmall: luaPaths(join(base, 'ng-small.lua'), smallPaths),
    oursSmall: luaPaths(join(base, 'tr-small.lua'), smallPaths.map((p) => `/files/media${p}${q}`)),
    s3Small: luaPaths(join(base, 's3-small.lua'), fbPaths.map((p) => `/bench/media${p}`)),
    oursFbSmall: luaPaths(join(base, 'tr-fb-small.lua'), fbPaths.map((p) => `/files/media${p}${q}`)),
  };
  const warm = (url, script) => wrk(url, { script, duration: '1s' });
  const results = {};
  const measure = async (name, url, opts) => {
    await warm(url, opts.script);
    const r = await wrk(url, opts);
    results[name] = r;
    process.stderr.write(`  ${name.padEnd(28)} ${r.rps.toFixed(0).padStart(8)} req/s ${r.mbps.toFixed(0).padStart(6)} MB/s  p99 ${r.p99}\n`);
    return r;
  };
  process.stderr.write(`  - wrk -t1 -c${CONNS} -d${DURATION} (large files: -c4), ${cpus().length} CPUs\n`);

  const ours = `http://127.0.0.1:${new URL(dl).port}`;
  const ng = `http://127.0.0.1:${ngPort}`;
  const s3url = `http://127.0.0.1:${s3port}`;
  await measure('triplicate small', ours, { script: scripts.oursSmall });
  await measure('triplicate large', `${ours}/files/media/large/big.bin${q}`, { conns: 4 });
  for (const workers of [1, 'auto']) {
    const stop = await startNginx(workers);
    await measure(`nginx(${workers}) small`, ng, { script: scripts.nginxSmall });
    await measure(`nginx(${workers}) large`, `${ng}/large/big.bin`, { conns: 4 });
    await stop();
  }
  await measure('direct s3rver small', s3url, { script: scripts.s3Small });
  await measure('triplicate fallback small', ours, { script: scripts.oursFbSmall });
  await measure('direct s3rver large', `${s3url}/bench/media/fallback/big.bin`, { conns: 4 });
  await measure('triplicate fallback large', `${ours}/files/media/fallback/big.bin${q}`, { conns: 4 });

  const R = results;
  const rows = [
    ['200 KB files, req/s', 'nginx (worker_processes auto)', R['nginx(auto) small'].rps, R['triplicate small'].rps, 0.7],
    ['200 KB files, req/s', 'nginx (1 worker)', R['nginx(1) small'].rps, R['triplicate small'].rps, 0.7],
    ['100 MB file, MB/s', 'nginx (worker_processes auto)', R['nginx(auto) large'].mbps, R['triplicate large'].mbps, 0.9],
    ['100 MB file, MB/s', 'nginx (1 worker)', R['nginx(1) large'].mbps, R['triplicate large'].mbps, 0.9],
    ['S3 fallback 100 MB, MB/s', 'direct GET from s3rver', R['direct s3rver large'].mbps, R['triplicate fallback large'].mbps, 0.9],
    ['S3 fallback 200 KB, req/s', 'direct GET from s3rver', R['direct s3rver small'].rps, R['triplicate fallback small'].rps, 0.9],
  ];
  const fmt = (n) => (n >= 100 ? n.toFixed(0) : n.toFixed(1));
  const lines = [
    '',
    `| measure | compared with | theirs | triplicate | ratio | goal |`,
    `|---|---|---:|---:|---:|---|`,
    ...rows.map(([m, peer, theirs, mine, goal]) => {
      const ratio = mine / theirs;
      return `| ${m} | ${peer} | ${fmt(theirs)} | ${fmt(mine)} | ${ratio.toFixed(2)}x | >= ${goal}x ${ratio >= goal ? 'met' : 'MISSED'} |`;
    }),
    '',
  ];
  process.stdout.write(lines.join('\n'));
  process.stdout.write(
    `${JSON.stringify({ bench: 'serve', duration: DURATION, connections: CONNS, cpus: cpus().length, results: Object.fromEntries(Object.entries(R).map(([k, v]) => [k, { rps: Math.round(v.rps), mbps: Math.round(v.mbps), p99: v.p99 }])) })}\n`,
  );
  const accessLines = readFileSync(join(dataDir, 'logs', 'download-access.jsonl'), 'utf8').split('\n').length;
  process.stderr.write(`  (the download server wrote ${accessLines} access-log lines during the run)\n`);
} finally {
  await cleanup();
}

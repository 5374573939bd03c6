// Download server benchmark: Triplicate's public download server against nginx serving the same
// folder, and its S3 fallback path against a direct GET from the same s3rver, all on loopback,
// measured with wrk in one run. Prints a table with ratios and one JSON line.
//
//   node --import tsx bench/serve.mjs            (BENCH_DURATION=5s by default; BENCH_CONNECTIONS=32)
//   BENCH_ONLY=fallback BENCH_ROUNDS=9 BENCH_PROFILE=/tmp/prof node --import tsx bench/serve.mjs
//                                                (some groups only; more rounds; CPU profiles)
//   BENCH_PIN=1 BENCH_ONLY=fallback node --import tsx bench/serve.mjs
//                                                (s3rver on a CPU of its own, as a NAS would be)
//
// Needs wrk and nginx (Debian/Ubuntu: apt-get install -y wrk nginx). nginx runs in the foreground
// from a config in a temp dir on a free loopback port and is stopped at the end. s3rver runs in its
// own process so that it does not share the engine's event loop.
//
// Fairness: the engine is one Node process (one event loop); nginx runs twice, with 1 worker (the
// like-for-like peer) and with `auto` workers (one per CPU), and both count for the goal. wrk runs
// on the same machine (-t1), so on 2 cores it competes with the server for CPU. nginx is given
// what the engine does for itself: an access log written in batches (`buffer=64k flush=200ms`; the
// engine writes its JSON lines once per 200 ms or 64 KiB) and `open_file_cache` valid for 1 s (the
// engine keeps small files in memory and re-checks them with a stat at most a second later).
// nginx still sends with sendfile (no copy through user space), which Node cannot.
// Rounds (5 by default) take every contender in turn, in alternating order; the ratio is of the
// medians, and the table shows how far the rounds' own ratios spread (this machine's speed
// drifts by tens of percent within a minute).
// Goals (issue 3): >= 0.7x nginx requests/s on 200 KB files, >= 0.9x nginx MB/s on 100 MB files,
// >= 0.9x direct-S3 throughput on the fallback path (local copy absent).
//
// The fallback path is a proxy, and its contenders are: the direct GET (wrk sending the requests
// the engine sends, SigV4 headers made by the same signer: what s3rver does per request is the
// same); nginx as a reverse proxy to the same s3rver (the field's best proxy, given the same
// job minus signing: its GETs are anonymous); the AWS SDK as a client (a script fetching the files
// itself; for information); a bare Node proxy (sign, undici, pipe: the least a Node proxy does;
// a reference). On 2 shared CPUs every proxy loses against the direct GET, because the proxy and
// the extra hop take CPU the S3 server would otherwise have: the table's last lines show what each
// proxy gets against the direct GET (nginx too), the ceiling of that goal on such a machine.
// BENCH_PIN=1 gives s3rver a CPU of its own, as a NAS or a cloud has.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, openSync, closeSync, writeSync, rmSync, writeFileSync, readFileSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeResult } from './lib/common.mjs';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const ROOT = resolve(fileURLToPath(new URL('..', import.meta.url)));
const DURATION = process.env.BENCH_DURATION ?? '5s';
const CONNS = Number(process.env.BENCH_CONNECTIONS ?? 32);
const SMALL = 200 * 1024;
const LARGE = 100 * 1024 * 1024;
const N_SMALL = 64;
/** Uncounted seconds before measuring: each server once per group, the SDK client in every round. */
const WARMUP_S = Number(process.env.BENCH_WARMUP ?? 3);

function which(bin) {
  try {
    return execFileSync('sh', ['-c', `command -v ${bin}`], { encoding: 'utf8' }).trim() || null;
  } catch {
    return null;
  }
}

const PIN = process.env.BENCH_PIN === '1';
const taskset = PIN ? which('taskset') : null;
if (PIN && (!taskset || cpus().length < 2)) {
  process.stderr.write('BENCH_PIN=1 needs taskset (util-linux) and at least 2 CPUs.\n');
  process.exit(2);
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
  const read = /(\d+) requests in [\d.]+\w+, ([\d.]+)(B|KB|MB|GB) read/.exec(out);
  return {
    requests: read ? Number(read[1]) : NaN,
    megabytes: read ? (Number(read[2]) * unit[read[3]]) / 1024 ** 2 : NaN,
    rps: num(/Requests\/sec:\s+([\d.]+)/),
    mbps: t ? (Number(t[1]) * unit[t[2]]) / 1024 ** 2 : NaN,
    non2xx: num(/Non-2xx or 3xx responses:\s+(\d+)/) || 0,
    socketErrors: /Socket errors: (.*)/.exec(out)?.[1] ?? '',
    p99: /99%\s+([\d.]+\w+)/.exec(out)?.[1] ?? '',
  };
}

/** Run wrk without blocking this process's event loop (the engine under test runs in it). */
async function wrk(url, { script, conns = CONNS, duration = DURATION } = {}) {
  // (a 100 MB answer can take longer than wrk's default 2 s timeout, which then counts as an error)
  const args = ['-t1', `-c${conns}`, `-d${duration}`, '--latency', '--timeout', '30s'];
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

/**
 * A client fetching the files from S3 itself: AWS SDK v3 (signed, keep-alive), from a process of
 * its own, `conns` at a time, bodies read and dropped. One process per group, warmed up once (its
 * code compiled, its sockets open), then told to run once per round.
 */
async function sdkClient({ endpoint, bucket, keys, conns }) {
  const script = `
    process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
    const { S3Client, GetObjectCommand } = await import('@aws-sdk/client-s3');
    const http = await import('node:http');
    const readline = await import('node:readline');
    const agent = new http.Agent({ keepAlive: true, maxSockets: ${conns * 2} });
    const c = new S3Client({ region: 'us-east-1', endpoint: ${JSON.stringify(endpoint)}, forcePathStyle: true, maxAttempts: 1,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }, requestHandler: { httpAgent: agent },
      requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' });
    const keys = ${JSON.stringify(keys)};
    // counted like wrk counts: bytes received and requests completed inside the window
    const run = async (ms) => {
      let n = 0, bytes = 0;
      const cpu0 = process.cpuUsage();
      const t0 = Date.now(), until = t0 + ms;
      await Promise.all(Array.from({ length: ${conns} }, async (_, w) => {
        for (let i = w; Date.now() < until; i++) {
          const o = await c.send(new GetObjectCommand({ Bucket: ${JSON.stringify(bucket)}, Key: keys[i % keys.length] }));
          for await (const chunk of o.Body) bytes += chunk.length;
          if (Date.now() <= until) n++;
        }
      }));
      const cpu = process.cpuUsage(cpu0);
      return { requests: n, megabytes: bytes / 1048576, secs: (Date.now() - t0) / 1000, cpuS: (cpu.user + cpu.system) / 1e6 };
    };
    for await (const line of readline.createInterface({ input: process.stdin })) {
      console.log(JSON.stringify(await run(Number(line))));
    }
    process.exit(0);`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] });
  children.push(child);
  const lines = [];
  const waiting = [];
  let buf = '';
  child.stdout.on('data', (d) => {
    buf += d;
    for (let i; (i = buf.indexOf('\n')) >= 0; ) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      const w = waiting.shift();
      if (w) w(line);
      else lines.push(line);
    }
  });
  const died = new Promise((_, rej) => child.once('exit', (code) => rej(new Error(`the SDK client exited (${code})`))));
  died.catch(() => undefined);
  const ask = async (ms) => {
    child.stdin.write(`${ms}\n`);
    const line = await Promise.race([new Promise((res) => (lines.length ? res(lines.shift()) : waiting.push(res))), died]);
    const r = JSON.parse(line);
    return { ...r, rps: r.requests / r.secs, mbps: r.megabytes / r.secs, p99: '', non2xx: 0, socketErrors: '' };
  };
  await ask(WARMUP_S * 1000);
  return { run: () => ask(Number(String(DURATION).replace(/s$/, '')) * 1000), stop: () => child.kill('SIGTERM') };
}

/** A wrk script sending GETs of the given paths in turn, each with its own headers (if any). */
function luaRequests(file, reqs) {
  const lua = (v) => JSON.stringify(String(v));
  const entries = reqs.map(({ path, headers = {} }) => `{${lua(path)}, {${Object.entries(headers).map(([k, v]) => `[${lua(k)}] = ${lua(v)}`).join(', ')}}}`);
  writeFileSync(file, `local reqs = {${entries.join(',\n')}}\nlocal i = 0\nrequest = function()\n  i = i % #reqs + 1\n  return wrk.format("GET", reqs[i][1], reqs[i][2])\nend\n`);
  return file;
}

function luaPaths(file, paths) {
  return luaRequests(file, paths.map((path) => ({ path })));
}

/**
 * A wrk script sending each path with its own SigV4 headers, made by the signer the engine uses:
 * the requests s3rver gets from the engine, sent by the cheapest client there is. (s3rver accepts
 * a header-signed request for 15 minutes after its x-amz-date: made at the start of each group.)
 */
async function luaSigned(file, { endpoint, bucket, keys }) {
  const sign = await s3rverSigner(endpoint);
  const reqs = [];
  for (const key of keys) {
    const path = `/${bucket}/${key.split('/').map(encodeURIComponent).join('/')}`;
    const { host, ...headers } = await sign(path);
    reqs.push({ path, headers: { Host: host, ...headers } }); // wrk's own Host header is "Host"
  }
  return luaRequests(file, reqs);
}

/**
 * SigV4 headers of a GET of `path` on s3rver, made with its credentials and the S3 client's own
 * hash and path escaping (as s3-http.ts signs).
 */
async function s3rverSigner(endpoint) {
  const { SignatureV4 } = await import('@smithy/signature-v4');
  const { S3Client } = await import('@aws-sdk/client-s3');
  const credentials = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' };
  const sha256 = new S3Client({ region: 'us-east-1', credentials }).config.sha256;
  const signer = new SignatureV4({ credentials, region: 'us-east-1', service: 's3', sha256, uriEscapePath: false });
  const u = new URL(endpoint);
  const empty = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'; // SHA-256 of no body
  return async (path) =>
    (await signer.sign({ method: 'GET', protocol: u.protocol, hostname: u.hostname, port: Number(u.port), path, query: {}, headers: { host: u.host, 'x-amz-content-sha256': empty } })).headers;
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
  const s3Args = ['--input-type=module', '-e', `import S3rver from 's3rver'; await new S3rver({ address: '127.0.0.1', port: ${s3port}, silent: true, directory: ${JSON.stringify(s3dir)}, configureBuckets: [{ name: 'bench' }], vhostBuckets: false }).run(); console.log('ready');`];
  // BENCH_PIN=1: s3rver gets the last CPU to itself and everything else (this process with the
  // engine, wrk, nginx, the SDK client, all started later) the others: a model of a site, where
  // the NAS or the cloud is another machine and never takes CPU from the engine or its client.
  const pin = PIN ? { s3: String(cpus().length - 1), rest: `0-${cpus().length - 2}` } : null;
  const s3 = pin
    ? spawn(taskset, ['-c', pin.s3, process.execPath, ...s3Args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] })
    : spawn(process.execPath, s3Args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(s3);
  await waitHttp(`http://127.0.0.1:${s3port}/bench/`);
  if (pin) execFileSync(taskset, ['-a', '-p', '-c', pin.rest, String(process.pid)], { stdio: 'ignore' });

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
    // random bytes under a .bin name are what the burst guard holds back as encrypted; this bench
    // measures transfers, not the guard
    sync: { stabilityMs: 200, rescanIntervalMinutes: 0, guard: { enabled: false } },
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

  // nginx serving the same folder: one worker (like our one event loop) and `auto` (one per CPU),
  // both running side by side on their own ports; access logs on, as in a real deployment, batched
  // like ours; open files cached for 1 s, like our small files.
  const ngPrefix = join(base, 'nginx');
  mkdirSync(ngPrefix);
  const startNginx = async (workers) => {
    const dir = join(ngPrefix, String(workers));
    mkdirSync(dir);
    const port = await freePort();
    const conf = join(dir, 'nginx.conf');
    writeFileSync(
      conf,
      `${process.getuid?.() === 0 ? 'user root;\n' : ''}worker_processes ${workers};
daemon off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log ${dir}/access.log combined buffer=64k flush=200ms;
  open_file_cache max=1000 inactive=20s;
  open_file_cache_valid 1s;
  sendfile on;
  tcp_nopush on;
  keepalive_requests 1000000;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  default_type application/octet-stream;
  # the reference proxy for the fallback path: /s3/<key> forwarded to s3rver (anonymous, as
  # nginx cannot sign), over kept-alive connections, through 1 MiB of memory buffers per request
  # (never a temp file)
  upstream s3 {
    server 127.0.0.1:${s3port};
    keepalive 64;
  }
  server {
    listen 127.0.0.1:${port};
    root ${media};
    location / { }
    location /s3/ {
      proxy_pass http://s3/bench/;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffers 16 64k;
      proxy_busy_buffers_size 128k;
      proxy_max_temp_file_size 0;
    }
  }
}
`,
    );
    const p = spawn(nginxBin, ['-p', dir, '-c', conf], { stdio: ['ignore', 'ignore', 'inherit'] });
    children.push(p);
    await waitHttp(`http://127.0.0.1:${port}/small/s-0.bin`);
    return { url: `http://127.0.0.1:${port}`, pid: p.pid };
  };
  const ng1 = await startNginx(1);
  const ngAuto = await startNginx('auto');

  // Reference: the fastest a bare Node http server answers these files from memory (no fs, no
  // auth, no log): what one Node event loop can do on this machine at all.
  const { createServer: createHttp } = await import('node:http');
  const mem = new Map();
  for (let i = 0; i < N_SMALL; i++) mem.set(`/small/s-${i}.bin`, readFileSync(join(media, 'small', `s-${i}.bin`)));
  const bare = createHttp((req, res) => {
    const b = mem.get(req.url);
    res.writeHead(b ? 200 : 404, { 'content-length': b ? b.length : 0 });
    res.end(b);
  });
  await new Promise((r) => bare.listen(0, '127.0.0.1', r));
  const bareUrl = `http://127.0.0.1:${bare.address().port}`;
  // Reference for the fallback path: the least a Node proxy does (no auth, no catalog, no log, no
  // checks): sign the GET, send it through an undici pool to s3rver, pipe the answer back.
  const { Pool } = await import('undici');
  const { pipeline } = await import('node:stream/promises');
  const bareSign = await s3rverSigner(`http://127.0.0.1:${s3port}`);
  const barePool = new Pool(`http://127.0.0.1:${s3port}`, { connections: 64 });
  const bareProxy = createHttp(async (req, res) => {
    try {
      const path = `/bench${req.url}`;
      const up = await barePool.request({ method: 'GET', path, headers: await bareSign(path) });
      res.writeHead(up.statusCode, { 'content-length': up.headers['content-length'], 'content-type': 'application/octet-stream' });
      // pipeline: a client that leaves mid-answer destroys the body and frees its pool connection
      await pipeline(up.body, res);
    } catch {
      res.destroy();
    }
  });
  await new Promise((r) => bareProxy.listen(0, '127.0.0.1', r));
  const bareProxyUrl = `http://127.0.0.1:${bareProxy.address().port}`;

  const smallPaths = Array.from({ length: N_SMALL }, (_, i) => `/small/s-${i}.bin`);
  const fbPaths = Array.from({ length: N_SMALL }, (_, i) => `/fallback/s-${i}.bin`);
  const scripts = {
    plainSmall: luaPaths(join(base, 'plain-small.lua'), smallPaths),
    oursSmall: luaPaths(join(base, 'tr-small.lua'), smallPaths.map((p) => `/files/media${p}${q}`)),
    nginxFbSmall: luaPaths(join(base, 'nginx-fb-small.lua'), fbPaths.map((p) => `/s3/media${p}`)),
    bareFbSmall: luaPaths(join(base, 'bare-fb-small.lua'), fbPaths.map((p) => `/media${p}`)),
    oursFbSmall: luaPaths(join(base, 'tr-fb-small.lua'), fbPaths.map((p) => `/files/media${p}${q}`)),
  };
  const ours = `http://127.0.0.1:${new URL(dl).port}`;
  const s3url = `http://127.0.0.1:${s3port}`;

  /** CPU seconds used so far by a process and its children (nginx workers), from /proc. */
  const tick = 100;
  const procCpu = (pid) => {
    try {
      let total = 0;
      const pids = [pid];
      for (const d of readdirSync('/proc')) {
        if (!/^\d+$/.test(d)) continue;
        try {
          const st = readFileSync(`/proc/${d}/stat`, 'utf8');
          const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
          if (Number(f[1]) === pid) pids.push(Number(d));
        } catch {}
      }
      for (const p of pids) {
        const st = readFileSync(`/proc/${p}/stat`, 'utf8');
        const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
        total += (Number(f[11]) + Number(f[12])) / tick;
      }
      return total;
    } catch {
      return NaN;
    }
  };
  // GC pauses in this process (the engine's), to tell collector time from work in the CPU figure
  let gcMs = 0;
  const { PerformanceObserver } = await import('node:perf_hooks');
  new PerformanceObserver((l) => {
    for (const e of l.getEntries()) gcMs += e.duration;
  }).observe({ entryTypes: ['gc'] });
  // BENCH_PROFILE=DIR: a CPU profile of the engine's thread for each of its rounds (open the
  // .cpuprofile files in Chrome's DevTools, Performance tab)
  const PROFILE_DIR = process.env.BENCH_PROFILE;
  const profiler = await (async () => {
    if (!PROFILE_DIR) return null;
    mkdirSync(PROFILE_DIR, { recursive: true });
    const { Session } = await import('node:inspector');
    const session = new Session();
    session.connect();
    const post = (method) => new Promise((res, rej) => session.post(method, (err, out) => (err ? rej(err) : res(out))));
    await post('Profiler.enable');
    return { start: () => post('Profiler.start'), stop: async (file) => writeFileSync(file, JSON.stringify((await post('Profiler.stop')).profile)) };
  })();
  const selfCpu = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  };
  /** The machine's idle and busy CPU seconds so far (/proc/stat), to tell a CPU-bound round from one that waits. */
  const machineCpu = () => {
    try {
      const f = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
      const idle = f[3] + f[4];
      return { idle: idle / tick, busy: (f.reduce((a, b) => a + b, 0) - idle) / tick };
    } catch {
      return null;
    }
  };

  const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
  const DIRECT = 'direct GET from s3rver (wrk, signed)';
  const NGINX_PROXY = 'nginx proxy to s3rver (1 worker)';
  const allGroups = [
    {
      name: '200 KB files',
      unit: 'rps',
      entries: [
        { name: 'triplicate', url: ours, script: scripts.oursSmall, cpu: selfCpu },
        { name: 'nginx (1 worker)', url: ng1.url, script: scripts.plainSmall, cpu: () => procCpu(ng1.pid) },
        { name: 'nginx (auto workers)', url: ngAuto.url, script: scripts.plainSmall, cpu: () => procCpu(ngAuto.pid) },
        { name: 'bare Node, from memory', ref: true, url: bareUrl, script: scripts.plainSmall, cpu: selfCpu },
      ],
    },
    {
      name: '100 MB file',
      unit: 'mbps',
      conns: 4,
      entries: [
        { name: 'triplicate', url: `${ours}/files/media/large/big.bin${q}`, cpu: selfCpu },
        { name: 'nginx (1 worker)', url: `${ng1.url}/large/big.bin`, cpu: () => procCpu(ng1.pid) },
        { name: 'nginx (auto workers)', url: `${ngAuto.url}/large/big.bin`, cpu: () => procCpu(ngAuto.pid) },
      ],
    },
    {
      name: 'S3 fallback, 100 MB file',
      unit: 'mbps',
      conns: 4,
      entries: [
        { name: 'triplicate', url: `${ours}/files/media/fallback/big.bin${q}`, cpu: selfCpu },
        { name: DIRECT, url: s3url, script: () => luaSigned(join(base, 's3-signed-big.lua'), { endpoint: s3url, bucket: 'bench', keys: ['media/fallback/big.bin'] }), cpu: () => procCpu(s3.pid) },
        { name: NGINX_PROXY, url: `${ng1.url}/s3/media/fallback/big.bin`, cpu: () => procCpu(ng1.pid) },
        { name: 'direct GET from s3rver (AWS SDK client)', goal: null, sdk: { keys: ['media/fallback/big.bin'] } },
        { name: 'bare Node proxy to s3rver', ref: true, url: `${bareProxyUrl}/media/fallback/big.bin`, cpu: selfCpu },
      ],
    },
    {
      name: 'S3 fallback, 200 KB files',
      unit: 'rps',
      entries: [
        { name: 'triplicate', url: ours, script: scripts.oursFbSmall, cpu: selfCpu },
        { name: DIRECT, url: s3url, script: () => luaSigned(join(base, 's3-signed-small.lua'), { endpoint: s3url, bucket: 'bench', keys: fbPaths.map((p) => `media${p}`) }), cpu: () => procCpu(s3.pid) },
        { name: NGINX_PROXY, url: ng1.url, script: scripts.nginxFbSmall, cpu: () => procCpu(ng1.pid) },
        { name: 'direct GET from s3rver (AWS SDK client)', goal: null, sdk: { keys: fbPaths.map((p) => `media${p}`) } },
        { name: 'bare Node proxy to s3rver', ref: true, url: bareProxyUrl, script: scripts.bareFbSmall, cpu: selfCpu },
      ],
    },
  ];
  // BENCH_ONLY=fallback (or any word of the group names): measure only the matching groups
  const only = process.env.BENCH_ONLY?.toLowerCase();
  const groups = only ? allGroups.filter((g) => g.name.toLowerCase().includes(only)) : allGroups;
  process.stderr.write(`  - wrk -t1 -c${CONNS} -d${DURATION} (100 MB files: -c4), ${WARMUP_S} s warm-up per server, ${ROUNDS} rounds in alternating order, ${cpus().length} CPUs${pin ? ` (s3rver alone on CPU ${pin.s3}, the rest on ${pin.rest})` : ''}, load average ${loadavg()[0].toFixed(1)}\n`);
  const median = (xs) => {
    const v = [...xs].filter((x) => !Number.isNaN(x)).sort((a, b) => a - b);
    if (!v.length) return NaN;
    return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
  };
  const results = {};
  for (const g of groups) {
    // warm up every server (its JIT, heap sizes, and s3rver's for the fallback path, which would
    // otherwise be warm only for whoever comes second); then alternate the order round by round
    for (const e of g.entries) {
      if (typeof e.script === 'function') e.script = await e.script();
      if (e.sdk) e.client = await sdkClient({ endpoint: s3url, bucket: 'bench', keys: e.sdk.keys, conns: g.conns ?? CONNS });
      else await wrk(e.url, { script: e.script, conns: g.conns, duration: `${WARMUP_S}s` });
    }
    for (let r = 0; r < ROUNDS; r++) {
      for (const e of r % 2 ? [...g.entries].reverse() : g.entries) {
        let m;
        let cpuS;
        // fallback groups: s3rver's own CPU in every round, and how busy the whole machine was
        const s3group = g.name.startsWith('S3');
        const mc0 = machineCpu();
        const s30 = s3group ? procCpu(s3.pid) : NaN;
        if (e.sdk) {
          m = await e.client.run();
          cpuS = m.cpuS; // the client's own CPU (compare with ours, a server and a client in one)
        } else {
          const c0 = e.cpu();
          const gc0 = gcMs;
          const sys0 = process.cpuUsage().system;
          const flt0 = process.resourceUsage().minorPageFault;
          const ours = e.cpu === selfCpu;
          if (ours && PROFILE_DIR) await profiler.start();
          m = await wrk(e.url, { script: e.script, conns: g.conns });
          cpuS = e.cpu() - c0;
          if (ours) {
            m.gcMs = gcMs - gc0;
            m.kernelShare = (process.cpuUsage().system - sys0) / 1e6 / cpuS;
            m.faults = process.resourceUsage().minorPageFault - flt0;
          }
          if (ours && PROFILE_DIR) await profiler.stop(join(PROFILE_DIR, `${g.name.replace(/\W+/g, '-')}-${r + 1}.cpuprofile`));
        }
        const mc1 = machineCpu();
        if (mc0 && mc1) m.machineBusy = (mc1.busy - mc0.busy) / Math.max(1e-9, mc1.busy - mc0.busy + mc1.idle - mc0.idle);
        if (s3group) m.s3PerReq = ((procCpu(s3.pid) - s30) / Math.max(1, m.requests)) * 1e6;
        const key = `${g.name} | ${e.name}`;
        (results[key] ??= []).push({ ...m, cpuPerReq: (cpuS / Math.max(1, m.requests)) * 1e6, cpuPerMB: (cpuS / Math.max(1e-9, m.megabytes)) * 1e3 });
        process.stderr.write(`  ${key.padEnd(52)} ${m.rps.toFixed(0).padStart(7)} req/s ${m.mbps.toFixed(0).padStart(6)} MB/s  p99 ${m.p99.padStart(8)}  ${Number.isNaN(cpuS) ? '' : `CPU ${((cpuS / Math.max(1, m.requests)) * 1e6).toFixed(0)} µs/req`}${m.gcMs === undefined ? '' : ` (${(m.kernelShare * 100).toFixed(0)} % in the kernel, ${m.faults} page faults), GC ${m.gcMs.toFixed(0)} ms`}${m.s3PerReq === undefined ? '' : `, s3rver ${m.s3PerReq.toFixed(0)} µs/req`}${m.machineBusy === undefined ? '' : `, machine ${(m.machineBusy * 100).toFixed(0)} % busy`}\n`);
      }
    }
  }
  for (const g of groups) for (const e of g.entries) e.client?.stop();
  bare.close();
  bareProxy.close();
  await barePool.close();
  const med = (key, field) => median(results[key].map((x) => x[field]));
  const fmt = (n) => (n >= 100 ? n.toFixed(0) : n.toFixed(1));
  const lines = ['', `| measure | compared with | theirs | triplicate | ratio | rounds' own ratios | goal | CPU, theirs (the server; for the SDK the client) / ours |`, `|---|---|---:|---:|---:|---:|---|---:|`];
  const cpuText = (key, unit) => {
    const v = med(key, unit === 'rps' ? 'cpuPerReq' : 'cpuPerMB');
    return Number.isNaN(v) ? '–' : `${fmt(v)}${unit === 'rps' ? ' µs/req' : ' ms/MB'}`;
  };
  const summary = {};
  const ratiosOut = {};
  for (const g of groups) {
    const mineKey = `${g.name} | triplicate`;
    const mine = med(mineKey, g.unit);
    const groupGoal = g.name.startsWith('S3') ? 0.9 : g.unit === 'rps' ? 0.7 : 0.9;
    for (const e of g.entries.slice(1)) {
      // an entry's own goal: null for one shown for information, none for a reference
      const goal = e.ref ? null : e.goal === undefined ? groupGoal : e.goal;
      const key = `${g.name} | ${e.name}`;
      const theirs = med(key, g.unit);
      const ratio = mine / theirs;
      // and round by round (each round measures both within seconds): how far the rounds spread
      const perRound = results[mineKey].map((x, r) => x[g.unit] / results[key][r][g.unit]).filter((x) => Number.isFinite(x));
      const spread = perRound.length ? `${Math.min(...perRound).toFixed(2)}–${Math.max(...perRound).toFixed(2)}` : '–';
      summary[key] = { theirs: Math.round(theirs), triplicate: Math.round(mine), ratio: Number(ratio.toFixed(2)) };
      if (!e.ref) ratiosOut[`serve: ${g.name}, ours / ${e.name}${goal ? ` (goal >= ${goal})` : ''}`] = ratio;
      const goalText = e.ref ? '(reference)' : goal ? `>= ${goal}x ${ratio >= goal ? 'met' : 'MISSED'}` : '–';
      lines.push(
        `| ${g.name}, ${g.unit === 'rps' ? 'requests/s' : 'MB/s'} | ${e.name} | ${fmt(theirs)} | ${fmt(mine)} | ${ratio.toFixed(2)}x | ${spread} | ${goalText} | ${cpuText(key, g.unit)} / ${cpuText(mineKey, g.unit)} |`,
      );
    }
  }
  // What any proxy gets here against the direct GET: on shared CPUs the proxy (and the extra hop
  // of its client) takes CPU from the S3 server, so this is the ceiling of the goal on this machine.
  for (const g of groups) {
    const directKey = `${g.name} | ${DIRECT}`;
    if (!results[directKey]) continue;
    const direct = med(directKey, g.unit);
    const proxies = g.entries.filter((e) => e.name === 'triplicate' || e.name.includes('proxy'));
    const ceiling = proxies.map((e) => `${e.name} ${(med(`${g.name} | ${e.name}`, g.unit) / direct).toFixed(2)}x`).join(', ');
    lines.push(`${g.name}: proxies against the ${DIRECT}: ${ceiling}`);
  }
  lines.push('', `medians of ${ROUNDS} rounds of ${DURATION}; load average at the end ${loadavg()[0].toFixed(1)} (other work on the machine makes runs vary)`, '');
  process.stdout.write(lines.join('\n'));
  writeResult(pin ? 'serve-pinned' : 'serve', ratiosOut);
  process.stdout.write(`${JSON.stringify({ bench: 'serve', pinned: !!pin, duration: DURATION, rounds: ROUNDS, connections: CONNS, cpus: cpus().length, summary })}\n`);
  const accessLines = readFileSync(join(dataDir, 'logs', 'download-access.jsonl'), 'utf8').split('\n').length;
  process.stderr.write(`  (the download server wrote ${accessLines} access-log lines during the run)\n`);
} finally {
  await cleanup();
}

// Client CPU per S3 request: the S3 backend of this checkout against the one of another checkout
// (A/B in one process, against one s3rver in its own process, rounds interleaved in alternating
// order). Per request kind: HEAD, single PUT and GET of a 200 KB object through the backend, the
// same three sent as commands through the backend's own AWS SDK client (what the SDK's stack costs
// there: on a checkout before s3-http.ts, the SDK with its own node:http handler), a single
// PUT of 24 MiB, and multipart uploads of 32 MiB read block by block (a local file) and from a
// stream (a bandwidth-limited body); bodies come in 64 KiB chunks, as from a file stream.
//
//   node --import tsx bench/s3-requests.mjs [--other /path/to/checkout] [--rounds 7] [--n 300] [--conc 8]
//
// Without --other it measures this checkout alone. What is measured is process.cpuUsage() of this
// process (user + system) over a batch of requests: the client's work, s3rver's is elsewhere.
import { createHash } from 'node:crypto';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { content, median, rm, startS3rverProcess, table, tempDir } from './lib/common.mjs';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
const { values } = parseArgs({
  options: {
    other: { type: 'string' },
    rounds: { type: 'string', default: '7' },
    n: { type: 'string', default: '300' },
    conc: { type: 'string', default: '8' },
    only: { type: 'string' },
  },
});
const ROUNDS = Number(values.rounds);
const N = Number(values.n);
const CONC = Number(values.conc);
const SMALL = 200 * 1024;
const BIG = 32 * 1024 * 1024;
const MiB = 1024 * 1024;

const here = resolve(import.meta.dirname, '..');
const impls = [{ name: 'this', dir: here }];
if (values.other) impls.push({ name: 'other', dir: resolve(values.other) });
for (const i of impls) i.mod = await import(pathToFileURL(join(i.dir, 'src/main/engine/backends/s3.ts')).href);

const base = tempDir('trip-bench-s3req-');
const s3 = await startS3rverProcess(join(base, 's3'), ['bench']);
process.on('uncaughtException', (e) => {
  console.error(e);
  void s3.stop().finally(() => process.exit(1));
});
const target = {
  id: 'nas', label: 'NAS', kind: 's3', preset: 'minio', endpoint: s3.endpoint, region: 'us-east-1', bucket: 'bench', prefix: '', pathStyle: true,
  credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }, priority: 1, enabled: true, concurrency: 4, versionsPrefix: '.triplicate/versions/',
  multipartThreshold: 16 * MiB, partSize: 8 * MiB,
};
const small = content(SMALL, 1);
const smallSha = createHash('sha256').update(small).digest('hex');
const MID = 24 * 1024 * 1024;
const mid = content(MID, 3);
const midSha = createHash('sha256').update(mid).digest('hex');
const big = content(BIG, 2);
const bigSha = createHash('sha256').update(big).digest('hex');
/** The bytes in 64 KiB chunks, as fs.createReadStream gives them. */
const chunks = (b) =>
  Readable.from(
    (function* () {
      for (let off = 0; off < b.length; off += 65536) yield b.subarray(off, off + 65536);
    })(),
  );
const bufferBody = (b) => ({ size: b.length, open: () => chunks(b) });
const blockBody = (b) => ({
  size: b.length,
  open: () => chunks(b),
  openReader: async () => {
    let pos = 0;
    return { read: async (buf) => { const n = b.copy(buf, 0, pos, Math.min(b.length, pos + buf.length)); pos += n; return n; }, close: async () => {} };
  },
});

for (const i of impls) {
  i.backend = new i.mod.S3Backend(target, {});
  i.single = new i.mod.S3Backend({ ...target, multipartThreshold: 64 * MiB }, {});
  await i.backend.put(`obj/${i.name}.bin`, bufferBody(small), { sha256: smallSha, mtimeMs: 1 });
}

const OPS = {
  head: { count: N, run: (b, name) => b.head(`obj/${name}.bin`) },
  get: {
    count: N,
    run: async (b, name) => {
      const r = await b.get(`obj/${name}.bin`);
      for await (const _ of r.body) void _;
    },
  },
  put: { count: N, run: (b, name, k) => b.put(`put/${name}/${k % 50}.bin`, bufferBody(small), { sha256: smallSha, mtimeMs: 1 }) },
  'sdk head': { count: N, run: (b, name) => b.client.send(new HeadObjectCommand({ Bucket: 'bench', Key: `obj/${name}.bin` })) },
  'sdk get': {
    count: N,
    run: async (b, name) => {
      const r = await b.client.send(new GetObjectCommand({ Bucket: 'bench', Key: `obj/${name}.bin` }));
      for await (const _ of r.Body) void _;
    },
  },
  'sdk put': {
    count: N,
    run: (b, name, k) =>
      b.client.send(new PutObjectCommand({ Bucket: 'bench', Key: `sdkput/${name}/${k % 50}.bin`, Body: chunks(small), ContentLength: SMALL, ContentType: 'application/octet-stream' })),
  },
  'put 24 MiB': { count: 8, conc: 4, perMiB: true, size: MID, single: true, run: (b, name, k) => b.put(`mid/${name}/${k % 4}.bin`, bufferBody(mid), { sha256: midSha, mtimeMs: 1 }) },
  'multipart from a file': { count: 6, conc: 2, perMiB: true, size: BIG, run: (b, name, k) => b.put(`mpu/${name}/${k % 2}.bin`, blockBody(big), { sha256: bigSha, mtimeMs: 1 }) },
  'multipart from a stream': { count: 6, conc: 2, perMiB: true, size: BIG, run: (b, name, k) => b.put(`mps/${name}/${k % 2}.bin`, bufferBody(big), { sha256: bigSha, mtimeMs: 1 }) },
};
const only = values.only ? values.only.split(',') : Object.keys(OPS);
for (const n of only) if (!OPS[n]) throw new Error(`no request kind "${n}" (${Object.keys(OPS).join(', ')})`);

async function batch(impl, op) {
  let k = 0;
  const conc = op.conc ?? CONC;
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: conc }, async () => {
      while (k < op.count) await op.run(op.single ? impl.single : impl.backend, impl.name, k++);
    }),
  );
  const c = process.cpuUsage(c0);
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpuUs = c.user + c.system;
  const units = op.perMiB ? (op.count * op.size) / MiB : op.count;
  return { cpu: cpuUs / units, wall: (wall * 1e6) / units };
}

const results = {}; // op -> impl -> [cpu per unit]
const walls = {}; // op -> impl -> [wall µs per unit]
for (const name of only) {
  results[name] = Object.fromEntries(impls.map((i) => [i.name, []]));
  walls[name] = Object.fromEntries(impls.map((i) => [i.name, []]));
  for (const i of impls) await batch(i, OPS[name]); // warm-up
}
for (let r = 0; r < ROUNDS; r++) {
  const order = r % 2 ? [...impls].reverse() : impls;
  for (const name of only) {
    for (const i of order) {
      const x = await batch(i, OPS[name]);
      results[name][i.name].push(x.cpu);
      walls[name][i.name].push(x.wall);
    }
  }
  console.log(`round ${r + 1}/${ROUNDS}: ${only.map((n) => `${n} ${impls.map((i) => Math.round(results[n][i.name].at(-1))).join('/')}`).join(', ')}`);
}

for (const i of impls) {
  i.backend.close();
  i.single.close();
}
await s3.stop();
rm(base);

const fmt = (xs) => `${Math.round(median(xs))} (${Math.round(Math.min(...xs))}-${Math.round(Math.max(...xs))})`;
const rows = only.flatMap((n) =>
  [['CPU', results], ['wall', walls]].map(([what, xs]) => {
    const row = [`${n}, ${what} ${OPS[n].perMiB ? 'µs/MiB' : 'µs/request'}`, ...impls.map((i) => fmt(xs[n][i.name]))];
    if (impls.length === 2) {
      const ratios = xs[n].this.map((x, j) => x / xs[n].other[j]);
      row.push(`${median(ratios).toFixed(2)} (${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)})`);
    }
    return row;
  }),
);
console.log(`\nclient CPU and wall time per unit, median (min-max) of ${ROUNDS} rounds; ${N} requests of 200 KB per round, ${CONC} in flight`);
console.log(table(rows, ['request', ...impls.map((i) => (i.name === 'this' ? `this (${here})` : `other (${i.dir})`)), ...(impls.length === 2 ? ['this/other per round'] : [])]));

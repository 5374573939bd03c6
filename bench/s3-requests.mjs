// Client CPU per S3 request: the S3 backend of this checkout against the one of another checkout
// (A/B in one process, against one s3rver in its own process, rounds interleaved in alternating
// order). Per request kind: HEAD, single PUT and GET of a 200 KB object through the backend, a
// HeadObject sent through the backend's own AWS SDK client (what a command costs there), and a
// multipart upload of a 32 MiB file read block by block (CPU per MiB).
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
import { HeadObjectCommand } from '@aws-sdk/client-s3';
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
const target = {
  id: 'nas', label: 'NAS', kind: 's3', preset: 'minio', endpoint: s3.endpoint, region: 'us-east-1', bucket: 'bench', prefix: '', pathStyle: true,
  credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }, priority: 1, enabled: true, concurrency: 4, versionsPrefix: '.triplicate/versions/',
  multipartThreshold: 16 * MiB, partSize: 8 * MiB,
};
const small = content(SMALL, 1);
const smallSha = createHash('sha256').update(small).digest('hex');
const big = content(BIG, 2);
const bigSha = createHash('sha256').update(big).digest('hex');
const bufferBody = (b) => ({ size: b.length, open: () => Readable.from([b]) });
const blockBody = (b) => ({
  size: b.length,
  open: () => Readable.from([b]),
  openReader: async () => {
    let pos = 0;
    return { read: async (buf) => { const n = b.copy(buf, 0, pos, Math.min(b.length, pos + buf.length)); pos += n; return n; }, close: async () => {} };
  },
});

for (const i of impls) {
  i.backend = new i.mod.S3Backend(target, {});
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
  multipart: { count: 6, conc: 2, perMiB: true, run: (b, name, k) => b.put(`mpu/${name}/${k % 2}.bin`, blockBody(big), { sha256: bigSha, mtimeMs: 1 }) },
};
const only = values.only ? values.only.split(',') : Object.keys(OPS);

async function batch(impl, op) {
  let k = 0;
  const conc = op.conc ?? CONC;
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: conc }, async () => {
      while (k < op.count) await op.run(impl.backend, impl.name, k++);
    }),
  );
  const c = process.cpuUsage(c0);
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpuUs = c.user + c.system;
  return { cpu: op.perMiB ? cpuUs / ((op.count * BIG) / MiB) : cpuUs / op.count, wall };
}

const results = {}; // op -> impl -> [cpu per unit]
for (const name of only) {
  results[name] = Object.fromEntries(impls.map((i) => [i.name, []]));
  for (const i of impls) await batch(i, OPS[name]); // warm-up
}
for (let r = 0; r < ROUNDS; r++) {
  const order = r % 2 ? [...impls].reverse() : impls;
  for (const name of only) {
    for (const i of order) {
      const x = await batch(i, OPS[name]);
      results[name][i.name].push(x.cpu);
    }
  }
  console.log(`round ${r + 1}/${ROUNDS}: ${only.map((n) => `${n} ${impls.map((i) => Math.round(results[n][i.name].at(-1))).join('/')}`).join(', ')}`);
}

for (const i of impls) i.backend.close();
await s3.stop();
rm(base);

const fmt = (xs) => `${Math.round(median(xs))} (${Math.round(Math.min(...xs))}-${Math.round(Math.max(...xs))})`;
const rows = only.map((n) => {
  const row = [`${n}${OPS[n].perMiB ? ' (µs/MiB)' : ' (µs/request)'}`, ...impls.map((i) => fmt(results[n][i.name]))];
  if (impls.length === 2) {
    const ratios = results[n].this.map((x, j) => x / results[n].other[j]);
    row.push(`${median(ratios).toFixed(2)} (${Math.min(...ratios).toFixed(2)}-${Math.max(...ratios).toFixed(2)})`);
  }
  return row;
});
console.log(`\nclient CPU, median (min-max) of ${ROUNDS} rounds; ${N} requests of 200 KB per round, ${CONC} in flight`);
console.log(table(rows, ['request', ...impls.map((i) => (i.name === 'this' ? `this (${here})` : `other (${i.dir})`)), ...(impls.length === 2 ? ['this/other per round'] : [])]));

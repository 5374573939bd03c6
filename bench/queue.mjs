#!/usr/bin/env node
// Job queue throughput: our Catalog (the durable queue every upload, transcode and restore goes
// through: claim with a lease and a fencing token, complete with the fence) against `plainjob` and
// `liteque`, the SQLite job queues on npm, in one run on the same machine. Each queue gets its own
// file-backed SQLite database in WAL mode in its own temp dir.
//
//   node bench/queue.mjs [--jobs 100000] [--rounds 2]
//
// Measured per queue:
//   enqueue      N jobs one by one (each its own transaction), ops/s
//   enqueue batch N jobs in one transaction (ours; plainjob's addMany; liteque has no batch API)
//   claim+complete  claim the next runnable job and complete it, until the queue is empty: what a
//                worker loop does (plainjob's own worker also reads the job by id after claiming;
//                liteque's claim is a select + conditional update in a transaction, run synchronously
//                here because its own attemptDequeue cannot run with better-sqlite3 12: see dequeue())
// Rounds alternate the order of the queues; the best round of each is kept.
// Goal (issue 7): ahead of both on claim+complete and on enqueue.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { register } from 'tsx/esm/api';
import Database from 'better-sqlite3';
import { better, defineQueue } from 'plainjob';
import { buildDBClient, SqliteQueue } from 'liteque';
import { table, writeResult } from './lib/common.mjs';

register();
const { Catalog } = await import('../src/main/engine/catalog/catalog.ts');

const { values } = parseArgs({ options: { jobs: { type: 'string', default: '100000' }, rounds: { type: 'string', default: '2' }, first: { type: 'string', default: '10000' }, 'cap-seconds': { type: 'string', default: '120' } } });
const N = Number(values.jobs);
/** Claim + complete is compared over the first FIRST cycles of a full queue (every queue at the same depth). */
const FIRST = Math.min(N, Number(values.first));
const CAP_MS = Number(values['cap-seconds']) * 1000;
const ROUNDS = Number(values.rounds);
const quiet = { error() {}, warn() {}, info() {}, debug() {} };

function tmp(name) {
  return mkdtempSync(join(tmpdir(), `trip-bench-queue-${name}-`));
}

// liteque 0.8.0's attemptDequeue runs an async callback in a better-sqlite3 transaction, which
// better-sqlite3 12 refuses ("Transaction function cannot return a promise"): it cannot dequeue as
// shipped. This is its dequeue with the same drizzle queries (select the next runnable task, then
// update it under its allocation id), in a synchronous transaction.
const LQ = join(import.meta.dirname, '..', 'node_modules', 'liteque');
const dz = await import(pathToFileURL(join(LQ, 'node_modules', 'drizzle-orm', 'index.js')).href).catch(() => import('drizzle-orm'));
async function dequeue(db, queue, timeoutSecs) {
  const { and, asc, eq, isNull, lt, lte, or } = dz;
  const T = db._.fullSchema.tasksTable;
  return db.transaction((txn) => {
    const now = new Date();
    const jobs = txn
      .select()
      .from(T)
      .where(and(eq(T.queue, queue.queueName), or(lte(T.availableAt, now), isNull(T.availableAt)), or(eq(T.status, 'pending'), eq(T.status, 'pending_retry'), and(eq(T.status, 'running'), lt(T.expireAt, now)))))
      .orderBy(asc(T.priority), asc(T.createdAt))
      .limit(1)
      .all();
    if (jobs.length === 0) return null;
    const job = jobs[0];
    const res = txn
      .update(T)
      .set({ status: 'running', numRunsLeft: job.numRunsLeft - 1, allocationId: randomBytes(16).toString('hex'), expireAt: new Date(Date.now() + timeoutSecs * 1000) })
      .where(and(eq(T.id, job.id), eq(T.allocationId, job.allocationId)))
      .returning()
      .all();
    return res[0] ?? null;
  });
}

// Each queue: open(), enqueue(i) one job in its own transaction, batch(n) n jobs in one transaction
// (null: no batch API), cycle() claim the next job and complete it (false when empty), close().
const contenders = {
  triplicate() {
    const dir = tmp('ours');
    const catalog = new Catalog(join(dir, 'catalog.db'));
    const lane = 'upload:bench';
    return {
      enqueue: (i) => catalog.enqueue(lane, 'upload', i, { payload: { n: i } }),
      batch: (n) =>
        catalog.transaction(() => {
          for (let i = 1; i <= n; i++) catalog.enqueue('upload:batch', 'upload', i, { payload: { n: i } });
        }),
      cycle: () => {
        const job = catalog.claim(lane, 'bench-worker', 60_000);
        if (!job) return false;
        if (!catalog.complete(job)) throw new Error('fence lost');
        return true;
      },
      close: () => {
        catalog.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },

  plainjob() {
    const dir = tmp('plainjob');
    const db = new Database(join(dir, 'queue.db'));
    const queue = defineQueue({ connection: better(db), logger: quiet, maintenanceInterval: 3_600_000 });
    return {
      enqueue: (i) => queue.add('bench', { n: i }),
      batch: (n) => queue.addMany('batch', Array.from({ length: n }, (_, i) => ({ n: i + 1 }))),
      cycle: () => {
        const claimed = queue.getAndMarkJobAsProcessing('bench');
        if (!claimed) return false;
        const job = queue.getJobById(claimed.id); // as plainjob's worker does
        queue.markJobAsDone(job.id);
        return true;
      },
      close: () => {
        queue.close();
        db.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },

  liteque() {
    const dir = tmp('liteque');
    const db = buildDBClient(join(dir, 'queue.db'), { runMigrations: true, walEnabled: true });
    const queue = new SqliteQueue('bench', db, { defaultJobArgs: { numRetries: 0 }, keepFailedJobs: false });
    return {
      enqueue: (i) => queue.enqueue({ n: i }),
      batch: null,
      cycle: async () => {
        const job = await dequeue(db, queue, 60);
        if (!job) return false;
        await queue.finalize(job.id, job.allocationId, 'completed');
        return true;
      },
      close: () => {
        db.$client?.close?.();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  },
};

/**
 * Interleaved: every queue does CHUNK operations in turn (the order rotating), each chunk timed, so
 * that the load of a shared machine falls on all of them alike.
 */
const CHUNK = 500;
async function interleaved(qs, total, op, stopAt = () => total) {
  const secs = Object.fromEntries(Object.keys(qs).map((k) => [k, 0]));
  const done = Object.fromEntries(Object.keys(qs).map((k) => [k, 0]));
  const names = Object.keys(qs);
  for (let round = 0; ; round++) {
    let any = false;
    for (let j = 0; j < names.length; j++) {
      const name = names[(round + j) % names.length];
      const limit = stopAt(name);
      if (done[name] >= limit) continue;
      any = true;
      const n = Math.min(CHUNK, limit - done[name]);
      const t0 = performance.now();
      const got = await op(qs[name], done[name], n);
      secs[name] += (performance.now() - t0) / 1000;
      done[name] += got;
      if (got < n) done[name] = limit; // empty
      if (secs[name] * 1000 > CAP_MS) done[name] = Math.max(done[name], limit);
    }
    if (!any) break;
  }
  return { secs, done };
}

console.log(`bench/queue: ${N.toLocaleString('en-US')} jobs per queue, ${ROUNDS} round(s), file-backed SQLite in WAL mode, operations interleaved in chunks of ${CHUNK}`);
const best = {};
for (let r = 0; r < ROUNDS; r++) {
  const qs = Object.fromEntries(Object.entries(contenders).map(([k, f]) => [k, f()]));
  const counts = {};
  try {
    // enqueue N one by one
    const enq = await interleaved(qs, N, async (q, from, n) => {
      for (let i = from + 1; i <= from + n; i++) await q.enqueue(i);
      return n;
    });
    // claim + complete: the first FIRST cycles (every queue at the same depth), then the rest (not liteque: too slow to drain)
    const cyc1 = await interleaved(qs, FIRST, async (q, _from, n) => {
      let k = 0;
      while (k < n && (await q.cycle())) k++;
      return k;
    });
    const rest = Object.fromEntries(Object.entries(qs).filter(([k]) => k !== 'liteque'));
    const cyc2 = await interleaved(rest, N - FIRST, async (q, _from, n) => {
      let k = 0;
      while (k < n && (await q.cycle())) k++;
      return k;
    });
    for (const name of Object.keys(qs)) {
      const q = qs[name];
      let batch = NaN;
      if (q.batch) {
        const t0 = performance.now();
        q.batch(N);
        batch = N / ((performance.now() - t0) / 1000);
      }
      const first = cyc1.done[name] / cyc1.secs[name];
      const all = name in cyc2.secs ? (cyc1.done[name] + cyc2.done[name]) / (cyc1.secs[name] + cyc2.secs[name]) : NaN;
      const ops = { one: enq.done[name] / enq.secs[name], batch, cycle: first, drain: all, drained: name in cyc2.done && cyc1.done[name] + cyc2.done[name] === N };
      counts[name] = cyc1.done[name] + (cyc2.done[name] ?? 0);
      console.log(
        `  round ${r + 1} ${name.padEnd(11)} enqueue ${ops.one.toFixed(0).padStart(7)}/s  batch ${Number.isNaN(ops.batch) ? '    n/a' : ops.batch.toFixed(0).padStart(7)}/s  ` +
          `claim+complete ${ops.cycle.toFixed(0).padStart(7)}/s (first ${FIRST.toLocaleString('en-US')})${Number.isNaN(ops.drain) ? '' : `, ${ops.drain.toFixed(0)}/s over all ${counts[name].toLocaleString('en-US')}`}`,
      );
      const b = (best[name] ??= { one: 0, batch: NaN, cycle: 0, drain: NaN, drained: false });
      b.one = Math.max(b.one, ops.one);
      b.batch = Number.isNaN(b.batch) ? ops.batch : Math.max(b.batch, ops.batch);
      b.cycle = Math.max(b.cycle, ops.cycle);
      b.drain = Number.isNaN(b.drain) ? ops.drain : Math.max(b.drain, ops.drain);
      b.drained ||= ops.drained;
    }
    for (const name of ['triplicate', 'plainjob']) if (counts[name] !== N) throw new Error(`${name}: ${counts[name]} of ${N} jobs came out of the queue`);
  } finally {
    for (const q of Object.values(qs)) q.close();
  }
}

const fmt = (x) => (Number.isNaN(x) ? 'n/a' : Math.round(x).toLocaleString('en-US'));
const rows = Object.entries(best).map(([name, b]) => [name, fmt(b.one), fmt(b.batch), fmt(b.cycle), fmt(b.drain), name === 'triplicate' ? '1.00' : (best.triplicate.cycle / b.cycle).toFixed(2)]);
console.log(`\n${table(rows, ['queue', 'enqueue ops/s', 'batch enqueue ops/s', `claim+complete ops/s, first ${FIRST.toLocaleString('en-US')}`, 'claim+complete ops/s, whole queue', 'ours / theirs'])}`);
const ratios = {
  'queue: claim+complete, ours / plainjob': best.triplicate.cycle / best.plainjob.cycle,
  'queue: claim+complete, ours / liteque': best.triplicate.cycle / best.liteque.cycle,
  'queue: enqueue, ours / plainjob': best.triplicate.one / best.plainjob.one,
  'queue: enqueue, ours / liteque': best.triplicate.one / best.liteque.one,
  'queue: batch enqueue, ours / plainjob addMany': best.triplicate.batch / best.plainjob.batch,
  'queue: claim+complete of the whole queue, ours / plainjob': best.triplicate.drain / best.plainjob.drain,
};
console.log('');
for (const [k, v] of Object.entries(ratios)) console.log(`${k}: ${v.toFixed(2)}`);
console.log('goal: every ratio >= 1.00 (ahead of both)');
console.log(JSON.stringify({ bench: 'queue', jobs: N, ops_per_s: Object.fromEntries(Object.entries(best).map(([k, b]) => [k, { enqueue: Math.round(b.one), batch: Number.isNaN(b.batch) ? null : Math.round(b.batch), claim_complete_first: Math.round(b.cycle), claim_complete_all: Math.round(b.drain), drained: b.drained }])) }));
writeResult('queue', ratios);

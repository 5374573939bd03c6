#!/usr/bin/env node
// `npm run bench`: every benchmark in bench/ (sync, serve, restore, transcode, queue, scale,
// activity, drop: whichever exist), one after the other, each with TRIPLICATE_BENCH_RESULTS set so
// that it writes its ratios (bench/lib/common.mjs writeResult); then ONE table of every ratio with
// its goal.
//
//   node bench/run.mjs [name ...]        e.g. node bench/run.mjs queue scale
//
// Benchmarks run with `node --import tsx` (they import the engine's TypeScript), with the engine
// process's Node options (src/shared/engine-flags.ts), since several run the engine in their own
// process. A benchmark that fails still shows what it wrote; the exit code is 1 when one failed or
// a goal was missed.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const here = import.meta.dirname;
const root = join(here, '..');
const ORDER = ['sync', 'serve', 'restore', 'transcode', 'queue', 'scale', 'activity', 'drop'];
const found = readdirSync(here).filter((f) => f.endsWith('.mjs') && f !== 'run.mjs').map((f) => f.slice(0, -4));
const names = [...ORDER.filter((n) => found.includes(n)), ...found.filter((n) => !ORDER.includes(n)).sort()];
const only = process.argv.slice(2);
const todo = only.length ? names.filter((n) => only.includes(n)) : names;

/** Goals of ratios whose names do not carry "(goal <= x)" themselves. */
const GOALS = {
  'sync: ours / rclone throughput': '>= 1.00',
  'sync: ours / raw PutObject throughput': '>= 0.85',
  'sync: 2 targets time / 1 target time': '<= 1.30',
  'restore: ours / rclone throughput': '>= 1.00',
  'queue: claim+complete, ours / plainjob': '>= 1.00',
  'queue: claim+complete, ours / liteque': '>= 1.00',
  'queue: enqueue, ours / plainjob': '>= 1.00',
  'queue: enqueue, ours / liteque': '>= 1.00',
  'queue: claim+complete of the whole queue, ours / plainjob': '>= 1.00',
};

function goalOf(key) {
  const m = /\(goal ([<>]=?) ?([\d.]+)\)/.exec(key);
  if (m) return `${m[1]} ${m[2]}`;
  return GOALS[key] ?? null;
}

function met(value, goal) {
  if (goal === null || typeof value !== 'number' || Number.isNaN(value)) return null;
  const [op, n] = goal.split(' ');
  const x = Number(n);
  return op === '>=' ? value >= x : op === '>' ? value > x : op === '<=' ? value <= x : value < x;
}

const dir = join(root, '.tmp', 'bench');
mkdirSync(dir, { recursive: true });
const base = join(dir, 'results');
const rows = [];
const runs = [];
// benches that start `triplicate` run the compiled engine, as users do
(await import('../scripts/ensure-built.mjs')).ensureBuilt(['engine']);
for (const name of todo) {
  for (const f of readdirSync(dir)) if (f.startsWith(`results.${name}`)) rmSync(join(dir, f), { force: true });
  console.log(`\n=== bench/${name}.mjs`);
  const t0 = Date.now();
  const r = spawnSync(process.execPath, ['--min-semi-space-size=16', '--import', 'tsx', join(here, `${name}.mjs`)], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, TRIPLICATE_BENCH_RESULTS: base, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
  });
  const seconds = Math.round((Date.now() - t0) / 1000);
  runs.push({ name, code: r.status ?? r.signal, seconds });
  const files = readdirSync(dir).filter((f) => f.startsWith('results.') && f.endsWith('.json') && f.slice('results.'.length, -'.json'.length) === name);
  if (files.length === 0) rows.push({ bench: name, key: `${name}: (no ratios written; exit ${r.status ?? r.signal})`, value: NaN, goal: null });
  for (const f of files) {
    const { ratios } = JSON.parse(readFileSync(join(dir, f), 'utf8'));
    for (const [key, value] of Object.entries(ratios)) rows.push({ bench: name, key, value, goal: goalOf(key) });
  }
}

const fmt = (v) => (typeof v === 'number' && !Number.isNaN(v) ? (Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(2)) : 'n/a');
const w = Math.max(...rows.map((r) => r.key.length), 10);
console.log(`\n${'ratio'.padEnd(w)}  ${'value'.padStart(8)}  goal      `);
console.log(`${'-'.repeat(w)}  ${'-'.repeat(8)}  ----------`);
let missed = 0;
for (const r of rows) {
  const ok = met(r.value, r.goal);
  if (ok === false) missed++;
  console.log(`${r.key.padEnd(w)}  ${fmt(r.value).padStart(8)}  ${r.goal ?? '—'}${ok === null ? '' : ok ? '  met' : '  MISSED'}`);
}
console.log(`\n${runs.map((r) => `${r.name} ${r.seconds} s${r.code === 0 ? '' : ` (exit ${r.code})`}`).join(', ')}`);
const failed = runs.filter((r) => r.code !== 0).length;
console.log(`bench: ${rows.length} ratios, ${missed} goals missed, ${failed} benchmarks failed`);
process.exitCode = missed || failed ? 1 : 0;

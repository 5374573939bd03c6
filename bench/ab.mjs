#!/usr/bin/env node
// A/B of one benchmark between this checkout and another one (e.g. the commit before a change,
// unpacked with `git archive <rev> | tar -x -C /tmp/before` and its node_modules linked), in one
// run: the two sides take turns, in alternating order, `--runs` times each. Every run prints its
// rounds ("round N: <what> <seconds> s"); each run's medians give its own ratios (ours against
// rclone and against the raw client of the same run, which share the machine's drift), and the
// table shows the median and spread of those ratios per side.
//
//   node bench/ab.mjs --other /tmp/before [--runs 3] sync --rounds 3 --only raw,rclone,ours
//   node bench/ab.mjs --other /tmp/before restore --rounds 3
import { spawnSync } from 'node:child_process';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { median, table } from './lib/common.mjs';

const argv = process.argv.slice(2);
const take = (name, dflt) => {
  const i = argv.indexOf(name);
  if (i < 0) return dflt;
  const v = argv[i + 1];
  argv.splice(i, 2);
  return v;
};
const other = take('--other');
const RUNS = Number(take('--runs', '3'));
const [bench, ...args] = argv;
if (!other || !bench) throw new Error('usage: node bench/ab.mjs --other DIR [--runs N] <bench> [bench args]');
const sides = [
  { name: 'this', dir: resolve(import.meta.dirname, '..') },
  { name: 'other', dir: resolve(other) },
];
// benches that start `triplicate` run the compiled engine: each side its own
for (const s of sides) (await import(pathToFileURL(join(s.dir, 'scripts', 'ensure-built.mjs')).href)).ensureBuilt(['engine']);

const runs = { this: [], other: [] };
for (let r = 0; r < RUNS; r++) {
  for (const s of r % 2 ? [...sides].reverse() : sides) {
    const out = spawnSync(process.execPath, ['--import', 'tsx', join(s.dir, 'bench', `${bench}.mjs`), ...args], {
      cwd: s.dir,
      encoding: 'utf8',
      env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
      maxBuffer: 64 * 1024 * 1024,
    });
    if (out.status !== 0) throw new Error(`${s.name} ${bench} failed (${out.status}): ${out.stderr.slice(-2000)}`);
    const times = {};
    for (const m of out.stdout.matchAll(/round \d+: (\S+)\s+([\d.]+) s/g)) (times[m[1]] ??= []).push(Number(m[2]));
    const med = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, median(v)]));
    runs[s.name].push(med);
    console.log(`run ${r + 1} ${s.name.padEnd(5)} ${Object.entries(med).map(([k, v]) => `${k} ${v.toFixed(2)} s`).join(', ')}`);
  }
}

const fmt = (xs, d = 2) => (xs.length ? `${median(xs).toFixed(d)} (${Math.min(...xs).toFixed(d)}-${Math.max(...xs).toFixed(d)})` : 'n/a');
const peers = ['rclone', 'raw'];
const rows = [];
for (const what of Object.keys(runs.this[0] ?? {})) rows.push([`${what} seconds`, fmt(runs.this.map((m) => m[what])), fmt(runs.other.map((m) => m[what]))]);
for (const peer of peers) {
  if (!runs.this[0]?.[peer] || !runs.this[0]?.ours) continue;
  const ratio = (m) => m[peer] / m.ours;
  rows.push([`ours / ${peer} throughput`, fmt(runs.this.map(ratio)), fmt(runs.other.map(ratio))]);
}
console.log(`\n${bench} ${args.join(' ')}: median (min-max) of ${RUNS} runs per side, alternating`);
console.log(table(rows, ['', `this (${sides[0].dir})`, `other (${sides[1].dir})`]));

#!/usr/bin/env node
// Scale: 100,000 tiny files in one folder (issue 7).
//   - the first scan (hash, catalog, queue for two destinations), in this process, uploads paused
//   - an unchanged rescan (engine.scanAll) against `find <root> -type f -printf '%s %T@\n'` listing
//     the same tree, alternating, median of 5, once the first scan has settled (goal: within 3x)
//   - idle CPU while watching (process.cpuUsage over 10 s)
//   - the status endpoint (goal: p95 < 50 ms) and the Activity listing with filters, over the admin
//     API, each call past the status cache
//   - a full sync by `triplicate serve` to two s3rver targets (each in its own process): the
//     engine's RSS sampled every 250 ms (goal: < 300 MB), and the API latency while it works
//
//   node bench/scale.mjs [--files 100000] [--no-sync]
import { parseArgs } from 'node:util';
import { register } from 'tsx/esm/api';
import { writeResult } from './lib/common.mjs';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
register();
const { measureScale } = await import('../test/robustness/scale.ts');

const { values } = parseArgs({ options: { files: { type: 'string', default: '100000' }, 'no-sync': { type: 'boolean', default: false }, keep: { type: 'boolean', default: false } } });
const files = Number(values.files);
console.log(`bench/scale: ${files.toLocaleString('en-US')} files in one folder${values['no-sync'] ? '' : ', then a full sync to two s3rver destinations'}`);
const r = await measureScale({ files, fullSync: !values['no-sync'], keep: values.keep });
console.log(JSON.stringify({ bench: 'scale', ...r }));
const goals = [
  ['unchanged rescan / find', r.rescan_vs_find, '<= 3', r.rescan_vs_find <= 3],
  ['status p95, ms', r.status_ms.p95, '< 50', r.status_ms.p95 < 50],
  ...Object.entries(r.activity_ms).map(([k, l]) => [`Activity "${k}" p95, ms`, l.p95, '< 100', l.p95 < 100]),
  ['idle CPU while watching, % of a core', r.idle_cpu_pct, '< 2', r.idle_cpu_pct < 2],
];
if (r.sync) {
  goals.push(['RSS during the full sync, MB', r.sync.rss_peak_mb, '< 300', r.sync.rss_peak_mb < 300]);
  goals.push(['status p95 while syncing, ms', r.sync.status_busy_ms.p95, '< 50', r.sync.status_busy_ms.p95 < 50]);
}
console.log('');
for (const [k, v, goal, ok] of goals) console.log(`${ok ? 'met   ' : 'MISSED'} ${k}: ${v} (goal ${goal})`);
const ratios = {
  'scale: unchanged rescan / find (goal <= 3)': r.rescan_vs_find,
  'scale: status p95 / 50 ms (goal <= 1)': r.status_ms.p95 / 50,
  'scale: Activity worst p95 / 100 ms (goal <= 1)': Math.max(...Object.values(r.activity_ms).map((l) => l.p95)) / 100,
};
if (r.sync) {
  ratios['scale: RSS peak during full sync / 300 MB (goal <= 1)'] = r.sync.rss_peak_mb / 300;
  ratios['scale: status p95 while syncing / 50 ms (goal <= 1)'] = r.sync.status_busy_ms.p95 / 50;
}
writeResult('scale', ratios);
process.exitCode = goals.every((g) => g[3]) ? 0 : 1;

#!/usr/bin/env node
// The engine's Node options (src/shared/engine-flags.ts) against none, A/B in one run, taking turns:
// `triplicate serve` on the same scanned catalog of --files tiny files (its start-up rescan
// included) uploads to two fresh s3rver destinations for --seconds; the engine's RSS peak (sampled
// every 100 ms) and the files made safe meanwhile. The memory of a big backlog is what the options
// are for: at 20,000 files the default's old generation never grows far within a sync.
//
//   node bench/young-gen.mjs [--files 100000] [--seconds 120] [--pairs 3]
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { register } from 'tsx/esm/api';
import { median, writeResult } from './lib/common.mjs';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
register();
const { ServeChild, rm, s3Target, sleep, startS3Child, tempDir } = await import('../test/robustness/lib.ts');
const { generateTree } = await import('../test/robustness/scale.ts');
const { saveConfig, defaultConfigPath } = await import('../src/main/engine/config/config.ts');
const { createEngine } = await import('../src/main/engine/engine.ts');
const { silenceConsole } = await import('../src/main/engine/log.ts');
const { ENGINE_NODE_FLAGS } = await import('../src/shared/engine-flags.ts');

const { values } = parseArgs({ options: { files: { type: 'string', default: '100000' }, seconds: { type: 'string', default: '120' }, pairs: { type: 'string', default: '3' } } });
const FILES = Number(values.files);
const SECONDS = Number(values.seconds);
const label = ENGINE_NODE_FLAGS.join(' ');
console.log(`bench/young-gen: ${FILES.toLocaleString('en-US')} files scanned, then ${SECONDS} s of uploads to two s3rver destinations; ${label} vs no options, ${values.pairs} pairs`);

const base = tempDir('trip-bench-young-');
const media = join(base, 'media');
const scanned = join(base, 'scanned');
const res = { with: [], without: [] };
try {
  generateTree(media, FILES);
  const config = (nas, cloud) => ({
    roots: [{ id: 'media', label: 'Media', path: media }],
    targets: [s3Target('nas', nas, 'nas', { priority: 1 }), s3Target('cloud', cloud, 'cloud', { priority: 2 })],
    sync: { stabilityMs: 0, rescanIntervalMinutes: 0, guard: { enabled: false } },
    media: { transcode: false },
    restore: { verifyIntervalHours: 0, pruneIntervalHours: 0 },
    server: { adminPort: 0, downloadPort: 0 },
  });
  // the catalog every run starts from: every file hashed and queued for both, nothing uploaded
  saveConfig(defaultConfigPath(scanned), config('http://127.0.0.1:9', 'http://127.0.0.1:9'));
  silenceConsole();
  const engine = createEngine({ dataDir: scanned, adminPort: 0, downloadPort: 0, scanOnStart: false });
  engine.setPausedAll(true);
  await engine.start();
  const t0 = performance.now();
  await engine.scanAll();
  await engine.stop();
  console.log(`  scanned in ${((performance.now() - t0) / 1000).toFixed(0)} s`);

  const run = async (flags, name) => {
    const dir = join(base, name);
    const data = join(dir, 'data');
    cpSync(scanned, data, { recursive: true });
    const s3 = [await startS3Child(join(dir, 's3a'), ['nas']), await startS3Child(join(dir, 's3b'), ['cloud'])];
    const cfg = JSON.parse(readFileSync(defaultConfigPath(data), 'utf8'));
    const fresh = config(s3[0].endpoint, s3[1].endpoint);
    cfg.targets = cfg.targets.map((t, i) => ({ ...t, endpoint: fresh.targets[i].endpoint }));
    writeFileSync(defaultConfigPath(data), JSON.stringify(cfg, null, 2));
    const child = new ServeChild(data, { engineFlags: flags });
    let peak = 0;
    const sampler = setInterval(() => (peak = Math.max(peak, child.rss())), 100);
    try {
      await child.waitReady();
      await child.client.call('resumeAll', { body: {} });
      await sleep(SECONDS * 1000);
      const s = await child.client.call('status');
      return { peakMb: peak / 1048576, safe: s.safe_files };
    } finally {
      clearInterval(sampler);
      await child.stop();
      for (const x of s3) await x.stop();
      rm(dir);
    }
  };
  for (let i = 0; i < Number(values.pairs); i++) {
    const order = i % 2 ? ['without', 'with'] : ['with', 'without'];
    for (const what of order) {
      const r = await run(what === 'with' ? ENGINE_NODE_FLAGS : [], `run-${i}-${what}`);
      res[what].push(r);
      console.log(`  pair ${i + 1} ${what.padEnd(7)}: RSS peak ${r.peakMb.toFixed(0)} MB, ${r.safe.toLocaleString('en-US')} files safe in ${SECONDS} s`);
    }
  }
} finally {
  rm(base);
}
const m = (what, k) => median(res[what].map((r) => r[k]));
const rss = m('with', 'peakMb') / m('without', 'peakMb');
const safe = m('with', 'safe') / m('without', 'safe');
console.log(`\nmedians: RSS peak ${m('with', 'peakMb').toFixed(0)} vs ${m('without', 'peakMb').toFixed(0)} MB (${rss.toFixed(2)}x); files safe ${m('with', 'safe')} vs ${m('without', 'safe')} (${safe.toFixed(2)}x)`);
writeResult('young-gen', { 'young-gen: RSS peak with / without the engine options (lower is better)': rss, 'young-gen: files safe with / without (higher is better)': safe });

#!/usr/bin/env node
// Benchmark: the web console while 10,000 dropped files are copied, in Chromium against a real
// `triplicate serve` that backs them up to an s3rver "NAS" as they arrive. The browser streams each
// file to PUT /api/admin/upload. Measures the longest gap between animation frames from the drop
// until the last file is copied (and the same on an idle page, as this machine's baseline), the
// time to switch pages while copying, and the files copied per second. Prints one JSON line; the
// goals (no frame over 500 ms, a page switch within 2 s) are ratios for `npm run bench`.
//
//   node bench/drop.mjs [--files 10000] [--keep]
/* global window, requestAnimationFrame, location */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { register } from 'tsx/esm/api';
import { startS3rverProcess, writeResult } from './lib/common.mjs';

register();
const { copiedCount, dropAndCopy, ensureWebBuilt, freePort, launchBrowser, startEngine, waitFor } = await import('../test/e2e/lib.mjs');

const root = join(import.meta.dirname, '..');
const args = process.argv.slice(2);
const N = Number(args.includes('--files') ? args[args.indexOf('--files') + 1] : 10_000);
const base = mkdtempSync(join(tmpdir(), 'trip-bench-drop-'));
const bulk = join(base, 'Bulk');
const dataDir = join(base, 'data');

ensureWebBuilt(root);
mkdirSync(bulk, { recursive: true });
mkdirSync(dataDir, { recursive: true });
const s3 = await startS3rverProcess(join(base, 's3'), ['nas']);
const port = await freePort();
const nas = { id: 'nas', label: 'NAS', kind: 's3', preset: 'minio', endpoint: s3.endpoint, region: 'us-east-1', bucket: 'nas', pathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' }, priority: 1 };
writeFileSync(
  join(dataDir, 'config.json'),
  JSON.stringify({ version: 1, siteName: 'Benchmark', roots: [{ id: 'bulk', label: 'Bulk import', path: bulk }], targets: [nas], sync: { stabilityMs: 300, rescanIntervalMinutes: 0 }, server: { adminPort: port, downloadPort: 0 } }),
);
const engine = await startEngine({ root, dataDir, port, logDir: join(root, '.tmp', 'bench') });
let browser;
try {
  browser = await launchBrowser();
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 860 } })).newPage();
  await page.goto(`${engine.adminUrl}/#token=${engine.token}`);
  await page.locator('#summary').waitFor({ timeout: 30_000 });

  // frame gaps from requestAnimationFrame, until stopFrames()
  const startFrames = () =>
    page.evaluate(() => {
      window.__gaps = [];
      window.__stopFrames = false;
      let last = performance.now();
      const tick = (now) => {
        window.__gaps.push(now - last);
        last = now;
        if (!window.__stopFrames) requestAnimationFrame(tick);
      };
      requestAnimationFrame(tick);
    });
  const stopFrames = () =>
    page.evaluate(() => {
      window.__stopFrames = true;
      return window.__gaps.slice(1).sort((a, b) => a - b);
    });
  const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];

  await startFrames();
  await page.waitForTimeout(3000);
  const idle = await stopFrames();

  const t0 = Date.now();
  const panel = await dropAndCopy(page, { count: N, into: /Bulk import/, beforeDrop: startFrames });
  await waitFor(async () => copiedCount(await panel.innerText()) > 0, { timeout: 60_000, what: 'the first file copied' });
  // switch pages while copying: the time from the click to the new page on screen, and back
  const s0 = Date.now();
  await page.evaluate(() => (location.hash = '#/folders'));
  await page.locator('#page-title', { hasText: 'Folders' }).waitFor({ timeout: 60_000 });
  await page.evaluate(() => (location.hash = '#/overview'));
  await page.locator('#summary').waitFor({ timeout: 60_000 });
  const switchMs = Date.now() - s0;
  const copiedAtSwitch = copiedCount(await panel.innerText());
  await waitFor(async () => /Copied into Bulk import/.test(await panel.innerText()), { timeout: 30 * 60_000, interval: 500, what: `all ${N} files copied` });
  const copyS = (Date.now() - t0) / 1000;
  const frames = await stopFrames();
  const onDisk = readdirSync(bulk).length;
  const result = {
    files: N,
    copied: copiedCount(await panel.innerText()),
    on_disk: onDisk,
    copy_s: +copyS.toFixed(1),
    files_per_s: Math.round(N / copyS),
    frames: frames.length,
    frame_p50_ms: +pct(frames, 0.5).toFixed(1),
    frame_p95_ms: +pct(frames, 0.95).toFixed(1),
    frame_max_ms: +frames[frames.length - 1].toFixed(1),
    idle_frame_p95_ms: +pct(idle, 0.95).toFixed(1),
    idle_frame_max_ms: +idle[idle.length - 1].toFixed(1),
    page_switch_ms: switchMs,
    copied_at_switch: copiedAtSwitch,
  };
  console.log(JSON.stringify(result));
  const ok = result.frame_max_ms <= 500 && switchMs <= 2000 && onDisk === N;
  console.log(
    `bench/drop: ${ok ? 'responsive' : 'NOT responsive'}: ${N.toLocaleString('en-US')} files copied in ${result.copy_s} s (${result.files_per_s}/s); ` +
      `longest frame ${result.frame_max_ms} ms (p95 ${result.frame_p95_ms} ms; idle page p95 ${result.idle_frame_p95_ms} ms, longest ${result.idle_frame_max_ms} ms); ` +
      `page switch while copying ${switchMs} ms; ${onDisk} files in the folder`,
  );
  writeResult('drop', { 'drop: longest frame while copying / 500 ms (goal <= 1)': result.frame_max_ms / 500, 'drop: page switch while copying / 2000 ms (goal <= 1)': switchMs / 2000 });
  process.exitCode = ok ? 0 : 1;
} finally {
  await browser?.close().catch(() => undefined);
  await engine.stop();
  await s3.stop();
  if (!args.includes('--keep')) rmSync(base, { recursive: true, force: true });
}

/* global window, DataTransfer, DragEvent */
// Helpers for the end-to-end specs: a real engine process, real s3rver targets, real Chromium.
import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { ensureBuilt } from '../../scripts/ensure-built.mjs';
import { createServer } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { chromium } from 'playwright-core';
import sharp from 'sharp';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export async function launchBrowser({ headed = false } = {}) {
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium is not installed at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM_PATH)`);
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: !headed,
    args: [...(headed ? [] : ['--headless']), '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
  });
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Poll until fn() returns a truthy value; bounded by timeout. */
export async function waitFor(fn, { timeout = 30_000, interval = 200, what = 'condition' } = {}) {
  const end = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`waited ${timeout / 1000} s for ${what}${last ? ` (last error: ${last.message})` : ''}`);
    await new Promise((r) => setTimeout(r, interval));
  }
}

/**
 * `node bin/triplicate.mjs serve` as a child process; resolves on its ready line.
 * stdout/stderr go to <logDir>/engine-N.log.
 */
let engineSeq = 0;
export async function startEngine({ root, dataDir, port, logDir }) {
  mkdirSync(logDir, { recursive: true });
  const log = createWriteStream(join(logDir, `engine-${++engineSeq}.log`));
  const proc = spawn(process.execPath, ['--min-semi-space-size=16', join(root, 'bin', 'triplicate.mjs'), 'serve', '--data-dir', dataDir, '--admin-port', String(port)], {
    cwd: root,
    env: { ...process.env, TRIPLICATE_WEB_ROOT: join(root, 'out', 'renderer'), AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  proc.stderr.pipe(log, { end: false });
  const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  const ready = await new Promise((resolve, reject) => {
    const rl = createInterface({ input: proc.stdout });
    const timer = setTimeout(() => reject(new Error('the engine did not print its ready line within 60 s')), 60_000);
    rl.on('line', (line) => {
      log.write(`${line}\n`);
      try {
        const ev = JSON.parse(line);
        if (ev.event === 'ready') {
          clearTimeout(timer);
          resolve(ev);
        }
      } catch {
        /* not JSON */
      }
    });
    void exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`the engine exited (code ${code}) before it was ready; see ${join(logDir, `engine-${engineSeq}.log`)}`));
    });
  });
  return {
    ...ready,
    token: readFileSync(ready.tokenFile, 'utf8').trim(),
    proc,
    async stop() {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 20_000);
      await exited;
      clearTimeout(t);
      log.end();
    },
  };
}

/** A small real JPEG (a coloured picture with a few shapes), different for each seed. */
export async function samplePhoto(path, seed, size = 320) {
  const hue = (seed * 67) % 360;
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${size}" height="${Math.round(size * 0.75)}">
    <rect width="100%" height="100%" fill="hsl(${hue},55%,55%)"/>
    <circle cx="${(seed * 37) % size}" cy="${(seed * 53) % (size * 0.75)}" r="${20 + (seed % 40)}" fill="hsl(${(hue + 180) % 360},60%,40%)"/>
    <text x="12" y="32" font-size="24" font-family="sans-serif" fill="#fff">#${seed}</text></svg>`;
  const buf = await sharp(Buffer.from(svg)).jpeg({ quality: 80 }).toBuffer();
  if (path) {
    const { writeFile, mkdir } = await import('node:fs/promises');
    const { dirname } = await import('node:path');
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, buf);
  }
  return buf;
}

/** Dispatch a file drop on the window, as the OS would (synthetic DataTransfer with File objects). */
export async function dropFiles(page, files) {
  await page.evaluate((files) => {
    const dt = new DataTransfer();
    for (const f of files) dt.items.add(new File([new Uint8Array(f.bytes)], f.name, { type: f.type ?? 'application/octet-stream', lastModified: Date.now() }));
    for (const type of ['dragenter', 'dragover', 'drop']) window.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
  }, files.map((f) => ({ name: f.name, type: f.type, bytes: [...f.bytes] })));
}

/**
 * Drop `count` small text files on the page and copy them into the folder whose label matches
 * `into`. The files are made in the page (10,000 would be slow to send); `beforeDrop` runs after
 * that, just before the drop (the bench starts its frame clock there). Returns the import panel.
 */
export async function dropAndCopy(page, { count, into, beforeDrop = async () => undefined }) {
  await page.evaluate((count) => {
    const dt = new DataTransfer();
    for (let i = 0; i < count; i++) dt.items.add(new File([`file ${i}\n`], `note-${String(i).padStart(5, '0')}.txt`, { type: 'text/plain' }));
    window.__drop = dt;
  }, count);
  await beforeDrop();
  await page.evaluate(() => {
    for (const type of ['dragenter', 'dragover', 'drop']) window.dispatchEvent(new DragEvent(type, { dataTransfer: window.__drop, bubbles: true, cancelable: true }));
  });
  const dialog = page.getByRole('dialog', { name: `Back up ${count.toLocaleString('en-US')} dropped items` });
  await dialog.waitFor({ timeout: 60_000 });
  await dialog.getByLabel(into).check();
  await dialog.getByRole('button', { name: 'Copy and back up' }).click();
  return page.locator('.import-panel');
}

/** "1,234 of 10,000 items" in the import panel -> 1234. */
export function copiedCount(panelText) {
  return Number((/([\d,]+) of/.exec(panelText)?.[1] ?? '0').replace(/,/g, ''));
}

/** An IPv4 address of this computer other than loopback (eth0's), or undefined when it has none. */
export function otherAddress() {
  for (const list of Object.values(networkInterfaces())) {
    const v4 = list?.find((i) => i.family === 'IPv4' && !i.internal);
    if (v4) return v4.address;
  }
  return undefined;
}

export async function shot(page, dir, name) {
  mkdirSync(dir, { recursive: true });
  await page.screenshot({ path: join(dir, `${name}.png`) });
}

/** Build the engine and the web console when missing or older than their sources (`force`: always). */
export function ensureWebBuilt(_root, force = false) {
  ensureBuilt(['engine', 'web'], force);
}

// Clients that hang up, stall or crowd in, on a large file served from a real s3rver (no local
// copy): their S3 sockets are freed, 30 hang-ups in a row do not exhaust the pool, a source that
// breaks mid-way breaks the download (never a short 200), and beyond the concurrency limit the
// server answers 503 with Retry-After.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DownloadServer } from '../../src/main/engine/http/download/server';
import { bytes, sha256, waitFor } from '../helpers/engine';
import { openRaw, raw, setupSharing, socketsTo, type Setup } from './helpers';

const SIZE = 40 * 1024 * 1024;
const BIG = bytes(SIZE, 3);
const MAX = 8;

let t: Setup;
let path: string;
let downloads: DownloadServer;

beforeAll(async () => {
  // maxConcurrentDownloads 8: the download pool of the target holds 24 sockets, fewer than the 30 hang-ups below.
  t = await setupSharing({ 'Videos/tour.mp4': BIG }, { targets: 1, server: { maxConcurrentDownloads: MAX } });
  rmSync(join(t.media, 'Videos', 'tour.mp4'));
  path = t.pathOf(await t.link('media/Videos/tour.mp4'));
  downloads = t.engine.service<DownloadServer>('download')!;
}, 180_000);

afterAll(async () => {
  await t?.dispose();
});

const s3Port = () => t.s3[0]!.port;

async function settled(maxSockets: number): Promise<void> {
  await waitFor(() => downloads.activeDownloads === 0 && socketsTo(s3Port()) <= maxSockets, 10_000, `downloads to end and S3 sockets to close (active ${downloads.activeDownloads}, sockets ${socketsTo(s3Port())})`);
}

describe('vanished, stalled and crowding clients', () => {
  it('a full download from S3 is byte-exact', async () => {
    const r = await raw(t.port, { path }, 60_000);
    expect(r.status).toBe(200);
    expect(r.body.length).toBe(SIZE);
    expect(sha256(r.body)).toBe(sha256(BIG));
    expect((await t.lastAccess('/files/media/Videos/tour.mp4')).source).toBe('nas');
  });

  it('a client that hangs up mid-download frees its S3 socket', async () => {
    await settled(4);
    const before = socketsTo(s3Port());
    const c = await openRaw(t.port, path, {}, { pauseAfter: 256 * 1024 });
    expect(c.head).toMatch(/^HTTP\/1\.1 200/);
    await c.paused();
    // the measurement sees the download's socket (so the check below can fail)
    expect(socketsTo(s3Port())).toBeGreaterThan(before);
    expect(downloads.activeDownloads).toBe(1);
    c.sock.destroy();
    await settled(before);
  });

  it('30 hang-ups in a row do not exhaust the pool; a normal download works after', async () => {
    const before = socketsTo(s3Port());
    for (let i = 0; i < 30; i++) {
      const c = await openRaw(t.port, path, i % 2 ? { range: `bytes=${i * 1000}-` } : {}, { pauseAfter: 64 * 1024 });
      await c.paused();
      c.sock.destroy();
    }
    await settled(Math.max(before, 2));
    const r = await raw(t.port, { path, headers: { range: 'bytes=1000000-1999999' } }, 30_000);
    expect(r.status).toBe(206);
    expect(r.body.equals(BIG.subarray(1_000_000, 2_000_000))).toBe(true);
    const full = await raw(t.port, { path }, 60_000);
    expect(sha256(full.body)).toBe(sha256(BIG));
    // the log says so (written asynchronously: wait for the lines)
    await waitFor(() => t.accessLog().filter((e) => e.path === '/files/media/Videos/tour.mp4' && e.complete === false).length >= 31, 5_000, '31 aborted downloads in the access log');
  }, 120_000);

  it('a client that stops reading is cut after the idle timeout, and its S3 socket freed', async () => {
    downloads.setIdleTimeout(1_500);
    try {
      const c = await openRaw(t.port, path);
      c.sock.pause(); // reads nothing more: the server's writes stall
      let closed = false;
      c.sock.on('close', () => (closed = true));
      await waitFor(() => downloads.activeDownloads === 0, 15_000, 'the stalled download to be cut');
      await settled(2);
      c.sock.resume();
      await waitFor(() => closed, 5_000, 'the client socket to close');
      expect(c.received()).toBeLessThan(SIZE);
    } finally {
      downloads.setIdleTimeout(60_000);
    }
  }, 30_000);

  it(`beyond ${MAX} downloads at once: 503 with Retry-After, then service again`, async () => {
    // Many clients (behind the tunnel: CF-Connecting-IP) on two links: one client or one link gets
    // a share of the slots only (test/security/download-slots.test.ts).
    const links = [path, t.pathOf(await t.link('media/Videos/tour.mp4')), t.pathOf(await t.link('media/Videos/tour.mp4'))];
    const held = [];
    for (let i = 0; i < MAX; i++) {
      const c = await openRaw(t.port, links[i % 2]!, { 'cf-connecting-ip': `198.51.100.${i}` });
      c.sock.pause();
      held.push(c);
    }
    expect(downloads.activeDownloads).toBe(MAX);
    const busy = await raw(t.port, { path: links[2]!, headers: { 'cf-connecting-ip': '198.51.100.99' } });
    expect(busy.status).toBe(503);
    expect(busy.headers['retry-after']).toBe('5');
    expect(JSON.parse(busy.body.toString()).code).toBe('busy');
    // health stays answerable while downloads are full
    expect((await raw(t.port, { path: '/health' })).status).toBe(200);
    for (const c of held) c.sock.destroy();
    await settled(4);
    const r = await raw(t.port, { path, headers: { range: 'bytes=-100' } });
    expect(r.status).toBe(206);
    expect(r.body.equals(BIG.subarray(SIZE - 100))).toBe(true);
  }, 60_000);

  it('a target that breaks mid-way breaks the download: never a short 200', async () => {
    const c = await openRaw(t.port, path);
    c.sock.pause();
    expect(c.head).toMatch(/^HTTP\/1\.1 200/);
    expect(c.head).toMatch(new RegExp(`content-length: ${SIZE}`, 'i'));
    let closed = false;
    c.sock.on('close', () => (closed = true));
    await t.s3[0]!.stop(); // cuts the S3 connection in the middle of the body
    c.sock.resume();
    await waitFor(() => closed, 20_000, 'the download to be cut');
    expect(c.received()).toBeLessThan(SIZE);
    await t.s3[0]!.start();
    await waitFor(() => downloads.activeDownloads === 0, 5_000, 'no active downloads');
    const entry = (await t.lastAccess('/files/media/Videos/tour.mp4')) as { complete?: boolean; error?: string; status?: number };
    expect(entry.complete).toBe(false);
    expect(entry.error).toMatch(/source failed mid-way/);
    // and the server still serves
    const r = await raw(t.port, { path, headers: { range: 'bytes=0-99' } }, 20_000);
    expect(r.status).toBe(206);
    expect(r.body.equals(BIG.subarray(0, 100))).toBe(true);
  }, 60_000);
});

// The source chain with real parts: the local file, then the first target, then the second,
// then 503 (targets down) or 404 (every source says "not there"), with s3rver servers being stopped.
// Range reads are checked byte for byte from each source.
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Readable } from 'node:stream';
import type { LinkInfo } from '../../src/shared/api';
import { S3Backend } from '../../src/main/engine/backends/s3';
import { bytes, sha256 } from '../helpers/engine';
import { parseMultipart, raw, setupSharing, type Setup } from './helpers';

const BIG = bytes(2_500_000, 7);
const NFD_NAME = 'Événements/cafe\u0301 nfd.txt'; // written to disk in NFD, cataloged in NFC
const NFC_KEY = `media/${NFD_NAME.normalize('NFC')}`;
const TEXT = 'Le café est servi.\n';
const OTHER = Buffer.from('a different file of another size');

let t: Setup;
let big: LinkInfo;
let bigPath: string;

beforeAll(async () => {
  t = await setupSharing({ 'Gallery/photo.jpg': BIG, [NFD_NAME]: TEXT });
  big = await t.link('media/Gallery/photo.jpg');
  bigPath = t.pathOf(big);
}, 120_000);

afterAll(async () => {
  await t?.dispose();
});

/** Range reads that browsers and video players make, checked against the real bytes. */
async function checkRanges(path: string, content: Buffer): Promise<void> {
  const size = content.length;
  const cases: [string, number, number][] = [
    ['bytes=0-0', 0, 0],
    ['bytes=1000-1999', 1000, 1999],
    [`bytes=-500`, size - 500, size - 1],
    [`bytes=${size - 1000}-`, size - 1000, size - 1],
    [`bytes=${size - 10}-${size + 5000}`, size - 10, size - 1],
    ['bytes=0-', 0, size - 1],
  ];
  for (const [range, s, e] of cases) {
    const r = await raw(t.port, { path, headers: { range } });
    expect(r.status, range).toBe(206);
    expect(r.headers['content-range'], range).toBe(`bytes ${s}-${e}/${size}`);
    expect(Number(r.headers['content-length'])).toBe(e - s + 1);
    expect(r.body.equals(content.subarray(s, e + 1)), `bytes of ${range}`).toBe(true);
  }
  // multi-range: what PDF readers and some players send
  const m = await raw(t.port, { path, headers: { range: 'bytes=0-9, 100000-100099, -10' } });
  expect(m.status).toBe(206);
  expect(m.headers['content-type']).toMatch(/^multipart\/byteranges; boundary=/);
  expect(m.body.length).toBe(Number(m.headers['content-length']));
  const parts = parseMultipart(m.body, m.headers['content-type']!);
  expect(parts.map((p) => p.range)).toEqual([
    [0, 9, size],
    [100000, 100099, size],
    [size - 10, size - 1, size],
  ]);
  for (const p of parts) {
    expect(p.type).toBe('image/jpeg');
    expect(p.data.equals(content.subarray(p.range[0], p.range[1] + 1))).toBe(true);
  }
  // overlapping ranges are merged: never the same byte twice
  const o = await raw(t.port, { path, headers: { range: 'bytes=0-99,50-149' } });
  expect(o.status).toBe(206);
  expect(o.headers['content-range']).toBe(`bytes 0-149/${size}`);
  expect(o.body.equals(content.subarray(0, 150))).toBe(true);
  // past the end: 416 with the size
  const u = await raw(t.port, { path, headers: { range: `bytes=${size}-` } });
  expect(u.status).toBe(416);
  expect(u.headers['content-range']).toBe(`bytes */${size}`);
  expect(u.body.includes(content.subarray(0, 16))).toBe(false);
}

async function checkConditional(path: string, content: Buffer): Promise<void> {
  const full = await raw(t.port, { path });
  expect(full.status).toBe(200);
  const etag = full.headers.etag!;
  expect(etag).toBe(`"${sha256(content)}"`);
  const inm = await raw(t.port, { path, headers: { 'if-none-match': etag } });
  expect(inm.status).toBe(304);
  expect(inm.body.length).toBe(0);
  expect(inm.headers.etag).toBe(etag);
  const weak = await raw(t.port, { path, headers: { 'if-none-match': `"other", W/${etag}` } });
  expect(weak.status).toBe(304);
  const ims = await raw(t.port, { path, headers: { 'if-modified-since': full.headers['last-modified']! } });
  expect(ims.status).toBe(304);
  const stale = await raw(t.port, { path, headers: { 'if-none-match': '"not-it"' } });
  expect(stale.status).toBe(200);
  expect(stale.body.equals(content)).toBe(true);
  // If-Range: a different validator means "send the whole thing"
  const ir1 = await raw(t.port, { path, headers: { range: 'bytes=0-9', 'if-range': '"changed"' } });
  expect(ir1.status).toBe(200);
  expect(ir1.body.length).toBe(content.length);
  const ir2 = await raw(t.port, { path, headers: { range: 'bytes=0-9', 'if-range': etag } });
  expect(ir2.status).toBe(206);
  expect(ir2.body.equals(content.subarray(0, 10))).toBe(true);
  const im = await raw(t.port, { path, headers: { 'if-match': '"changed"' } });
  expect(im.status).toBe(412);
  const head = await raw(t.port, { method: 'HEAD', path });
  expect(head.status).toBe(200);
  expect(Number(head.headers['content-length'])).toBe(content.length);
  expect(head.body.length).toBe(0);
}

describe('source chain', () => {
  it('serves the local file with the right headers', async () => {
    const r = await raw(t.port, { path: bigPath });
    expect(r.status).toBe(200);
    expect(r.body.equals(BIG)).toBe(true);
    expect(r.headers['content-type']).toBe('image/jpeg');
    expect(r.headers.etag).toBe(`"${sha256(BIG)}"`);
    expect(r.headers['accept-ranges']).toBe('bytes');
    expect(r.headers['x-content-type-options']).toBe('nosniff');
    expect(r.headers['content-disposition']).toBe(`inline; filename="photo.jpg"; filename*=UTF-8''photo.jpg`);
    expect(r.headers['last-modified']).toMatch(/GMT$/);
    const maxAge = Number(/^private, max-age=(\d+)$/.exec(r.headers['cache-control']!)?.[1]);
    expect(maxAge).toBeGreaterThan(3500);
    expect(maxAge).toBeLessThanOrEqual(3600);
    expect((await t.lastAccess('/files/media/Gallery/photo.jpg')).source).toBe('local');
  });

  it('local: ranges byte-exact, conditional requests', async () => {
    await checkRanges(bigPath, BIG);
    await checkConditional(bigPath, BIG);
  });

  it('local: a name stored in NFD on disk, asked for in NFC or NFD; ?download=1 and the RFC 5987 filename', async () => {
    const l = await t.link(NFC_KEY);
    const r = await raw(t.port, { path: t.pathOf(l) + '&download=1' });
    expect(r.status).toBe(200);
    expect(r.body.toString()).toBe(TEXT);
    expect(r.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(r.headers['content-disposition']).toBe(`attachment; filename="cafe nfd.txt"; filename*=UTF-8''caf%C3%A9%20nfd.txt`);
    const nfdPath = '/files/media/' + NFD_NAME.normalize('NFD').split('/').map(encodeURIComponent).join('/') + new URL(l.url).search;
    const r2 = await raw(t.port, { path: nfdPath });
    expect(r2.status).toBe(200);
    expect(r2.body.toString()).toBe(TEXT);
    // an attachment link says so itself
    const a = await t.link(NFC_KEY, 600, { disposition: 'attachment' });
    const r3 = await raw(t.port, { path: t.pathOf(a) });
    expect(r3.headers['content-disposition']).toMatch(/^attachment;/);
  });

  it('a small file edited or replaced after it was served is served fresh, at most a second late (the in-memory copy is re-checked)', async () => {
    const l = await t.link(NFC_KEY);
    const path = t.pathOf(l);
    const disk = join(t.media, ...NFD_NAME.split('/')); // the name exactly as written to disk
    expect((await raw(t.port, { path })).body.toString()).toBe(TEXT);
    const edited = TEXT.replace('servi', 'SERVI'); // same size
    writeFileSync(disk, edited);
    await new Promise((r) => setTimeout(r, 1_100));
    const r1 = await raw(t.port, { path });
    expect(r1.body.toString()).toBe(edited);
    // never the hash of the old content: weak, or (once the watcher re-hashed it) the new hash
    expect([`"${sha256(edited)}"`, 'weak']).toContain(r1.headers.etag!.startsWith('W/') ? 'weak' : r1.headers.etag);
    writeFileSync(`${disk}.new`, TEXT);
    renameSync(`${disk}.new`, disk); // another inode
    await new Promise((r) => setTimeout(r, 1_100));
    expect((await raw(t.port, { path })).body.toString()).toBe(TEXT);
  });

  it('local file gone: the first target (NAS) serves it, byte-exact', async () => {
    rmSync(join(t.media, 'Gallery', 'photo.jpg'));
    const r = await raw(t.port, { path: bigPath });
    expect(r.status).toBe(200);
    expect(r.body.equals(BIG)).toBe(true);
    expect(r.headers.etag).toBe(`"${sha256(BIG)}"`);
    expect((await t.lastAccess('/files/media/Gallery/photo.jpg')).source).toBe('nas');
    await checkRanges(bigPath, BIG);
    await checkConditional(bigPath, BIG);
    expect((await t.lastAccess('/files/media/Gallery/photo.jpg')).source).toBe('nas');
  });

  it('NAS stopped: the second target (cloud) serves it, without making the visitor wait', async () => {
    await t.s3[0]!.stop();
    const t0 = Date.now();
    const r = await raw(t.port, { path: bigPath });
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(r.status).toBe(200);
    expect(r.body.equals(BIG)).toBe(true);
    expect((await t.lastAccess('/files/media/Gallery/photo.jpg')).source).toBe('cloud');
    await checkRanges(bigPath, BIG);
    await checkConditional(bigPath, BIG);
    expect((await t.lastAccess('/files/media/Gallery/photo.jpg')).source).toBe('cloud');
  });

  it('both targets stopped: 503 with a sentence and Retry-After (not 404: the file exists, it cannot be reached)', async () => {
    await t.s3[1]!.stop();
    const r = await raw(t.port, { path: bigPath });
    expect(r.status).toBe(503);
    expect(r.headers['retry-after']).toBe('60');
    const body = JSON.parse(r.body.toString()) as { error: string; code: string };
    expect(body.code).toBe('sources_unavailable');
    expect(body.error).toMatch(/cannot be reached right now\. Try again/);
    const h = await raw(t.port, { method: 'HEAD', path: bigPath });
    expect(h.status).toBe(503);
    expect(h.body.length).toBe(0);
  });

  it('targets back: served again; a file no source has is 404', async () => {
    await t.s3[0]!.start();
    await t.s3[1]!.start();
    const r = await raw(t.port, { path: bigPath });
    expect(r.status).toBe(200);
    expect(r.body.equals(BIG)).toBe(true);
    const folder = await t.link('media/');
    const q = new URL(folder.url).search;
    const missing = await raw(t.port, { path: `/files/media/Gallery/never-existed.jpg${q}` });
    expect(missing.status).toBe(404);
    expect(JSON.parse(missing.body.toString()).code).toBe('not_found');
  });

  it('an object on a target that differs from the catalog is passed over for a copy with the right bytes, and served as it is only as a last resort', async () => {
    // Served from the NAS first: the catalog rows (copy on the NAS synced, this SHA-256) are now
    // remembered for a second, and the request below comes within it; what is trusted from them is
    // still checked against the object the NAS returns.
    const r0 = await raw(t.port, { path: bigPath });
    expect(r0.body.equals(BIG)).toBe(true);
    expect((await t.lastAccess('/files/media/Gallery/photo.jpg')).source).toBe('nas');
    // Replace the NAS object behind the catalog's back (as if someone uploaded another file there).
    const b = new S3Backend(t.s3[0]!.target('nas'));
    await b.put('media/Gallery/photo.jpg', { size: OTHER.length, open: () => Readable.from([OTHER]) }, { sha256: sha256(OTHER), mtimeMs: Date.now() });
    b.close();
    const r = await raw(t.port, { path: bigPath });
    expect(r.status).toBe(200);
    expect(r.body.equals(BIG)).toBe(true);
    expect(r.headers.etag).toBe(`"${sha256(BIG)}"`);
    expect((await t.lastAccess('/files/media/Gallery/photo.jpg')).source).toBe('cloud');
    await t.s3[1]!.stop();
    const r2 = await raw(t.port, { path: bigPath });
    expect(r2.status).toBe(200);
    expect(r2.body.equals(OTHER)).toBe(true);
    expect(r2.headers.etag).toBe(`"${sha256(OTHER)}"`); // never the catalog's ETag on other bytes
    const r3 = await raw(t.port, { path: bigPath, headers: { range: 'bytes=2-5' } });
    expect(r3.status).toBe(206);
    expect(r3.body.equals(OTHER.subarray(2, 6))).toBe(true);
    await t.s3[1]!.start();
  });

  it('/health and /health/deep', async () => {
    const h = await raw(t.port, { path: '/health' });
    expect(h.status).toBe(200);
    expect(JSON.parse(h.body.toString()).ok).toBe(true);
    await new Promise((r) => setTimeout(r, 5_100)); // past the deep-health cache
    const d = await raw(t.port, { path: '/health/deep' });
    const body = JSON.parse(d.body.toString()) as { ok: boolean; catalog: { ok: boolean }; targets: Record<string, { ok: boolean; ms: number; error?: string }> };
    expect(d.status).toBe(200);
    expect(body.ok).toBe(true);
    expect(body.catalog.ok).toBe(true);
    expect(Object.keys(body.targets).sort()).toEqual(['cloud', 'nas']);
    await t.s3[1]!.stop();
    await new Promise((r) => setTimeout(r, 5_100));
    const d2 = await raw(t.port, { path: '/health/deep' });
    const b2 = JSON.parse(d2.body.toString()) as typeof body;
    expect(d2.status).toBe(503);
    expect(b2.targets.nas!.ok).toBe(true);
    expect(b2.targets.cloud!.ok).toBe(false);
    expect(b2.targets.cloud!.error).toMatch(/^network:/);
    expect(d2.body.toString()).not.toContain('127.0.0.1'); // public: no addresses of the network behind
    await t.s3[1]!.start();
  }, 30_000);

  it('the admin API streams through the same chain with the admin token only', async () => {
    const url = `${t.engine.endpoints.adminUrl}/api/admin/download?key=${encodeURIComponent('media/Gallery/photo.jpg')}`;
    const no = await fetch(url);
    expect(no.status).toBe(401);
    const r = await fetch(url, { headers: { authorization: `Bearer ${t.engine.token}`, range: 'bytes=10-19' } });
    expect(r.status).toBe(206);
    expect(Buffer.from(await r.arrayBuffer()).equals(BIG.subarray(10, 20))).toBe(true);
    const bad = await fetch(`${t.engine.endpoints.adminUrl}/api/admin/download?key=${encodeURIComponent('media/../etc/passwd')}&access_token=${t.engine.token}`);
    expect(bad.status).toBe(400);
  });

  it('a lost file put back on the disk is served from the disk again, at most a second later (a miss on the disk is remembered for 1 s)', async () => {
    const r0 = await raw(t.port, { path: bigPath });
    const missedAt = Date.now();
    expect(r0.body.equals(BIG)).toBe(true);
    expect((await t.lastAccess('/files/media/Gallery/photo.jpg')).source).not.toBe('local');
    writeFileSync(join(t.media, 'Gallery', 'photo.jpg'), BIG);
    const r1 = await raw(t.port, { path: bigPath });
    expect(r1.body.equals(BIG)).toBe(true);
    const source1 = (await t.lastAccess('/files/media/Gallery/photo.jpg')).source;
    // (within the second, the disk is not looked at again; a slow machine may be past it)
    if (Date.now() - missedAt < 800) expect(source1).not.toBe('local');
    await new Promise((r) => setTimeout(r, 1_100));
    const r2 = await raw(t.port, { path: bigPath });
    expect(r2.body.equals(BIG)).toBe(true);
    expect((await t.lastAccess('/files/media/Gallery/photo.jpg')).source).toBe('local');
  });

  it('the access log has no tokens', () => {
    const text = JSON.stringify(t.accessLog());
    expect(text).not.toContain('token=');
    expect(text).not.toContain(new URL(big.url).searchParams.get('token')!.split('.')[2]!);
  });
});

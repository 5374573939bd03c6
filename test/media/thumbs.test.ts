// Thumbnails: real sharp, real ffmpeg; pictures made here.
import { mkdtempSync, readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupTempFiles, MediaError, pruneThumbnails, thumbnail } from '../../src/main/engine/media';
import { makeMov } from './fixtures';

let dir: string;
let cache: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'tri-thumbs-'));
  cache = join(dir, 'cache');
});
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A w x h picture: left half red, right half blue (so orientation is visible). */
function halves(w: number, h: number): Buffer {
  const px = Buffer.alloc(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 3;
      if (x < w / 2) px[i] = 255;
      else px[i + 2] = 255;
    }
  return px;
}

const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function rejection(p: Promise<unknown>): Promise<MediaError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(MediaError);
    return e as MediaError;
  }
  throw new Error('expected a rejection');
}

describe('thumbnail', () => {
  it('makes a WebP of a PNG once and serves it from the cache afterwards', async () => {
    const png = join(dir, 'pic.png');
    await sharp(halves(400, 300), { raw: { width: 400, height: 300, channels: 3 } }).png().toFile(png);
    const t1 = await thumbnail(png, cache, { size: 128 });
    expect(t1.startsWith(cache)).toBe(true);
    const meta = await sharp(t1).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['webp', 128, 96]);
    const m1 = statSync(t1).mtimeMs;
    await wait(30);
    const t2 = await thumbnail(png, cache, { size: 128 });
    expect(t2).toBe(t1);
    expect(statSync(t2).mtimeMs).toBe(m1);

    // Parallel requests for the same thumbnail make it once.
    const many = await Promise.all(Array.from({ length: 8 }, () => thumbnail(png, cache, { size: 64 })));
    expect(new Set(many).size).toBe(1);

    // Another size is another entry; a changed file gets a new thumbnail.
    expect(await thumbnail(png, cache, { size: 64 })).not.toBe(t1);
    const later = new Date(Date.now() + 5000);
    utimesSync(png, later, later);
    const t3 = await thumbnail(png, cache, { size: 128 });
    expect(t3).not.toBe(t1);
    expect(await cleanupTempFiles(cache, { recursive: true })).toEqual([]);
  });

  it('honours EXIF orientation and can write JPEG', async () => {
    const jpg = join(dir, 'phone.jpg');
    // Stored landscape 200x100 (red left, blue right), EXIF says "rotate 90 clockwise" (6).
    await sharp(halves(200, 100), { raw: { width: 200, height: 100, channels: 3 } }).jpeg().withMetadata({ orientation: 6 }).toFile(jpg);
    const t = await thumbnail(jpg, cache, { size: 100, format: 'jpeg' });
    const img = sharp(t);
    const meta = await img.metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['jpeg', 50, 100]);
    // After a clockwise quarter turn the red (left) half is on top.
    const { data, info } = await img.raw().toBuffer({ resolveWithObject: true });
    const at = (x: number, y: number) => [...data.subarray((y * info.width + x) * info.channels, (y * info.width + x) * info.channels + 3)];
    expect(at(25, 10)[0]).toBeGreaterThan(200);
    expect(at(25, 90)[2]).toBeGreaterThan(200);
  });

  it('makes a thumbnail of a video from a frame', async () => {
    const mov = await makeMov(join(dir, 'clip.mov'), { seconds: 2 });
    const t = await thumbnail(mov, cache, { size: 160 });
    const meta = await sharp(t).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['webp', 160, 120]);
  });

  it('fails clearly on unreadable input and remembers it', async () => {
    const fake = join(dir, 'notes.jpg');
    writeFileSync(fake, 'not a picture at all\n');
    const e = await rejection(thumbnail(fake, cache));
    expect([e.code, e.permanent]).toEqual(['unsupported', true]);
    expect(e.reason).toContain('notes.jpg is not a picture Triplicate can preview');
    const again = await rejection(thumbnail(fake, cache));
    expect(again).toBe(e);

    const cut = join(dir, 'cut.png');
    const full = await sharp(halves(300, 300), { raw: { width: 300, height: 300, channels: 3 } }).png().toBuffer();
    writeFileSync(cut, full.subarray(0, Math.floor(full.length / 3)));
    const c = await rejection(thumbnail(cut, cache));
    expect(c.permanent).toBe(true);
    expect(['corrupt', 'unsupported']).toContain(c.code);

    const empty = join(dir, 'empty.png');
    writeFileSync(empty, '');
    expect((await rejection(thumbnail(empty, cache))).code).toBe('empty');

    const gone = await rejection(thumbnail(join(dir, 'gone.png'), cache));
    expect([gone.code, gone.permanent]).toEqual(['source-missing', false]);
  });

  it('prunes the cache oldest first', async () => {
    const before = readdirSync(cache).length;
    expect(before).toBeGreaterThan(0);
    const freed = await pruneThumbnails(cache, 0);
    expect(freed).toBeGreaterThan(0);
    const left = readdirSync(cache).flatMap((d) => readdirSync(join(cache, d)));
    expect(left).toEqual([]);
  });
});

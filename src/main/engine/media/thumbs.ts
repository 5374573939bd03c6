// Thumbnails for the UI's browse views: made on first request, cached on disk.
//
// Images go through sharp (EXIF orientation applied); videos through one ffmpeg frame (see
// grabFrame), then sharp. The cache file name is a SHA-256 of (absolute path, file size, mtime,
// thumbnail size, format, quality), so a changed file gets a new thumbnail and an unchanged one is
// never made twice. Layout: `<cacheDir>/<2 hex>/<64 hex>.webp|jpg`. Nothing here evicts old
// entries: `pruneThumbnails` does, when the caller wants it.
import { createHash } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, extname, join, resolve } from 'node:path';
import sharp from 'sharp';
import { abortedError, fsError, MediaError } from './errors';
import type { MediaTools, ToolPaths } from './ffmpeg';
import { isVideoPath } from './naming';
import { grabFrame, writeAtomically } from './transcode';
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from '../private-files';

export interface ThumbnailOptions {
  /** Longest side in pixels (the picture fits inside size x size, never enlarged). Default 256. */
  size?: number;
  format?: 'webp' | 'jpeg';
  /** 1..100. Default 75 (WebP) or 80 (JPEG). */
  quality?: number;
  signal?: AbortSignal;
  /** For video sources. */
  tools?: MediaTools;
  paths?: ToolPaths;
}

/** Bump when the output of the same options changes, to retire old cache entries. */
const CACHE_VERSION = 1;
const MIN_SIZE = 16;
const MAX_SIZE = 2048;

/** Extensions thumbnailed through an ffmpeg frame. */
const EXTRA_VIDEO_EXTS = new Set(['mp4', 'webm']);

function isVideoSource(p: string): boolean {
  return isVideoPath(p) || EXTRA_VIDEO_EXTS.has(extname(p).slice(1).toLowerCase());
}

// At most this many thumbnails are made at once (a scrolling UI asks for dozens).
const limit = semaphore(Math.max(1, Math.min(4, availableParallelism())));
const inflight = new Map<string, Promise<string>>();
// Files that failed permanently, by cache key (so scrolling past a broken file does not retry it).
const failures = new Map<string, MediaError>();
const MAX_FAILURES = 2000;

export interface ThumbnailKeyInput {
  path: string;
  fileSize: number;
  mtimeMs: number;
  size: number;
  format: 'webp' | 'jpeg';
  quality: number;
}

export function thumbnailKey(k: ThumbnailKeyInput): string {
  return createHash('sha256')
    .update(JSON.stringify([CACHE_VERSION, resolve(k.path), k.fileSize, Math.trunc(k.mtimeMs), k.size, k.format, k.quality]))
    .digest('hex');
}

export function thumbnailCachePath(cacheDir: string, key: string, format: 'webp' | 'jpeg'): string {
  return join(cacheDir, key.slice(0, 2), `${key}.${format === 'webp' ? 'webp' : 'jpg'}`);
}

/**
 * The path of a cached thumbnail of `sourcePath`, made now if needed. Throws MediaError:
 * 'unsupported' / 'corrupt' / 'too-large' / 'empty' (permanent, remembered for this file version),
 * 'source-missing', 'disk-full', 'io', 'ffmpeg-missing', 'aborted'.
 */
export async function thumbnail(sourcePath: string, cacheDir: string, opts: ThumbnailOptions = {}): Promise<string> {
  if (opts.signal?.aborted) throw abortedError('Making the thumbnail');
  const size = Math.round(Math.min(MAX_SIZE, Math.max(MIN_SIZE, opts.size ?? 256)));
  const format = opts.format ?? 'webp';
  const quality = Math.round(Math.min(100, Math.max(1, opts.quality ?? (format === 'webp' ? 75 : 80))));
  let st;
  try {
    st = await fsp.stat(sourcePath);
  } catch (e) {
    throw fsError(e, sourcePath, 'read');
  }
  if (!st.isFile()) throw new MediaError('unsupported', `${basename(sourcePath)} is not a file, so it has no thumbnail.`);
  const key = thumbnailKey({ path: sourcePath, fileSize: st.size, mtimeMs: st.mtimeMs, size, format, quality });
  const known = failures.get(key);
  if (known) throw known;
  const out = thumbnailCachePath(cacheDir, key, format);
  try {
    await fsp.access(out);
    return out;
  } catch {}
  let p = inflight.get(key);
  if (!p) {
    p = limit(() => generate(sourcePath, st.size, out, { ...opts, size, format, quality })).finally(() => inflight.delete(key));
    inflight.set(key, p);
  }
  try {
    return await p;
  } catch (e) {
    if (e instanceof MediaError && e.permanent) {
      if (failures.size >= MAX_FAILURES) failures.clear();
      failures.set(key, e);
    }
    throw e;
  }
}

async function generate(
  sourcePath: string,
  fileSize: number,
  out: string,
  o: ThumbnailOptions & { size: number; format: 'webp' | 'jpeg'; quality: number },
): Promise<string> {
  // Someone may have finished it while we waited for a slot.
  try {
    await fsp.access(out);
    return out;
  } catch {}
  if (o.signal?.aborted) throw abortedError('Making the thumbnail');
  const name = basename(sourcePath);
  if (fileSize === 0) throw new MediaError('empty', `${name} is empty (0 bytes), so it has no thumbnail.`);
  let input: string | Buffer = sourcePath;
  if (isVideoSource(sourcePath)) {
    input = await grabFrame(sourcePath, { tools: o.tools, settings: { ...o.paths, maxHeight: Math.max(360, o.size * 2) }, signal: o.signal });
  }
  let data: Buffer;
  try {
    let img = sharp(input, { failOn: 'error' })
      .rotate() // apply EXIF orientation
      .resize({ width: o.size, height: o.size, fit: 'inside', withoutEnlargement: true });
    img = o.format === 'webp' ? img.webp({ quality: o.quality }) : img.jpeg({ quality: o.quality, mozjpeg: true });
    data = await img.toBuffer();
  } catch (e) {
    throw sharpError(e, sourcePath);
  }
  if (o.signal?.aborted) throw abortedError('Making the thumbnail');
  try {
    await fsp.mkdir(join(out, '..'), { recursive: true, mode: PRIVATE_DIR_MODE });
  } catch (e) {
    throw fsError(e, out, 'write');
  }
  await writeAtomically(out, data, PRIVATE_FILE_MODE); // the cache is in the data dir
  return out;
}

function sharpError(e: unknown, sourcePath: string): MediaError {
  const msg = e instanceof Error ? e.message : String(e);
  const name = basename(sourcePath);
  if (/unsupported image format|bad seek|not a known file format|heif: Unsupported/i.test(msg)) {
    return new MediaError('unsupported', `${name} is not a picture Triplicate can preview (unknown or unsupported format). It is backed up as it is.`, { detail: msg, cause: e });
  }
  if (/Input file is missing|ENOENT/i.test(msg)) return fsError(Object.assign(new Error(msg), { code: 'ENOENT' }), sourcePath, 'read');
  if (/exceeds pixel limit/i.test(msg)) {
    return new MediaError('too-large', `${name} is too large to preview. It is backed up as it is.`, { detail: msg, cause: e });
  }
  return new MediaError('corrupt', `${name} could not be read as a picture: it is probably damaged. It is backed up as it is.`, { detail: msg, cause: e });
}

/**
 * Delete the least recently modified cache files until the cache is at most `maxBytes`.
 * Returns the number of bytes freed.
 */
export async function pruneThumbnails(cacheDir: string, maxBytes: number): Promise<number> {
  const files: { p: string; size: number; mtime: number }[] = [];
  let subdirs: string[] = [];
  try {
    subdirs = (await fsp.readdir(cacheDir, { withFileTypes: true })).filter((d) => d.isDirectory() && /^[0-9a-f]{2}$/.test(d.name)).map((d) => d.name);
  } catch {
    return 0;
  }
  for (const sd of subdirs) {
    for (const f of await fsp.readdir(join(cacheDir, sd)).catch(() => [] as string[])) {
      if (!/^[0-9a-f]{64}\.(webp|jpg)$/.test(f)) continue;
      const p = join(cacheDir, sd, f);
      const st = await fsp.stat(p).catch(() => undefined);
      if (st) files.push({ p, size: st.size, mtime: st.mtimeMs });
    }
  }
  let total = files.reduce((a, f) => a + f.size, 0);
  let freed = 0;
  files.sort((a, b) => a.mtime - b.mtime);
  for (const f of files) {
    if (total <= maxBytes) break;
    try {
      await fsp.unlink(f.p);
      total -= f.size;
      freed += f.size;
    } catch {}
  }
  return freed;
}

function semaphore(n: number): <T>(fn: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async <T>(fn: () => Promise<T>): Promise<T> => {
    // A released slot is handed straight to the next waiter, so `active` never exceeds n.
    if (active >= n) await new Promise<void>((r) => waiting.push(r));
    else active++;
    try {
      return await fn();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else active--;
    }
  };
}

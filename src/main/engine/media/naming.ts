// Where the converted files go, and how we recognise our own files.
//
// NAMING RULE (never overwrites an operator's file)
//   For a video `<dir>/<name>.<ext>` the candidates are, in order:
//     1. `<dir>/<name>.mp4`        with poster `<dir>/<name>.poster.jpg`
//     2. `<dir>/<name>.<ext>.mp4`  with poster `<dir>/<name>.<ext>.poster.jpg`
//   A candidate is used when each of its two files either does not exist or is ours for this
//   very source. "Ours" is written inside the file, so it survives a lost database and a restore:
//     - the MP4's `comment` tag is "Converted by Triplicate from <name>.<ext>";
//     - the poster JPEG carries a COM segment "Triplicate poster of <name>.<ext>".
//   So `clip.mov` gets `clip.mp4`; if the operator already has their own `clip.mp4` (or `clip.avi`
//   already claimed it), `clip.mov` gets `clip.mov.mp4`. Re-running a conversion picks the same
//   name again and replaces only our own earlier output. When both candidates are taken by files
//   that are not ours, the video is skipped with a 'name-conflict' reason.
//
// TEMP FILES
//   Outputs are written to `<final>.part-<8 hex><.ext>` in the same folder (same disk, so the
//   final rename is atomic) and renamed once verified. `isTempFile` tells the scanner to ignore
//   them; `cleanupTempFiles` (transcode.ts) removes orphans after a crash.
import { randomBytes } from 'node:crypto';
import { promises as fsp } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { MediaError } from './errors';
import type { MediaTools } from './ffmpeg';
import { probeMedia } from './probe';

/** Extensions (lower case, no dot) that get a transcode job. Matching is case-insensitive. */
export const VIDEO_EXTENSIONS: readonly string[] = ['mov', 'avi', 'mts', 'm2ts', 'mkv', 'wmv', '3gp', 'm4v'];

/** True for `clip.MOV`, `a/b/c.mts`, ... (not for .mp4: those are already what we make). */
export function isVideoPath(p: string): boolean {
  const ext = extname(p).slice(1).toLowerCase();
  return VIDEO_EXTENSIONS.includes(ext);
}

export const MP4_MARKER_PREFIX = 'Converted by Triplicate from ';
export const POSTER_MARKER_PREFIX = 'Triplicate poster of ';

export function mp4Marker(sourceName: string): string {
  return MP4_MARKER_PREFIX + sourceName;
}

export function posterMarker(sourceName: string): string {
  return POSTER_MARKER_PREFIX + sourceName;
}

export interface OutputPaths {
  mp4Path: string;
  posterPath: string;
}

/** `<x>.mp4` -> `<x>.poster.jpg`. */
export function posterPathFor(mp4Path: string): string {
  const base = mp4Path.toLowerCase().endsWith('.mp4') ? mp4Path.slice(0, -4) : mp4Path;
  return `${base}.poster.jpg`;
}

/** The two candidate output pairs for a video, preferred first. */
export function outputCandidates(input: string): OutputPaths[] {
  const dir = dirname(input);
  const file = basename(input);
  const ext = extname(file);
  const stem = ext ? file.slice(0, -ext.length) : file;
  const first = join(dir, `${stem}.mp4`);
  const second = join(dir, `${file}.mp4`);
  return [
    { mp4Path: first, posterPath: posterPathFor(first) },
    { mp4Path: second, posterPath: posterPathFor(second) },
  ];
}

const TEMP_RE = /\.part-[0-9a-f]{8}\.(mp4|jpg|webp)$/i;

/** A temp name next to `finalPath`: `<final>.part-<8 hex><ext>`. */
export function tempPathFor(finalPath: string): string {
  return `${finalPath}.part-${randomBytes(4).toString('hex')}${extname(finalPath)}`;
}

/** True for names made by `tempPathFor` (the scanner must ignore them). */
export function isTempFile(nameOrPath: string): boolean {
  return TEMP_RE.test(nameOrPath);
}

async function exists(p: string): Promise<boolean> {
  try {
    await fsp.lstat(p);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}

/** Is the MP4 at `p` one we wrote from `sourceName`? (false when unreadable or absent) */
export async function isOurMp4(p: string, sourceName: string, tools?: MediaTools): Promise<boolean> {
  try {
    const pr = await probeMedia(p, { tools });
    return pr.comment === mp4Marker(sourceName);
  } catch {
    return false;
  }
}

/** Is the JPEG at `p` a poster we wrote for `sourceName`? */
export async function isOurPoster(p: string, sourceName: string): Promise<boolean> {
  try {
    const fh = await fsp.open(p, 'r');
    try {
      const buf = Buffer.alloc(64 * 1024);
      const { bytesRead } = await fh.read(buf, 0, buf.length, 0);
      return jpegComments(buf.subarray(0, bytesRead)).includes(posterMarker(sourceName));
    } finally {
      await fh.close();
    }
  } catch {
    return false;
  }
}

/** May we write `p` for `sourceName`: absent, or ours. */
export async function mayWrite(p: string, sourceName: string, kind: 'mp4' | 'poster', tools?: MediaTools): Promise<boolean> {
  if (!(await exists(p))) return true;
  return kind === 'mp4' ? isOurMp4(p, sourceName, tools) : isOurPoster(p, sourceName);
}

/**
 * Apply the naming rule: the first candidate whose MP4 and poster are free or ours.
 * Throws a permanent MediaError('name-conflict') when none is.
 */
export async function planOutputs(input: string, opts: { tools?: MediaTools } = {}): Promise<OutputPaths> {
  const source = basename(input);
  const candidates = outputCandidates(input);
  for (const c of candidates) {
    if ((await mayWrite(c.mp4Path, source, 'mp4', opts.tools)) && (await mayWrite(c.posterPath, source, 'poster'))) return c;
  }
  throw new MediaError(
    'name-conflict',
    `${source} was not converted because ${candidates.map((c) => basename(c.mp4Path)).join(' and ')} (or their posters) already exist and were not made by Triplicate for this video. Triplicate never overwrites your files: rename one of them to convert it.`,
  );
}

// ---------------------------------------------------------------------------------------------
// JPEG comment (COM) segments: our ownership marker for posters.

/** Insert a COM segment after SOI (and after a JFIF APP0 segment when present). */
export function withJpegComment(jpeg: Buffer, comment: string): Buffer {
  if (jpeg.length < 4 || jpeg[0] !== 0xff || jpeg[1] !== 0xd8) throw new Error('not a JPEG');
  const text = Buffer.from(comment, 'utf8').subarray(0, 65000);
  const seg = Buffer.alloc(4 + text.length);
  seg[0] = 0xff;
  seg[1] = 0xfe;
  seg.writeUInt16BE(text.length + 2, 2);
  text.copy(seg, 4);
  let at = 2;
  if (jpeg[2] === 0xff && jpeg[3] === 0xe0 && jpeg.length >= 6) at = 4 + jpeg.readUInt16BE(4);
  return Buffer.concat([jpeg.subarray(0, at), seg, jpeg.subarray(at)]);
}

/** COM segment texts before the image data. */
export function jpegComments(jpeg: Buffer): string[] {
  const out: string[] = [];
  if (jpeg.length < 4 || jpeg[0] !== 0xff || jpeg[1] !== 0xd8) return out;
  let i = 2;
  for (let guard = 0; guard < 256 && i + 4 <= jpeg.length; guard++) {
    if (jpeg[i] !== 0xff) break;
    const marker = jpeg[i + 1] ?? 0;
    if (marker === 0xda || marker === 0xd9) break; // start of scan / end of image
    if (marker === 0xff) {
      i++;
      continue;
    }
    const len = jpeg.readUInt16BE(i + 2);
    if (marker === 0xfe) out.push(jpeg.toString('utf8', i + 4, Math.min(jpeg.length, i + 2 + len)));
    i += 2 + len;
  }
  return out;
}

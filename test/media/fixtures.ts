// Clips for the media tests, generated with the bundled ffmpeg's lavfi sources (no media committed).
import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { promisify } from 'node:util';

const require = createRequire(import.meta.url);
export const FFMPEG = (require('@ffmpeg-installer/ffmpeg') as { path: string }).path;
export const FFPROBE = (require('@ffprobe-installer/ffprobe') as { path: string }).path;

const run = promisify(execFile);

/** Run the bundled ffmpeg quietly; rejects on failure. */
export async function ff(...args: string[]): Promise<void> {
  await run(FFMPEG, ['-hide_banner', '-loglevel', 'error', '-nostdin', '-y', ...args], { maxBuffer: 16 * 1024 * 1024 });
}

/** `seconds` of testsrc (w x h @ 25 fps) as MJPEG + 440 Hz PCM in a MOV (no faststart unless asked). */
export async function makeMov(
  out: string,
  o: { seconds?: number; size?: string; audio?: boolean; faststart?: boolean; creationTime?: string; src?: string } = {},
): Promise<string> {
  const seconds = String(o.seconds ?? 2);
  const args = ['-f', 'lavfi', '-i', `${o.src ?? 'testsrc'}=size=${o.size ?? '320x240'}:rate=25`];
  if (o.audio !== false) args.push('-f', 'lavfi', '-i', 'sine=frequency=440');
  args.push('-t', seconds, '-c:v', 'mjpeg', '-q:v', '6');
  if (o.audio !== false) args.push('-c:a', 'pcm_s16le');
  if (o.faststart) args.push('-movflags', '+faststart');
  if (o.creationTime) args.push('-metadata', `creation_time=${o.creationTime}`);
  args.push(out);
  await ff(...args);
  return out;
}

/** Raw ffprobe JSON (independent of the code under test). */
export function ffprobeJson(path: string): {
  streams: { codec_type: string; codec_name: string; width?: number; height?: number; side_data_list?: { rotation?: number }[]; tags?: Record<string, string> }[];
  format: { duration?: string; tags?: Record<string, string> };
} {
  const out = execFileSync(FFPROBE, ['-v', 'error', '-print_format', 'json', '-show_format', '-show_streams', path], { encoding: 'utf8' });
  return JSON.parse(out);
}

export function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** Top-level ISO-BMFF box types, read independently of the code under test. */
export function boxes(path: string): string[] {
  const buf = readFileSync(path);
  const names: string[] = [];
  let pos = 0;
  while (pos + 8 <= buf.length && names.length < 32) {
    let len = buf.readUInt32BE(pos);
    names.push(buf.toString('latin1', pos + 4, pos + 8));
    if (len === 1) len = Number(buf.readBigUInt64BE(pos + 8));
    if (len < 8) break;
    pos += len;
  }
  return names;
}

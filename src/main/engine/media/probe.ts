// ffprobe: what a media file holds, and whether it can be converted.
//
// `probeMedia` reads the file (throws a MediaError only when ffprobe cannot read it at all);
// `assessVideo` says whether a readable file is a video we will convert (audio-only, still
// images, zero length and huge resolutions are permanent skips with a reason);
// `toMediaInfo` maps the result onto the API's MediaInfo fields for the catalog.
import { promises as fsp } from 'node:fs';
import { basename } from 'node:path';
import type { MediaInfo } from '../../../shared/api';
import { abortedError, fsError, MediaError, tail } from './errors';
import { ffPath, resolveMediaTools, runTool, toolEnv, type MediaTools, type ToolPaths } from './ffmpeg';

export type MediaKind = 'video' | 'audio' | 'image' | 'other';
export type Rotation = 0 | 90 | 180 | 270;

export interface MediaProbe {
  path: string;
  sizeBytes: number;
  /** ffprobe's format name, e.g. "mov,mp4,m4a,3gp,3g2,mj2". */
  formatName: string;
  /** 'video': a moving picture; 'audio': sound only; 'image': a still picture; 'other': neither. */
  kind: MediaKind;
  /** Container duration in seconds (header value). */
  durationS?: number;
  hasVideo: boolean;
  hasAudio: boolean;
  /** ffprobe stream index of the first real video stream (not cover art). */
  videoStreamIndex?: number;
  audioStreamIndex?: number;
  videoCodec?: string;
  audioCodec?: string;
  /** Pixel size as stored. */
  codedWidth?: number;
  codedHeight?: number;
  /** Size as a player shows it: sample aspect ratio applied, then rotation (90/270 swap). */
  width?: number;
  height?: number;
  /** Clockwise degrees a player turns the stored picture (phone portrait video: 90). */
  rotation: Rotation;
  frameRate?: number;
  /** The video is interlaced (camcorder MTS, DV, broadcast): the transcode deinterlaces it. */
  interlaced?: boolean;
  bitRate?: number;
  /** Capture time, ms since the epoch (QuickTime creationdate, else creation_time). */
  capturedAt?: number;
  /** The comment tag (Triplicate marks its own MP4s there). */
  comment?: string;
}

export interface ProbeOptions {
  signal?: AbortSignal;
  /** Tool paths from the config (`media.ffmpegPath` / `media.ffprobePath`). */
  paths?: ToolPaths;
  /** Already resolved tools (skips resolution). */
  tools?: MediaTools;
  /** Give up after this long (slow network shares). Default 60 s. */
  timeoutMs?: number;
}

export interface VideoLimits {
  /** Longest side in stored pixels. Default 8192. */
  maxDimension: number;
  /** Stored pixels per frame. Default 8192 x 4320 (8K DCI). */
  maxPixels: number;
}

export const DEFAULT_VIDEO_LIMITS: VideoLimits = { maxDimension: 8192, maxPixels: 8192 * 4320 };

/** Codecs ffprobe reports as "video" that are really text art or still pictures. */
const NOT_MOVING_PICTURE = new Set(['ansi', 'bintext', 'xbin', 'idf', 'tty']);
const IMAGE_FORMAT_RE = /(^|,)(image2|image2pipe|\w+_pipe|gif_pipe|webp|apng)$/;

interface FfStream {
  index: number;
  codec_type?: string;
  codec_name?: string;
  width?: number;
  height?: number;
  sample_aspect_ratio?: string;
  avg_frame_rate?: string;
  r_frame_rate?: string;
  duration?: string;
  nb_frames?: string;
  field_order?: string;
  disposition?: Record<string, number>;
  tags?: Record<string, string>;
  side_data_list?: { side_data_type?: string; rotation?: number }[];
}

interface FfProbeJson {
  streams?: FfStream[];
  format?: { format_name?: string; duration?: string; bit_rate?: string; tags?: Record<string, string> };
}

/**
 * Read a media file with ffprobe. Throws MediaError:
 * 'empty' (0 bytes), 'not-media' (not a media file at all), 'corrupt' (looks like a media
 * container but cannot be read, typically a copy cut short), 'source-missing', 'ffmpeg-missing',
 * 'aborted', 'stalled'.
 */
export async function probeMedia(path: string, opts: ProbeOptions = {}): Promise<MediaProbe> {
  if (opts.signal?.aborted) throw abortedError('Reading the video');
  let size: number;
  try {
    const st = await fsp.stat(path);
    if (!st.isFile()) throw new MediaError('not-media', `${basename(path)} is not a file.`);
    size = st.size;
  } catch (e) {
    throw fsError(e, path, 'read');
  }
  if (size === 0) {
    throw new MediaError('empty', `${basename(path)} is empty (0 bytes), so there is nothing to convert. It is backed up as it is.`);
  }
  const tools = opts.tools ?? (await resolveMediaTools(opts.paths));
  let run;
  try {
    const probeOnce = (env: NodeJS.ProcessEnv | undefined) =>
      runTool(tools.ffprobe.path, ['-v', 'error', '-print_format', 'json', '-show_format', '-show_streams', ffPath(path)], {
        signal: opts.signal,
        timeoutMs: opts.timeoutMs ?? 60_000,
        maxStdoutBytes: 16 * 1024 * 1024,
        env,
      });
    run = await probeOnce(toolEnv(tools.ffprobe));
    // A crash (not an error exit) says nothing about the file: retry once with the iconv workaround.
    if (run.signal) run = await probeOnce(toolEnv(tools.ffprobe, true));
  } catch (e) {
    if (e instanceof MediaError) throw e;
    throw new MediaError('ffmpeg-missing', `ffprobe at ${tools.ffprobe.path} could not be started. Reinstall Triplicate or set media.ffprobePath.`, {
      detail: e instanceof Error ? e.message : String(e),
      cause: e,
    });
  }
  let json: FfProbeJson | undefined;
  try {
    json = JSON.parse(run.stdout.toString('utf8') || '{}') as FfProbeJson;
  } catch {}
  if (run.signal) {
    throw new MediaError('ffmpeg-failed', `ffprobe crashed (${run.signal}) while reading ${basename(path)}. Triplicate tries again later; if it keeps happening, set media.ffprobePath to another ffprobe.`, {
      detail: tail(run.stderr),
    });
  }
  if (run.code !== 0 || !json?.format) {
    const detail = tail(run.stderr) || `ffprobe exited with ${run.code ?? run.signal}`;
    if (/No such file or directory/i.test(run.stderr)) throw fsError(Object.assign(new Error(detail), { code: 'ENOENT' }), path, 'read');
    const looks = await sniffContainer(path);
    if (looks) {
      throw new MediaError(
        'corrupt',
        `${basename(path)} looks like a ${looks} video but cannot be read: it is probably damaged or was not copied completely. It is backed up as it is; no MP4 was made.`,
        { detail },
      );
    }
    throw new MediaError(
      'not-media',
      `${basename(path)} has a video file name but does not contain a video Triplicate can read. It is backed up as it is; no MP4 was made.`,
      { detail },
    );
  }
  return interpret(path, size, json);
}

function interpret(path: string, sizeBytes: number, json: FfProbeJson): MediaProbe {
  const streams = json.streams ?? [];
  const format = json.format ?? {};
  const formatName = format.format_name ?? '';
  const isImageFormat = IMAGE_FORMAT_RE.test(formatName);
  const video = streams.find(
    (s) =>
      s.codec_type === 'video' &&
      s.disposition?.attached_pic !== 1 &&
      !NOT_MOVING_PICTURE.has(s.codec_name ?? '') &&
      !isImageFormat,
  );
  const still = !video && streams.some((s) => s.codec_type === 'video' && !NOT_MOVING_PICTURE.has(s.codec_name ?? ''));
  const audio = streams.find((s) => s.codec_type === 'audio');

  let durationS = num(format.duration);
  if (durationS === undefined) {
    const ds = streams.map((s) => num(s.duration) ?? hms(s.tags?.DURATION)).filter((d): d is number => d !== undefined);
    if (ds.length) durationS = Math.max(...ds);
  }

  const out: MediaProbe = {
    path,
    sizeBytes,
    formatName,
    kind: video ? 'video' : audio ? 'audio' : still ? 'image' : 'other',
    hasVideo: !!video,
    hasAudio: !!audio,
    rotation: 0,
  };
  if (durationS !== undefined) out.durationS = durationS;
  const bitRate = num(format.bit_rate);
  if (bitRate !== undefined) out.bitRate = bitRate;
  if (audio) {
    out.audioStreamIndex = audio.index;
    if (audio.codec_name) out.audioCodec = audio.codec_name;
  }
  if (video) {
    out.videoStreamIndex = video.index;
    if (video.codec_name) out.videoCodec = video.codec_name;
    out.rotation = rotationOf(video);
    if (video.width && video.height) {
      out.codedWidth = video.width;
      out.codedHeight = video.height;
      const sar = ratio(video.sample_aspect_ratio);
      let w = sar && sar > 0 ? Math.round(video.width * sar) : video.width;
      let h = video.height;
      if (out.rotation === 90 || out.rotation === 270) [w, h] = [h, w];
      out.width = w;
      out.height = h;
    }
    if (video.field_order && ['tt', 'bb', 'tb', 'bt'].includes(video.field_order)) out.interlaced = true;
    const fr = ratio(video.avg_frame_rate) ?? ratio(video.r_frame_rate);
    if (fr && fr > 0 && fr < 1000) out.frameRate = fr;
  }
  const captured = captureDate(format.tags, video?.tags);
  if (captured !== undefined) out.capturedAt = captured;
  const comment = format.tags?.comment ?? format.tags?.COMMENT;
  if (comment) out.comment = comment;
  return out;
}

/**
 * Whether a probed file is a video we convert. Returns undefined when it is, else the
 * permanent MediaError to record for the file (audio-only, still image, no length, too large).
 */
export function assessVideo(p: MediaProbe, limits: VideoLimits = DEFAULT_VIDEO_LIMITS): MediaError | undefined {
  const name = basename(p.path);
  if (!p.hasVideo) {
    if (p.hasAudio) {
      return new MediaError('audio-only', `${name} holds only sound, no picture, so there is no video to convert. It is backed up as it is.`);
    }
    if (p.kind === 'image') {
      return new MediaError('not-video', `${name} holds a still picture, not a video, so there is nothing to convert. It is backed up as it is.`);
    }
    return new MediaError('not-video', `${name} holds no picture or sound Triplicate can convert. It is backed up as it is.`);
  }
  if (p.durationS === undefined || !(p.durationS > 0)) {
    return new MediaError('corrupt', `${name} reports no length, so it is probably damaged or was not copied completely. It is backed up as it is; no MP4 was made.`);
  }
  const w = p.codedWidth ?? 0;
  const h = p.codedHeight ?? 0;
  if (w === 0 || h === 0) {
    return new MediaError('corrupt', `${name} reports no picture size, so it is probably damaged. It is backed up as it is; no MP4 was made.`);
  }
  if (Math.max(w, h) > limits.maxDimension || w * h > limits.maxPixels) {
    return new MediaError(
      'too-large',
      `${name} is ${w}x${h} pixels, beyond the ${limits.maxDimension}-pixel limit for conversion. It is backed up as it is; no MP4 was made.`,
    );
  }
  return undefined;
}

/** The catalog / API view of a probe. */
export function toMediaInfo(p: MediaProbe): Pick<MediaInfo, 'duration_s' | 'width' | 'height' | 'video_codec' | 'audio_codec' | 'captured_at'> {
  const m: Pick<MediaInfo, 'duration_s' | 'width' | 'height' | 'video_codec' | 'audio_codec' | 'captured_at'> = {};
  if (p.durationS !== undefined) m.duration_s = Math.round(p.durationS * 1000) / 1000;
  if (p.width !== undefined) m.width = p.width;
  if (p.height !== undefined) m.height = p.height;
  if (p.videoCodec) m.video_codec = p.videoCodec;
  if (p.audioCodec) m.audio_codec = p.audioCodec;
  if (p.capturedAt !== undefined) m.captured_at = p.capturedAt;
  return m;
}

// ---------------------------------------------------------------------------------------------

function num(v: string | number | undefined): number | undefined {
  if (v === undefined || v === null || v === '' || v === 'N/A') return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : undefined;
}

function ratio(v: string | undefined): number | undefined {
  if (!v) return undefined;
  const m = /^(-?\d+(?:\.\d+)?)[:/](\d+(?:\.\d+)?)$/.exec(v);
  if (!m) return num(v);
  const a = Number(m[1]);
  const b = Number(m[2]);
  return b > 0 && a > 0 ? a / b : undefined;
}

/** Matroska's "00:01:02.500000000". */
function hms(v: string | undefined): number | undefined {
  const m = v ? /^(\d+):(\d{2}):(\d{2}(?:\.\d+)?)$/.exec(v) : null;
  return m ? Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3]) : undefined;
}

/**
 * Clockwise rotation a player applies. Older ffprobe reports a `rotate` tag (clockwise);
 * newer ones a display matrix whose `rotation` is counter-clockwise.
 */
export function rotationOf(s: Pick<FfStream, 'tags' | 'side_data_list'>): Rotation {
  let deg: number | undefined;
  const tag = num(s.tags?.rotate);
  if (tag !== undefined) deg = tag;
  else {
    const dm = s.side_data_list?.find((d) => d.side_data_type === 'Display Matrix' && typeof d.rotation === 'number');
    if (dm && typeof dm.rotation === 'number') deg = -dm.rotation;
  }
  if (deg === undefined) return 0;
  const r = (((Math.round(deg / 90) * 90) % 360) + 360) % 360;
  return r as Rotation;
}

/** A plausible capture time in ms, or undefined (0, QuickTime's 1904 epoch and far futures are noise). */
export function parseCaptureDate(v: string | undefined): number | undefined {
  if (!v) return undefined;
  let s = v.trim();
  // "2023-06-01T12:00:00+0200" -> "+02:00"; "2023-06-01 12:00:00" -> ISO "T"
  s = s.replace(/([+-]\d{2})(\d{2})$/, '$1:$2').replace(/^(\d{4}-\d{2}-\d{2}) (\d)/, '$1T$2');
  const t = Date.parse(s);
  if (!Number.isFinite(t)) return undefined;
  const year = new Date(t).getUTCFullYear();
  if (year < 1971 || year > 2200) return undefined;
  return t;
}

function captureDate(formatTags?: Record<string, string>, videoTags?: Record<string, string>): number | undefined {
  return (
    parseCaptureDate(formatTags?.['com.apple.quicktime.creationdate']) ??
    parseCaptureDate(formatTags?.creation_time) ??
    parseCaptureDate(videoTags?.creation_time) ??
    parseCaptureDate(formatTags?.date)
  );
}

/** Name of the container a file's first bytes announce, if any (to tell "damaged video" from "not a video"). */
async function sniffContainer(path: string): Promise<string | undefined> {
  let buf: Buffer;
  try {
    const fh = await fsp.open(path, 'r');
    try {
      buf = Buffer.alloc(256);
      const { bytesRead } = await fh.read(buf, 0, 256, 0);
      buf = buf.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  } catch {
    return undefined;
  }
  if (buf.length < 12) return undefined;
  const at4 = buf.toString('latin1', 4, 8);
  if (['ftyp', 'moov', 'mdat', 'wide', 'free', 'skip', 'pnot', 'uuid'].includes(at4)) return 'QuickTime/MP4';
  if (buf.toString('latin1', 0, 4) === 'RIFF' && buf.toString('latin1', 8, 12).startsWith('AVI')) return 'AVI';
  if (buf.readUInt32BE(0) === 0x1a45dfa3) return 'Matroska';
  if (buf.subarray(0, 8).equals(Buffer.from([0x30, 0x26, 0xb2, 0x75, 0x8e, 0x66, 0xcf, 0x11]))) return 'Windows Media';
  if (buf[0] === 0x47 && (buf.length < 189 || buf[188] === 0x47)) return 'MPEG transport stream';
  if (buf[4] === 0x47 && (buf.length < 197 || buf[196] === 0x47)) return 'AVCHD (MTS)';
  if (buf.readUInt32BE(0) === 0x000001ba) return 'MPEG';
  if (buf.toString('latin1', 0, 3) === 'FLV') return 'Flash';
  return undefined;
}

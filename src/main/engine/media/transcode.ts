// Video -> H.264/AAC MP4 (fluent-ffmpeg), posters, temp-file hygiene.
//
// Guarantees of transcodeToMp4:
// - the input is only ever read;
// - the output appears under its final name only once ffprobe verified it (h264 video, AAC audio
//   when the input had sound, duration within 1 s of the input, moov before mdat);
// - until then it lives in `<output>.part-<hex>.mp4` in the same folder, which is removed on any
//   failure or cancel (and by cleanupTempFiles after a crash);
// - ffmpeg runs at the lowest CPU priority;
// - every failure is a MediaError with a sentence for the operator.
//
// Rotation: ffmpeg auto-rotates by default (it turns the pixels and writes no rotation into the
// output), so a phone's portrait video comes out upright with its width and height swapped and
// no display matrix left to rotate it a second time. The scale filter runs after that rotation.
//
// Size: `settings.maxHeight` is the "p" of "1080p": it bounds the SHORTER side of the picture as
// displayed, so a portrait phone video (1080x1920) keeps its 1080 width instead of shrinking to
// 608x1080. Pictures are never scaled up; both sides are rounded down to even numbers (yuv420p).
import ffmpeg from 'fluent-ffmpeg';
import { promises as fsp } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type { MediaSettings } from '../../../shared/config';
import { abortedError, diskFullError, fsError, looksLikeDiskFull, MediaError, tail } from './errors';
import { ffPath, lowerPriority, resolveMediaTools, runTool, toolEnv, type MediaTools } from './ffmpeg';
import { isTempFile, mayWrite, mp4Marker, planOutputs, posterMarker, tempPathFor, withJpegComment } from './naming';
import { assessVideo, probeMedia, type MediaProbe, type VideoLimits } from './probe';

export type TranscodeSettings = Pick<MediaSettings, 'crf' | 'preset' | 'maxHeight'> & Partial<Pick<MediaSettings, 'ffmpegPath' | 'ffprobePath'>>;

export interface TranscodeOptions {
  signal?: AbortSignal;
  /** percent 0..100 (non-decreasing; 100 only once the output is verified and in place), ETA in seconds when known. */
  onProgress?: (percent: number, etaSeconds: number | undefined) => void;
  /** The input's probe when the caller already has it (saves one ffprobe run). */
  probe?: MediaProbe;
  /** Resolved tools (else resolved from the settings' paths). */
  tools?: MediaTools;
  limits?: VideoLimits;
  /** Stop ffmpeg when it reports nothing for this long. Default 10 minutes. */
  stallTimeoutMs?: number;
  /** Called once ffmpeg is spawned: its argv (without the binary) and pid. */
  onStart?: (args: readonly string[], pid: number | undefined) => void;
  /** Audio bitrate. Default '160k'. */
  audioBitrate?: string;
}

export interface TranscodeResult {
  outputPath: string;
  input: MediaProbe;
  output: MediaProbe;
  /** Wall time of the whole call. */
  elapsedMs: number;
  /** Where the time went (ms): probing the input, ffmpeg from spawn to exit, verifying + renaming. */
  timings: { probeMs: number; ffmpegMs: number; verifyMs: number };
  /** The ffmpeg argv that ran (temp output name included). */
  args: string[];
}

/** Temp files being written by this process right now: cleanupTempFiles leaves them alone. */
const activeTemps = new Set<string>();

/**
 * The scale filter: bound the shorter displayed side by `maxHeight`, keep the aspect ratio
 * (square pixels afterwards), never upscale, even sizes. Orientation-independent, so it is right
 * whatever rotation ffmpeg applied before it.
 */
export function scaleFilter(maxHeight: number): string {
  const k = `min(1\\,${maxHeight}/min(iw*sar\\,ih))`;
  return `scale=w='max(2\\,trunc(iw*sar*${k}/2)*2)':h='max(2\\,trunc(ih*${k}/2)*2)',setsar=1`;
}

/** The size scaleFilter will produce for a probed input (for callers and tests). */
export function expectedSize(p: Pick<MediaProbe, 'width' | 'height'>, maxHeight: number): { width: number; height: number } | undefined {
  if (!p.width || !p.height) return undefined;
  const k = Math.min(1, maxHeight / Math.min(p.width, p.height));
  return { width: Math.max(2, Math.trunc((p.width * k) / 2) * 2), height: Math.max(2, Math.trunc((p.height * k) / 2) * 2) };
}

export interface ArgsInput {
  input: string;
  output: string;
  settings: TranscodeSettings;
  probe: Pick<MediaProbe, 'videoStreamIndex' | 'audioStreamIndex' | 'hasAudio' | 'capturedAt' | 'interlaced'>;
  /** Written into the MP4's comment tag (ownership marker). */
  comment?: string;
  audioBitrate?: string;
}

/** The two halves fluent-ffmpeg is given (input options before `-i`, output options before the output). */
export function transcodeOptionLists(a: ArgsInput): { inputOptions: string[]; outputOptions: string[] } {
  const out: string[] = ['-map', `0:${a.probe.videoStreamIndex ?? 'v:0'}`];
  if (a.probe.hasAudio && a.probe.audioStreamIndex !== undefined) out.push('-map', `0:${a.probe.audioStreamIndex}`);
  out.push(
    '-c:v', 'libx264',
    '-preset', a.settings.preset,
    '-crf', String(a.settings.crf),
    '-pix_fmt', 'yuv420p',
    '-vf', (a.probe.interlaced ? 'yadif=mode=send_frame:parity=auto:deint=interlaced,' : '') + scaleFilter(a.settings.maxHeight),
  );
  if (a.probe.hasAudio) out.push('-c:a', 'aac', '-b:a', a.audioBitrate ?? '160k');
  else out.push('-an');
  out.push('-sn', '-dn', '-movflags', '+faststart', '-max_muxing_queue_size', '1024');
  // ffmpeg drops creation_time from the copied metadata on purpose: put the capture date back.
  if (a.probe.capturedAt !== undefined) out.push('-metadata', `creation_time=${new Date(a.probe.capturedAt).toISOString()}`);
  if (a.comment) out.push('-metadata', `comment=${a.comment}`);
  out.push('-f', 'mp4');
  return { inputOptions: ['-hide_banner', '-nostdin'], outputOptions: out };
}

/**
 * The full ffmpeg argv for a transcode, exactly as fluent-ffmpeg assembles it
 * (`<input options> -i <input> -y <output options> <output>`). The benchmark runs this directly.
 */
export function buildTranscodeArgs(a: ArgsInput): string[] {
  const { inputOptions, outputOptions } = transcodeOptionLists(a);
  return [...inputOptions, '-i', ffPath(a.input), '-y', ...outputOptions, ffPath(a.output)];
}

/**
 * Convert `input` to an H.264/AAC MP4 at `outputPath` (see the file header for the guarantees).
 * `outputPath` should come from planOutputs(); an existing file there that Triplicate did not
 * make from this input is never overwritten ('name-conflict').
 */
export async function transcodeToMp4(
  input: string,
  outputPath: string,
  settings: TranscodeSettings,
  opts: TranscodeOptions = {},
): Promise<TranscodeResult> {
  const t0 = Date.now();
  const { signal } = opts;
  if (signal?.aborted) throw abortedError();
  const tools = opts.tools ?? (await resolveMediaTools(settings));
  const tProbe = Date.now();
  const probe = opts.probe ?? (await probeMedia(input, { signal, tools }));
  const probeMs = Date.now() - tProbe;
  const problem = assessVideo(probe, opts.limits);
  if (problem) throw problem;

  const sourceName = basename(input);
  if (!(await mayWrite(outputPath, sourceName, 'mp4', tools))) {
    throw new MediaError(
      'name-conflict',
      `${basename(outputPath)} already exists and was not made by Triplicate from ${sourceName}, so it was left alone and no MP4 was made. Rename it to let Triplicate convert the video.`,
    );
  }
  if (signal?.aborted) throw abortedError();

  const tmp = tempPathFor(outputPath);
  activeTemps.add(tmp);
  const argsInput: ArgsInput = { input, output: tmp, settings, probe, comment: mp4Marker(sourceName), audioBitrate: opts.audioBitrate };
  const args = buildTranscodeArgs(argsInput);
  try {
    const ffmpegMs = await runFluent(input, tmp, argsInput, tools, probe, opts);
    if (signal?.aborted) throw abortedError();
    const tVerify = Date.now();
    const output = await verifyMp4(tmp, probe, { tools, signal, outputName: basename(outputPath) });
    try {
      await fsp.rename(tmp, outputPath);
    } catch (e) {
      throw fsError(e, outputPath, 'write');
    }
    activeTemps.delete(tmp);
    output.path = outputPath;
    opts.onProgress?.(100, 0);
    const now = Date.now();
    return { outputPath, input: probe, output, elapsedMs: now - t0, args, timings: { probeMs, ffmpegMs, verifyMs: now - tVerify } };
  } catch (e) {
    await removeQuietly(tmp);
    activeTemps.delete(tmp);
    throw e;
  }
}

function runFluent(
  input: string,
  tmp: string,
  argsInput: ArgsInput,
  tools: MediaTools,
  probe: MediaProbe,
  opts: TranscodeOptions,
): Promise<number> {
  const { signal, onProgress } = opts;
  const { inputOptions, outputOptions } = transcodeOptionLists(argsInput);
  const duration = probe.durationS ?? 0;
  const stallMs = opts.stallTimeoutMs ?? 10 * 60_000;

  return new Promise<number>((resolvePromise, reject) => {
    // fluent-ffmpeg keeps the binary path in a module-wide cache: set it right before each run.
    const cmd = ffmpeg({ stdoutLines: 200 })
      .setFfmpegPath(tools.ffmpeg.path)
      .input(ffPath(input))
      .inputOptions(...inputOptions)
      .output(ffPath(tmp))
      .outputOptions(...outputOptions);

    let started = 0;
    let lastActivity = Date.now();
    let lastPercent = -1;
    let stopReason: 'aborted' | 'stalled' | undefined;
    let settled = false;
    const stderrLines: string[] = [];

    const finish = (err?: unknown) => {
      if (settled) return;
      settled = true;
      clearInterval(watchdog);
      signal?.removeEventListener('abort', onAbort);
      if (err === undefined) resolvePromise(Date.now() - started);
      else reject(err);
    };
    const kill = () => {
      try {
        cmd.kill('SIGKILL');
      } catch {}
    };
    const onAbort = () => {
      stopReason = 'aborted';
      kill();
    };
    const watchdog = setInterval(() => {
      if (Date.now() - lastActivity > stallMs) {
        stopReason = 'stalled';
        kill();
      }
    }, Math.min(5000, Math.max(50, stallMs / 4)));

    signal?.addEventListener('abort', onAbort, { once: true });

    cmd.on('start', () => {
      started = Date.now();
      lastActivity = started;
      const pid = (cmd as unknown as { ffmpegProc?: { pid?: number } }).ffmpegProc?.pid;
      if (pid !== undefined) lowerPriority(pid);
      opts.onStart?.(buildTranscodeArgs(argsInput), pid);
      if (signal?.aborted) onAbort();
    });
    cmd.on('stderr', (line: string) => {
      lastActivity = Date.now();
      stderrLines.push(line);
      if (stderrLines.length > 400) stderrLines.splice(0, 200);
      if (!onProgress || !(duration > 0)) return;
      const m = /time=\s*(\d+):(\d{2}):(\d{2}(?:\.\d+)?)/.exec(line);
      if (!m) return;
      const t = Number(m[1]) * 3600 + Number(m[2]) * 60 + Number(m[3]);
      const percent = Math.min(99, Math.max(0, Math.floor((t / duration) * 1000) / 10));
      if (percent <= lastPercent) return;
      lastPercent = percent;
      const elapsed = (Date.now() - started) / 1000;
      const eta = percent > 0 ? Math.max(0, Math.round((elapsed * (100 - percent)) / percent)) : undefined;
      try {
        onProgress(percent, eta);
      } catch {}
    });
    cmd.on('error', (err: Error, _stdout: string | null, stderr: string | null) => {
      const text = stderr || stderrLines.join('\n');
      if (stopReason === 'aborted' || signal?.aborted) return finish(abortedError());
      if (stopReason === 'stalled') {
        return finish(
          new MediaError('stalled', `ffmpeg made no progress for ${Math.round(stallMs / 60000)} minutes on ${basename(input)} and was stopped. Triplicate tries again later.`, {
            detail: tail(text),
          }),
        );
      }
      void classifyFfmpegFailure(err, text, input, tmp).then(finish, finish);
    });
    cmd.on('end', () => finish());
    cmd.run();
  });
}

async function classifyFfmpegFailure(err: Error, stderr: string, input: string, output: string): Promise<MediaError> {
  const detail = `${err.message}\n${tail(stderr, 12)}`.trim();
  if (looksLikeDiskFull(err, stderr)) return diskFullError(dirname(output), detail, err);
  const errno = (err as NodeJS.ErrnoException).code;
  if (errno === 'ENOENT' || errno === 'EACCES') {
    return new MediaError('ffmpeg-missing', `ffmpeg could not be started (${errno}). Reinstall Triplicate or set media.ffmpegPath to an ffmpeg you installed.`, {
      detail,
      cause: err,
    });
  }
  try {
    await fsp.access(input);
  } catch (e) {
    return fsError(e, input, 'read');
  }
  const inputName = basename(input);
  if (/Invalid data found when processing input|moov atom not found|could not find codec parameters|Error while decoding|corrupt|Invalid NAL/i.test(stderr)) {
    return new MediaError('corrupt', `${inputName} could not be decoded: it is probably damaged. It is backed up as it is; no MP4 was made.`, { detail, cause: err });
  }
  if (/Permission denied/i.test(stderr)) {
    return new MediaError('io', `Triplicate is not allowed to write in ${dirname(output)}. Check the folder's permissions for the account Triplicate runs as.`, { detail, cause: err });
  }
  return new MediaError('ffmpeg-failed', `ffmpeg could not convert ${inputName}. Triplicate tries again later; the details show what ffmpeg said.`, { detail, cause: err });
}

/**
 * ffprobe the freshly written MP4: an h264 video stream, AAC audio when the input had sound,
 * duration within `toleranceS` (1 s) of the input, and `moov` before `mdat` (plays while
 * downloading). Throws 'truncated' (permanent) when the input was shorter than its header says,
 * else 'verify-failed'.
 */
export async function verifyMp4(
  path: string,
  input: Pick<MediaProbe, 'durationS' | 'hasAudio' | 'path'>,
  opts: { tools?: MediaTools; signal?: AbortSignal; toleranceS?: number; outputName?: string } = {},
): Promise<MediaProbe> {
  const name = opts.outputName ?? basename(path);
  const fail = (why: string, detail?: string) =>
    new MediaError('verify-failed', `The converted ${name} did not pass the check (${why}), so it was discarded. Triplicate tries again later.`, { detail });
  let out: MediaProbe;
  try {
    out = await probeMedia(path, { tools: opts.tools, signal: opts.signal });
  } catch (e) {
    if (e instanceof MediaError && (e.code === 'aborted' || e.code === 'ffmpeg-missing')) throw e;
    throw fail('it cannot be read back', e instanceof Error ? e.message : String(e));
  }
  if (!out.hasVideo || out.videoCodec !== 'h264') throw fail(`no H.264 video stream, found ${out.videoCodec ?? 'none'}`);
  if (input.hasAudio && out.audioCodec !== 'aac') throw fail(`no AAC audio stream, found ${out.audioCodec ?? 'none'}`);
  const tol = opts.toleranceS ?? 1;
  const inD = input.durationS ?? 0;
  const outD = out.durationS ?? 0;
  if (Math.abs(outD - inD) > tol) {
    if (outD < inD) {
      throw new MediaError(
        'truncated',
        `${basename(input.path)} seems cut short: it should last ${fmtS(inD)} but only ${fmtS(outD)} could be read. It is backed up as it is; no MP4 was made.`,
        { detail: `input duration ${inD} s, output duration ${outD} s` },
      );
    }
    throw fail(`it lasts ${fmtS(outD)} instead of ${fmtS(inD)}`);
  }
  const order = await topLevelAtoms(path, 16);
  const moov = order.indexOf('moov');
  const mdat = order.indexOf('mdat');
  if (moov < 0 || (mdat >= 0 && mdat < moov)) throw fail('the index is not at the start of the file', `top-level atoms: ${order.join(',')}`);
  return out;
}

function fmtS(s: number): string {
  return `${Math.round(s * 10) / 10} s`;
}

/** Names of the first `max` top-level boxes of an ISO-BMFF file. */
export async function topLevelAtoms(path: string, max = 16): Promise<string[]> {
  const names: string[] = [];
  const fh = await fsp.open(path, 'r');
  try {
    const { size } = await fh.stat();
    const head = Buffer.alloc(16);
    let pos = 0;
    for (let i = 0; i < max && pos + 8 <= size; i++) {
      const { bytesRead } = await fh.read(head, 0, 16, pos);
      if (bytesRead < 8) break;
      let len = head.readUInt32BE(0);
      const type = head.toString('latin1', 4, 8);
      names.push(type);
      if (len === 1 && bytesRead >= 16) len = Number(head.readBigUInt64BE(8));
      else if (len === 0) break; // to end of file
      if (len < 8) break;
      pos += len;
    }
  } finally {
    await fh.close();
  }
  return names;
}

// ---------------------------------------------------------------------------------------------
// Posters

export interface PosterOptions {
  signal?: AbortSignal;
  probe?: MediaProbe;
  tools?: MediaTools;
  /** Tool paths (when `tools` is not given). */
  settings?: Partial<Pick<MediaSettings, 'ffmpegPath' | 'ffprobePath' | 'maxHeight'>>;
  /** Source name for the ownership marker. Default basename(input). */
  sourceName?: string;
}

/**
 * Grab one frame from a video (at 1 s; the first frame for clips shorter than 1.5 s) as a JPEG.
 * Upright (auto-rotated), shorter side at most `settings.maxHeight` (1080 default).
 */
export async function grabFrame(input: string, opts: PosterOptions = {}): Promise<Buffer> {
  const tools = opts.tools ?? (await resolveMediaTools(opts.settings));
  const probe = opts.probe ?? (await probeMedia(input, { signal: opts.signal, tools }));
  const problem = assessVideo(probe);
  if (problem && problem.code !== 'too-large') throw problem;
  const maxHeight = opts.settings?.maxHeight ?? 1080;
  const at = (probe.durationS ?? 0) >= 1.5 ? 1 : 0;
  const run = async (seek: number) =>
    runTool(
      tools.ffmpeg.path,
      [
        '-hide_banner', '-nostdin', '-v', 'error',
        ...(seek > 0 ? ['-ss', String(seek)] : []),
        '-i', ffPath(input),
        '-map', `0:${probe.videoStreamIndex ?? 'v:0'}`,
        '-frames:v', '1',
        '-vf', (probe.interlaced ? 'yadif=mode=send_frame:parity=auto:deint=interlaced,' : '') + scaleFilter(maxHeight),
        '-q:v', '3',
        '-f', 'mjpeg', 'pipe:1',
      ],
      { signal: opts.signal, lowPriority: true, timeoutMs: 5 * 60_000, maxStdoutBytes: 32 * 1024 * 1024, env: toolEnv(tools.ffmpeg) },
    );
  let res = await run(at);
  if ((res.code !== 0 || res.stdout.length === 0) && at > 0) res = await run(0);
  const jpeg = res.stdout;
  if (res.code !== 0 || jpeg.length < 4 || jpeg[0] !== 0xff || jpeg[1] !== 0xd8) {
    throw new MediaError('corrupt', `No picture could be taken from ${basename(input)}: it is probably damaged. It is backed up as it is.`, {
      detail: tail(res.stderr) || `ffmpeg exited with ${res.code ?? res.signal}`,
    });
  }
  return jpeg;
}

/**
 * Write a JPEG poster for a video at `posterPath` (temp file + rename; never overwrites a file
 * Triplicate did not make for this video: 'name-conflict').
 */
export async function makePoster(input: string, posterPath: string, opts: PosterOptions = {}): Promise<{ posterPath: string; bytes: number }> {
  if (opts.signal?.aborted) throw abortedError('Making the poster');
  const sourceName = opts.sourceName ?? basename(input);
  if (!(await mayWrite(posterPath, sourceName, 'poster'))) {
    throw new MediaError(
      'name-conflict',
      `${basename(posterPath)} already exists and was not made by Triplicate for ${sourceName}, so it was left alone. Rename it to let Triplicate make the poster.`,
    );
  }
  const jpeg = withJpegComment(await grabFrame(input, opts), posterMarker(sourceName));
  if (opts.signal?.aborted) throw abortedError('Making the poster');
  await writeAtomically(posterPath, jpeg);
  return { posterPath, bytes: jpeg.length };
}

/** Write `data` to a temp name next to `path`, then rename. Disk full and other errors become MediaErrors. */
export async function writeAtomically(path: string, data: Buffer, mode?: number): Promise<void> {
  const tmp = tempPathFor(path);
  activeTemps.add(tmp);
  try {
    await fsp.writeFile(tmp, data, { flag: 'wx', mode });
    await fsp.rename(tmp, path);
  } catch (e) {
    await removeQuietly(tmp);
    throw fsError(e, path, 'write');
  } finally {
    activeTemps.delete(tmp);
  }
}

// ---------------------------------------------------------------------------------------------
// Temp files

async function removeQuietly(p: string): Promise<void> {
  try {
    await fsp.rm(p, { force: true });
  } catch {}
}

/**
 * Remove orphan temp files (`*.part-<hex>.mp4|jpg|webp`) left by a crash, in `dir` (and below it
 * up to `maxDepth` levels when `recursive`). Files this process is writing right now are kept.
 * Returns the removed paths. Missing directories are fine.
 */
export async function cleanupTempFiles(dir: string, opts: { recursive?: boolean; maxDepth?: number } = {}): Promise<string[]> {
  const removed: string[] = [];
  const maxDepth = opts.recursive ? (opts.maxDepth ?? 32) : 0;
  const walk = async (d: string, depth: number): Promise<void> => {
    let entries;
    try {
      entries = await fsp.readdir(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const ent of entries) {
      const p = join(d, ent.name);
      if (ent.isDirectory()) {
        if (depth < maxDepth) await walk(p, depth + 1);
      } else if (ent.isFile() && isTempFile(ent.name) && !activeTemps.has(p)) {
        try {
          await fsp.unlink(p);
          removed.push(p);
        } catch {}
      }
    }
  };
  await walk(dir, 0);
  return removed;
}

// ---------------------------------------------------------------------------------------------
// One call for the queue

export interface ConvertResult extends TranscodeResult {
  /** Absent when the poster could not be made (the MP4 is fine; see posterError). */
  posterPath?: string;
  posterError?: MediaError;
}

/**
 * The whole media stage for one video: probe, check, pick names (planOutputs), transcode, poster.
 * Progress covers the transcode (the poster takes a fraction of a second).
 */
export async function convertVideo(
  input: string,
  settings: TranscodeSettings,
  opts: TranscodeOptions = {},
): Promise<ConvertResult> {
  const tools = opts.tools ?? (await resolveMediaTools(settings));
  const probe = opts.probe ?? (await probeMedia(input, { signal: opts.signal, tools }));
  const problem = assessVideo(probe, opts.limits);
  if (problem) throw problem;
  const plan = await planOutputs(input, { tools });
  const onProgress = opts.onProgress;
  const res = await transcodeToMp4(input, plan.mp4Path, settings, {
    ...opts,
    tools,
    probe,
    onProgress: onProgress ? (p, eta) => (p < 100 ? onProgress(p, eta) : undefined) : undefined,
  });
  // A poster is a nicety: its failure does not undo a verified MP4 (that would redo the transcode).
  try {
    await makePoster(input, plan.posterPath, { signal: opts.signal, probe, tools, settings });
  } catch (e) {
    if (e instanceof MediaError && e.code === 'aborted') throw e;
    onProgress?.(100, 0);
    return { ...res, posterError: e instanceof MediaError ? e : fsError(e, plan.posterPath, 'write') };
  }
  onProgress?.(100, 0);
  return { ...res, posterPath: plan.posterPath };
}

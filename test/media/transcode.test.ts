// The media pipeline against the real bundled ffmpeg/ffprobe, on tiny clips made here with lavfi.
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  assessVideo,
  buildTranscodeArgs,
  cleanupTempFiles,
  convertVideo,
  expectedSize,
  isTempFile,
  makePoster,
  MediaError,
  planOutputs,
  probeMedia,
  resolveMediaTools,
  toMediaInfo,
  transcodeToMp4,
  unpackedAsarPath,
  verifyMp4,
  type MediaTools,
  type TranscodeSettings,
} from '../../src/main/engine/media';
import { boxes, ff, FFMPEG, ffprobeJson, makeMov, sha256 } from './fixtures';

const FAST: TranscodeSettings = { crf: 28, preset: 'ultrafast', maxHeight: 1080 };

let dir: string;
let tools: MediaTools;
let clips: Record<'mov' | 'rot' | 'silent' | 'audio' | 'long' | 'short' | 'huge' | 'faststart4', string>;

async function rejection(p: Promise<unknown>): Promise<MediaError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(MediaError);
    return e as MediaError;
  }
  throw new Error('expected a rejection');
}

function leftovers(d: string): string[] {
  return readdirSync(d).filter((n) => isTempFile(n) || n.includes('.part-'));
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tri-media-'));
  tools = await resolveMediaTools({});
  const p = (n: string) => join(dir, n);
  const mov = await makeMov(p('clip.mov'), { creationTime: '2021-05-06T07:08:09.000000Z' });
  const [, silent, , long, short, , faststart4] = await Promise.all([
    ff('-i', mov, '-c', 'copy', '-metadata:s:v:0', 'rotate=90', p('rot.mov')),
    makeMov(p('silent.mov'), { audio: false }),
    ff('-f', 'lavfi', '-i', 'sine=frequency=440', '-t', '2', '-c:a', 'aac', p('audio.mov')),
    makeMov(p('long.mov'), { seconds: 20, size: '640x480', src: 'testsrc2' }),
    makeMov(p('short.mov'), { seconds: 0.4 }),
    ff('-f', 'lavfi', '-i', 'color=c=blue:size=9000x64:rate=5', '-t', '1', '-c:v', 'mjpeg', p('huge.mkv')),
    makeMov(p('fs4.mov'), { seconds: 4, faststart: true }),
  ]);
  clips = { mov, rot: p('rot.mov'), silent, audio: p('audio.mov'), long, short, huge: p('huge.mkv'), faststart4 };
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('ffmpeg binaries', () => {
  it('finds the bundled ffmpeg and ffprobe and checks they run', async () => {
    expect(tools.ffmpeg.source).toBe('bundled');
    expect(tools.ffprobe.source).toBe('bundled');
    expect(tools.ffmpeg.path).toBe(FFMPEG);
    expect(tools.ffmpeg.version).toMatch(/\S/);
  });

  it('says clearly when the configured ffmpeg is missing, and a transcode fails the same way', async () => {
    const missing = join(dir, 'nope', 'ffmpeg');
    const e = await rejection(resolveMediaTools({ ffmpegPath: missing }));
    expect(e.code).toBe('ffmpeg-missing');
    expect(e.permanent).toBe(false);
    expect(e.reason).toContain(`ffmpeg was not found at ${missing}.`);
    expect(e.reason).toContain('media.ffmpegPath');
    const out = join(dir, 'never.mp4');
    const e2 = await rejection(transcodeToMp4(clips.mov, out, { ...FAST, ffmpegPath: missing }));
    expect(e2.code).toBe('ffmpeg-missing');
    expect(existsSync(out)).toBe(false);
  });

  it('says clearly when ffmpeg is not executable or is not ffmpeg', async () => {
    const noexec = join(dir, 'ffmpeg-noexec');
    copyFileSync('/bin/sh', noexec);
    chmodSync(noexec, 0o644);
    const e = await rejection(resolveMediaTools({ ffmpegPath: noexec }));
    expect(e.code).toBe('ffmpeg-missing');
    expect(e.reason).toMatch(/cannot be run: permission denied/);

    const fake = join(dir, 'ffmpeg-fake');
    writeFileSync(fake, '#!/bin/sh\necho hello\n', { mode: 0o755 });
    const e2 = await rejection(resolveMediaTools({ ffprobePath: fake }));
    expect(e2.reason).toContain(`${fake} did not answer like ffprobe does`);
  });

  it('maps packaged-app paths into app.asar.unpacked', () => {
    expect(unpackedAsarPath('/opt/Tri/resources/app.asar/node_modules/@ffmpeg-installer/linux-x64/ffmpeg')).toBe(
      '/opt/Tri/resources/app.asar.unpacked/node_modules/@ffmpeg-installer/linux-x64/ffmpeg',
    );
    expect(unpackedAsarPath('C:\\T\\resources\\app.asar\\node_modules\\x\\ffmpeg.exe')).toBe('C:\\T\\resources\\app.asar.unpacked\\node_modules\\x\\ffmpeg.exe');
    const already = '/opt/Tri/resources/app.asar.unpacked/ffmpeg';
    expect(unpackedAsarPath(already)).toBe(already);
    expect(unpackedAsarPath('/home/me/app.asarx/ffmpeg')).toBe('/home/me/app.asarx/ffmpeg');
  });
});

describe('probe', () => {
  it('reads duration, size, codecs and capture date', async () => {
    const p = await probeMedia(clips.mov, { tools });
    expect(p.kind).toBe('video');
    expect(p.videoCodec).toBe('mjpeg');
    expect(p.audioCodec).toBe('pcm_s16le');
    expect([p.width, p.height, p.rotation]).toEqual([320, 240, 0]);
    expect(p.durationS).toBeCloseTo(2, 1);
    expect(assessVideo(p)).toBeUndefined();
    expect(toMediaInfo(p)).toEqual({
      duration_s: p.durationS,
      width: 320,
      height: 240,
      video_codec: 'mjpeg',
      audio_codec: 'pcm_s16le',
      captured_at: Date.parse('2021-05-06T07:08:09Z'),
    });
  });

  it('reports displayed size after rotation', async () => {
    const p = await probeMedia(clips.rot, { tools });
    expect([90, 270]).toContain(p.rotation);
    expect([p.codedWidth, p.codedHeight]).toEqual([320, 240]);
    expect([p.width, p.height]).toEqual([240, 320]);
  });

  it('classifies audio-only, empty, not-a-video, damaged and huge files as permanent skips', async () => {
    const audio = await probeMedia(clips.audio, { tools });
    expect(audio.kind).toBe('audio');
    const a = assessVideo(audio);
    expect(a?.code).toBe('audio-only');
    expect(a?.permanent).toBe(true);
    expect(a?.reason).toContain('audio.mov holds only sound');

    const empty = join(dir, 'empty.mov');
    writeFileSync(empty, '');
    const e = await rejection(probeMedia(empty, { tools }));
    expect([e.code, e.permanent]).toEqual(['empty', true]);
    expect(e.reason).toContain('empty.mov is empty');

    const text = join(dir, 'notes.mov');
    writeFileSync(text, 'This is a shopping list, not a video.\n'.repeat(20));
    const t = await rejection(probeMedia(text, { tools }));
    expect([t.code, t.permanent]).toEqual(['not-media', true]);
    expect(t.reason).toContain('notes.mov has a video file name but does not contain a video');
    expect(t.detail).toBeTruthy();

    const still = join(dir, 'still.mov');
    await ff('-f', 'lavfi', '-i', 'testsrc=size=160x120', '-frames:v', '1', '-f', 'image2', '-c:v', 'mjpeg', still);
    const s = assessVideo(await probeMedia(still, { tools }));
    expect(s?.code).toBe('not-video');

    // moov atom at the end: cutting the file in half loses the index.
    const half = join(dir, 'half.mov');
    copyFileSync(clips.mov, half);
    truncateSync(half, Math.floor(statSync(half).size / 2));
    const h = await rejection(probeMedia(half, { tools }));
    expect([h.code, h.permanent]).toEqual(['corrupt', true]);
    expect(h.reason).toMatch(/half\.mov looks like a QuickTime\/MP4 video but cannot be read/);

    const huge = assessVideo(await probeMedia(clips.huge, { tools }));
    expect(huge?.code).toBe('too-large');
    expect(huge?.permanent).toBe(true);
    expect(huge?.reason).toContain('9000x64');
  });

  it('treats a vanished file as transient', async () => {
    const e = await rejection(probeMedia(join(dir, 'gone.mov'), { tools }));
    expect([e.code, e.permanent]).toEqual(['source-missing', false]);
  });
});

describe('transcode', () => {
  it('turns an MJPEG/PCM MOV into a faststart H.264/AAC MP4 with a JPEG poster, input untouched', async () => {
    const d = join(dir, 'basic');
    mkdirSync(d);
    const input = join(d, 'Holiday.MOV');
    copyFileSync(clips.mov, input);
    const before = sha256(input);
    const percents: number[] = [];
    const res = await convertVideo(input, FAST, { tools, onProgress: (p) => percents.push(p) });

    expect(res.outputPath).toBe(join(d, 'Holiday.mp4'));
    expect(res.posterPath).toBe(join(d, 'Holiday.poster.jpg'));
    const j = ffprobeJson(res.outputPath);
    expect(j.streams.map((s) => `${s.codec_type}:${s.codec_name}`).sort()).toEqual(['audio:aac', 'video:h264']);
    const v = j.streams.find((s) => s.codec_type === 'video');
    expect([v?.width, v?.height]).toEqual([320, 240]);
    expect(Math.abs(Number(j.format.duration) - 2)).toBeLessThan(0.2);
    expect(j.format.tags?.comment).toBe('Converted by Triplicate from Holiday.MOV');
    expect(j.format.tags?.creation_time).toMatch(/^2021-05-06T07:08:09/);
    const order = boxes(res.outputPath);
    expect(order.indexOf('moov')).toBeGreaterThanOrEqual(0);
    expect(order.indexOf('moov')).toBeLessThan(order.indexOf('mdat'));

    const jpeg = readFileSync(res.posterPath!);
    expect([jpeg[0], jpeg[1], jpeg[jpeg.length - 2], jpeg[jpeg.length - 1]]).toEqual([0xff, 0xd8, 0xff, 0xd9]);
    const meta = await sharp(jpeg).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['jpeg', 320, 240]);

    expect(sha256(input)).toBe(before);
    expect(leftovers(d)).toEqual([]);
    expect(percents.at(-1)).toBe(100);

    // Running it again reuses our own names (no clip.MOV.mp4 appears) and still verifies.
    const again = await convertVideo(input, FAST, { tools });
    expect(again.outputPath).toBe(res.outputPath);
    expect(readdirSync(d).sort()).toEqual(['Holiday.MOV', 'Holiday.mp4', 'Holiday.poster.jpg']);
  });

  it('turns rotated video upright once: dimensions swapped, no rotation left in the output', async () => {
    const d = join(dir, 'rot');
    mkdirSync(d);
    const input = join(d, 'portrait.mov');
    copyFileSync(clips.rot, input);
    const res = await convertVideo(input, FAST, { tools });
    const v = ffprobeJson(res.outputPath).streams.find((s) => s.codec_type === 'video');
    expect([v?.width, v?.height]).toEqual([240, 320]);
    const rot = v?.side_data_list?.find((s) => typeof s.rotation === 'number')?.rotation ?? Number(v?.tags?.rotate ?? 0);
    expect(Math.abs(rot) % 360).toBe(0);
    const meta = await sharp(res.posterPath).metadata();
    expect([meta.width, meta.height]).toEqual([240, 320]);
  });

  it('scales down to maxHeight on the shorter side, even sizes, never up', async () => {
    const d = join(dir, 'scale');
    mkdirSync(d);
    const out = join(d, 'small.mp4');
    await transcodeToMp4(clips.rot, out, { ...FAST, maxHeight: 145 }, { tools });
    const v = ffprobeJson(out).streams.find((s) => s.codec_type === 'video');
    // displayed 240x320 -> shorter side 145 -> 145x193.3 -> even: 144x192
    expect([v?.width, v?.height]).toEqual([144, 192]);
    expect(expectedSize(await probeMedia(clips.rot, { tools }), 145)).toEqual({ width: 144, height: 192 });
    // never upscaled: the 320x240 clip stays 320x240 under the default 1080
    expect(expectedSize(await probeMedia(clips.mov, { tools }), 1080)).toEqual({ width: 320, height: 240 });
  });

  it('makes a video-only MP4 from a silent video', async () => {
    const out = join(dir, 'silent.mp4');
    const res = await transcodeToMp4(clips.silent, out, FAST, { tools });
    expect(res.output.hasAudio).toBe(false);
    expect(ffprobeJson(out).streams.map((s) => `${s.codec_type}:${s.codec_name}`)).toEqual(['video:h264']);
  });

  it('skips audio-only and non-video inputs with a permanent reason and writes nothing', async () => {
    const d = join(dir, 'skips');
    mkdirSync(d);
    const audio = join(d, 'voice.mov');
    copyFileSync(clips.audio, audio);
    const a = await rejection(transcodeToMp4(audio, join(d, 'voice.mp4'), FAST, { tools }));
    expect([a.code, a.permanent]).toEqual(['audio-only', true]);

    const text = join(d, 'readme.mov');
    writeFileSync(text, 'hello\n');
    const t = await rejection(convertVideo(text, FAST, { tools }));
    expect([t.code, t.permanent]).toEqual(['not-media', true]);

    const zero = join(d, 'zero.mov');
    writeFileSync(zero, '');
    const z = await rejection(convertVideo(zero, FAST, { tools }));
    expect([z.code, z.permanent]).toEqual(['empty', true]);

    expect(readdirSync(d).sort()).toEqual(['readme.mov', 'voice.mov', 'zero.mov']);
  });

  it('never crashes on a truncated file: a cut faststart MOV ends in a clear permanent skip', async () => {
    const d = join(dir, 'trunc');
    mkdirSync(d);
    const input = join(d, 'cut.mov');
    copyFileSync(clips.faststart4, input);
    truncateSync(input, Math.floor(statSync(input).size / 2));
    const e = await rejection(convertVideo(input, FAST, { tools }));
    expect([e.code, e.permanent]).toEqual(['truncated', true]);
    expect(e.reason).toMatch(/cut\.mov seems cut short: it should last 4 s but only [\d.]+ s could be read/);
    expect(readdirSync(d)).toEqual(['cut.mov']);
  });

  it('reports increasing progress with an ETA, runs ffmpeg at low priority with the documented argv', async () => {
    const out = join(dir, 'long.mp4');
    const seen: { p: number; eta?: number }[] = [];
    let started: { args: readonly string[]; nice?: number } | undefined;
    const res = await transcodeToMp4(clips.long, out, { ...FAST, preset: 'medium' }, {
      tools,
      onProgress: (p, eta) => seen.push({ p, eta }),
      onStart: (args, pid) => {
        let nice: number | undefined;
        if (pid && process.platform === 'linux') {
          const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
          nice = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
        }
        started = { args, nice };
      },
    });
    const ps = seen.map((s) => s.p);
    expect(ps.length).toBeGreaterThanOrEqual(3);
    for (let i = 1; i < ps.length; i++) expect(ps[i]!).toBeGreaterThan(ps[i - 1]!);
    expect(ps.at(-1)).toBe(100);
    expect(ps.filter((p) => p > 0 && p < 100).length).toBeGreaterThanOrEqual(2);
    expect(seen.some((s) => s.p < 100 && typeof s.eta === 'number' && s.eta > 0)).toBe(true);

    expect(started?.args).toEqual(res.args);
    const tmpOut = res.args.at(-1)!;
    expect(res.args).toEqual(
      buildTranscodeArgs({ input: clips.long, output: tmpOut.slice('file:'.length), settings: { ...FAST, preset: 'medium' }, probe: res.input, comment: `Converted by Triplicate from long.mov` }),
    );
    if (process.platform === 'linux') expect(started?.nice).toBe(19);
  });

  it('cancels mid-transcode: ffmpeg killed, no temp file, no output', async () => {
    const d = join(dir, 'abort');
    mkdirSync(d);
    const out = join(d, 'long.mp4');
    const ac = new AbortController();
    let pid: number | undefined;
    let maxPercent = 0;
    const p = transcodeToMp4(clips.long, out, { ...FAST, preset: 'medium' }, {
      tools,
      signal: ac.signal,
      onStart: (_a, id) => (pid = id),
      onProgress: (pc) => {
        maxPercent = Math.max(maxPercent, pc);
        ac.abort();
      },
    });
    const e = await rejection(p);
    expect([e.code, e.permanent]).toEqual(['aborted', false]);
    expect(maxPercent).toBeGreaterThan(0);
    expect(maxPercent).toBeLessThan(100);
    expect(readdirSync(d)).toEqual([]);
    expect(pid).toBeTypeOf('number');
    expect(() => process.kill(pid!, 0)).toThrow();
  });

  it('an already aborted signal starts nothing', async () => {
    const e = await rejection(transcodeToMp4(clips.mov, join(dir, 'x.mp4'), FAST, { tools, signal: AbortSignal.abort() }));
    expect(e.code).toBe('aborted');
  });

  it('cleanupTempFiles removes orphan .part files only', async () => {
    const d = join(dir, 'orphans');
    mkdirSync(join(d, 'sub'), { recursive: true });
    const orphans = [join(d, 'a.mp4.part-0123abcd.mp4'), join(d, 'a.poster.jpg.part-deadbeef.jpg'), join(d, 'sub', 'b.mp4.part-cafef00d.mp4')];
    const keep = [join(d, 'a.mp4'), join(d, 'notes.part-1.mp4'), join(d, 'a.part-0123abcd.mov'), join(d, 'sub', 'b.mov')];
    for (const f of [...orphans, ...keep]) writeFileSync(f, 'x');
    expect(await cleanupTempFiles(d)).toEqual(orphans.slice(0, 2).sort());
    expect(existsSync(orphans[2]!)).toBe(true);
    expect(await cleanupTempFiles(d, { recursive: true })).toEqual([orphans[2]]);
    for (const f of keep) expect(existsSync(f)).toBe(true);
    expect(await cleanupTempFiles(join(dir, 'does-not-exist'))).toEqual([]);
  });

  it('a crash mid-transcode leaves only a .part file, which cleanup removes; the job then completes', async () => {
    const d = join(dir, 'crash');
    mkdirSync(d);
    const input = join(d, 'long.mov');
    copyFileSync(clips.long, input);
    // What a killed engine leaves: ffmpeg killed while writing the temp output.
    const part = join(d, 'long.mp4.part-00c0ffee.mp4');
    const args = buildTranscodeArgs({ input, output: part, settings: { ...FAST, preset: 'medium' }, probe: await probeMedia(input, { tools }) });
    const child = spawn(FFMPEG, args, { stdio: 'ignore' });
    for (let i = 0; i < 200 && !(existsSync(part) && statSync(part).size > 0); i++) await new Promise((r) => setTimeout(r, 25));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    expect(readdirSync(d).sort()).toEqual(['long.mov', 'long.mp4.part-00c0ffee.mp4']);
    expect(await cleanupTempFiles(d)).toEqual([part]);
    const res = await convertVideo(input, FAST, { tools });
    expect(res.outputPath).toBe(join(d, 'long.mp4'));
    expect(readdirSync(d).sort()).toEqual(['long.mov', 'long.mp4', 'long.poster.jpg']);
  });

  it('rejects an MP4 whose index is at the end (verification can fail)', async () => {
    const out = join(dir, 'nofaststart.mp4');
    await ff('-i', clips.mov, '-c:v', 'libx264', '-preset', 'ultrafast', '-c:a', 'aac', out);
    const input = await probeMedia(clips.mov, { tools });
    const e = await rejection(verifyMp4(out, input, { tools }));
    expect(e.code).toBe('verify-failed');
    expect(e.reason).toContain('index is not at the start');
    // and a duration mismatch beyond 1 s is caught too
    const e2 = await rejection(verifyMp4(join(dir, 'long.mp4'), input, { tools }));
    expect(e2.code).toBe('verify-failed');
  });

  it('converts an interlaced camcorder-style .MTS (MPEG-TS): probed without crashing, deinterlaced', async () => {
    const d = join(dir, 'mts');
    mkdirSync(d);
    const input = join(d, '00001.MTS');
    await ff(
      '-f', 'lavfi', '-i', 'testsrc=size=320x240:rate=50', '-f', 'lavfi', '-i', 'sine=frequency=440', '-t', '2',
      '-vf', 'tinterlace=4', '-flags', '+ilme+ildct', '-top', '1', '-c:v', 'mpeg2video', '-c:a', 'mp2',
      '-metadata', 'service_name=Camcorder', '-f', 'mpegts', input,
    );
    const p = await probeMedia(input, { tools });
    expect([p.kind, p.videoCodec, p.interlaced]).toEqual(['video', 'mpeg2video', true]);
    const res = await convertVideo(input, FAST, { tools, probe: p });
    expect(res.args.join(' ')).toContain('yadif=');
    const j = ffprobeJson(res.outputPath);
    expect(j.streams.map((s) => `${s.codec_type}:${s.codec_name}`).sort()).toEqual(['audio:aac', 'video:h264']);
    expect(res.posterPath).toBe(join(d, '00001.poster.jpg'));

    // The same ffprobe configured by path (no workaround up front) crashes on MPEG-TS
    // on Linux; the probe retries with the workaround instead of calling the file corrupt.
    const link = join(d, 'my-ffprobe');
    symlinkSync(tools.ffprobe.path, link);
    const viaConfig = await resolveMediaTools({ ffprobePath: link });
    expect(viaConfig.ffprobe.source).toBe('config');
    expect((await probeMedia(input, { tools: viaConfig })).interlaced).toBe(true);
  });

  it('poster of a clip shorter than a second is its first frame', async () => {
    const poster = join(dir, 'short.poster.jpg');
    await makePoster(clips.short, poster, { tools });
    const meta = await sharp(poster).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['jpeg', 320, 240]);
  });
});

describe('naming rule', () => {
  it('never overwrites an operator file: falls back to <name>.<ext>.mp4, then refuses', async () => {
    const d = join(dir, 'names');
    mkdirSync(d);
    const mov = join(d, 'clip.mov');
    copyFileSync(clips.mov, mov);
    expect(await planOutputs(mov, { tools })).toEqual({ mp4Path: join(d, 'clip.mp4'), posterPath: join(d, 'clip.poster.jpg') });

    // The operator's own clip.mp4 (a real MP4, not ours).
    await ff('-i', clips.mov, '-t', '1', '-c:v', 'libx264', '-preset', 'ultrafast', '-an', join(d, 'clip.mp4'));
    const theirs = sha256(join(d, 'clip.mp4'));
    expect(await planOutputs(mov, { tools })).toEqual({ mp4Path: join(d, 'clip.mov.mp4'), posterPath: join(d, 'clip.mov.poster.jpg') });
    const res = await convertVideo(mov, FAST, { tools });
    expect(res.outputPath).toBe(join(d, 'clip.mov.mp4'));
    expect(sha256(join(d, 'clip.mp4'))).toBe(theirs);

    // Asking transcodeToMp4 for their file directly is refused too.
    const e = await rejection(transcodeToMp4(mov, join(d, 'clip.mp4'), FAST, { tools }));
    expect([e.code, e.permanent]).toEqual(['name-conflict', true]);
    expect(sha256(join(d, 'clip.mp4'))).toBe(theirs);

    // Our output from clip.avi does not belong to clip.mov either.
    const avi = join(d, 'other.avi');
    copyFileSync(clips.mov, avi);
    const fromAvi = await convertVideo(avi, FAST, { tools });
    expect(basename(fromAvi.outputPath)).toBe('other.mp4');
    const otherMov = join(d, 'other.mov');
    copyFileSync(clips.mov, otherMov);
    expect((await planOutputs(otherMov, { tools })).mp4Path).toBe(join(d, 'other.mov.mp4'));

    // Both names taken by operator files: refuse with a reason.
    writeFileSync(join(d, 'clip.mov.mp4'), 'their own file');
    const c = await rejection(planOutputs(mov, { tools }));
    expect([c.code, c.permanent]).toEqual(['name-conflict', true]);
    expect(c.reason).toContain('never overwrites your files');

    // An operator's poster-named file pushes to the second name as well.
    const d2 = join(dir, 'names2');
    mkdirSync(d2);
    copyFileSync(clips.mov, join(d2, 'v.mov'));
    writeFileSync(join(d2, 'v.poster.jpg'), 'not ours');
    expect((await planOutputs(join(d2, 'v.mov'), { tools })).mp4Path).toBe(join(d2, 'v.mov.mp4'));
  });
});

describe('disk full', () => {
  const mnt = join(tmpdir(), `tri-media-full-${process.pid}`);
  let mounted = false;
  beforeAll(() => {
    mkdirSync(mnt, { recursive: true });
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mnt], { stdio: 'ignore' });
      mounted = true;
    } catch {
      mounted = false;
    }
  });
  afterAll(() => {
    if (mounted) execFileSync('umount', [mnt]);
    rmSync(mnt, { recursive: true, force: true });
  });

  it('ends in a clear transient error, temp removed, input untouched (needs a 64 KiB tmpfs: root only)', async (ctx) => {
    if (!mounted) ctx.skip();
    const before = sha256(clips.long);
    const e = await rejection(transcodeToMp4(clips.long, join(mnt, 'long.mp4'), FAST, { tools }));
    expect([e.code, e.permanent]).toEqual(['disk-full', false]);
    expect(e.reason).toContain(`The disk holding ${mnt} is full`);
    expect(readdirSync(mnt)).toEqual([]);
    expect(sha256(clips.long)).toBe(before);

    // A poster when the disk is already full.
    try {
      writeFileSync(join(mnt, 'filler'), Buffer.alloc(256 * 1024));
    } catch {}
    const p = await rejection(makePoster(clips.mov, join(mnt, 'p.poster.jpg'), { tools }));
    expect([p.code, p.permanent]).toEqual(['disk-full', false]);
    expect(readdirSync(mnt)).toEqual(['filler']);
  });
});

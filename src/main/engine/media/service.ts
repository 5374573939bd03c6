// The media service: the engine side of the media layer (issue 4).
//
// - A file hook: every new or changed picture or video is looked at (ffprobe / sharp) and what it
//   holds goes into the `media` table; a video whose extension needs converting (needsTranscode)
//   gets a durable job in lane 'transcode' (or is skipped at once with a reason when ffprobe says
//   it is not a video we can convert).
// - Workers (`media.concurrency`, default 1; the job-lane runner, jobs/runner.ts) claim those
//   jobs with a lease, a heartbeat and a fence, write `<name>.mp4` + `<name>.poster.jpg` next to
//   the original (temp name, then rename), and ingest both as catalog files derived from the
//   original: they are synced like any other file.
//   A permanent problem skips the video with its reason; a passing one backs off (30 s, 2 min,
//   10 min), then the conversion is marked failed. Progress goes out as 'transcode' events and in
//   SyncStatus.transcoding. A conversion can be cancelled (it is then skipped).
// - ffmpeg missing: one operator event, the engine runs on, videos are backed up as they are and
//   their jobs wait until the settings change or the engine restarts.
// - Restart: jobs come back through the lease, orphan temp files are removed before any worker
//   starts, a conversion is marked done only after its MP4 was verified, renamed and cataloged.
// - The root setting replaceOriginalAfterTranscode: the local original is deleted once its MP4 is
//   synced and verified on every enabled target, and the original itself too (its remote copies stay).
// - The uploader's rule for a queued video that is gone (`whenGone`), the thumbnail stream route,
//   and the mediaList / cancelTranscode routes.
import { hostname } from 'node:os';
import { createReadStream, promises as fsp } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { basename, join, posix } from 'node:path';
import sharp from 'sharp';
import { STREAM_ROUTES, type EngineEvent, type FileRecord, type MediaInfo, type MediaQuery, type Page, type SyncStatus } from '../../../shared/api';
import type { MediaSettings, RootConfig } from '../../../shared/config';
import { formatDuration, joinNames } from '../../../shared/format';
import { KeyError, fileKey, mediaKindOf, needsTranscode, normalizeRelPath, parseFileKey } from '../../../shared/keys';
import { diskRel, type FileRow, type JobRow } from '../catalog/catalog';
import type { EngineContext, EngineService } from '../core/context';
import { JobLane, type JobControl } from '../jobs/runner';
import { HttpError, badRequest, conflict, notFound, type ApiRegistry, type Handlers } from '../http/router';
import type { Ingestor } from '../sync/ingest';
import { log } from '../log';
import { clockTime, errorText } from '../util';
import { MediaError } from './errors';
import { exifCaptureDate } from './exif';
import { clearMediaToolsCache, resolveMediaTools, type MediaTools } from './ffmpeg';
import { isTempFile, outputCandidates } from './naming';
import { assessVideo, probeMedia, toMediaInfo } from './probe';
import { pruneThumbnails, thumbnail } from './thumbs';
import { cleanupTempFiles, convertVideo } from './transcode';
import { MediaStore, TRANSCODE_KIND, TRANSCODE_LANE, type TranscodeState } from './store';

const OWNER = `${hostname()}:${process.pid}:media`;
/** Reason recorded when the operator cancels a conversion. */
export const CANCELLED_REASON = 'Cancelled by the operator. The original is backed up as it is; no MP4 was made.';
/** Pictures and videos looked at (ffprobe / sharp) at once by the file hook. */
const PROBE_CONCURRENCY = 2;
/**
 * The backup comes first: while uploads are being sent or due, a probe waits (up to this long, then runs
 * one at a time). A probe is cheap next to the upload of the same file, but on a 2-core box it
 * competes with it: sharp decodes in this process, and spawning ffprobe forks the engine, whose
 * every page written afterwards takes a copy-on-write fault (100 ms of kernel time per video in
 * bench/sync.mjs; the sync of 203 files took 1.55 s without the probes and 1.93 s with them).
 */
const PROBE_MAX_WAIT_MS = 10 * 60_000;
/** How often probes held back by uploads look again. */
const PROBE_RECHECK_MS = 500;
/** Progress events per conversion: at most one per this many ms. */
const PROGRESS_EVERY_MS = 500;
/** Thumbnail cache size kept by the daily prune. */
const THUMBS_MAX_BYTES = 1024 * 1024 * 1024;
/** While ffmpeg is missing, look for it again this often. */
const TOOLS_RECHECK_MS = 5 * 60_000;

/** What the uploader does with a queued file that is gone from disk (see TargetLane.fileGone). */
export type GoneRule = { skip: string } | { retryAt: number; reason: string } | undefined;

interface Running {
  ctl: JobControl;
  fileId: number;
  key: string;
  percent: number;
  eta?: number;
  cancelled: boolean;
  done: Promise<void>;
}

/** What the media service asks of the sync service (wired by the composition root). */
export interface MediaDeps {
  /** The one path into the catalog (the MP4 and poster a conversion writes, an original that goes). */
  ingestor: Pick<Ingestor, 'ingest' | 'markMissing'>;
  /** Uploads are being sent or are due: probes wait (the backup first). */
  uploadsBusy(): boolean;
  /** Everything paused by the operator. */
  paused(): boolean;
  /** A catalog file as the API shows it. */
  fileRecord(f: FileRow): FileRecord;
}

interface ProbeTask {
  fileId: number;
  transcode: boolean;
  /** Date.now() when it was queued. */
  queuedAt: number;
}

export class MediaService implements EngineService {
  readonly name = 'media';
  readonly store: MediaStore;
  /** Seconds between tries of a conversion that failed for a passing reason; after the last, it is failed. */
  backoffSeconds: number[] = [30, 120, 600];
  /** The seed's rule: a queued video that is gone is looked for again after this long, this many times. */
  goneRetryMs = 30_000;
  goneRetries = 3;
  /** Tests: every finished job. */
  onOutcome?: (fileKey: string, state: TranscodeState, reason?: string) => void;

  private tools: MediaTools | undefined;
  private toolsError: MediaError | undefined;
  private toolsReported: string | undefined;
  private running = false;
  /** Aborts the probes when the service stops. */
  private stopAc = new AbortController();
  private readonly workers: JobLane;
  private readonly inflight = new Map<number, Running>();
  private readonly probeQueue: ProbeTask[] = [];
  private readonly probing = new Set<number>();
  private probeActive = 0;
  private probeRecheck: NodeJS.Timeout | null = null;
  private probeIdle: (() => void)[] = [];
  private ready: Promise<void> = Promise.resolve();
  private offBus: (() => void) | null = null;
  private mediaJson = '';
  private timer: NodeJS.Timeout | null = null;
  private toolsTimer: NodeJS.Timeout | null = null;
  private replaceChain: Promise<void> = Promise.resolve();
  private readonly replaceQueued = new Set<number>();

  constructor(
    private readonly ctx: EngineContext,
    private readonly deps: MediaDeps,
    api: ApiRegistry,
  ) {
    this.store = new MediaStore(ctx.catalog);
    this.workers = new JobLane({
      lane: TRANSCODE_LANE,
      owner: OWNER,
      queue: ctx.catalog,
      concurrency: () => this.settings.concurrency,
      leaseMs: () => this.ctx.config.get().sync.leaseSeconds * 1000,
      pollMs: 30_000,
      // Conversions wait while they are off, everything is paused, or ffmpeg is missing.
      mayRun: () => (this.settings.transcode && !this.deps.paused() && this.tools ? { run: true } : { run: false, retryInMs: 10_000 }),
      // Not before ffmpeg was looked for and a crash's temp files are gone.
      ready: () => this.ready.catch(() => undefined),
      run: (c) => this.runJob(c),
    });
    api.register(this.handlers());
    api.registerRaw(STREAM_ROUTES.thumbnail, (req, res, url) => this.serveThumbnail(req, res, url));
  }

  private get settings(): MediaSettings {
    return this.ctx.config.get().media;
  }

  get thumbsDir(): string {
    return join(this.ctx.dataDir, 'thumbs');
  }

  // ---- lifecycle -----------------------------------------------------------------------------

  start(): void {
    if (this.running) return;
    this.running = true;
    this.stopAc = new AbortController();
    this.store.resetRunning();
    this.mediaJson = JSON.stringify(this.settings);
    this.offBus = this.ctx.bus.on((e) => this.onEvent(e));
    this.ready = (async () => {
      await this.resolveTools();
      // Before any worker runs: what a crash left half-written goes (our own temp names only).
      for (const root of this.ctx.config.enabledRoots()) {
        try {
          const removed = await cleanupTempFiles(root.path, { recursive: true });
          if (removed.length) log.info(`media: removed ${removed.length} unfinished conversion files in ${root.path}`);
        } catch (e) {
          log.warn(`media: temp cleanup in ${root.path}: ${errorText(e)}`);
        }
      }
      if (!this.running) return;
      this.reconcile();
      this.sweepReplace();
    })();
    this.workers.start();
    this.timer = setInterval(() => void pruneThumbnails(this.thumbsDir, THUMBS_MAX_BYTES).catch(() => undefined), 24 * 3600_000);
    this.timer.unref?.();
    // ffmpeg installed or repaired without a settings change: noticed within a few minutes.
    this.toolsTimer = setInterval(() => {
      if (this.toolsError) this.ready = this.ready.then(() => this.resolveTools());
    }, TOOLS_RECHECK_MS);
    this.toolsTimer.unref?.();
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    if (this.timer) clearInterval(this.timer);
    if (this.toolsTimer) clearInterval(this.toolsTimer);
    this.timer = null;
    this.toolsTimer = null;
    this.offBus?.();
    this.offBus = null;
    this.stopAc.abort();
    this.probeQueue.length = 0;
    if (this.probeRecheck) clearTimeout(this.probeRecheck);
    this.probeRecheck = null;
    await this.workers.stop();
    await this.ready.catch(() => undefined);
    await this.probesDrained();
    await this.replaceChain.catch(() => undefined);
  }

  private wake(): void {
    this.workers.wake();
  }

  private onEvent(e: EngineEvent): void {
    if (e.type === 'config') {
      const json = JSON.stringify(this.settings);
      const changed = json !== this.mediaJson;
      this.mediaJson = json;
      if (changed) {
        clearMediaToolsCache();
        this.ready = this.ready.then(() => this.resolveTools()).then(() => {
          if (this.running) this.reconcile();
        });
        this.wake();
      }
      this.sweepReplace();
    } else if (e.type === 'copy' && e.state === 'synced') {
      if (!this.ctx.config.enabledRoots().some((r) => r.replaceOriginalAfterTranscode)) return;
      let f: FileRow | undefined;
      try {
        const { rootId, relPath } = parseFileKey(e.file_key);
        f = this.ctx.catalog.fileByPath(rootId, relPath);
      } catch {
        return;
      }
      if (!f) return;
      const original = f.derived_from ?? this.store.originalOf(f.id) ?? f.id;
      this.queueReplaceCheck(original);
    }
  }

  // ---- ffmpeg --------------------------------------------------------------------------------

  private async resolveTools(): Promise<void> {
    try {
      this.tools = await resolveMediaTools(this.settings);
      if (this.toolsError) {
        this.bus().record({ level: 'info', kind: 'media-tools-ok', message: `Video conversion works again (ffmpeg ${this.tools.ffmpeg.version}).` });
      }
      this.toolsError = undefined;
      this.toolsReported = undefined;
      this.wake();
    } catch (e) {
      this.toolsFailed(e instanceof MediaError ? e : new MediaError('ffmpeg-missing', `ffmpeg could not be started: ${errorText(e)}.`));
    }
  }

  /** ffmpeg or ffprobe cannot run: pause conversions and say so once (not once per video). */
  private toolsFailed(e: MediaError): void {
    this.tools = undefined;
    this.toolsError = e;
    if (this.toolsReported === e.reason) return;
    this.toolsReported = e.reason;
    this.bus().record({
      level: 'error',
      kind: 'media-tools-missing',
      message: `Videos cannot be converted to MP4 right now: ${e.reason} Meanwhile every video is backed up as it is; the conversions wait and start once ffmpeg works.`,
      ...(e.detail ? { detail: e.detail } : {}),
    });
  }

  private bus() {
    return this.ctx.bus;
  }

  private root(id: string): RootConfig | undefined {
    return this.ctx.config.root(id);
  }

  private absPath(root: RootConfig, f: Pick<FileRow, 'rel_path' | 'disk_rel'>): string {
    return join(root.path, ...diskRel(f).split('/'));
  }

  private emitState(key: string, state: TranscodeState, extra: { percent?: number; eta_seconds?: number; reason?: string } = {}): void {
    this.bus().emit({ type: 'transcode', file_key: key, state, ...extra });
  }

  // ---- the file hook -------------------------------------------------------------------------

  /** A new or changed file was cataloged. */
  /** A file was cataloged as new or changed (the sync service's hook). */
  fileChanged(fileId: number, root: RootConfig, relPath: string): void {
    if (!this.running || isTempFile(relPath)) return;
    const kind = mediaKindOf(relPath);
    if (kind === 'other') return;
    const transcode = kind === 'video' && needsTranscode(relPath) && this.settings.transcode;
    if (transcode) {
      this.store.setState(fileId, 'queued', null);
      this.emitState(fileKey(root.id, relPath), 'queued');
    }
    this.queueProbe({ fileId, transcode, queuedAt: Date.now() });
  }

  private queueProbe(t: ProbeTask): void {
    if (this.probing.has(t.fileId)) {
      // Already waiting: keep the stronger request.
      const q = this.probeQueue.find((x) => x.fileId === t.fileId);
      if (q) q.transcode ||= t.transcode;
      else this.probeQueue.push(t);
    } else {
      this.probing.add(t.fileId);
      this.probeQueue.push(t);
    }
    this.pumpProbes();
  }

  private pumpProbes(): void {
    while (this.running && this.probeActive < PROBE_CONCURRENCY && this.probeQueue.length) {
      if (this.deps.uploadsBusy()) {
        // Uploads first: look again in a moment. A probe that waited long enough runs, one at a time.
        if (this.probeActive > 0 || Date.now() - this.probeQueue[0]!.queuedAt < PROBE_MAX_WAIT_MS) {
          this.probeRecheck ??= setTimeout(() => {
            this.probeRecheck = null;
            this.pumpProbes();
          }, PROBE_RECHECK_MS);
          this.probeRecheck.unref?.();
          return;
        }
      }
      const t = this.probeQueue.shift()!;
      this.probeActive++;
      void this.probeOne(t)
        .catch((e) => log.warn(`media: looking at file ${t.fileId}: ${errorText(e)}`))
        .finally(() => {
          this.probeActive--;
          if (!this.probeQueue.some((x) => x.fileId === t.fileId)) this.probing.delete(t.fileId);
          if (this.probeActive === 0 && this.probeQueue.length === 0) for (const r of this.probeIdle.splice(0)) r();
          this.pumpProbes();
        });
    }
  }

  /** Resolves once no probe runs (tests; stop()). */
  probesDrained(): Promise<void> {
    if (this.probeActive === 0 && (this.probeQueue.length === 0 || !this.running)) return Promise.resolve();
    return new Promise((r) => this.probeIdle.push(r));
  }

  private async probeOne(t: ProbeTask): Promise<void> {
    await this.ready;
    const { catalog } = this.ctx;
    const f = catalog.fileById(t.fileId);
    if (!f || f.local_state !== 'present') return;
    const root = this.root(f.root_id);
    if (!root) return;
    const abs = this.absPath(root, f);
    const key = fileKey(f.root_id, f.rel_path);
    if (f.kind === 'image') {
      try {
        const meta = await sharp(abs, { failOn: 'none' }).metadata();
        const swap = (meta.orientation ?? 1) >= 5;
        const info: Parameters<MediaStore['saveInfo']>[1] = {};
        if (meta.width && meta.height) {
          info.width = swap ? meta.height : meta.width;
          info.height = swap ? meta.width : meta.height;
        }
        const captured = exifCaptureDate(meta.exif);
        if (captured !== undefined) info.captured_at = captured;
        this.store.saveInfo(f.id, info);
      } catch {
        this.store.ensure(f.id); // a format sharp does not read (RAW, some HEIC): nothing to show
      }
      return;
    }
    if (f.kind !== 'video') return;
    if (this.tools) {
      try {
        const probe = await probeMedia(abs, { tools: this.tools, signal: this.stopAc.signal });
        this.store.saveInfo(f.id, toMediaInfo(probe));
        if (t.transcode) {
          const problem = assessVideo(probe);
          if (problem) return this.skipEarly(f, key, problem);
        }
      } catch (e) {
        const me = e instanceof MediaError ? e : undefined;
        if (me?.code === 'aborted') return;
        if (me?.code === 'ffmpeg-missing') this.toolsFailed(me);
        else if (me?.permanent && t.transcode) return this.skipEarly(f, key, me);
        this.store.ensure(f.id);
      }
    } else {
      this.store.ensure(f.id);
    }
    if (t.transcode && this.running && this.settings.transcode) {
      catalog.enqueue(TRANSCODE_LANE, TRANSCODE_KIND, f.id);
      this.wake();
    }
  }

  /** ffprobe already says the video cannot be converted: skip it without a job. */
  private skipEarly(f: FileRow, key: string, e: MediaError): void {
    this.ctx.catalog.cancelQueued(TRANSCODE_LANE, TRANSCODE_KIND, f.id);
    this.store.setState(f.id, 'skipped', e.reason);
    this.emitState(key, 'skipped', { reason: e.reason });
    this.bus().record({ level: 'warn', kind: 'transcode-skipped', message: e.reason, file_key: key, ...(e.detail ? { detail: e.detail } : {}) });
    this.onOutcome?.(key, 'skipped', e.reason);
  }

  /**
   * At start (and when conversion settings change): files the hook never finished with, because
   * the engine stopped or crashed in between, or because conversion was off at the time.
   */
  private reconcile(): void {
    const { catalog } = this.ctx;
    let jobs = 0;
    for (const r of this.store.unfinished()) {
      const transcode = r.kind === 'video' && needsTranscode(r.rel_path) && this.settings.transcode;
      if (r.state === null) {
        this.queueProbe({ fileId: r.id, transcode, queuedAt: Date.now() });
        continue;
      }
      if (!transcode || r.has_job) continue;
      if (r.state === 'none') this.store.setState(r.id, 'queued', null);
      catalog.enqueue(TRANSCODE_LANE, TRANSCODE_KIND, r.id);
      jobs++;
    }
    if (jobs) {
      log.info(`media: queued ${jobs} video conversions`);
      this.wake();
    }
  }

  // ---- workers -------------------------------------------------------------------------------

  private async runJob(ctl: JobControl): Promise<void> {
    const { catalog } = this.ctx;
    const { job } = ctl;
    const f = catalog.fileById(job.file_id);
    if (!f) {
      catalog.drop(job);
      return;
    }
    const key = fileKey(f.root_id, f.rel_path);
    const root = this.root(f.root_id);
    if (!root || f.local_state !== 'present') {
      const reason = !root
        ? 'Its folder was removed from Triplicate, so it was not converted.'
        : 'It was deleted or moved before it could be converted.';
      catalog.transaction(() => {
        if (catalog.drop(job)) this.store.setState(f.id, 'none', reason);
      });
      this.emitState(key, 'none', { reason });
      return;
    }
    let finish!: () => void;
    const entry: Running = { ctl, fileId: f.id, key, percent: 0, cancelled: false, done: new Promise<void>((r) => (finish = r)) };
    this.inflight.set(f.id, entry);
    this.store.setState(f.id, 'running', null);
    this.emitState(key, 'running', { percent: 0 });
    try {
      await this.convert(job, f, root, entry);
    } catch (e) {
      this.failed(job, f, entry, e);
    } finally {
      this.inflight.delete(f.id);
      finish();
    }
  }

  private async convert(job: JobRow, f: FileRow, root: RootConfig, entry: Running): Promise<void> {
    const { catalog } = this.ctx;
    const tools = this.tools;
    if (!tools) throw this.toolsError ?? new MediaError('ffmpeg-missing', 'ffmpeg is not available.');
    const abs = this.absPath(root, f);
    const signal = entry.ctl.signal;
    const probe = await probeMedia(abs, { tools, signal });
    this.store.saveInfo(f.id, toMediaInfo(probe));
    let lastEmit = 0;
    const res = await convertVideo(abs, this.settings, {
      tools,
      probe,
      signal,
      onProgress: (percent, eta) => {
        entry.percent = percent;
        entry.eta = eta;
        const now = Date.now();
        if (now - lastEmit < PROGRESS_EVERY_MS) return;
        lastEmit = now;
        this.emitState(entry.key, 'running', { percent, ...(eta !== undefined ? { eta_seconds: eta } : {}) });
      },
    });
    if (entry.ctl.fenced) return; // someone else owns the job now: record nothing
    // The outputs are in place and verified: catalog them as files made from the original.
    const dir = posix.dirname(diskRel(f));
    const relOf = (p: string) => (dir === '.' ? basename(p) : `${dir}/${basename(p)}`);
    const notes: string[] = [];
    const mp4 = await this.ingestOutput(root, relOf(res.outputPath), f.id);
    if (mp4 === null) notes.push(`${basename(res.outputPath)} was made but is not backed up: this folder's include/exclude rules leave it out.`);
    let poster: number | null = null;
    if (res.posterPath) {
      poster = await this.ingestOutput(root, relOf(res.posterPath), f.id);
    } else if (res.posterError) {
      notes.push(`The MP4 was made, but not its poster picture: ${res.posterError.reason}`);
    }
    const reason = notes.length ? notes.join(' ') : null;
    const ok = catalog.transaction(() => {
      if (!catalog.complete(job)) return false;
      this.store.setDone(f.id, mp4, poster, reason);
      return true;
    });
    const key = entry.key;
    if (!ok) {
      log.warn(`media: the conversion of ${key} finished after its job was taken over; its result is not recorded twice`);
      return;
    }
    this.emitState(key, 'done', { percent: 100, ...(reason ? { reason } : {}) });
    this.bus().record({
      level: 'info',
      kind: 'transcoded',
      message: `${basename(f.rel_path)} was converted to ${basename(res.outputPath)} (${formatDuration(probe.durationS ?? 0)} of video in ${formatDuration(res.elapsedMs / 1000)}).${reason ? ` ${reason}` : ''}`,
      file_key: key,
    });
    this.onOutcome?.(key, 'done', reason ?? undefined);
    if (root.replaceOriginalAfterTranscode) this.queueReplaceCheck(f.id);
  }

  /** Catalog an output (MP4 or poster) and link it to its original; null when the root's filters exclude it. */
  private async ingestOutput(root: RootConfig, rel: string, originalId: number): Promise<number | null> {
    const { catalog } = this.ctx;
    const { ingestor } = this.deps;
    const r = await ingestor.ingest(root, rel, { derivedFrom: originalId });
    if (r === 'excluded') return null;
    const row = catalog.fileByPath(root.id, normalizeRelPath(rel));
    if (!row) {
      if (r === 'unstable' || r === 'error') throw new MediaError('io', `${basename(rel)} was written but could not be added to the catalog. Triplicate tries again later.`);
      return null;
    }
    this.store.setDerived(row.id, originalId);
    return row.id;
  }

  private failed(job: JobRow, f: FileRow, entry: Running, e: unknown): void {
    const { catalog } = this.ctx;
    const key = entry.key;
    if (entry.ctl.fenced) return;
    const me = e instanceof MediaError ? e : new MediaError('ffmpeg-failed', `Converting ${basename(f.rel_path)} failed: ${errorText(e)}. Triplicate tries again later.`, { detail: errorText(e) });
    const detail = me.detail ? { detail: me.detail } : {};
    if (entry.cancelled) {
      const ok = catalog.transaction(() => {
        if (!catalog.drop(job)) return false;
        this.store.setState(f.id, 'skipped', CANCELLED_REASON);
        return true;
      });
      if (!ok) return;
      this.emitState(key, 'skipped', { reason: CANCELLED_REASON });
      this.bus().record({ level: 'info', kind: 'transcode-cancelled', message: `The conversion of ${basename(f.rel_path)} was cancelled.`, file_key: key });
      this.onOutcome?.(key, 'skipped', CANCELLED_REASON);
      return;
    }
    if (me.code === 'aborted' || entry.ctl.stopping) {
      // Stopping: the job goes back as it was and runs again at the next start.
      catalog.transaction(() => {
        if (catalog.release(job, 0, null, false)) this.store.setState(f.id, 'queued', null);
      });
      return;
    }
    if (me.code === 'ffmpeg-missing') {
      catalog.transaction(() => {
        if (catalog.release(job, 0, me.reason, false)) this.store.setState(f.id, 'queued', null);
      });
      this.emitState(key, 'queued', { reason: me.reason });
      this.toolsFailed(me);
      return;
    }
    if (me.code === 'source-missing') {
      const reason = 'It was deleted or moved before it could be converted.';
      catalog.transaction(() => {
        if (catalog.drop(job)) this.store.setState(f.id, 'none', reason);
      });
      this.emitState(key, 'none', { reason });
      return;
    }
    if (me.permanent) {
      const ok = catalog.transaction(() => {
        if (!catalog.drop(job)) return false;
        this.store.setState(f.id, 'skipped', me.reason);
        return true;
      });
      if (!ok) return;
      this.emitState(key, 'skipped', { reason: me.reason });
      this.bus().record({ level: 'warn', kind: 'transcode-skipped', message: me.reason, file_key: key, ...detail });
      this.onOutcome?.(key, 'skipped', me.reason);
      return;
    }
    const attempts = job.attempts + 1;
    const steps = this.backoffSeconds;
    if (attempts > steps.length) {
      const reason = `The conversion failed ${attempts} times, so Triplicate stopped trying; the original is backed up as it is. Last problem: ${me.reason.replace(/\s*Triplicate tries again later[^.]*\./g, '')}`;
      const ok = catalog.transaction(() => {
        if (!catalog.drop(job)) return false;
        this.store.setState(f.id, 'failed', reason);
        return true;
      });
      if (!ok) return;
      this.emitState(key, 'failed', { reason });
      this.bus().record({ level: 'error', kind: 'transcode-failed', message: reason, file_key: key, ...detail });
      this.onOutcome?.(key, 'failed', reason);
      return;
    }
    const next = Date.now() + steps[attempts - 1]! * 1000;
    const reason = `${me.reason.replace(/\s*Triplicate tries again later[^.]*\./g, '')} Next try at ${clockTime(next)}.`;
    catalog.transaction(() => {
      if (catalog.release(job, next, me.reason, true)) this.store.setState(f.id, 'queued', reason);
    });
    this.emitState(key, 'queued', { reason });
    log.warn(`media: converting ${key} failed (try ${attempts}): ${me.reason}${me.detail ? ` — ${me.detail}` : ''}`);
  }

  // ---- status and operator actions -----------------------------------------------------------

  /** For SyncStatus.transcoding. */
  transcoding(): SyncStatus['transcoding'] {
    const queued = this.store.queuedCount();
    const out: NonNullable<SyncStatus['transcoding']> = { active: this.inflight.size, queued };
    const cur = [...this.inflight.values()][0];
    if (cur) out.current = { file_key: cur.key, percent: cur.percent, ...(cur.eta !== undefined ? { eta_seconds: cur.eta } : {}) };
    if (this.toolsError && queued > 0) out.problem = this.toolsError.reason;
    else if (!this.settings.transcode && queued > 0) out.problem = 'Video conversion is turned off in the settings.';
    return out;
  }

  /** For FileRecord.media. */
  mediaInfo(fileId: number): MediaInfo | undefined {
    return this.store.info(fileId);
  }

  /** Cancel one conversion (running or waiting): the video is then skipped. */
  async cancel(key: string): Promise<FileRecord> {
    let f: FileRow | undefined;
    try {
      const { rootId, relPath } = parseFileKey(key);
      f = this.ctx.catalog.fileByPath(rootId, relPath);
    } catch (e) {
      if (e instanceof KeyError) throw badRequest(`"${key}" is not a file key: ${e.message}.`, ['key']);
      throw e;
    }
    if (!f) throw notFound(`There is no file ${key} in the catalog.`);
    const running = this.inflight.get(f.id);
    if (running) {
      running.cancelled = true;
      running.ctl.abort();
      await Promise.race([running.done, new Promise((r) => setTimeout(r, 15_000).unref?.())]);
    } else if (this.ctx.catalog.cancelQueued(TRANSCODE_LANE, TRANSCODE_KIND, f.id)) {
      this.store.setState(f.id, 'skipped', CANCELLED_REASON);
      this.emitState(key, 'skipped', { reason: CANCELLED_REASON });
      this.bus().record({ level: 'info', kind: 'transcode-cancelled', message: `The conversion of ${basename(f.rel_path)} was cancelled.`, file_key: key });
    } else {
      throw conflict(`${basename(f.rel_path)} is not waiting to be converted or being converted, so there is nothing to cancel.`);
    }
    return this.deps.fileRecord(this.ctx.catalog.fileById(f.id) ?? f);
  }

  list(q: MediaQuery): Page<FileRecord> {
    const { rows, total, offset, limit } = this.store.list(q ?? {});
    return { items: rows.map((r) => this.deps.fileRecord(r)), total, offset, limit };
  }

  handlers(): Handlers {
    return {
      mediaList: ({ query }) => this.list(query),
      cancelTranscode: ({ body }) => {
        if (!body || typeof body.key !== 'string') throw badRequest('Say which video to stop converting: { "key": "<folder id>/<path>" }.', ['key']);
        return this.cancel(body.key);
      },
    };
  }

  // ---- the uploader's rule for a queued video that is gone -----------------------------------

  /**
   * The seed's rule: when a queued video is gone, look for its `.mp4` sibling. There: the copy is
   * skipped (the MP4 is backed up instead). Neither there: look again after 30 s, up to 3 times
   * (a converter may be between deleting one and writing the other); then the default rule.
   */
  async whenGone(f: FileRow, root: RootConfig, attempts: number): Promise<GoneRule> {
    if (!needsTranscode(f.rel_path)) return undefined;
    const abs = this.absPath(root, f);
    for (const c of outputCandidates(abs)) {
      try {
        const st = await fsp.stat(c.mp4Path);
        if (!st.isFile()) continue;
      } catch {
        continue;
      }
      const name = basename(c.mp4Path);
      const dir = posix.dirname(diskRel(f));
      const rel = dir === '.' ? name : `${dir}/${name}`;
      try {
        if (!this.ctx.catalog.fileByPath(root.id, normalizeRelPath(rel))) void this.deps.ingestor.ingest(root, rel).catch(() => undefined);
      } catch {}
      return { skip: `Replaced by its MP4 ${name}, which is backed up.` };
    }
    if (attempts < this.goneRetries) {
      const at = Date.now() + this.goneRetryMs;
      return { retryAt: at, reason: `${basename(f.rel_path)} is not in ${root.label} right now; it may still be being converted. Triplicate looks again at ${clockTime(at)}.` };
    }
    return undefined;
  }

  // ---- replaceOriginalAfterTranscode ---------------------------------------------------------

  private sweepReplace(): void {
    const roots = new Set(this.ctx.config.enabledRoots().filter((r) => r.replaceOriginalAfterTranscode).map((r) => r.id));
    if (roots.size === 0) return;
    for (const r of this.store.doneOriginals()) if (roots.has(r.root_id)) this.queueReplaceCheck(r.file_id);
  }

  private queueReplaceCheck(originalId: number): void {
    if (!this.running || this.replaceQueued.has(originalId)) return;
    this.replaceQueued.add(originalId);
    this.replaceChain = this.replaceChain
      .then(async () => {
        this.replaceQueued.delete(originalId);
        await this.maybeReplace(originalId);
      })
      .catch((e) => log.warn(`media: replacing original ${originalId}: ${errorText(e)}`));
  }

  /**
   * Delete the local original of a converted video when its root asks for it and both the MP4 and
   * the original are synced (uploaded and checked) on every enabled target, and the files on disk
   * are still the ones that were backed up. Remote copies of the original stay.
   */
  private async maybeReplace(originalId: number): Promise<boolean> {
    if (!this.running) return false;
    const { catalog } = this.ctx;
    const orig = catalog.fileById(originalId);
    if (!orig || orig.local_state !== 'present' || !orig.sha256) return false;
    const root = this.root(orig.root_id);
    if (!root?.replaceOriginalAfterTranscode) return false;
    const m = this.store.get(orig.id);
    if (m?.transcode_state !== 'done' || m.mp4_file_id === null) return false;
    const marker = `media.replaced.${orig.id}`;
    // Replaced once already and brought back (a restore): leave it.
    if (catalog.kvGet(marker) === orig.sha256) return false;
    const mp4 = catalog.fileById(m.mp4_file_id);
    if (!mp4 || mp4.local_state !== 'present' || !mp4.sha256) return false;
    const targets = this.ctx.targets.enabled();
    if (targets.length === 0) return false;
    for (const t of targets) {
      const c = catalog.copy(mp4.id, t.id);
      if (!c || c.state !== 'synced' || c.sha256 !== mp4.sha256 || !c.verified_at) return false;
      const o = catalog.copy(orig.id, t.id);
      if (!o || o.state !== 'synced' || o.sha256 !== orig.sha256 || !o.verified_at) return false;
    }
    const origAbs = this.absPath(root, orig);
    const mp4Abs = this.absPath(root, mp4);
    const same = async (p: string, row: FileRow) => {
      const st = await fsp.stat(p).catch(() => null);
      return !!st && st.isFile() && st.size === row.size && Math.trunc(st.mtimeMs) === row.mtime_ms;
    };
    if (!(await same(origAbs, orig)) || !(await same(mp4Abs, mp4))) return false;
    if (!this.running) return false;
    try {
      await fsp.unlink(origAbs);
    } catch (e) {
      this.bus().record({
        level: 'warn',
        kind: 'original-not-replaced',
        message: `${basename(orig.rel_path)} could not be removed from ${root.label} after its conversion: ${errorText(e)}. It stays; check the folder's permissions.`,
        file_key: fileKey(orig.root_id, orig.rel_path),
      });
      return false;
    }
    catalog.kvSet(marker, orig.sha256);
    this.deps.ingestor.markMissing(orig.root_id, orig.rel_path);
    this.bus().record({
      level: 'info',
      kind: 'original-replaced',
      message: `${basename(orig.rel_path)} was removed from ${root.label} to save space: its MP4 ${basename(mp4.rel_path)} is backed up on ${joinNames(targets.map((t) => t.label))}, and the original stays in those backups.`,
      file_key: fileKey(orig.root_id, orig.rel_path),
    });
    return true;
  }

  // ---- thumbnails ----------------------------------------------------------------------------

  /** The file a thumbnail of `f` is made from: the picture, the video's poster, else the video itself. */
  private thumbnailSource(f: FileRow): { path?: string; why?: string } {
    const { catalog } = this.ctx;
    const name = basename(f.rel_path);
    const local = (row: FileRow | undefined): string | undefined => {
      if (!row || row.local_state !== 'present') return undefined;
      const root = this.root(row.root_id);
      return root ? this.absPath(root, row) : undefined;
    };
    if (f.kind === 'image') {
      const p = local(f);
      return p ? { path: p } : { why: `${name} is not on this computer (only in the backups), so there is no thumbnail.` };
    }
    if (f.kind === 'video') {
      const posterId = this.store.get(f.id)?.poster_file_id ?? (f.derived_from !== null ? this.store.get(f.derived_from)?.poster_file_id : null) ?? null;
      const poster = posterId !== null ? local(catalog.fileById(posterId)) : undefined;
      if (poster) return { path: poster };
      const p = local(f);
      if (p && this.tools) return { path: p };
      return { why: p ? `There is no picture for ${name} yet: ffmpeg is not available.` : `${name} is not on this computer (only in the backups), so there is no thumbnail.` };
    }
    return { why: `${name} is not a picture or a video, so it has no thumbnail.` };
  }

  private async serveThumbnail(req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      throw new HttpError(405, 'method_not_allowed', `${STREAM_ROUTES.thumbnail} accepts GET only.`);
    }
    const key = url.searchParams.get('key') ?? '';
    let f: FileRow | undefined;
    try {
      const { rootId, relPath } = parseFileKey(key);
      f = this.ctx.catalog.fileByPath(rootId, relPath);
    } catch (e) {
      if (e instanceof KeyError) throw badRequest(`Say which file: ?key=<folder id>/<path> (${e.message}).`, ['key']);
      throw e;
    }
    if (!f) throw new HttpError(404, 'not_found', `There is no file ${key} in the catalog.`);
    const sizeParam = Number(url.searchParams.get('size') ?? 256);
    const size = Number.isFinite(sizeParam) && sizeParam > 0 ? Math.round(sizeParam) : 256;
    const src = this.thumbnailSource(f);
    if (!src.path) throw new HttpError(404, 'no_thumbnail', src.why ?? 'There is no thumbnail for this file.');
    const ac = new AbortController();
    res.on('close', () => ac.abort());
    let p: string;
    try {
      p = await thumbnail(src.path, this.thumbsDir, { size, format: 'jpeg', tools: this.tools, paths: this.settings, signal: ac.signal });
    } catch (e) {
      if (e instanceof MediaError) {
        if (e.code === 'aborted') return true;
        const status = e.permanent || e.code === 'source-missing' || e.code === 'ffmpeg-missing' ? 404 : 503;
        throw new HttpError(status, status === 404 ? 'no_thumbnail' : 'unavailable', e.reason, e.detail);
      }
      throw e;
    }
    const st = await fsp.stat(p);
    const etag = `"${basename(p).replace(/\.\w+$/, '')}"`;
    const headers = { 'cache-control': 'private, max-age=300', etag };
    if (req.headers['if-none-match'] === etag) {
      res.writeHead(304, headers);
      res.end();
      return true;
    }
    res.writeHead(200, { ...headers, 'content-type': 'image/jpeg', 'content-length': st.size });
    if (req.method === 'HEAD') {
      res.end();
      return true;
    }
    await new Promise<void>((resolve) => {
      const rs = createReadStream(p);
      rs.on('error', () => {
        res.destroy();
        resolve();
      });
      res.on('close', resolve);
      rs.pipe(res);
    });
    return true;
  }
}


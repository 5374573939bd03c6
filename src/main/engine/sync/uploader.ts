// Upload workers: one lane per target with its own workers, so a down NAS never delays the cloud
// copy. The lane's jobs are run by the job-lane runner (jobs/runner.ts: claim with a lease and a
// fence, heartbeat, idle and wake); the destination's health and the operator's pause are its gate.
// Each file is streamed to the target with its SHA-256 in the object metadata, then verified
// before the copy is marked synced: HEADed and compared (size + sha256), or, on a server shown to
// keep our metadata, by its ETag (the MD5 of the bytes it stored) against the MD5 of the bytes we sent.
// A file that changed while uploading is re-queued, never marked synced.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { access, constants, open, stat, type FileHandle } from 'node:fs/promises';
import { pipeline, Readable } from 'node:stream';
import { join } from 'node:path';
import type { RootConfig, TargetConfig } from '../../../shared/config';
import { contentTypeOf, fileKey, objectKey, versionKey } from '../../../shared/keys';
import { concurrencyCeiling, retainUntil, START_CONCURRENCY } from '../backends/presets';
import { StorageError, abortError, type BlockReader, type ObjectInfo, type StorageBackend } from '../backends/types';
import { diskRel, REPAIR, uploadLane, type Catalog, type FileRow, type JobRow } from '../catalog/catalog';
import type { AdaptiveConcurrency } from '../jobs/adaptive';
import { JobLane, type Gate, type JobControl } from '../jobs/runner';
import type { EventBus } from '../events';
import { clockTime, describeLocalError, errnoOf, errorText } from '../util';
import type { TargetHealth } from './health';
import { HashingStream } from './hash';
import { ioBuffers } from '../buffers';
import type { Ingestor } from './ingest';

export interface LaneContext {
  catalog: Catalog;
  bus: EventBus;
  health: TargetHealth;
  ingestor: Ingestor;
  root(id: string): RootConfig | undefined;
  backoffSeconds(): number[];
  leaseMs(): number;
  /** Everything paused by the operator. */
  globallyPaused(): boolean;
  /**
   * A queued file is gone from disk: the media pipeline's rule for videos (skip with a reason when
   * its MP4 is there, look again later when it may still be converting). undefined: the default rule.
   */
  whenGone?(f: FileRow, root: RootConfig, attempts: number): Promise<{ skip: string } | { retryAt: number; reason: string } | undefined> | undefined;
  /** The destinations a damaged copy may be repaired from (every lane's target and backend), by priority. */
  repairSources?(): RepairSource[];
  /** Held back by the burst guard (sync/guard.ts): its job is dropped, the destination keeps the previous object. */
  held?(fileId: number): boolean;
  /** Every failed call of the target's uploads (its 'sync' use), each try (core/targets.ts onFailure); returns the unsubscribe. */
  onFailure?(listener: (e: unknown) => void): () => void;
  /** The destination this lane gives way to now (it sends GIVE_WAY_LEVEL files at once meanwhile), if any. */
  givesWayTo?(): TargetConfig | undefined;
}

/**
 * Files at once of a lane that gives way to a nearby destination while this computer cannot keep
 * up with both: the cloud goes on at a file per round trip, and the engine's thread, which both
 * share, goes to the NAS (bench/wan.mjs (d): with 2 the NAS took 1.20-1.28x its time alone, with
 * 1 about 1.0x; docs/benchmarks.md).
 */
export const GIVE_WAY_LEVEL = 1;

/** A destination read to repair a damaged copy of a file that is gone from this computer. */
export interface RepairSource {
  target: TargetConfig;
  backend: StorageBackend;
}

/** Outcome of one job, for tests and the benchmark. */
export type JobOutcome = 'synced' | 'already-there' | 'requeued' | 'retry' | 'failed' | 'skipped' | 'target-down' | 'stale' | 'aborted';

/** Above this many keys under one root, the lane stops listing and HEADs each file instead. */
const LISTING_MAX_KEYS = 500_000;

/**
 * Files up to this size are read in one call and hashed as one buffer (see WholeFile), with
 * the MD5 that checks their ETag; bigger ones are streamed and verified with a HEAD.
 */
const WHOLE_FILE_MAX = 8 * 1024 * 1024;

/** What the upload body saw: the bytes and their SHA-256 once the body was read to the end. */
interface BodyDigest {
  readonly bytes: number;
  readonly sha256: string | undefined;
  /** Their MD5 (hex), for a body that goes up in one request: S3's ETag of such an object. */
  readonly md5?: string | undefined;
}

/**
 * The body of a small file: one read into one pooled buffer (buffers.ts), hashed as one buffer.
 * A stream of a 256 KB photo otherwise allocates a 1 MiB read buffer, copies it, and sends it
 * through a hashing Transform: garbage and stream hops that cost more CPU than the upload.
 * read() gives the bytes (one more than announced when the file grew, which fails the upload's
 * size check); stream() the same as one chunk, for a backend that wants a stream.
 * recycle() gives the buffer back once the request that sent it was answered.
 */
class WholeFile implements BodyDigest {
  bytes = 0;
  sha256: string | undefined;
  md5: string | undefined;
  private buf: Buffer | undefined;
  constructor(
    private readonly path: string,
    private readonly size: number,
  ) {}

  async read(): Promise<Buffer> {
    const pooled = ioBuffers.take(this.size + 1);
    const buf = await readAtMost(this.path, pooled.subarray(0, this.size + 1));
    this.buf = pooled;
    this.bytes = buf.length;
    this.sha256 = createHash('sha256').update(buf).digest('hex');
    this.md5 = createHash('md5').update(buf).digest('hex');
    return buf;
  }

  stream(): Readable {
    let started = false;
    const r = new Readable({
      read: () => {
        if (started) return;
        started = true;
        this.read().then(
          (buf) => {
            if (r.destroyed) return;
            if (buf.length) r.push(buf);
            r.push(null);
          },
          (e: Error) => r.destroy(e),
        );
      },
    });
    return r;
  }

  /** The request that sent the body was answered: nothing reads the buffer any more. */
  recycle(): void {
    if (this.buf) ioBuffers.give(this.buf);
    this.buf = undefined;
  }
}

/**
 * A file read block by block for a multipart upload (BodySource.openReader), hashed in the order
 * it is read. Its SHA-256 is known once exactly the file's size was read; a file that grew or
 * shrank has none, and the upload is not marked synced.
 */
class FileBlockReader implements BlockReader, BodyDigest {
  bytes = 0;
  private readonly h = createHash('sha256');
  private digest: string | undefined;
  private constructor(
    private readonly fh: FileHandle,
    private readonly size: number,
  ) {}
  static async open(path: string, size: number): Promise<FileBlockReader> {
    return new FileBlockReader(await open(path, 'r'), size);
  }
  async read(buf: Buffer): Promise<number> {
    const n = await fill(this.fh, buf, this.bytes);
    if (n) this.h.update(n === buf.length ? buf : buf.subarray(0, n));
    this.bytes += n;
    return n;
  }
  get sha256(): string | undefined {
    if (this.bytes !== this.size) return undefined;
    this.digest ??= this.h.digest('hex');
    return this.digest;
  }
  close(): Promise<void> {
    return this.fh.close();
  }
}

/** Fill `buf` from the file at `position`, in as few reads as it takes (one, normally); fewer bytes only at the end of the file. */
async function fill(fh: FileHandle, buf: Buffer, position: number): Promise<number> {
  let n = 0;
  while (n < buf.length) {
    const { bytesRead } = await fh.read(buf, n, buf.length - n, position + n);
    if (bytesRead === 0) break;
    n += bytesRead;
  }
  return n;
}

/** Up to `buf.length` bytes from the start of a file into `buf`. */
async function readAtMost(path: string, buf: Buffer): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const n = await fill(fh, buf, 0);
    return n === buf.length ? buf : buf.subarray(0, n);
  } finally {
    await fh.close();
  }
}

/**
 * File bytes a lane holds in memory at once, whatever its level: a small file is read whole, a
 * big one holds its parts in flight (4 x 8 MiB). 32 videos at once would otherwise hold 1 GiB;
 * this is what the fixed 4 uploads of old could hold.
 */
const LANE_MEMORY = 128 * 1024 * 1024;
/** What one file counts against LANE_MEMORY at most: its parts in flight. */
const FILE_MEMORY = 32 * 1024 * 1024;

/** A share of LANE_MEMORY, handed out in the order asked for. */
class Room {
  private free: number;
  private readonly waiting: { n: number; go: () => void }[] = [];
  constructor(private readonly size: number) {
    this.free = size;
  }

  /** Wait for `n` bytes of room (at most the whole room); returns the function that gives them back. */
  async take(n: number, signal: AbortSignal): Promise<() => void> {
    const want = Math.min(n, this.size);
    if (!this.waiting.length && want <= this.free) this.free -= want;
    else {
      await new Promise<void>((resolve, reject) => {
        const w = {
          n: want,
          go: () => {
            signal.removeEventListener('abort', quit);
            resolve();
          },
        };
        const quit = () => {
          this.waiting.splice(this.waiting.indexOf(w), 1);
          reject(abortError());
        };
        if (signal.aborted) return reject(abortError());
        signal.addEventListener('abort', quit, { once: true });
        this.waiting.push(w);
      });
    }
    let given = false;
    return () => {
      if (given) return;
      given = true;
      this.free += want;
      while (this.waiting.length && this.waiting[0]!.n <= this.free) {
        const w = this.waiting.shift()!;
        this.free -= w.n;
        w.go();
      }
    };
  }
}

class RateMeter {
  private samples: { t: number; bytes: number }[] = [];
  add(bytes: number): void {
    const t = Date.now();
    this.samples.push({ t, bytes });
    if (this.samples.length > 512) this.samples.splice(0, 256);
  }
  rate(windowMs = 5000): number {
    const now = Date.now();
    let sum = 0;
    let first = now;
    for (let i = this.samples.length - 1; i >= 0; i--) {
      const s = this.samples[i]!;
      if (now - s.t > windowMs) break;
      sum += s.bytes;
      first = s.t;
    }
    const span = Math.max(1000, now - first);
    return Math.round((sum * 1000) / span);
  }
}

export class TargetLane {
  readonly lane: string;
  /** Aborts the listing when the lane stops. */
  private readonly abort = new AbortController();
  private readonly runner: JobLane;
  readonly meter = new RateMeter();
  /**
   * Files in flight: chosen by the runner from the throughput measured (jobs/adaptive.ts), from
   * START_CONCURRENCY up to the operator's cap or the preset's ceiling, halved when the server
   * asks to slow down.
   */
  readonly adapt: AdaptiveConcurrency;
  private readonly room = new Room(LANE_MEMORY);
  private unlisten: (() => void) | undefined;
  /**
   * Keys listed on the target when the lane started (per root), so a new file's upload skips the
   * HEAD that asks "is it already there?": one LIST per 1,000 keys instead of one HEAD per file.
   * Keys written since are tracked too; anything not known absent is HEADed as before.
   */
  private listed = new Map<string, Set<string>>();
  private written = new Set<string>();
  private listing: Promise<void> | null = null;
  /**
   * Set once a post-upload HEAD on this lane matched an upload whose ETag was the MD5 of its
   * bytes: from then on such an ETag verifies an upload without the HEAD (see runJob).
   */
  private etagsVouch = false;
  /**
   * Keys holding bytes that do not match their metadata, which this lane could not delete (a key
   * without delete permission, an Object Lock): their metadata must not pass for "already there".
   */
  private untrusted = new Set<string>();
  /** How uploads were verified (tests, diagnostics): by ETag (MD5) or by HEAD. */
  readonly verifiedBy = { etag: 0, head: 0 };
  /** Observers (tests, benchmark) see each job's outcome. */
  onOutcome?: (fileId: number, outcome: JobOutcome) => void;

  constructor(
    readonly target: TargetConfig,
    readonly backend: StorageBackend,
    private readonly ctx: LaneContext,
    owner: string,
  ) {
    this.lane = uploadLane(target.id);
    this.runner = new JobLane({
      lane: this.lane,
      owner,
      queue: ctx.catalog,
      adaptive: { start: START_CONCURRENCY, ceiling: () => concurrencyCeiling(target) },
      leaseMs: ctx.leaseMs,
      pollMs: 10_000,
      mayRun: () => this.gate(),
      limit: () => (this.ctx.givesWayTo?.() ? GIVE_WAY_LEVEL : undefined),
      run: async (c) => {
        const outcome = await this.runJob(c);
        this.onOutcome?.(c.job.file_id, outcome);
      },
    });
    this.adapt = this.runner.adaptive!;
  }

  get activeUploads(): number {
    return this.runner.active;
  }

  /** List the target's keys under each root prefix in the background (only worth it for a backlog). */
  primeListing(rootIds: string[]): void {
    if (this.listing || !this.backend.list) return;
    const prefix = this.target.prefix;
    this.listing = (async () => {
      for (const rootId of rootIds) {
        const keys = new Set<string>();
        try {
          for await (const o of this.backend.list(`${prefix}${rootId}/`, { signal: this.abort.signal })) {
            keys.add(o.key);
            if (keys.size > LISTING_MAX_KEYS) return; // a huge bucket: HEAD per file is cheaper than this memory
          }
        } catch {
          continue; // target down or listing refused: HEAD as usual
        }
        this.listed.set(rootId, keys);
      }
    })();
  }

  /** True when the key was absent at listing time and nobody (we) wrote it since. */
  private knownAbsent(rootId: string, key: string): boolean {
    const keys = this.listed.get(rootId);
    return keys !== undefined && !keys.has(key) && !this.written.has(key);
  }

  start(): void {
    this.unlisten ??= this.ctx.onFailure?.((e) => {
      if (e instanceof StorageError && e.congestion) this.adapt.congested();
    });
    this.runner.start();
  }

  /** Stop: abort in-flight uploads (multipart uploads are aborted on the server), release their jobs. */
  async stop(): Promise<void> {
    this.abort.abort();
    this.unlisten?.();
    this.unlisten = undefined;
    await this.runner.stop();
  }

  /** One new job is there: send one idle worker (if any) to the queue, at once. */
  wakeOne(): void {
    this.runner.wakeOne();
  }

  /** New work may be there. */
  wake(): void {
    this.runner.wake();
  }

  /**
   * Everything paused, or the destination paused or waiting out an outage: no claims. An offline
   * destination whose next try is due is tried with one real job (a trial) before the others go.
   */
  private gate(): Gate {
    if (this.ctx.globallyPaused()) return { run: false, retryInMs: 5000 };
    const may = this.ctx.health.mayRun(this.target.id);
    if (!may.ok) return { run: false, retryInMs: may.wakeAt ? Math.min(may.wakeAt - Date.now(), 60_000) : 5000 };
    return { run: true, trial: may.probe };
  }

  private emitCopy(f: FileRow, state: 'pending' | 'uploading' | 'synced' | 'failed' | 'skipped', error?: string): void {
    this.ctx.bus.emit({ type: 'copy', file_key: fileKey(f.root_id, f.rel_path), target_id: this.target.id, state, ...(error ? { error } : {}) });
  }

  /** Run one job; its transfer is told when its file went (or was already) there, with the bytes sent. */
  private async runJob(c: JobControl): Promise<JobOutcome> {
    const { catalog } = this.ctx;
    const tr = c.transfer;
    const { job } = c;
    const f = catalog.fileById(job.file_id);
    if (!f || !f.sha256 || this.ctx.held?.(f.id)) {
      catalog.drop(job);
      return 'skipped';
    }
    const root = this.ctx.root(f.root_id);
    const label = `"${f.rel_path}"`;
    if (!root) {
      catalog.transaction(() => {
        if (catalog.drop(job)) catalog.setCopyState(f.id, this.target.id, 'skipped', { last_error: 'Its folder was removed from Triplicate, so it is no longer backed up.' });
      });
      return 'skipped';
    }
    const abs = join(root.path, ...diskRel(f).split('/'));

    // A repair replaces a damaged copy (Catalog.queueRepair): from this computer when the file is
    // here, else from a good copy on another destination.
    const repair = job.kind === REPAIR;
    let from: RepairSource | undefined;
    // Is the file still the one we hashed?
    let st;
    try {
      st = await stat(abs);
    } catch (e) {
      if (errnoOf(e) !== 'ENOENT') return this.fileFailure(job, f, describeLocalError(e, label), errorText(e));
      if (!repair) return this.fileGone(job, f, root);
      from = this.repairSource(f, job.attempts);
      if (!from) {
        return this.fileFailure(job, f, `The copy of ${label} on ${this.target.label} is damaged, the file is no longer on this computer, and no other destination has a good copy to repair it from.`, 'no good copy to repair from');
      }
    }
    if (st) {
      if (st.size !== f.size || Math.trunc(st.mtimeMs) !== f.mtime_ms) return this.fileChanged(job, f, root);
      try {
        await access(abs, constants.R_OK);
      } catch (e) {
        return this.fileFailure(job, f, describeLocalError(e, label), errorText(e));
      }
    }

    const key = objectKey(this.target.kind === 's3' || this.target.kind === 'folder' ? this.target.prefix : '', f.root_id, f.rel_path);
    catalog.setCopyState(f.id, this.target.id, 'uploading', { next_attempt_at: null });
    this.emitCopy(f, 'uploading');
    let hasher: BodyDigest | null = null;
    try {
      const existing = this.knownAbsent(f.root_id, key) ? null : await this.backend.head(key, c.signal);
      // A repair does not trust matching metadata: the damaged copy has it too.
      if (!repair && existing && existing.size === f.size && existing.sha256 === f.sha256 && !this.untrusted.has(key)) {
        tr.done(0);
        return this.finish(job, f, 'already-there', existing.lockedUntil);
      }
      if (existing && existing.sha256 && existing.sha256 !== f.sha256) await this.preserveVersion(key, existing.sha256, existing.size, existing.mtimeMs, existing.lastModified, f, c.signal);

      this.written.add(key);
      let lastEmit = 0;
      let lastBytes = 0;
      // each try reads the small file again; its digest is what the checks below read
      const openWhole = (): WholeFile => {
        lastBytes = 0;
        const w = new WholeFile(abs, f.size);
        hasher = w;
        return w;
      };
      const giveRoom = await this.room.take(Math.min(f.size, FILE_MEMORY), c.signal);
      let stored: ObjectInfo;
      try {
        stored = await this.backend.put(
          key,
          {
            size: f.size,
            open: () => {
              lastBytes = 0;
              if (from) return (hasher = this.openCopy(from, f, c.signal));
              if (f.size <= WHOLE_FILE_MAX) return openWhole().stream();
              // No MD5 for a streamed (bigger) file: hashing it costs ~1.5 ms of CPU per MiB, the
              // HEAD that verifies it instead one request, however big the file.
              const h = new HashingStream();
              hasher = h;
              return createReadStream(abs, { highWaterMark: 1 << 20 }).on('error', (e) => h.destroy(e)).pipe(h);
            },
            // A small file goes whole where the backend can take a buffer (the S3 PUT).
            ...(!from && f.size <= WHOLE_FILE_MAX
              ? {
                  whole: () => openWhole().read(),
                }
              : {}),
            // A copy read from another destination is streamed (the SDK cuts it into parts).
            ...(from
              ? {}
              : {
                  openReader: async () => {
                    lastBytes = 0;
                    const r = await FileBlockReader.open(abs, f.size);
                    hasher = r;
                    return r;
                  },
                }),
          },
          {
            sha256: f.sha256,
            mtimeMs: f.mtime_ms,
            contentType: contentTypeOf(f.rel_path),
            signal: c.signal,
            onProgress: (sent) => {
              this.meter.add(Math.max(0, sent - lastBytes));
              lastBytes = sent;
              const now = Date.now();
              if (now - lastEmit > 250) {
                lastEmit = now;
                this.ctx.bus.emit({ type: 'progress', target_id: this.target.id, file_key: fileKey(f.root_id, f.rel_path), bytes: sent, total: f.size });
              }
            },
          },
        );
      } finally {
        giveRoom();
      }
      const h = hasher as BodyDigest | null;
      // The request was answered: its body's buffer can serve the next upload.
      if (h instanceof WholeFile) h.recycle();
      // The bytes sent must be the bytes hashed, and the file must not have moved under us.
      const after = from ? undefined : await stat(abs).catch(() => null);
      const moved = after !== undefined && (!after || after.size !== f.size || Math.trunc(after.mtimeMs) !== f.mtime_ms);
      if (!h || h.sha256 !== f.sha256 || h.bytes !== f.size || moved) {
        // What landed on the target does not match its metadata: remove it, then hash again.
        await this.removeBad(key);
        if (from) return this.sourceDamaged(job, f, from);
        if (!after) return this.fileGone(job, f, root);
        return this.fileChanged(job, f, root);
      }
      // A single-part upload's ETag is the MD5 of the bytes the server stored (S3, R2, MinIO, B2,
      // s3rver; not SSE-KMS/SSE-C). A multipart one is not (S3's "<md5 of part md5s>-<parts>", or
      // on some servers a plain hex that is neither). Equal to the MD5 of the bytes we sent, it
      // checks the content itself, which the HEAD below does not (it compares the metadata we
      // sent). Once a HEAD on this lane showed the server keeps our metadata and answers such
      // ETags, a matching ETag stands for that HEAD; anything else (folder targets, multipart,
      // streamed files, other ETags) is HEADed as before.
      const sentMd5 = stored.singlePart ? h.md5 : undefined;
      const etagMatches = sentMd5 !== undefined && stored.etag !== undefined && stored.etag.toLowerCase() === sentMd5;
      if (this.etagsVouch && sentMd5 !== undefined && !etagMatches && stored.etag !== undefined && /^[0-9a-f]{32}$/i.test(stored.etag)) {
        // This server answers the MD5 of what it stored, and that is not what we sent: the bytes
        // were damaged on the way (a bad proxy, a flaky NIC). Its metadata looks right, so it must
        // go, or the next try would take it for the file already there.
        await this.removeBad(key, c.signal);
        throw new StorageError(
          'integrity',
          `${this.target.label} stored "${f.rel_path}" with different content than was sent (its checksum differs). Triplicate uploads it again.`,
          `ETag ${stored.etag} is not the MD5 ${sentMd5} of the bytes sent`,
        );
      }
      const byEtag = etagMatches && this.etagsVouch;
      if (!byEtag) {
        const check = await this.backend.head(key, c.signal);
        if (!check || check.size !== f.size || check.sha256 !== f.sha256) {
          throw new StorageError(
            'integrity',
            `${this.target.label} stored "${f.rel_path}" but it does not match after upload (${check ? `size ${check.size} of ${f.size}, checksum ${check.sha256 ? 'differs' : 'missing'}` : 'object missing'}). Triplicate uploads it again.`,
            'post-upload HEAD mismatch',
          );
        }
        if (etagMatches) this.etagsVouch = true;
      }
      this.verifiedBy[byEtag ? 'etag' : 'head']++;
      this.untrusted.delete(key);
      tr.done(f.size);
      const outcome = this.finish(job, f, 'synced', stored.lockedUntil);
      if (repair && outcome === 'synced') {
        const fk = fileKey(f.root_id, f.rel_path);
        const source = from ? from.target.label : 'this computer';
        this.ctx.bus.record({ level: 'info', kind: 'copy-repaired', message: `The damaged copy of "${fk}" on ${this.target.label} was replaced with a good one from ${source}.`, file_key: fk, target_id: this.target.id });
      }
      return outcome;
    } catch (e) {
      if (c.signal.aborted || (e instanceof StorageError && e.kind === 'aborted')) {
        // Stopping, or the job was fenced off: put it back untouched (a no-op when fenced).
        catalog.transaction(() => {
          if (catalog.release(job, 0, null, false)) catalog.setCopyState(f.id, this.target.id, 'pending');
        });
        return 'aborted';
      }
      if (e instanceof StorageError && e.kind === 'local') {
        if (from) return this.fileFailure(job, f, `The damaged copy of ${label} on ${this.target.label} could not be replaced: reading the good copy on ${from.target.label} failed.`, e.detail);
        return this.fileFailure(job, f, e.message, e.detail);
      }
      // The server refused the body because it does not match the SHA-256 it was announced with
      // (S3, R2, MinIO check it): when the bytes we read were other content, the file changed
      // (or, for a repair, the copy read is damaged too).
      const sent = hasher as BodyDigest | null;
      if (e instanceof StorageError && e.kind === 'integrity' && sent?.sha256 !== undefined && sent.sha256 !== f.sha256) return from ? this.sourceDamaged(job, f, from) : this.fileChanged(job, f, root);
      if (!(e instanceof StorageError) && errnoOf(e)) {
        // The local read failed mid-upload.
        if (errnoOf(e) === 'ENOENT') return this.fileGone(job, f, root);
        return this.fileFailure(job, f, describeLocalError(e, label), errorText(e));
      }
      const se = e instanceof StorageError ? e : new StorageError('unknown', `Copying "${f.rel_path}" to ${this.target.label} failed: ${errorText(e)}.`, errorText(e));
      if (se.targetLevel) return this.targetDown(job, f, se);
      return this.fileFailure(job, f, se.message, se.detail);
    }
  }

  /** Delete an object whose bytes do not match its metadata; one that stays is not trusted again. */
  private async removeBad(key: string, signal?: AbortSignal): Promise<void> {
    await this.backend.delete(key, signal).then(
      () => this.untrusted.delete(key),
      () => this.untrusted.add(key),
    );
  }

  /** `lockedUntil`: until when the object cannot be deleted (Object Lock), when known. */
  private finish(job: JobRow, f: FileRow, outcome: 'synced' | 'already-there', lockedUntil?: number): JobOutcome {
    const { catalog } = this.ctx;
    const state = catalog.transaction(() => {
      if (!catalog.complete(job)) return null;
      const cur = catalog.fileById(f.id);
      if (cur && cur.sha256 === f.sha256) {
        catalog.markCopySynced(f.id, this.target.id, f.sha256!, f.size, Date.now(), lockedUntil ?? null);
        return 'synced' as const;
      }
      // The file changed while this copy was made: its new content has its own job.
      catalog.setCopyState(f.id, this.target.id, 'pending');
      return 'pending' as const;
    });
    if (!state) return 'stale';
    this.ctx.health.reportSuccess(this.target.id);
    this.emitCopy(f, state);
    return state === 'synced' ? outcome : 'requeued';
  }

  /** A destination whose copy is synced with the file's SHA-256, to repair from; each try takes the next one. */
  private repairSource(f: FileRow, attempts: number): RepairSource | undefined {
    const good = (this.ctx.repairSources?.() ?? []).filter((s) => {
      if (s.target.id === this.target.id) return false;
      const c = this.ctx.catalog.copy(f.id, s.target.id);
      return c?.state === 'synced' && c.sha256 === f.sha256;
    });
    return good.length ? good[attempts % good.length] : undefined;
  }

  /** The bytes of the copy on another destination, hashed as they stream into the upload. */
  private openCopy(from: RepairSource, f: FileRow, signal: AbortSignal): HashingStream {
    const h = new HashingStream();
    void from.backend.get(objectKey(from.target.prefix, f.root_id, f.rel_path), { signal }).then(
      (got) => pipeline(got.body, h, () => undefined), // a failing source destroys h, which fails the upload
      (e: Error) => h.destroy(e),
    );
    return h;
  }

  /** The copy read to repair this one is damaged too: it is marked for repair, and this repair waits for another good copy. */
  private sourceDamaged(job: JobRow, f: FileRow, from: RepairSource): JobOutcome {
    const fk = fileKey(f.root_id, f.rel_path);
    const reason = `The copy of "${fk}" on ${from.target.label} is damaged (its bytes do not match its checksum).`;
    this.ctx.catalog.queueRepair(f.id, from.target.id, f.size, reason);
    this.ctx.bus.record({ level: 'error', kind: 'copy-damaged', message: reason, file_key: fk, target_id: from.target.id });
    return this.fileFailure(job, f, `The damaged copy of "${fk}" on ${this.target.label} could not be replaced from ${from.target.label}: that copy is damaged too.`, 'source copy damaged');
  }

  /** Keep the previous content restorable before it is overwritten (server-side copy). */
  private async preserveVersion(key: string, sha256: string, size: number, mtimeMs: number | undefined, lastModified: number | undefined, f: FileRow, signal: AbortSignal): Promise<void> {
    const savedAt = Date.now();
    // The name carries our own clock (saved_at), like the catalog row: a rebuilt catalog reads it back.
    void lastModified;
    const vkey = versionKey(this.target.prefix, this.target.versionsPrefix, f.root_id, f.rel_path, savedAt, sha256);
    await this.backend.copy(key, vkey, signal);
    // The copy locked itself (immutableDays) when it was written: a date taken after it is never earlier.
    const days = this.target.kind === 's3' ? (this.target.immutableDays ?? 0) : 0;
    const lockedUntil = days > 0 ? retainUntil(Date.now(), days) : null;
    this.ctx.catalog.addVersion({ target_id: this.target.id, root_id: f.root_id, rel_path: f.rel_path, object_key: vkey, sha256, size, mtime_ms: mtimeMs ?? null, saved_at: savedAt, reason: 'overwritten', locked_until: lockedUntil });
  }

  /** The file is no longer on disk. Copies already made stay; a copy never made is skipped. */
  private async fileGone(job: JobRow, f: FileRow, root: RootConfig): Promise<JobOutcome> {
    const { catalog } = this.ctx;
    const rule = await this.ctx.whenGone?.(f, root, job.attempts);
    if (rule && 'retryAt' in rule) {
      const again = catalog.transaction(() => {
        if (!catalog.release(job, rule.retryAt, rule.reason, true)) return false;
        catalog.setCopyState(f.id, this.target.id, 'pending', { last_error: rule.reason, next_attempt_at: rule.retryAt });
        return true;
      });
      if (!again) return 'stale';
      this.emitCopy(f, 'pending', rule.reason);
      return 'retry';
    }
    const reason = rule?.skip ?? `It was deleted or moved from ${root.label} before it could be copied to ${this.target.label}.`;
    const done = catalog.transaction(() => {
      if (!catalog.drop(job)) return false;
      catalog.setLocalState(f.id, 'missing');
      const c = catalog.copy(f.id, this.target.id);
      if (c && c.state !== 'synced') catalog.setCopyState(f.id, this.target.id, 'skipped', { last_error: reason });
      return true;
    });
    if (!done) return 'stale';
    this.ctx.bus.emit({ type: 'file', file_key: fileKey(f.root_id, f.rel_path), change: 'missing' });
    this.emitCopy(f, 'skipped', reason);
    return 'skipped';
  }

  /** The file changed since it was hashed: hash it again (which re-queues this job), never mark synced. */
  private async fileChanged(job: JobRow, f: FileRow, root: RootConfig): Promise<JobOutcome> {
    const { catalog } = this.ctx;
    const r = await this.ctx.ingestor.ingest(root, diskRel(f));
    if (r === 'same' || r === 'reappeared') {
      // Only the mtime moved: nothing new to hash; run the job again right away.
      catalog.release(job, 0, null, false);
    } else if (r === 'unstable' || r === 'error') {
      catalog.transaction(() => {
        if (catalog.release(job, Date.now() + 5_000, 'The file is still changing.', false)) catalog.setCopyState(f.id, this.target.id, 'pending');
      });
    } else if (!catalog.complete(job)) {
      return 'stale';
    }
    this.emitCopy(f, 'pending');
    return 'requeued';
  }

  private fileFailure(job: JobRow, f: FileRow, message: string, detail: string): JobOutcome {
    const { catalog, bus } = this.ctx;
    const steps = this.ctx.backoffSeconds();
    const attempts = job.attempts + 1;
    if (attempts > steps.length) {
      const reason = `${message} Triplicate gave up after ${attempts} tries; press Retry when it is fixed.`;
      const ok = catalog.transaction(() => {
        if (!catalog.drop(job)) return false;
        catalog.setCopyState(f.id, this.target.id, 'failed', { attempts, last_error: reason, error_detail: detail });
        return true;
      });
      if (!ok) return 'stale';
      bus.record({ level: 'error', kind: 'copy-failed', message: reason, file_key: fileKey(f.root_id, f.rel_path), target_id: this.target.id, detail });
      this.emitCopy(f, 'failed', reason);
      return 'failed';
    }
    const next = Date.now() + steps[attempts - 1]! * 1000;
    const ok = catalog.transaction(() => {
      if (!catalog.release(job, next, message, true)) return false;
      catalog.setCopyState(f.id, this.target.id, 'pending', { attempts, last_error: `${message} Next try at ${clockTime(next)}.`, error_detail: detail, next_attempt_at: next });
      return true;
    });
    if (!ok) return 'stale';
    this.emitCopy(f, 'pending', message);
    return 'retry';
  }

  private targetDown(job: JobRow, f: FileRow, e: StorageError): JobOutcome {
    const { catalog } = this.ctx;
    const next = this.ctx.health.reportFailure(this.target.id, e);
    catalog.transaction(() => {
      if (catalog.release(job, next, e.message, false)) catalog.setCopyState(f.id, this.target.id, 'pending', { last_error: `Waiting for ${this.target.label}: ${e.message}`, error_detail: e.detail, next_attempt_at: next });
    });
    this.emitCopy(f, 'pending', e.message);
    return 'target-down';
  }
}

// The restore service: restore runs (missing files, a selection, a folder as it was on a date, one
// version), their workers on the durable job queue (lane 'restore', run by jobs/runner.ts with a
// lease and a fence: a crash or a restart resumes where it stopped), the version listing, and the scheduled verification and prune
// jobs (lanes 'verify:<target>' and 'prune:<target>').
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { mkdirSync, statSync, type Stats } from 'node:fs';
import { stat, unlink } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import type { GuardHold, PruneReport, RestoreProgress, RestoreRequest, VerifyReport, VerifyTargetReport, VersionInfo } from '../../../shared/api';
import { restoreCeiling, type RootConfig, type TargetConfig } from '../../../shared/config';
import { formatBytes, plural } from '../../../shared/format';
import { KeyError, fileKey, parseFileKey } from '../../../shared/keys';
import { heldFolderNote } from '../../../shared/status';
import { StorageError, isStorageError, type StorageBackend } from '../backends/types';
import type { BackendUse } from '../core/targets';
import { diskRel, type FileRow, type JobRow } from '../catalog/catalog';
import type { EngineContext, EngineService } from '../core/context';
import type { AdaptiveConcurrency } from '../jobs/adaptive';
import { JobLane, type JobControl } from '../jobs/runner';
import { badRequest, conflict, notFound, type ApiRegistry, type Handlers } from '../http/router';
import type { Ingestor } from '../sync/ingest';
import { log } from '../log';
import { sha256File } from '../sync/hash';
import { errorText } from '../util';
import { pruneLeftNote, pruneTarget } from './prune';
import { rebuildFromTarget, type RebuildReport } from './rebuild';
import { currentKey, fileExistedAt, sourcesFor, type Source, type Want } from './sources';
import { RESTORE_LANE, RestoreStore, type Outcome, type RestoreRunRow } from './store';
import { verifyTarget } from './verify';
import { DestinationError, IntegrityError, destinationState, fetchToFile, prepareDir, safeJoin, safeJoinRaw, tempPathFor } from './writer';

export interface RestoreJobPayload {
  run: string;
  /** Absolute destination path, fixed when the run is planned (a resumed job writes the same place). */
  dest: string;
  /** The folder the destination must stay inside. */
  destRoot: string;
  want: Want;
  /** Read from this target only. */
  from?: string;
  /** Replace a different local file: never, always, or only when that file's content is backed up. */
  overwrite: boolean | 'backed-up';
  /** dest is the file's own place in its storage root: the catalog is updated afterwards. */
  inPlace: boolean;
}

interface PlanItem {
  file: FileRow;
  payload: Omit<RestoreJobPayload, 'run'>;
  size: number;
}

class RateMeter {
  private samples: { t: number; bytes: number }[] = [];
  add(bytes: number): void {
    this.samples.push({ t: Date.now(), bytes });
    if (this.samples.length > 2048) this.samples.splice(0, 1024);
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
    return Math.round((sum * 1000) / Math.max(1000, now - first));
  }
}

const OWNER = `${hostname()}:${process.pid}:restore`;
const FINAL = new Set(['done', 'failed', 'cancelled']);
/** A target that failed at the network level is tried last for this long. */
const DOWN_MS = 60_000;
/** Times a file waits for a target that is down before it counts as failed. */
const MAX_WAITS = 6;
/** Files looked at on disk between two turns of the event loop while a restore of what is missing is planned. */
const STAT_BATCH = 1000;

/** What restores ask of the sync service (wired by the composition root). */
export interface RestoreDeps {
  /** The one path into the catalog: a restored file is cataloged (or vouched for) as the scanner would. */
  ingestor: Pick<Ingestor, 'ingest' | 'vouch'>;
  /** Copies were queued (a repair, a restored file): the upload lanes look at their queues. */
  wakeLanes(): void;
  /** Folders the burst guard holds: retention leaves their files alone. */
  heldFolders(): ReadonlySet<string>;
  /** The burst guard's holds in force: bringing back "every missing file" leaves their folders to its two answers. */
  holds(): readonly GuardHold[];
}

export interface RestoreServiceOptions {
  /** Run the scheduled verification and prune jobs (default true; the CLI turns them off). */
  scheduled?: boolean;
}

export class RestoreService implements EngineService {
  readonly name = 'restore';
  readonly store: RestoreStore;
  private running = false;
  /** Aborts verification and prune when the service stops. */
  private stopAc = new AbortController();
  private readonly workers: JobLane;
  /**
   * Files restored at once: chosen by the runner from the throughput measured (jobs/adaptive.ts),
   * starting at `restore.concurrency` or RESTORE_CEILING, the most it may; halved when a destination
   * asks a restore's read to slow down, and climbing back from there. A file counts until its bytes
   * are in and checked (its hand-off).
   */
  readonly adapt: AdaptiveConcurrency;
  /** Jobs running; `finishing`: its content is in and checked, only fsync, rename and catalog are left. */
  private readonly inflight = new Map<number, { runId: string; ctl: JobControl; bytes: number; finishing: boolean }>();
  private readonly meters = new Map<string, RateMeter>();
  private readonly lastEmit = new Map<string, number>();
  private readonly downUntil = new Map<string, number>();
  private dirCache = new Set<string>();
  private timer: NodeJS.Timeout | null = null;
  private unlisten: (() => void) | undefined;
  private maintenance: Promise<void> = Promise.resolve();
  private readonly locks = new Map<string, Promise<unknown>>();
  /** Tests: the outcome of each file. */
  onOutcome?: (fileKey: string, outcome: Outcome, info: { message?: string; from?: string }) => void;

  constructor(
    private readonly ctx: EngineContext,
    private readonly deps: RestoreDeps,
    api: ApiRegistry | undefined,
    private readonly opts: RestoreServiceOptions = {},
  ) {
    this.store = new RestoreStore(ctx.catalog);
    this.workers = new JobLane({
      lane: RESTORE_LANE,
      owner: OWNER,
      queue: ctx.catalog,
      // Restores start at the cap, not low as uploads do: doubling up from a few, each step opens
      // cold connections whose first files take several round trips (TCP slow start), so the step
      // measures as no gain and goes back; 5,000 photos over a 60 ms link then spent most of the
      // restore climbing back one step at a time (docs/benchmarks.md).
      adaptive: { start: restoreCeiling(ctx.config.get().restore), ceiling: () => restoreCeiling(ctx.config.get().restore) },
      leaseMs: () => this.leaseMs(),
      pollMs: 5000,
      run: (c) => this.runJob(c),
      crashed: (job, e) => this.crashed(job, e),
    });
    this.adapt = this.workers.adaptive!;
    api?.register(this.handlers());
  }

  // ---- lifecycle -----------------------------------------------------------------------------

  start(): void {
    this.startWorkers(this.opts.scheduled !== false);
  }

  /** Start the restore workers; `scheduled`: also the daily verification and prune jobs. The CLI runs workers only. */
  startWorkers(scheduled = false): void {
    if (this.running) return;
    this.running = true;
    this.stopAc = new AbortController();
    for (const r of this.store.activeRuns()) this.maybeFinishRun(r.id);
    // each try of a restore's reads that the server refused as too many (core/targets.ts)
    this.unlisten = this.ctx.targets.onFailure('restore', (e) => {
      if (e instanceof StorageError && e.congestion) this.adapt.congested();
    });
    this.workers.start();
    if (scheduled) {
      this.timer = setInterval(() => this.tickMaintenance(), 60_000);
      this.timer.unref?.();
      setTimeout(() => this.tickMaintenance(), 5_000).unref?.();
    }
  }

  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.stopAc.abort();
    this.unlisten?.();
    this.unlisten = undefined;
    await this.workers.stop();
    await this.maintenance.catch(() => undefined);
    await Promise.allSettled([...this.locks.values()]);
  }

  /** The target's one backend (core/targets.ts), as `use` retries; a target switched off meanwhile: an error for that file. */
  private backendFor(t: TargetConfig, use: BackendUse = 'restore'): StorageBackend {
    const b = this.ctx.targets.backend(t.id, use);
    if (!b) throw new StorageError('not_found', `${t.label} is switched off in Triplicate.`, `target ${t.id} disabled`);
    return b;
  }

  private targets(): TargetConfig[] {
    return this.ctx.targets.enabled();
  }

  private root(id: string): RootConfig | undefined {
    return this.ctx.config.root(id);
  }

  // ---- API -----------------------------------------------------------------------------------

  handlers(): Handlers {
    return {
      restoreMissing: ({ body }) => this.restoreMissing(body ?? {}),
      bulkRestore: ({ body }) => this.restoreMissing(body ?? {}),
      restoreFiles: ({ body }) => this.restoreFiles(body ?? ({} as RestoreRequest)),
      restoreStatus: () => this.status(),
      cancelRestore: ({ params }) => this.cancel(params.id),
      listVersions: ({ query }) => ({ key: query.key, versions: this.listVersions(query.key) }),
      restoreVersion: ({ body }) => this.restoreVersion(body.key, body.version_id, body.to),
      verifyNow: ({ body }) => this.verifyNow({ full: body?.full === true, target: body?.target }),
      pruneNow: ({ body }) => this.pruneNow({ dryRun: body?.dry_run === true, target: body?.target }),
    };
  }

  status(): { current?: RestoreProgress; recent: RestoreProgress[] } {
    const recent = this.store.recentRuns(10).map((r) => this.progressOf(r));
    const current = recent.find((r) => r.state === 'running' || r.state === 'planning');
    return current ? { current, recent } : { recent };
  }

  progress(id: string): RestoreProgress | undefined {
    const r = this.store.run(id);
    return r ? this.progressOf(r) : undefined;
  }

  private progressOf(r: RestoreRunRow): RestoreProgress {
    let inflight = 0;
    let fetching = 0;
    for (const j of this.inflight.values()) {
      if (j.runId !== r.id) continue;
      inflight += j.bytes;
      if (!j.finishing) fetching++;
    }
    const rate = FINAL.has(r.state) ? 0 : (this.meters.get(r.id)?.rate() ?? 0);
    const bytesDone = Math.min(r.bytes_total || Infinity, r.bytes_done + inflight);
    const p: RestoreProgress = {
      id: r.id,
      state: r.state,
      files_total: r.files_total,
      files_done: r.files_done,
      files_failed: r.files_failed,
      files_skipped: r.files_skipped,
      bytes_total: r.bytes_total,
      bytes_done: Number.isFinite(bytesDone) ? bytesDone : r.bytes_done + inflight,
      rate_bps: rate,
      created_at: r.created_at,
    };
    if (r.state === 'running') p.restoring = { now: fetching, chosen: this.adapt.level, max: this.adapt.ceiling };
    if (rate > 0) p.eta_seconds = Math.max(0, Math.round((r.bytes_total - p.bytes_done) / rate));
    if (r.message) p.message = r.message;
    if (r.finished_at) p.finished_at = r.finished_at;
    try {
      const req = JSON.parse(r.request) as { what?: string };
      if (req.what) p.what = req.what;
    } catch {}
    return p;
  }

  private emit(runId: string, force = false): void {
    const now = Date.now();
    if (!force && now - (this.lastEmit.get(runId) ?? 0) < 250) return;
    this.lastEmit.set(runId, now);
    const p = this.progress(runId);
    if (p) this.ctx.bus.emit({ type: 'restore', progress: p });
  }

  // ---- planning ------------------------------------------------------------------------------

  /**
   * Every cataloged file missing from local disk, back to its place (`root` / `prefix` narrow it).
   * A folder the burst guard holds is left out (asked for by name: refused): its missing files are
   * the burst's, which the roll-back puts back as they were before it, not as the latest copies.
   */
  async restoreMissing(body: { root?: string; prefix?: string; from?: string }): Promise<RestoreProgress> {
    const from = this.checkFrom(body.from);
    const holds = new Map(this.deps.holds().map((h) => [h.root_id, h]));
    const asked = body.root ?? body.prefix?.split('/')[0];
    const askedHold = asked === undefined ? undefined : holds.get(asked);
    if (askedHold) throw conflict(heldFolderNote(askedHold));
    const { where, args } = this.selection({ root: body.root, prefix: body.prefix });
    const rows: FileRow[] = [];
    const leftOut = new Map<string, number>();
    for (const f of this.ctx.catalog.db.prepare(`SELECT f.* FROM files f WHERE f.local_state = 'missing'${where ? ` AND ${where}` : ''} ORDER BY f.root_id, f.rel_path`).all(...args) as FileRow[]) {
      if (holds.has(f.root_id)) leftOut.set(f.root_id, (leftOut.get(f.root_id) ?? 0) + 1);
      else rows.push(f);
    }
    // The catalog may not know yet (the scan has not run, or refused an emptied folder as a
    // possibly unmounted share): a file the catalog calls present but that is not on disk counts.
    const seen = new Set(rows.map((f) => f.id));
    for (const root of this.ctx.config.enabledRoots()) {
      if (body.root && body.root !== root.id) continue;
      if (body.prefix && !`${body.prefix}/`.startsWith(`${root.id}/`)) continue;
      if (holds.has(root.id)) continue;
      try {
        if (!(await stat(root.path)).isDirectory()) continue;
      } catch {
        continue; // not there at all (a disk not plugged in): nothing is written into a bare mount point
      }
      const { where: w2, args: a2 } = this.selection({ root: root.id, prefix: body.prefix });
      const present = this.ctx.catalog.db.prepare(`SELECT f.* FROM files f WHERE f.local_state = 'present' AND ${w2} ORDER BY f.rel_path`).all(...a2) as FileRow[];
      // A plain stat that does not throw for "not there" (as destinationState): no error object, no
      // thread-pool round trip; 5,000 took 0.48 s through fs.promises, all before the first fetch.
      // The engine's other work runs between batches.
      for (let i = 0; i < present.length; i++) {
        const f = present[i]!;
        if (i % STAT_BATCH === STAT_BATCH - 1) await new Promise<void>((r) => setImmediate(r));
        if (seen.has(f.id)) continue;
        try {
          if (destinationState(safeJoinRaw(root.path, diskRel(f))).kind === 'none') rows.push(f);
        } catch {
          // unreadable (permissions): not known to be missing
        }
      }
    }
    const items: PlanItem[] = [];
    let noBackup = 0;
    const noRoot = new Set<string>();
    for (const f of rows) {
      const root = this.root(f.root_id);
      if (!root) {
        noRoot.add(f.root_id);
        continue;
      }
      if (!this.hasBackup(f, from)) {
        noBackup++;
        continue;
      }
      items.push({ file: f, size: f.size, payload: { dest: safeJoinRaw(root.path, diskRel(f)), destRoot: root.path, want: { mode: 'latest' }, from, overwrite: false, inPlace: true } });
    }
    const notes: string[] = [];
    if (noBackup) notes.push(`${plural(noBackup, 'missing file')} ${noBackup === 1 ? 'has' : 'have'} no copy on ${from ? this.ctx.targets.label(from) : 'any destination'} (deleted before it was backed up).`);
    for (const [rootId, missing] of leftOut) notes.push(heldFolderNote({ ...holds.get(rootId)!, missing }));
    if (noRoot.size) notes.push(`Files of ${[...noRoot].map((r) => `"${r}"`).join(', ')} are not restored: that folder is not in the configuration (add it, or restore to another folder).`);
    const what = `${plural(items.length, 'missing file')}${body.prefix ? ` in ${body.prefix}` : body.root ? ` of ${this.rootLabel(body.root)}` : ''}`;
    return this.startRun(what, { kind: 'missing', ...body }, items, 0, notes);
  }

  /** A selection (keys, folder prefix or search text), newest content or as it was at `at`, to its place or to `to`. */
  restoreFiles(req: RestoreRequest & { all?: boolean }): RestoreProgress {
    const from = this.checkFrom(req.from);
    const to = req.to ? this.checkTo(req.to) : undefined;
    if (req.at !== undefined && (!Number.isFinite(req.at) || req.at <= 0)) throw badRequest('"at" must be a time in milliseconds since 1970.', ['at']);
    let files: FileRow[];
    if (req.keys?.length) {
      files = [];
      for (const k of req.keys) {
        const f = this.fileOf(k);
        if (!f) throw notFound(`There is no file "${k}" in the catalog.`);
        files.push(f);
      }
    } else if (req.prefix || req.q || req.all) {
      const { where, args } = this.selection({ prefix: req.prefix, q: req.q });
      files = this.ctx.catalog.db.prepare(`SELECT f.* FROM files f${where ? ` WHERE ${where}` : ''} ORDER BY f.root_id, f.rel_path`).all(...args) as FileRow[];
    } else {
      throw badRequest('Choose what to restore: a list of files (keys), a folder (prefix) or a search text (q).', ['keys', 'prefix', 'q']);
    }
    const items: PlanItem[] = [];
    let skipped = 0;
    let noBackup = 0;
    const noRoot = new Set<string>();
    const want: Want = req.at !== undefined ? { mode: 'at', at: req.at } : { mode: 'latest' };
    for (const f of files) {
      let dest: string;
      let destRoot: string;
      if (to) {
        destRoot = to;
        try {
          dest = safeJoin(to, `${f.root_id}/${f.rel_path}`);
        } catch {
          continue;
        }
      } else {
        const root = this.root(f.root_id);
        if (!root) {
          noRoot.add(f.root_id);
          continue;
        }
        destRoot = root.path;
        dest = safeJoinRaw(root.path, diskRel(f));
      }
      if (want.mode === 'at') {
        if (!fileExistedAt(this.store, f, want.at)) continue; // not there at that time: not part of the folder then
        if (!sourcesFor(this.ctx.catalog, this.store, this.sourceTargets(from), f, want).length) {
          noBackup++;
          continue;
        }
      } else {
        if (!to && f.local_state === 'present' && sameOnDisk(dest, f)) {
          skipped++; // already in its place
          continue;
        }
        if (!this.hasBackup(f, from)) {
          noBackup++;
          continue;
        }
      }
      items.push({ file: f, size: f.size, payload: { dest, destRoot, want, from, overwrite: req.overwrite === true, inPlace: !to } });
    }
    const notes: string[] = [];
    if (noBackup) notes.push(`${plural(noBackup, 'file')} ${noBackup === 1 ? 'has' : 'have'} no copy to restore from.`);
    if (noRoot.size) notes.push(`Files of ${[...noRoot].map((r) => `"${r}"`).join(', ')} are not restored: that folder is not in the configuration (restore them to another folder).`);
    if (skipped) notes.push(`${plural(skipped, 'file')} ${skipped === 1 ? 'is' : 'are'} already in place.`);
    const scope = req.keys?.length ? (req.keys.length === 1 ? `"${req.keys[0]}"` : plural(req.keys.length, 'file')) : req.prefix ? req.prefix : req.q ? `files matching "${req.q}"` : 'every file';
    const what = `${scope}${want.mode === 'at' ? ` as it was on ${new Date(want.at).toISOString().replace('T', ' ').slice(0, 16)} UTC` : ''}${to ? ` to ${to}` : ''}`;
    return this.startRun(what, { kind: 'files', ...req }, items, skipped, notes);
  }

  /** One version (`<target>:<id>` or `<target>:current` from listVersions), to its place or to `to`. */
  restoreVersion(key: string, versionId: string, to?: string): RestoreProgress {
    const f = this.fileOf(key);
    if (!f) throw notFound(`There is no file "${key}" in the catalog.`);
    const m = /^([a-z0-9][a-z0-9_-]{0,39}):(current|\d+)$/.exec(versionId ?? '');
    if (!m) throw badRequest(`"${versionId}" is not a version id from the list of versions.`, ['version_id']);
    const target = this.ctx.config.get().targets.find((t) => t.id === m[1]);
    if (!target) throw notFound(`There is no destination "${m[1]}".`);
    const id = m[2] === 'current' ? 'current' : Number(m[2]);
    const want: Want = { mode: 'version', target: target.id, id };
    const src = sourcesFor(this.ctx.catalog, this.store, [target], f, want);
    if (!src.length) throw notFound(`The version "${versionId}" of "${key}" is not on ${target.label} (any more).`);
    let dest: string;
    let destRoot: string;
    if (to) {
      destRoot = this.checkTo(to);
      dest = safeJoin(destRoot, `${f.root_id}/${f.rel_path}`);
    } else {
      const root = this.root(f.root_id);
      if (!root) throw conflict(`The folder "${f.root_id}" is no longer backed up here; restore the version to another folder.`);
      destRoot = root.path;
      dest = safeJoinRaw(root.path, diskRel(f));
    }
    const saved = src[0]!;
    const item: PlanItem = { file: f, size: saved.size ?? f.size, payload: { dest, destRoot, want, from: target.id, overwrite: to ? false : 'backed-up', inPlace: !to } };
    return this.startRun(`"${key}" (version of ${target.label})${to ? ` to ${to}` : ''}`, { kind: 'version', key, version_id: versionId, to }, [item], 0, [], 10);
  }

  private startRun(what: string, request: Record<string, unknown>, items: PlanItem[], skipped: number, notes: string[], priority = 0): RestoreProgress {
    const id = `r${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
    const bytes = items.reduce((a, i) => a + i.size, 0);
    const { catalog } = this.ctx;
    const message = notes.length ? notes.join(' ') : null;
    catalog.transaction(() => {
      this.store.insertRun({ id, state: items.length ? 'running' : 'done', request: { ...request, what }, files_total: items.length, bytes_total: bytes, files_skipped: skipped, message: items.length ? message : [`Nothing to restore.`, ...notes].join(' ') });
      for (const it of items) catalog.enqueue(RESTORE_LANE, id, it.file.id, { priority, payload: { ...it.payload, run: id } });
      if (!items.length) this.store.setRunState(id, 'done', [`Nothing to restore.`, ...notes].join(' '));
    });
    if (items.length) {
      this.meters.set(id, new RateMeter());
      this.ctx.bus.record({ level: 'info', kind: 'restore-started', message: `Restoring ${what} (${formatBytes(bytes)}).${message ? ` ${message}` : ''}` });
      this.workers.wake();
    }
    this.emit(id, true);
    return this.progress(id)!;
  }

  cancel(id: string): RestoreProgress {
    const r = this.store.run(id);
    if (!r) throw notFound(`There is no restore "${id}".`);
    if (FINAL.has(r.state)) return this.progressOf(r);
    const queued = this.store.queuedJobsOf(id);
    this.ctx.catalog.transaction(() => {
      this.store.deleteQueuedJobs(id);
      this.store.setRunState(id, 'cancelled', `Cancelled after ${plural(r.files_done, 'file')}; the files already restored are kept.`);
    });
    // A job that ran when the engine stopped may have left its temp file.
    for (const j of queued) {
      const p = parsePayload(j.payload);
      if (p) void unlink(tempPathFor(p.dest, tempTag(j.file_id, id))).catch(() => undefined);
    }
    for (const j of this.inflight.values()) if (j.runId === id) j.ctl.abort();
    this.ctx.bus.record({ level: 'info', kind: 'restore-cancelled', message: `The restore of ${this.whatOf(r)} was cancelled after ${plural(r.files_done, 'file')}.` });
    this.emit(id, true);
    return this.progress(id)!;
  }

  private whatOf(r: RestoreRunRow): string {
    try {
      return (JSON.parse(r.request) as { what?: string }).what ?? 'files';
    } catch {
      return 'files';
    }
  }

  private rootLabel(id: string): string {
    return this.ctx.config.get().roots.find((r) => r.id === id)?.label ?? id;
  }

  private checkFrom(from: string | undefined): string | undefined {
    if (from === undefined || from === '') return undefined;
    if (!this.targets().some((t) => t.id === from)) throw notFound(`There is no enabled destination "${from}".`);
    return from;
  }

  private checkTo(to: string): string {
    if (typeof to !== 'string' || !isAbsolute(to)) throw badRequest(`"${to}" is not a full folder path; choose the folder to restore into.`, ['to']);
    const abs = resolve(to);
    try {
      mkdirSync(abs, { recursive: true });
      if (!statSync(abs).isDirectory()) throw new Error('not a folder');
    } catch (e) {
      throw badRequest(`Triplicate cannot use "${abs}" to restore into (${errorText(e)}). Choose another folder.`, ['to']);
    }
    return abs;
  }

  private fileOf(key: string): FileRow | undefined {
    let k;
    try {
      k = parseFileKey(key);
    } catch (e) {
      if (e instanceof KeyError) throw badRequest(`"${key}" is not a file key: ${e.message}.`, ['key']);
      throw e;
    }
    return this.ctx.catalog.fileByPath(k.rootId, k.relPath);
  }

  /** SQL for a folder prefix `<root>/<sub/>`, a root id or a search text. */
  private selection(s: { root?: string; prefix?: string; q?: string }): { where: string; args: string[] } {
    const where: string[] = [];
    const args: string[] = [];
    const like = (x: string) => x.replace(/[\\%_]/g, (c) => `\\${c}`);
    if (s.root) {
      where.push('f.root_id = ?');
      args.push(s.root);
    }
    if (s.prefix) {
      const slash = s.prefix.indexOf('/');
      const rootId = slash < 0 ? s.prefix : s.prefix.slice(0, slash);
      const sub = slash < 0 ? '' : s.prefix.slice(slash + 1).normalize('NFC');
      where.push('f.root_id = ?');
      args.push(rootId);
      if (sub) {
        where.push("f.rel_path LIKE ? ESCAPE '\\'");
        args.push(`${like(sub)}%`);
      }
    }
    if (s.q) {
      where.push("(f.root_id || '/' || f.rel_path) LIKE ? ESCAPE '\\'");
      args.push(`%${like(s.q.normalize('NFC'))}%`);
    }
    return { where: where.join(' AND '), args };
  }

  private hasBackup(f: FileRow, from?: string): boolean {
    return sourcesFor(this.ctx.catalog, this.store, this.sourceTargets(from), f, { mode: 'latest' }).length > 0;
  }

  /** Enabled targets in priority order; with `from`, that one only. A target that just failed goes last. */
  private sourceTargets(from?: string): TargetConfig[] {
    const all = this.targets().filter((t) => !from || t.id === from);
    const now = Date.now();
    const up = all.filter((t) => (this.downUntil.get(t.id) ?? 0) <= now);
    const down = all.filter((t) => (this.downUntil.get(t.id) ?? 0) > now);
    return [...up, ...down];
  }

  // ---- versions ------------------------------------------------------------------------------

  listVersions(key: string): VersionInfo[] {
    const f = this.fileOf(key);
    if (!f) throw notFound(`There is no file "${key}" in the catalog.`);
    const rows = this.store.versionsOfFile(f.root_id, f.rel_path);
    const out: (VersionInfo & { prio: number })[] = [];
    for (const t of this.ctx.config.get().targets) {
      const c = this.ctx.catalog.copy(f.id, t.id);
      const hasCurrent = !!(c?.sha256 && c.synced_at != null);
      if (hasCurrent) out.push({ id: `${t.id}:current`, saved_at: c!.synced_at!, size: c!.size ?? f.size, sha256: c!.sha256!, target_id: t.id, deleted: f.local_state === 'missing', current: true, prio: t.priority });
      for (const r of rows) {
        if (r.target_id !== t.id) continue;
        if (r.reason === 'deleted') {
          // The open deletion of a missing file is the current entry (flagged deleted) already.
          if (r.gone_until == null && hasCurrent && c!.sha256 === r.sha256) continue;
          out.push({ id: `${t.id}:${r.id}`, saved_at: r.saved_at, size: r.size, sha256: r.sha256, target_id: t.id, deleted: true, current: false, prio: t.priority });
        } else {
          out.push({ id: `${t.id}:${r.id}`, saved_at: r.saved_at, size: r.size, sha256: r.sha256, target_id: t.id, deleted: false, current: false, prio: t.priority });
        }
      }
    }
    out.sort((a, b) => Number(b.current) - Number(a.current) || b.saved_at - a.saved_at || a.prio - b.prio);
    return out.map(({ prio: _p, ...v }) => v);
  }

  // ---- workers -------------------------------------------------------------------------------

  private crashed(job: JobRow, e: unknown): void {
    log.error(`restore job ${job.id} crashed: ${errorText(e)}`);
    const p = parsePayload(job.payload);
    if (p && job.attempts + 1 >= 5) this.finishJob(job, p, 'failed', 0, `A file could not be restored: ${errorText(e)}.`);
    else this.ctx.catalog.release(job, Date.now() + 30_000, errorText(e), true);
  }

  private leaseMs(): number {
    return this.ctx.config.get().sync.leaseSeconds * 1000;
  }

  /** c.handOff() once the file's bytes are all in and checked (only its fsync, rename and catalog update are left). */
  private async runJob(c: JobControl): Promise<void> {
    const { catalog } = this.ctx;
    const { job, signal } = c;
    const p = parsePayload(job.payload);
    const run = p ? this.store.run(p.run) : undefined;
    if (!p || !run || FINAL.has(run.state)) {
      catalog.drop(job);
      return;
    }
    const f = catalog.fileById(job.file_id);
    if (!f) return this.finishJob(job, p, 'failed', 0, `A file of this restore is no longer in the catalog.`);
    const key = fileKey(f.root_id, f.rel_path);
    const rel = p.inPlace ? diskRel(f) : `${f.root_id}/${f.rel_path}`;
    const sources = sourcesFor(catalog, this.store, this.sourceTargets(p.from), f, p.want);
    if (!sources.length) {
      if (p.want.mode === 'at') return this.finishJob(job, p, 'skipped', 0, `"${key}" did not exist at that time.`);
      return this.finishJob(job, p, 'failed', 0, `"${key}" cannot be restored: no destination${p.from ? ` (of ${this.ctx.targets.label(p.from)})` : ''} has a copy of it.`);
    }

    const slot = { runId: p.run, ctl: c, bytes: 0, finishing: false };
    this.inflight.set(job.id, slot);
    const temp = tempPathFor(p.dest, tempTag(f.id, p.run));
    try {
      // The destination: the same content already there counts as restored; other content is kept unless asked.
      try {
        await prepareDir(p.destRoot, p.dest, this.dirCache);
      } catch (e) {
        return await this.destinationFailed(job, p, e instanceof DestinationError ? e : new DestinationError(errorText(e), 'EUNKNOWN', false), key);
      }
      const here = destinationState(p.dest);
      if (here.kind === 'dir') return this.finishJob(job, p, 'failed', 0, `"${key}" cannot be restored: there is a folder with that name at ${p.dest}. Rename the folder, or restore to another folder.`);
      if (here.kind === 'file') {
        const shas = new Set(sources.map((s) => s.sha256));
        const needHash = p.overwrite === 'backed-up' || sources.some((s) => s.size === here.size);
        let local: string | null = null;
        if (needHash) {
          try {
            local = (await sha256File(p.dest, signal)).sha256;
          } catch (e) {
            if (signal.aborted) throw e;
            return this.finishJob(job, p, 'failed', 0, `"${key}" was not restored: the file already at ${p.dest} cannot be read (${errorText(e)}).`);
          }
        }
        if (local && shas.has(local)) {
          await this.afterWrite(f, p, local, here.size, []);
          return this.finishJob(job, p, 'done', 0);
        }
        if (!this.mayReplace(p.overwrite, local, f)) {
          return this.finishJob(job, p, 'skipped', 0, `"${key}" was not restored: a different file is already at ${p.dest}. Restore it to another folder, or choose to replace the file.`);
        }
      }

      const damaged: Damaged[] = [];
      const errors: string[] = [];
      let waitedForTarget = false;
      for (const s of sources) {
        if (signal.aborted) break;
        try {
          const r = await fetchToFile({
            backend: this.backendFor(s.target),
            key: s.key,
            dest: p.dest,
            temp,
            expectedSha: s.sha256,
            expectedSize: s.size,
            mtimeMs: s.mtimeMs,
            signal: signal,
            fsync: true,
            onVerified: () => {
              slot.finishing = true;
              c.transfer.done(slot.bytes);
              c.handOff();
            },
            where: p.destRoot,
            rel,
            onBytes: (n) => {
              slot.bytes += n;
              this.meters.get(p.run)?.add(n);
              this.emit(p.run);
            },
            beforeRename: async () => {
              const now = destinationState(p.dest);
              if (now.kind === 'dir' || (now.kind === 'file' && here.kind === 'none' && p.overwrite !== true)) {
                throw new DestinationError(`"${key}" was not restored: a file appeared at ${p.dest} while it was being restored.`, 'EEXIST', false);
              }
            },
          });
          slot.bytes = 0;
          await this.afterWrite(f, p, r.sha256, r.size, damaged, s.mtimeMs, r.stat);
          return this.finishJob(job, p, 'done', r.size, undefined, s.target.id);
        } catch (e) {
          slot.bytes = 0;
          if (e instanceof DestinationError) return await this.destinationFailed(job, p, e, key);
          if (e instanceof IntegrityError) {
            damaged.push({ ...s, corrupt: e.kind === 'bytes' });
            errors.push(`the copy on ${s.target.label} is damaged (${e.message})`);
            this.ctx.bus.record({ level: 'error', kind: 'restore-damaged', message: `The copy of "${key}" on ${s.target.label} is damaged: ${e.message}. Triplicate restores it from another destination if one has it.`, file_key: key, target_id: s.target.id });
            continue;
          }
          if (isStorageError(e)) {
            if (e.kind === 'aborted' || signal.aborted) break;
            if (e.kind === 'not_found') {
              if (s.current) damaged.push({ ...s, corrupt: false });
              errors.push(`it is not on ${s.target.label}`);
              continue;
            }
            if (e.targetLevel) {
              this.downUntil.set(s.target.id, Date.now() + DOWN_MS);
              waitedForTarget = true;
              errors.push(`${s.target.label} did not answer (${e.message})`);
              continue;
            }
            errors.push(`${s.target.label}: ${e.message}`);
            continue;
          }
          throw e;
        }
      }
      if (signal.aborted) {
        const cur = this.store.run(p.run);
        if (!cur || FINAL.has(cur.state)) catalog.drop(job);
        else catalog.release(job, 0, null, false);
        return;
      }
      if (waitedForTarget && job.attempts + 1 < MAX_WAITS) {
        const next = Date.now() + 15_000 * (job.attempts + 1);
        catalog.release(job, next, errors.join('; '), true);
        this.store.setRunMessage(p.run, `Waiting for a destination to answer: ${errors.join('; ')}. Triplicate tries again by itself.`);
        this.emit(p.run, true);
        return;
      }
      return this.finishJob(job, p, 'failed', 0, `"${key}" could not be restored: ${errors.join('; ')}.`);
    } finally {
      this.inflight.delete(job.id);
    }
  }

  private mayReplace(overwrite: RestoreJobPayload['overwrite'], localSha: string | null, f: FileRow): boolean {
    if (overwrite === true) return true;
    if (overwrite !== 'backed-up' || !localSha) return false;
    // Only content that a destination holds may be replaced: nothing is lost.
    if (this.ctx.catalog.copiesOfFile(f.id).some((c) => c.sha256 === localSha && c.synced_at != null && c.state === 'synced')) return true;
    return this.store.versionsOfFile(f.root_id, f.rel_path).some((v) => v.sha256 === localSha && v.reason === 'overwritten');
  }

  private async destinationFailed(job: JobRow, p: RestoreJobPayload, e: DestinationError, key: string): Promise<void> {
    if (!e.fatal) return this.finishJob(job, p, 'failed', 0, e.message);
    // Every file would fail the same way: stop the run with one clear sentence.
    const { catalog } = this.ctx;
    const ok = catalog.transaction(() => {
      if (!catalog.complete(job)) return false;
      this.store.count(p.run, 'failed', 0);
      return true;
    });
    if (!ok) return;
    this.onOutcome?.(key, 'failed', { message: e.message });
    const r = this.store.run(p.run);
    if (r && !FINAL.has(r.state)) {
      const queued = this.store.queuedJobsOf(p.run);
      catalog.transaction(() => {
        this.store.deleteQueuedJobs(p.run);
        this.store.setRunState(p.run, 'failed', `${e.message} (${plural(r.files_done, 'file')} restored before it stopped.)`);
      });
      for (const j of queued) {
        const jp = parsePayload(j.payload);
        if (jp) void unlink(tempPathFor(jp.dest, tempTag(j.file_id, p.run))).catch(() => undefined);
      }
      // A file whose content is complete and checked still gets its rename (the disk has it already).
      for (const j of this.inflight.values()) if (j.runId === p.run && !j.finishing) j.ctl.abort();
      this.ctx.bus.record({ level: 'error', kind: 'restore-failed', message: e.message, detail: e.code });
    }
    this.emit(p.run, true);
  }

  /** Record a restored file in the catalog (so it shows present and is not uploaded again) and repair damaged copies. */
  private async afterWrite(f: FileRow, p: RestoreJobPayload, sha256: string, size: number, damaged: Damaged[], mtimeSet: number | null = null, written?: Stats): Promise<void> {
    const { catalog, bus } = this.ctx;
    const key = fileKey(f.root_id, f.rel_path);
    if (!p.inPlace) return;
    const root = this.root(f.root_id);
    if (!root) return;
    // The watcher sees the restored file appear: ingest takes the hash checked here instead of reading it again.
    if (written?.isFile() && written.size === size) {
      this.deps.ingestor.vouch(f.root_id, diskRel(f), { sha256, size, ino: written.ino, mtimeMs: written.mtimeMs, ctimeMs: written.ctimeMs });
    }
    if (f.sha256 === null || sha256 === f.sha256) {
      // The mtime we set reads back as the same millisecond (see fetchToFile); else ask the disk.
      let mtime = written ? Math.trunc(written.mtimeMs) : (mtimeSet ?? f.mtime_ms);
      if (mtimeSet == null && !written) {
        try {
          mtime = Math.trunc(statSync(p.dest).mtimeMs);
        } catch {}
      }
      const targets = this.targets();
      // A corrupt copy goes first: the uploader trusts an object whose metadata matches. A copy
      // whose metadata names other content stays: the upload keeps it as a version.
      for (const s of damaged) if (s.current && s.corrupt) await this.ctx.targets.backend(s.target.id, 'restore')?.delete(s.key).catch(() => undefined);
      const queued = catalog.transaction(() => {
        catalog.recordFile({ root_id: f.root_id, rel_path: f.rel_path, disk_rel: diskRel(f), size, mtime_ms: mtime, sha256, kind: f.kind });
        let n = 0;
        for (const t of targets) {
          const c = catalog.copy(f.id, t.id);
          const bad = damaged.some((s) => s.current && s.target.id === t.id);
          if (bad || !c || c.state === 'failed' || c.state === 'skipped' || (c.state === 'synced' && c.sha256 !== sha256)) {
            catalog.queueUpload(f.id, t.id, size);
            n++;
          }
        }
        return n;
      });
      for (const s of damaged) {
        if (!s.current) continue;
        bus.record({ level: 'error', kind: 'copy-damaged', message: `The copy of "${key}" on ${s.target.label} was damaged or missing. It was restored from another destination, and ${s.target.label} gets a fresh copy.`, file_key: key, target_id: s.target.id });
      }
      bus.emit({ type: 'file', file_key: key, change: 'restored' });
      if (queued) this.deps.wakeLanes();
    } else {
      // An older version put back in place: a change like any other (hashed, uploaded, the current content kept as a version).
      await this.deps.ingestor.ingest(root, diskRel(f));
      this.deps.wakeLanes();
    }
  }

  private finishJob(job: JobRow, p: RestoreJobPayload, outcome: Outcome, bytes: number, message?: string, from?: string): void {
    const { catalog, bus } = this.ctx;
    const ok = catalog.transaction(() => {
      if (!catalog.complete(job)) return false;
      this.store.count(p.run, outcome, bytes);
      return true;
    });
    if (!ok) return;
    const f = catalog.fileById(job.file_id);
    const key = f ? fileKey(f.root_id, f.rel_path) : String(job.file_id);
    this.onOutcome?.(key, outcome, { message, from });
    if (message && outcome !== 'done') bus.record({ level: outcome === 'failed' ? 'error' : 'warn', kind: outcome === 'failed' ? 'restore-file-failed' : 'restore-file-skipped', message, file_key: f ? key : undefined });
    this.maybeFinishRun(p.run);
    this.emit(p.run, outcome !== 'done');
  }

  private maybeFinishRun(id: string): void {
    const r = this.store.run(id);
    if (!r || FINAL.has(r.state)) return;
    if (this.store.hasJobsLeft(id)) return;
    const state = r.files_failed > 0 && r.files_done === 0 ? 'failed' : 'done';
    const parts = [`Restored ${plural(r.files_done, 'file')} (${formatBytes(r.bytes_done)}).`];
    if (r.files_failed) parts.push(`${plural(r.files_failed, 'file')} could not be restored: see Activity for why.`);
    if (r.files_skipped) parts.push(`${plural(r.files_skipped, 'file')} skipped (already there, or a different file in the way).`);
    const message = parts.join(' ');
    this.store.setRunState(id, state, message);
    this.meters.delete(id);
    this.dirCache = new Set();
    this.ctx.bus.record({ level: r.files_failed ? 'warn' : 'info', kind: 'restore-done', message: `Restore of ${this.whatOf(r)}: ${message}` });
    this.emit(id, true);
  }

  /** Wait until a run is finished (CLI, tests). */
  async waitFor(id: string, opts: { timeoutMs?: number; onProgress?: (p: RestoreProgress) => void; everyMs?: number } = {}): Promise<RestoreProgress> {
    const until = Date.now() + (opts.timeoutMs ?? 24 * 3600_000);
    let last = 0;
    // Woken by the run's last progress event at once; polled too (a run finished by another process).
    let wakeUp: (() => void) | null = null;
    const off = this.ctx.bus.on((e) => {
      if (e.type === 'restore' && e.progress.id === id && FINAL.has(e.progress.state)) wakeUp?.();
    });
    try {
      while (Date.now() < until) {
        const p = this.progress(id);
        if (!p) throw new Error(`no restore ${id}`);
        if (FINAL.has(p.state)) return p;
        if (opts.onProgress && Date.now() - last >= (opts.everyMs ?? 2000)) {
          last = Date.now();
          opts.onProgress(p);
        }
        await new Promise<void>((res) => {
          const t = setTimeout(res, 50);
          wakeUp = () => {
            clearTimeout(t);
            res();
          };
        });
        wakeUp = null;
      }
    } finally {
      off();
    }
    throw new Error(`restore ${id} did not finish in time`);
  }

  // ---- disaster recovery ---------------------------------------------------------------------

  async rebuild(targetId: string, onProgress?: (r: RebuildReport) => void): Promise<RebuildReport> {
    const t = this.targets().find((x) => x.id === targetId);
    if (!t) throw notFound(`There is no enabled destination "${targetId}".`);
    return rebuildFromTarget(this.store, t, this.backendFor(t, 'maintenance'), { onProgress, concurrency: 16 });
  }

  // ---- verification and retention ------------------------------------------------------------

  private withLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(name) ?? Promise.resolve();
    const next = prev.catch(() => undefined).then(fn);
    this.locks.set(name, next);
    void next.finally(() => {
      if (this.locks.get(name) === next) this.locks.delete(name);
    }).catch(() => undefined);
    return next;
  }

  async verifyNow(opts: { full?: boolean; target?: string; signal?: AbortSignal } = {}): Promise<VerifyReport> {
    const started = Date.now();
    const targets = this.targets().filter((t) => !opts.target || t.id === opts.target);
    if (opts.target && !targets.length) throw notFound(`There is no enabled destination "${opts.target}".`);
    const reports: VerifyTargetReport[] = [];
    for (const t of targets) reports.push(await this.verifyOne(t, { full: opts.full === true, signal: opts.signal }));
    const problems = reports.reduce((a, r) => a + r.missing + r.damaged, 0);
    const unreachable = reports.filter((r) => r.error);
    const checked = reports.reduce((a, r) => a + r.checked, 0);
    const read = reports.reduce((a, r) => a + r.bytes_read, 0);
    let summary = `Checked ${plural(checked, 'copy', 'copies')} on ${plural(reports.length, 'destination')} and re-read ${formatBytes(read)}: `;
    summary += problems ? `${plural(problems, 'copy', 'copies')} damaged or missing (being repaired from this computer, or from another destination that has a good copy).` : 'all good.';
    // A check that checked nothing proves nothing: never "good" (a cron job would call it healthy forever).
    if (!checked && !problems) {
      const empty = reports.filter((r) => !r.error).map((r) => r.label);
      summary = !reports.length
        ? 'Nothing was checked: no destination is set up (or none is enabled). Add one under Destinations, then check again.'
        : `Nothing was checked:${empty.length ? ` there is no copy on ${empty.join(' or ')} yet.` : ''}`;
    }
    if (unreachable.length) summary += ` ${unreachable.map((r) => r.error).join(' ')}`;
    return { started_at: started, finished_at: Date.now(), full: opts.full === true, ok: checked > 0 && problems === 0 && unreachable.length === 0, summary, targets: reports };
  }

  private verifyOne(t: TargetConfig, o: { full: boolean; signal?: AbortSignal; onTick?: () => void }): Promise<VerifyTargetReport> {
    return this.withLock(`verify:${t.id}`, async () => {
      const backend = this.backendFor(t, 'maintenance');
      const signal = o.signal ? AbortSignal.any([o.signal, this.stopAc.signal]) : this.stopAc.signal;
      const r = await verifyTarget({ catalog: this.ctx.catalog, store: this.store, bus: this.ctx.bus, wake: () => this.deps.wakeLanes() }, t, backend, {
        full: o.full,
        readBudget: this.ctx.config.get().restore.verifyReadBytes,
        signal,
        onTick: o.onTick,
      });
      this.ctx.catalog.kvSet(`verify:last:${t.id}`, String(Date.now()));
      const bad = r.missing + r.damaged;
      this.ctx.bus.record({
        level: bad || r.error ? 'error' : 'info',
        kind: 'verify-done',
        target_id: t.id,
        message:
          r.error ??
          (r.checked === 0 && !bad
            ? `Nothing was checked on ${t.label}: it holds no copies yet.`
            : `Checked ${plural(r.checked, 'copy', 'copies')} on ${t.label} and re-read ${plural(r.files_read, 'file')} (${formatBytes(r.bytes_read)}): ${bad ? `${plural(bad, 'problem')} found` : 'all good'}.`),
      });
      return r;
    });
  }

  async pruneNow(opts: { dryRun?: boolean; target?: string; now?: number } = {}): Promise<PruneReport> {
    const now = opts.now ?? Date.now();
    const targets = this.targets().filter((t) => !opts.target || t.id === opts.target);
    if (opts.target && !targets.length) throw notFound(`There is no enabled destination "${opts.target}".`);
    const out: PruneReport['targets'] = [];
    const leftNotes: string[] = [];
    for (const t of targets) {
      try {
        const r = await this.pruneOne(t, { now, dryRun: opts.dryRun === true });
        out.push({ target_id: t.id, ...r });
        const left = pruneLeftNote(t.label, r);
        if (left) leftNotes.push(left);
      } catch (e) {
        out.push({ target_id: t.id, versions_deleted: 0, files_expired: 0, bytes_freed: 0, versions_kept: 0, error: `${t.label} could not be pruned: ${errorText(e)}` });
      }
    }
    const del = out.reduce((a, r) => a + r.versions_deleted, 0);
    const exp = out.reduce((a, r) => a + r.files_expired, 0);
    const freed = out.reduce((a, r) => a + r.bytes_freed, 0);
    const verb = opts.dryRun ? 'would remove' : 'removed';
    const held = out.reduce((a, r) => a + (r.versions_held ?? 0), 0);
    const heldNote = held ? ` ${plural(held, 'version')} of folders the burst guard holds ${held === 1 ? 'was' : 'were'} left alone until you choose what to do on the Overview.` : '';
    const summary = `Retention ${verb} ${plural(del, 'old version')} and ${plural(exp, 'deleted file')} (${formatBytes(freed)}).${heldNote}${leftNotes.map((n) => ` ${n}`).join('')}${out.filter((r) => r.error).map((r) => ` ${r.error}`).join('')}`;
    return { now, dry_run: opts.dryRun === true, summary, targets: out };
  }

  private pruneOne(t: TargetConfig, o: { now: number; dryRun: boolean; onTick?: () => void }) {
    return this.withLock(`prune:${t.id}`, async () => {
      const backend = this.backendFor(t, 'maintenance');
      const r = await pruneTarget({ catalog: this.ctx.catalog, store: this.store, bus: this.ctx.bus, root: (id) => this.root(id), heldFolders: () => this.deps.heldFolders() }, t, backend, { now: o.now, dryRun: o.dryRun, signal: this.stopAc.signal, onTick: o.onTick });
      if (!o.dryRun) {
        this.ctx.catalog.kvSet(`prune:last:${t.id}`, String(Date.now()));
        const left = pruneLeftNote(t.label, r);
        if (r.versions_deleted || r.files_expired || left) {
          this.ctx.bus.record({
            level: r.delete_refused ? 'warn' : 'info',
            kind: 'prune-done',
            target_id: t.id,
            message: `Retention on ${t.label}: removed ${plural(r.versions_deleted, 'old version')} and ${plural(r.files_expired, 'deleted file')} (${formatBytes(r.bytes_freed)}).${left ? ` ${left}` : ''}`,
          });
        }
      }
      return r;
    });
  }

  /** Scheduled jobs: one queued job per (kind, target) whose run_after is the next due time. */
  private tickMaintenance(): void {
    if (!this.running) return;
    this.maintenance = this.maintenance.then(() => this.runDue()).catch((e) => log.warn(`maintenance: ${errorText(e)}`));
  }

  private async runDue(): Promise<void> {
    const { catalog } = this.ctx;
    const cfg = this.ctx.config.get();
    for (const t of this.targets()) {
      for (const kind of ['verify', 'prune'] as const) {
        if (!this.running) return;
        const hours = kind === 'verify' ? cfg.restore.verifyIntervalHours : cfg.restore.pruneIntervalHours;
        if (!(hours > 0)) continue;
        const interval = hours * 3600_000;
        const lane = `${kind}:${t.id}`;
        if (!catalog.jobFor(lane, kind, 0)) {
          const lastKey = `${kind}:last:${t.id}`;
          let last = Number(catalog.kvGet(lastKey));
          if (!Number.isFinite(last) || last <= 0) {
            last = Date.now();
            catalog.kvSet(lastKey, String(last));
          }
          catalog.enqueue(lane, kind, 0, { runAfter: last + interval });
        }
        const job = catalog.claim(lane, OWNER, this.leaseMs());
        if (!job) continue;
        const tick = () => catalog.heartbeat(job, this.leaseMs());
        try {
          if (kind === 'verify') await this.verifyOne(t, { full: false, onTick: tick });
          else await this.pruneOne(t, { now: Date.now(), dryRun: false, onTick: tick });
          catalog.transaction(() => {
            if (catalog.complete(job)) catalog.enqueue(lane, kind, 0, { runAfter: Date.now() + interval });
          });
        } catch (e) {
          log.warn(`${kind} of ${t.label}: ${errorText(e)}`);
          catalog.release(job, Date.now() + 3600_000, errorText(e), true);
        }
      }
    }
  }
}

/** The file at `path` has the cataloged size and mtime (what the scanner trusts too). */
function sameOnDisk(path: string, f: FileRow): boolean {
  try {
    const st = statSync(path);
    return st.isFile() && st.size === f.size && Math.trunc(st.mtimeMs) === f.mtime_ms;
  } catch {
    return false;
  }
}

type Damaged = Source & { corrupt: boolean };

function tempTag(fileId: number, runId: string): string {
  return `${fileId}-${runId.slice(-6)}`;
}

function parsePayload(text: string | null): RestoreJobPayload | null {
  if (!text) return null;
  try {
    const p = JSON.parse(text) as RestoreJobPayload;
    return p && typeof p.run === 'string' && typeof p.dest === 'string' ? p : null;
  } catch {
    return null;
  }
}

export { currentKey };

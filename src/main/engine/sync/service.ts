// The sync service: what keeps the copies: the scan of every folder, the watchers and the
// stabilizer, the ingest into the catalog, one upload lane per enabled destination with its health
// and backoff, pause and retry, and the status the overview, the tray and `GET .../status` show.
import { existsSync, statfsSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { CopyCounts, ScanReport, SyncStatus, TargetStatus } from '../../../shared/api';
import type { Config, RootConfig, TargetConfig } from '../../../shared/config';
import { plural } from '../../../shared/format';
import { normalizeRelPath, parseFileKey } from '../../../shared/keys';
import { countFiles, heldPerTarget, summarize, type FileStateRow } from '../../../shared/status';
import { concurrencyCeiling, isNearby, START_CONCURRENCY } from '../backends/presets';
import type { StorageBackend } from '../backends/types';
import type { Catalog, FileRow } from '../catalog/catalog';
import { ConfigError } from '../config/config';
import type { EngineContext, EngineService } from '../core/context';
import { LoopLoad } from '../jobs/loop-load';
import { log } from '../log';
import { errorText } from '../util';
import { BurstGuard } from './guard';
import { TargetHealth } from './health';
import { Ingestor } from './ingest';
import { RootProblem, scanRoot } from './scanner';
import { TargetLane } from './uploader';
import { RootWatcher, Stabilizer } from './watcher';

const OWNER = `${hostname()}:${process.pid}`;

/** What the sync service asks of others; the composition root wires these to the media service. */
export interface SyncHooks {
  /** A file was cataloged as new or changed. */
  fileChanged?(fileId: number, root: RootConfig, relPath: string): void;
  /** A queued file is gone from disk: the media pipeline's rule for videos (see LaneContext.whenGone). */
  whenGone?(f: FileRow, root: RootConfig, attempts: number): Promise<{ skip: string } | { retryAt: number; reason: string } | undefined> | undefined;
  /** Conversions running, for the status. */
  transcoding?(): SyncStatus['transcoding'];
}

export interface SyncOptions {
  /** Start watchers (default true). */
  watch?: boolean;
  /** Scan the roots at start (default true). */
  scanOnStart?: boolean;
}

export class SyncService implements EngineService {
  readonly name = 'sync';
  readonly health: TargetHealth;
  readonly ingestor: Ingestor;
  readonly guard: BurstGuard;
  readonly stabilizer: Stabilizer;
  readonly lanes = new Map<string, TargetLane>();
  /** Folders that cannot be read or backed up whole, by root id: the overview says so. */
  readonly rootProblems = new Map<string, string>();
  readonly startedAt = Date.now();
  paused: boolean;
  private readonly watchers = new Map<string, RootWatcher>();
  /** How busy the engine's thread is: a cloud lane gives way to a nearby one while it is saturated. */
  private readonly loop = new LoopLoad();
  private timers: NodeJS.Timeout[] = [];
  private scanning = 0;
  private statusCache: { at: number; value: SyncStatus } | null = null;
  private aggCache: { key: string; counts: ReturnType<Catalog['copyCounts']>; states: ReturnType<Catalog['fileStates']>; held: FileStateRow[] } | null = null;
  private statusTimer: NodeJS.Timeout | null = null;
  private running = false;
  private scanAbort = new AbortController();
  private scanPromise: Promise<unknown> | null = null;
  private readonly catalog: Catalog;

  constructor(
    private readonly ctx: EngineContext,
    private readonly opts: SyncOptions = {},
    private readonly hooks: SyncHooks = {},
  ) {
    const { catalog, bus, config, targets } = ctx;
    this.catalog = catalog;
    this.health = new TargetHealth(catalog, bus, () => config.get().sync.backoffSeconds, (id) => targets.label(id));
    this.guard = new BurstGuard({
      catalog,
      bus,
      settings: () => config.get().sync.guard,
      rootLabel: (id) => config.get().roots.find((r) => r.id === id)?.label ?? id,
      rootPath: (id) => config.root(id)?.path,
      targetIds: () => targets.enabled().map((t) => t.id),
      quarantineDir: join(ctx.dataDir, 'quarantine'),
    });
    this.ingestor = new Ingestor({
      catalog,
      bus,
      config: () => config.get(),
      targetIds: () => targets.enabled().map((t) => t.id),
      ownData: ctx.ownData,
      onFileChanged: (fileId, root, rel) => this.hooks.fileChanged?.(fileId, root, rel),
      guard: this.guard,
    });
    this.stabilizer = new Stabilizer(this.ingestor, () => config.get().sync.stabilityMs);
    this.paused = catalog.kvGet('paused') === '1';
    bus.on((e) => {
      if (e.type === 'status' || e.type === 'progress') return;
      if (e.type === 'file' && e.change !== 'missing') this.wakeLanesFor();
      this.scheduleStatus();
    });
    config.onChange((prev, next) => this.follow(prev, next));
    // a Test connection's finding goes on the destination's card at once
    targets.checks.onChange(() => this.scheduleStatus());
  }

  private get cfg(): Config {
    return this.ctx.config.get();
  }

  // ---- lifecycle -----------------------------------------------------------------------------

  /** Before the other services start: jobs left running by a crash come back, lanes open. */
  open(): void {
    const { catalog } = this;
    const reclaimed = catalog.resetRunningJobs();
    catalog.resetUploadingCopies();
    if (reclaimed) log.info(`reclaimed ${reclaimed} jobs left running by a previous process`);
    for (const t of this.ctx.targets.enabled()) this.openLane(t);
  }

  /** After the other services: uploads, timers, watchers and the first scan begin. */
  async start(): Promise<void> {
    if (this.running) return;
    this.running = true;
    for (const lane of this.lanes.values()) {
      lane.primeListing(this.ctx.config.enabledRoots().map((r) => r.id));
      lane.start();
      void this.cleanupIncomplete(lane.backend, lane.target);
    }
    this.timers.push(
      setInterval(() => {
        if (this.catalog.reapExpiredLeases() > 0) this.wakeLanes();
      }, 15_000),
    );
    const rescanMin = this.cfg.sync.rescanIntervalMinutes;
    if (rescanMin > 0) this.timers.push(setInterval(() => void this.scanAll().catch(() => undefined), rescanMin * 60_000));
    for (const t of this.timers) t.unref?.();
    if (this.opts.watch !== false) await this.startWatchers();
    if (this.opts.scanOnStart !== false) this.scanPromise = this.scanAll().catch((e) => log.error(`initial scan failed: ${errorText(e)}`));
  }

  /** Wait for the scan started by start() (tests, the CLI's `status` after `serve`). */
  async initialScanDone(): Promise<void> {
    await this.scanPromise;
  }

  /** Scans, watchers and uploads stop (in-flight uploads are aborted and resumed next start). */
  async stop(): Promise<void> {
    this.running = false;
    this.loop.stop();
    this.scanAbort.abort();
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    if (this.statusTimer) clearTimeout(this.statusTimer);
    this.stabilizer.close();
    this.guard.close();
    await Promise.allSettled([...this.watchers.values()].map((w) => w.close()));
    this.watchers.clear();
    await Promise.allSettled([...this.lanes.values()].map((l) => l.stop()));
    this.lanes.clear();
  }

  /** After the other services stopped: the scan and the files being cataloged finish. */
  async drain(): Promise<void> {
    await this.scanPromise?.catch(() => undefined);
    await this.ingestor.drain();
  }

  private async cleanupIncomplete(backend: StorageBackend, target: TargetConfig): Promise<void> {
    if (!backend.cleanupIncomplete) return;
    try {
      // We hold the data-dir lock: any incomplete multipart upload under our prefix is a crash's leftover.
      const n = await backend.cleanupIncomplete(target.prefix, 0);
      if (n) log.info(`aborted ${n} incomplete multipart uploads on ${target.label}`);
    } catch (e) {
      log.debug?.(`multipart cleanup on ${target.label}: ${errorText(e)}`);
    }
  }

  private openLane(t: TargetConfig): TargetLane {
    // The target's one backend (core/targets.ts), as uploads retry.
    const backend = this.ctx.targets.backend(t.id, 'sync')!;
    const lane = new TargetLane(
      t,
      backend,
      {
        catalog: this.catalog,
        bus: this.ctx.bus,
        health: this.health,
        ingestor: this.ingestor,
        root: (id) => this.ctx.config.root(id),
        backoffSeconds: () => this.cfg.sync.backoffSeconds,
        leaseMs: () => this.cfg.sync.leaseSeconds * 1000,
        globallyPaused: () => this.paused,
        whenGone: (f, root, attempts) => this.hooks.whenGone?.(f, root, attempts),
        repairSources: () => [...this.lanes.values()].sort((a, b) => a.target.priority - b.target.priority).map((l) => ({ target: l.target, backend: l.backend })),
        held: (fileId) => this.guard.isHeld(fileId),
        onFailure: (fn) =>
          this.ctx.targets.onFailure('sync', (e, id) => {
            if (id === t.id) fn(e);
          }),
        givesWayTo: () => this.givesWayTo(t),
      },
      OWNER,
    );
    this.lanes.set(t.id, lane);
    this.catalog.queueMissingCopies(t.id);
    return lane;
  }

  /**
   * The nearby destination (a NAS, a disk) a cloud destination's uploads give way to: one that is
   * sending while the engine's thread is saturated. Its uploads are limited by this computer, the
   * cloud's by its link; both share the one thread, so the cloud keeps one file in flight
   * (GIVE_WAY_LEVEL) and the NAS finishes about as fast as it would alone.
   */
  private givesWayTo(t: TargetConfig): TargetConfig | undefined {
    if (isNearby(t)) return undefined;
    for (const l of this.lanes.values()) {
      if (l.activeUploads > 0 && isNearby(l.target) && this.loop.busy()) return l.target;
    }
    return undefined;
  }

  private async closeLane(id: string): Promise<void> {
    const lane = this.lanes.get(id);
    this.lanes.delete(id);
    await lane?.stop();
  }

  /** A new config is in use: lanes and watchers follow it, new folders are scanned. */
  private async follow(prev: Config, cfg: Config): Promise<void> {
    const same = (a: TargetConfig, b: TargetConfig) => JSON.stringify(a) === JSON.stringify(b);
    for (const old of prev.targets) {
      const now = cfg.targets.find((t) => t.id === old.id);
      // a lane goes with its target's settings, and with its backend (the pool's size follows other settings too)
      const lane = this.lanes.get(old.id);
      if (!now || !now.enabled || !same(old, now) || (lane && lane.backend !== this.ctx.targets.backend(old.id, 'sync'))) await this.closeLane(old.id);
    }
    for (const t of cfg.targets) {
      if (t.enabled && !this.lanes.has(t.id)) {
        const lane = this.openLane(t);
        lane.primeListing(cfg.roots.map((r) => r.id));
        lane.start();
      }
    }
    const newRoots: RootConfig[] = [];
    for (const old of prev.roots) {
      const now = cfg.roots.find((r) => r.id === old.id);
      if (!now || !now.enabled || JSON.stringify(now) !== JSON.stringify(old)) {
        await this.watchers.get(old.id)?.close();
        this.watchers.delete(old.id);
        this.rootProblems.delete(old.id);
      }
    }
    for (const r of cfg.roots) {
      if (r.enabled && !this.watchers.has(r.id)) {
        newRoots.push(r);
        if (this.opts.watch !== false) await this.startWatcher(r);
      }
    }
    this.statusCache = null;
    // After the 'config' event (the config store sends it once every listener followed).
    if (newRoots.length) setImmediate(() => {
      for (const r of newRoots) void this.scanAll({ root: r.id }).catch((e) => log.warn(`scan of ${r.id}: ${errorText(e)}`));
    });
  }

  /**
   * Whether uploads are being sent, or are due and will be at once: a destination that is paused
   * or waiting out an outage does not count (its queue may wait for hours).
   */
  uploadsBusy(now = Date.now()): boolean {
    for (const l of this.lanes.values()) {
      if (l.activeUploads > 0) return true;
      if (this.paused || !this.health.mayRun(l.target.id).ok) continue;
      if (this.catalog.hasRunnable(l.lane, now)) return true;
    }
    return false;
  }

  wakeLanes(): void {
    for (const l of this.lanes.values()) l.wake();
  }

  /**
   * A file was queued (one job per lane): wake one idle worker of each lane, at once. Not every
   * worker (a scan or a restore reports hundreds of files a second, and each wake is a claim), and
   * not after a delay (while the scan is still hashing, the workers keep running dry: a wake
   * coalesced over 20 ms left them idle up to 20 ms per file).
   */
  private wakeLanesFor(): void {
    for (const l of this.lanes.values()) l.wakeOne();
  }

  private async startWatchers(): Promise<void> {
    for (const root of this.ctx.config.enabledRoots()) await this.startWatcher(root);
  }

  private async startWatcher(root: RootConfig): Promise<void> {
    if (!existsSync(root.path)) return; // the scan reports the problem
    const w = new RootWatcher(root, this.ingestor, this.stabilizer, {
      usePolling: this.cfg.sync.usePolling,
      known: (rel, size, mtimeMs) => {
        try {
          const f = this.catalog.fileByPath(root.id, normalizeRelPath(rel));
          return !!f && !!f.sha256 && f.local_state === 'present' && f.size === size && f.mtime_ms === mtimeMs;
        } catch {
          return false;
        }
      },
      filesUnder: (relDir) => {
        try {
          return this.catalog.presentUnder(root.id, normalizeRelPath(relDir));
        } catch {
          return [];
        }
      },
    });
    try {
      await w.start();
      this.watchers.set(root.id, w);
    } catch (e) {
      log.warn(`cannot watch ${root.path}: ${errorText(e)}`);
    }
  }

  // ---- scanning ----------------------------------------------------------------------------

  async scanAll(opts: { dryRun?: boolean; root?: string } = {}): Promise<ScanReport[]> {
    const { bus, targets, config } = this.ctx;
    const roots = config.enabledRoots().filter((r) => !opts.root || r.id === opts.root);
    if (opts.root && roots.length === 0) throw new ConfigError(`There is no folder with the id "${opts.root}".`);
    const reports: ScanReport[] = [];
    this.scanning++;
    this.scheduleStatus();
    try {
      for (const root of roots) {
        bus.emit({ type: 'scan', root_id: root.id, phase: 'start' });
        try {
          const report = await scanRoot({ catalog: this.catalog, bus, config: () => config.get(), targetIds: () => targets.enabled().map((t) => t.id) }, this.ingestor, root, {
            dryRun: opts.dryRun,
            signal: this.scanAbort.signal,
            stabilityMs: this.cfg.sync.stabilityMs,
            onUnstable: (r, rel) => this.stabilizer.touch(r, rel),
          });
          if (!opts.dryRun && !this.scanAbort.signal.aborted) this.noteScanProblems(root, report);
          reports.push(report);
          bus.emit({ type: 'scan', root_id: root.id, phase: 'done', report });
        } catch (e) {
          if (!(e instanceof RootProblem)) throw e;
          const was = this.rootProblems.get(root.id);
          this.rootProblems.set(root.id, e.message);
          if (was !== e.message) bus.record({ level: 'error', kind: 'root-problem', message: e.message });
          reports.push({ root_id: root.id, files_seen: 0, files_new: 0, files_changed: 0, files_missing: 0, bytes_to_upload: 0, errors: [{ rel_path: '.', error: e.message }] });
          bus.emit({ type: 'scan', root_id: root.id, phase: 'done' });
        }
      }
      // Copies and jobs of what the scan added or changed (lanes also do this when they open).
      const changed = reports.some((r) => r.files_new + r.files_changed + r.files_missing > 0);
      if (!opts.dryRun && changed) for (const t of targets.enabled()) this.catalog.queueMissingCopies(t.id);
      this.wakeLanes();
      return reports;
    } finally {
      this.scanning--;
      this.scheduleStatus();
    }
  }

  /**
   * Files or folders the scan could not read (permission, a name that is not UTF-8, a key too long):
   * they are not backed up, so the overview must not say "all safe". Shown like a folder problem
   * until a scan reads everything; the event log gets the list once per change.
   */
  private noteScanProblems(root: RootConfig, report: ScanReport): void {
    const errs = report.errors;
    if (errs.length === 0) {
      this.rootProblems.delete(root.id);
      return;
    }
    const first = errs[0]!.error.replace(/\s*$/, '');
    const message =
      errs.length === 1
        ? `${first} It is not backed up until this is fixed; Triplicate looks again at its next scan.`
        : `${plural(errs.length, 'file or folder', 'files or folders')} in ${root.label} cannot be backed up. The first: ${first} Open Activity for the others; Triplicate looks again at its next scan.`;
    const was = this.rootProblems.get(root.id);
    this.rootProblems.set(root.id, message);
    if (was !== message) {
      this.ctx.bus.record({ level: 'warn', kind: 'scan-problems', message, detail: errs.slice(0, 100).map((x) => `${x.rel_path}: ${x.error}`).join('\n') });
    }
  }

  // ---- operations behind the admin API -------------------------------------------------------

  setPausedAll(paused: boolean): void {
    this.paused = paused;
    this.catalog.kvSet('paused', paused ? '1' : '0');
    this.ctx.bus.record({ level: 'info', kind: paused ? 'paused' : 'resumed', message: paused ? 'Backups are paused.' : 'Backups resumed.' });
    if (!paused) this.wakeLanes();
  }

  async initialSync(root?: string): Promise<{ queued: number; reports: ScanReport[] }> {
    const before = this.pendingJobs();
    const reports = await this.scanAll({ root });
    return { queued: Math.max(0, this.pendingJobs() - before), reports };
  }

  private pendingJobs(): number {
    return this.catalog.laneCounts().reduce((a, r) => a + (r.lane.startsWith('upload:') ? r.n : 0), 0);
  }

  retryFailed(target?: string): number {
    let n = 0;
    this.catalog.transaction(() => {
      for (const c of this.catalog.failedCopies(target)) {
        const f = this.catalog.fileById(c.file_id);
        if (!f || !this.lanes.has(c.target_id)) continue;
        this.catalog.queueUpload(c.file_id, c.target_id, f.size);
        n++;
      }
    });
    for (const t of this.ctx.targets.enabled()) if (!target || t.id === target) this.health.retryNow(t.id);
    if (n) this.ctx.bus.record({ level: 'info', kind: 'retry', message: `Trying ${plural(n, 'file')} again.` });
    this.wakeLanes();
    return n;
  }

  retryFile(key: string, target?: string): number {
    const { rootId, relPath } = parseFileKey(key);
    const f = this.catalog.fileByPath(rootId, relPath);
    if (!f) return 0;
    let n = 0;
    for (const t of this.ctx.targets.enabled()) {
      if (target && t.id !== target) continue;
      const c = this.catalog.copy(f.id, t.id);
      if (c?.state === 'synced') continue;
      this.catalog.queueUpload(f.id, t.id, f.size);
      this.health.retryNow(t.id);
      n++;
    }
    this.wakeLanes();
    return n;
  }

  pauseTarget(id: string, paused: boolean): TargetStatus {
    const t = this.ctx.targets.require(id);
    this.health.setPaused(id, paused);
    if (!paused) this.lanes.get(id)?.wake();
    this.statusCache = null;
    return this.status().targets[id] ?? this.targetStatusOf(t, []);
  }

  // ---- status --------------------------------------------------------------------------------

  private scheduleStatus(): void {
    this.statusCache = null;
    if (this.statusTimer) return;
    this.statusTimer = setTimeout(() => {
      this.statusTimer = null;
      if (!this.running || !this.catalog.db.open) return;
      try {
        this.ctx.bus.emit({ type: 'status', status: this.status() });
      } catch (e) {
        log.warn(`status: ${errorText(e)}`);
      }
    }, 500);
    this.statusTimer.unref?.();
  }

  private targetStatusOf(t: TargetConfig, counts: { target_id: string; state: string; n: number; bytes: number }[], held: FileStateRow[] = []): TargetStatus {
    const c = (state: string) => counts.find((r) => r.target_id === t.id && r.state === state);
    const h = this.health.view(t.id, t.enabled);
    const uploading = c('uploading')?.n ?? 0;
    const hold = heldPerTarget(held, t.id);
    const lane = this.lanes.get(t.id);
    const st: TargetStatus = {
      label: t.label,
      synced_count: c('synced')?.n ?? 0,
      synced_bytes: c('synced')?.bytes ?? 0,
      pending: (c('pending')?.n ?? 0) - hold.pending,
      uploading,
      failed: c('failed')?.n ?? 0,
      skipped: c('skipped')?.n ?? 0,
      held: hold.held,
      state: h.state === 'unknown' && (c('synced')?.n ?? 0) > 0 ? 'online' : h.state,
      // the meter averages the last seconds: once nothing is copied, no rate stays on the card
      rate_bps: uploading > 0 ? (lane?.meter.rate() ?? 0) : 0,
      sending: lane ? { now: lane.activeUploads, chosen: lane.adapt.level, max: lane.adapt.ceiling } : { now: 0, chosen: Math.min(START_CONCURRENCY, concurrencyCeiling(t)), max: concurrencyCeiling(t) },
    };
    const after = lane && this.givesWayTo(t);
    if (after && st.sending) st.sending.after = after.label;
    if (h.reason) st.reason = h.reason;
    if (h.detail) st.detail = h.detail;
    if (h.offline_since) st.offline_since = h.offline_since;
    if (h.next_try_at) st.next_try_at = h.next_try_at;
    const tested = this.ctx.targets.checks.of(t);
    if (tested) st.tested = tested;
    return st;
  }

  /** The status the overview, the tray and `GET .../status` show. Cached for 250 ms. */
  status(): SyncStatus {
    const now = Date.now();
    if (this.statusCache && now - this.statusCache.at < 250) return this.statusCache.value;
    const targets = this.ctx.targets.enabled();
    const ids = targets.map((t) => t.id);
    // The catalog's totals are kept by triggers; they are read again only once something was written.
    const aggKey = this.catalog.totalChanges();
    if (this.aggCache?.key !== aggKey) this.aggCache = { key: aggKey, counts: this.catalog.copyCounts(), states: this.catalog.fileStates(), held: this.guard.heldStates() };
    const { counts, states, held } = this.aggCache;
    const copies: CopyCounts = { pending: 0, uploading: 0, synced: 0, failed: 0, skipped: 0 };
    for (const r of counts) if (ids.includes(r.target_id)) copies[r.state] += r.n;
    // enabled destinations first, in priority order: the sentence names them in that order
    const tmap: Record<string, TargetStatus> = {};
    const perTarget: Record<`${string}_synced_count`, number> = {};
    for (const t of [...targets, ...this.cfg.targets.filter((x) => !x.enabled)]) {
      const st = this.targetStatusOf(t, counts, held);
      tmap[t.id] = st;
      perTarget[`${t.id}_synced_count`] = st.synced_count;
    }
    const f = countFiles(states, ids, held);
    const s: SyncStatus = {
      pending: f.pending,
      uploading: f.uploading,
      synced: f.synced,
      failed: f.failed,
      skipped: f.skipped,
      held: f.held,
      total_files: f.total_files,
      total_size_bytes: f.total_size_bytes,
      synced_size_bytes: f.synced_size_bytes,
      ...perTarget,
      copies,
      safe_files: f.safe_files,
      missing_local_files: f.missing_local_files,
      missing_safe_files: f.missing_safe_files,
      targets: tmap,
      scanning: this.scanning > 0,
      paused: this.paused,
      summary: '',
      health: 'green',
      disk: this.diskInfo(),
      started_at: this.startedAt,
      now,
    };
    const transcoding = this.hooks.transcoding?.();
    if (transcoding) s.transcoding = transcoding;
    const holds = this.guard.status();
    if (holds.length) s.guard = { holds };
    const folderProblem = [...this.rootProblems.values()][0];
    Object.assign(s, summarize(s, { folders: this.cfg.roots.length, ...(folderProblem ? { folderProblem } : {}) }));
    this.statusCache = { at: now, value: s };
    return s;
  }

  private diskInfo(): SyncStatus['disk'] {
    const out: NonNullable<SyncStatus['disk']> = [];
    for (const r of this.ctx.config.enabledRoots()) {
      try {
        const fs = statfsSync(r.path);
        out.push({ path: r.path, free_bytes: fs.bavail * fs.bsize, total_bytes: fs.blocks * fs.bsize });
      } catch {}
    }
    return out;
  }
}

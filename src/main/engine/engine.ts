// The composition root: builds everything from a config and a data dir; start() / stop().
// Runs under plain Node (the CLI, a service) or inside Electron's main process; imports nothing
// from 'electron'.
import { closeSync, existsSync, openSync, readFileSync, rmSync, statSync, statfsSync, watch as fsWatch, writeFileSync, writeSync, chmodSync, type FSWatcher } from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import type { CopyCounts, CopyInfo, FileRecord, Page, QueueQuery, ScanReport, SyncStatus, TargetStatus, TestConnectionResult } from '../../shared/api';
import { configSchema, type Config, type RootConfig, type TargetConfig } from '../../shared/config';
import { formatClock, plural } from '../../shared/format';
import { fileKey, normalizeRelPath, parseFileKey } from '../../shared/keys';
import { countFiles, summarize } from '../../shared/status';
import { createBackend } from './backends';
import { testConnection } from './backends/probe';
import type { StorageBackend } from './backends/types';
import { Catalog, type FileRow } from './catalog/catalog';
import { ConfigChangedError, ConfigError, defaultConfigPath, parseConfig, parseConfigText, problemsError, programPathChanges, programPathError, readConfigFile, type ConfigReadWhen } from './config/config';
import { withKeptSecrets, writeConfigKeepingSecrets, type SecretStore } from './config/secrets';
import { configFolderProblems, OwnData } from './config/folders';
import { EventBus } from './events';
import { configureLogging, log } from './log';
import { TargetHealth } from './sync/health';
import { Ingestor } from './sync/ingest';
import { RootProblem, scanRoot } from './sync/scanner';
import { TargetLane } from './sync/uploader';
import { RootWatcher, Stabilizer } from './sync/watcher';
import { EngineLockedError, errorText, randomToken } from './util';
import { tightenDataDir } from './private-files';
import { AdminServer } from './http/admin';
import { RestoreService } from './restore/service';
import { coreHandlers } from './http/admin-handlers';
import { installFileRoutes } from './http/files';
import { WebhookNotifier } from './notify';
import type { NotifyOptions } from '../../shared/notify';
import { installSharing } from './http/sharing';
import { MediaService } from './media/service';

export interface EngineOptions {
  dataDir: string;
  /** Config file; default `<data dir>/config.json`. */
  configFile?: string;
  /** Start watchers (default true). */
  watch?: boolean;
  /** Scan the roots at start (default true). */
  scanOnStart?: boolean;
  /** Log to the console too (default false: the CLI prints JSON lines). */
  logToConsole?: boolean;
  /** Override config server.adminPort / adminHost (tests use 0: any free port). */
  adminPort?: number;
  adminHost?: string;
  downloadPort?: number;
  /** Folder of the built web console (default: out/renderer of this package). */
  webRoot?: string;
  /** Notification rule timings (tests shorten them). */
  notify?: Partial<NotifyOptions>;
  /** Where the S3 keys and the tunnel token are kept instead of config.json (the desktop app's password store). */
  secrets?: SecretStore;
}

export interface EngineEndpoints {
  adminUrl: string;
  downloadUrl?: string;
  token: string;
}

/** Something that plugs into the engine's lifecycle (admin API, download server, media, restore, tunnel). */
export interface EngineService {
  name: string;
  start(engine: Engine): Promise<void> | void;
  stop(): Promise<void> | void;
}

export { EngineLockedError };

const ENGINE_OWNER = `${hostname()}:${process.pid}`;

/** config.json is looked at this often (ms) besides the folder watch, which may miss events. */
const CONFIG_POLL_MS = 2000;
/** An editor writes a file in several steps: read it once they stop (ms). */
const CONFIG_SETTLE_MS = 250;

export class Engine {
  readonly dataDir: string;
  readonly configPath: string;
  cfg: Config;
  readonly catalog: Catalog;
  readonly bus: EventBus;
  readonly health: TargetHealth;
  readonly ingestor: Ingestor;
  readonly stabilizer: Stabilizer;
  readonly lanes = new Map<string, TargetLane>();
  readonly backends = new Map<string, StorageBackend>();
  private readonly watchers = new Map<string, RootWatcher>();
  readonly rootProblems = new Map<string, string>();
  private readonly services: EngineService[] = [];
  private timers: NodeJS.Timeout[] = [];
  private scanning = 0;
  private statusCache: { at: number; value: SyncStatus } | null = null;
  private aggCache: { key: string; counts: ReturnType<Catalog['copyCounts']>; states: ReturnType<Catalog['fileStates']> } | null = null;
  private statusTimer: NodeJS.Timeout | null = null;
  private running = false;
  private lockPath: string;
  readonly startedAt = Date.now();
  readonly token: string;
  private readonly opts: EngineOptions;
  /** Endpoints filled in by the services that listen (admin API, download server). */
  endpoints: Partial<EngineEndpoints> = {};
  private scanAbort = new AbortController();
  /** The admin API + web console; services register their routes on it. */
  readonly admin: AdminServer;
  private scanPromise: Promise<unknown> | null = null;
  /** Triplicate's own files (data folder, config file): never backed up. */
  readonly ownData: OwnData;
  /** Hash of config.json as Triplicate last read or wrote it (null: no file). */
  private configHash: string | null = null;
  /** Hash of an invalid config.json already reported. */
  private configBadHash: string | null = null;
  private configStat = '';
  private configWatcher: FSWatcher | null = null;
  private configSettle: NodeJS.Timeout | null = null;
  /** Config changes (saves from the app, hand edits) run one at a time. */
  private configQueue: Promise<unknown> = Promise.resolve();
  /** Each config in use gets a number; a save based on one older than the last hand edit is refused. */
  private readonly configGen = new WeakMap<Config, number>();
  private gen = 0;
  private handEdit = { gen: 0, at: 0 };

  constructor(opts: EngineOptions) {
    this.opts = opts;
    this.dataDir = resolve(opts.dataDir);
    tightenDataDir(this.dataDir);
    configureLogging(this.dataDir, { console: opts.logToConsole ?? false });
    this.configPath = opts.configFile ? resolve(opts.configFile) : defaultConfigPath(this.dataDir);
    this.ownData = new OwnData(this.dataDir, this.configPath);
    const file = readConfigFile(this.configPath);
    this.cfg = this.checkFolders(withKeptSecrets(file ? parseConfigText(file.text, this.configPath) : configSchema.parse({}), opts.secrets), `The config file ${this.configPath}`);
    this.configHash = file?.hash ?? null;
    this.configGen.set(this.cfg, 0);
    this.lockPath = join(this.dataDir, 'engine.lock');
    this.acquireLock();
    try {
      this.catalog = new Catalog(join(this.dataDir, 'catalog.db'));
    } catch (e) {
      this.releaseLock();
      throw e;
    }
    this.token = this.loadOrCreateToken();
    this.bus = new EventBus(this.catalog);
    this.health = new TargetHealth(this.catalog, this.bus, () => this.cfg.sync.backoffSeconds, (id) => this.targetLabel(id));
    this.ingestor = new Ingestor({
      catalog: this.catalog,
      bus: this.bus,
      config: () => this.cfg,
      targetIds: () => this.enabledTargets().map((t) => t.id),
      ownData: this.ownData,
      onFileChanged: (fileId, root, rel) => this.fileHooks.forEach((h) => h(fileId, root, rel)),
    });
    this.stabilizer = new Stabilizer(this.ingestor, () => this.cfg.sync.stabilityMs);
    this.paused = this.catalog.kvGet('paused') === '1';
    this.admin = new AdminServer({ port: opts.adminPort, host: opts.adminHost, webRoot: opts.webRoot });
    this.admin.register(coreHandlers(this, this.admin));
    this.services.push(this.admin);
    this.bus.on((e) => {
      if (e.type === 'status' || e.type === 'progress') return;
      if (e.type === 'file' && e.change !== 'missing') this.wakeLanesFor();
      this.scheduleStatus();
    });
  }

  /** Hooks for new or changed files (the media pipeline registers one). */
  readonly fileHooks: ((fileId: number, root: RootConfig, relPath: string) => void)[] = [];

  // ---- lifecycle ---------------------------------------------------------------------------

  private acquireLock(): void {
    for (let i = 0; i < 2; i++) {
      try {
        const fd = openSync(this.lockPath, 'wx', 0o600);
        writeSync(fd, String(process.pid));
        closeSync(fd);
        return;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        const pid = Number(readFileSync(this.lockPath, 'utf8').trim());
        if (pid && pid !== process.pid && isAlive(pid)) {
          throw new EngineLockedError(
            `Another Triplicate engine (process ${pid}) is already running with the data folder ${this.dataDir}. ` +
              'Stop it first, or use another data folder.',
          );
        }
        rmSync(this.lockPath, { force: true }); // left by a crash
      }
    }
  }

  private releaseLock(): void {
    try {
      if (existsSync(this.lockPath) && readFileSync(this.lockPath, 'utf8').trim() === String(process.pid)) rmSync(this.lockPath);
    } catch {}
  }

  /** The admin token's file (0600): the one place the token is written. */
  get tokenFile(): string {
    return join(this.dataDir, 'admin-token');
  }

  private loadOrCreateToken(): string {
    const p = this.tokenFile;
    if (existsSync(p)) {
      const t = readFileSync(p, 'utf8').trim();
      if (t.length >= 32) return t;
    }
    const t = randomToken(32);
    writeFileSync(p, `${t}\n`, { mode: 0o600 });
    chmodSync(p, 0o600);
    return t;
  }

  use(service: EngineService): this {
    this.services.push(service);
    return this;
  }

  service<T extends EngineService>(name: string): T | undefined {
    return this.services.find((s) => s.name === name) as T | undefined;
  }

  async start(): Promise<EngineEndpoints> {
    if (this.running) return this.endpoints as EngineEndpoints;
    this.running = true;
    const { catalog } = this;
    const reclaimed = catalog.resetRunningJobs();
    catalog.resetUploadingCopies();
    if (reclaimed) log.info(`reclaimed ${reclaimed} jobs left running by a previous process`);
    for (const t of this.enabledTargets()) this.openLane(t);
    for (const s of this.services) await s.start(this);
    for (const lane of this.lanes.values()) {
      lane.primeListing(this.enabledRoots().map((r) => r.id));
      lane.start();
      void this.cleanupIncomplete(lane.backend, lane.target);
    }
    this.timers.push(
      setInterval(() => {
        if (catalog.reapExpiredLeases() > 0) this.wakeLanes();
      }, 15_000),
    );
    const rescanMin = this.cfg.sync.rescanIntervalMinutes;
    if (rescanMin > 0) this.timers.push(setInterval(() => void this.scanAll().catch(() => undefined), rescanMin * 60_000));
    this.timers.push(setInterval(() => this.pollConfigFile(), CONFIG_POLL_MS));
    for (const t of this.timers) t.unref?.();
    this.watchConfigFile();
    if (this.opts.watch !== false) await this.startWatchers();
    if (this.opts.scanOnStart !== false) this.scanPromise = this.scanAll().catch((e) => log.error(`initial scan failed: ${errorText(e)}`));
    this.bus.record({ level: 'info', kind: 'engine-started', message: `Triplicate started with ${plural(this.cfg.roots.length, 'folder')} and ${plural(this.enabledTargets().length, 'destination')}.` });
    return { adminUrl: this.endpoints.adminUrl ?? '', downloadUrl: this.endpoints.downloadUrl, token: this.token };
  }

  /** Wait for the scan started by start() (tests, the CLI's `status` after `serve`). */
  async initialScanDone(): Promise<void> {
    await this.scanPromise;
  }

  async stop(): Promise<void> {
    if (!this.running) {
      this.catalog.close();
      this.releaseLock();
      return;
    }
    this.running = false;
    this.scanAbort.abort();
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    this.configWatcher?.close();
    this.configWatcher = null;
    if (this.configSettle) clearTimeout(this.configSettle);
    await this.configQueue.catch(() => undefined);
    if (this.statusTimer) clearTimeout(this.statusTimer);
    this.stabilizer.close();
    await Promise.allSettled([...this.watchers.values()].map((w) => w.close()));
    this.watchers.clear();
    await Promise.allSettled([...this.lanes.values()].map((l) => l.stop()));
    this.lanes.clear();
    for (const s of [...this.services].reverse()) {
      try {
        await s.stop();
      } catch (e) {
        log.warn(`stopping ${s.name}: ${errorText(e)}`);
      }
    }
    await this.scanPromise?.catch(() => undefined);
    await this.ingestor.drain();
    this.catalog.close();
    this.releaseLock();
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
    // A folder destination that already holds our copies must show its marker file: an empty
    // mount point (share not mounted) is then an outage, not an empty destination to refill.
    const hasCopies = t.kind === 'folder' && this.catalog.copyCounts().some((c) => c.target_id === t.id && c.state === 'synced' && c.n > 0);
    const backend = createBackend(t, hasCopies ? { folder: { requireMarker: true } } : {});
    this.backends.set(t.id, backend);
    const lane = new TargetLane(
      t,
      backend,
      {
        catalog: this.catalog,
        bus: this.bus,
        health: this.health,
        ingestor: this.ingestor,
        root: (id) => this.cfg.roots.find((r) => r.id === id && r.enabled),
        backoffSeconds: () => this.cfg.sync.backoffSeconds,
        leaseMs: () => this.cfg.sync.leaseSeconds * 1000,
        globallyPaused: () => this.paused,
        whenGone: (f, root, attempts) => this.service<MediaService>('media')?.whenGone(f, root, attempts),
        repairSources: () => [...this.lanes.values()].sort((a, b) => a.target.priority - b.target.priority).map((l) => ({ target: l.target, backend: l.backend })),
      },
      ENGINE_OWNER,
    );
    this.lanes.set(t.id, lane);
    this.catalog.queueMissingCopies(t.id);
    return lane;
  }

  private async closeLane(id: string): Promise<void> {
    const lane = this.lanes.get(id);
    this.lanes.delete(id);
    this.backends.delete(id);
    await lane?.stop();
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
    for (const root of this.enabledRoots()) await this.startWatcher(root);
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
    const roots = this.enabledRoots().filter((r) => !opts.root || r.id === opts.root);
    if (opts.root && roots.length === 0) throw new ConfigError(`There is no folder with the id "${opts.root}".`);
    const reports: ScanReport[] = [];
    this.scanning++;
    this.scheduleStatus();
    try {
      for (const root of roots) {
        this.bus.emit({ type: 'scan', root_id: root.id, phase: 'start' });
        try {
          const report = await scanRoot({ catalog: this.catalog, bus: this.bus, config: () => this.cfg, targetIds: () => this.enabledTargets().map((t) => t.id) }, this.ingestor, root, {
            dryRun: opts.dryRun,
            signal: this.scanAbort.signal,
            stabilityMs: this.cfg.sync.stabilityMs,
            onUnstable: (r, rel) => this.stabilizer.touch(r, rel),
          });
          if (!opts.dryRun && !this.scanAbort.signal.aborted) this.noteScanProblems(root, report);
          reports.push(report);
          this.bus.emit({ type: 'scan', root_id: root.id, phase: 'done', report });
        } catch (e) {
          if (!(e instanceof RootProblem)) throw e;
          const was = this.rootProblems.get(root.id);
          this.rootProblems.set(root.id, e.message);
          if (was !== e.message) this.bus.record({ level: 'error', kind: 'root-problem', message: e.message });
          reports.push({ root_id: root.id, files_seen: 0, files_new: 0, files_changed: 0, files_missing: 0, bytes_to_upload: 0, errors: [{ rel_path: '.', error: e.message }] });
          this.bus.emit({ type: 'scan', root_id: root.id, phase: 'done' });
        }
      }
      // Copies and jobs of what the scan added or changed (lanes also do this when they open).
      const changed = reports.some((r) => r.files_new + r.files_changed + r.files_missing > 0);
      if (!opts.dryRun && changed) for (const t of this.enabledTargets()) this.catalog.queueMissingCopies(t.id);
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
      this.bus.record({ level: 'warn', kind: 'scan-problems', message, detail: errs.slice(0, 100).map((x) => `${x.rel_path}: ${x.error}`).join('\n') });
    }
  }

  // ---- operations behind the admin API -------------------------------------------------------

  paused = false;

  setPausedAll(paused: boolean): void {
    this.paused = paused;
    this.catalog.kvSet('paused', paused ? '1' : '0');
    this.bus.record({ level: 'info', kind: paused ? 'paused' : 'resumed', message: paused ? 'Backups are paused.' : 'Backups resumed.' });
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
    for (const t of this.enabledTargets()) if (!target || t.id === target) this.health.retryNow(t.id);
    if (n) this.bus.record({ level: 'info', kind: 'retry', message: `Trying ${plural(n, 'file')} again.` });
    this.wakeLanes();
    return n;
  }

  retryFile(key: string, target?: string): number {
    const { rootId, relPath } = parseFileKey(key);
    const f = this.catalog.fileByPath(rootId, relPath);
    if (!f) return 0;
    let n = 0;
    for (const t of this.enabledTargets()) {
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

  async testTarget(t: TargetConfig, signal?: AbortSignal): Promise<TestConnectionResult> {
    const backend = createBackend(t, { retry: false });
    try {
      return await testConnection(backend, signal);
    } finally {
      backend.close?.();
    }
  }

  pauseTarget(id: string, paused: boolean): TargetStatus {
    this.requireTarget(id);
    this.health.setPaused(id, paused);
    if (!paused) this.lanes.get(id)?.wake();
    this.statusCache = null;
    return this.status().targets[id] ?? this.targetStatusOf(this.requireTarget(id), []);
  }

  requireTarget(id: string): TargetConfig {
    const t = this.cfg.targets.find((x) => x.id === id);
    if (!t) throw new ConfigError(`There is no destination with the id "${id}".`);
    return t;
  }

  /**
   * Validate, save (0600) and apply a new config: lanes and watchers follow. `base` is the config
   * the change was made on: when config.json was changed by hand since (or is now), nothing is
   * written and a ConfigChangedError says so. The hand edit is loaded, when valid, so the operator
   * sees it and makes the change again on top of it: merging the two could silently combine
   * edits nobody saw together. Program paths change only when the caller may set them
   * (`programPaths`: the desktop shell, tests), never from the admin API.
   */
  applyConfig(next: unknown, opts: { base?: Config; programPaths?: boolean } = {}): Promise<Config> {
    const { base } = opts;
    return this.serialConfig(async () => {
      const handEdit = await this.takeHandEdit();
      if (handEdit) throw handEdit;
      if (base && (this.configGen.get(base) ?? 0) < this.handEdit.gen) throw this.changedByHand(this.handEdit.at);
      const valid = this.checkFolders(parseConfig(next, 'This change', 'save'), 'This change', 'save');
      if (!opts.programPaths) {
        const changed = programPathChanges(this.cfg, valid);
        if (changed.length) throw programPathError(changed);
      }
      const { cfg, hash } = await writeConfigKeepingSecrets(this.configPath, valid, this.opts.secrets);
      this.configHash = hash;
      this.configBadHash = null;
      return this.install(cfg);
    });
  }

  /** Roots and folder destinations that may not be used (the data folder, system folders...): a ConfigError. */
  private checkFolders(cfg: Config, source: string, when: ConfigReadWhen = 'start'): Config {
    const problems = configFolderProblems(cfg, this.ownData);
    if (problems.length) throw problemsError(source, problems, when);
    return cfg;
  }

  private serialConfig<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.configQueue.then(fn, fn);
    this.configQueue = run.catch(() => undefined);
    return run;
  }

  private changedByHand(at: number, problem?: ConfigError): ConfigChangedError {
    const name = basename(this.configPath);
    return problem
      ? new ConfigChangedError(`${name} was changed by hand at ${formatClock(at)} and Triplicate cannot use it, so your change was not saved. ${problem.message}`, problem.fields)
      : new ConfigChangedError(`${name} was changed by hand at ${formatClock(at)}; Triplicate loaded it. Check the page and save again.`);
  }

  /**
   * Has config.json changed on disk since Triplicate last read or wrote it? A valid file is applied
   * (not written back) and an info event says so; an invalid one is reported once as an error event
   * and left as it is, and the running config stays. Returns the refusal for a save made meanwhile.
   */
  private async takeHandEdit(): Promise<ConfigChangedError | null> {
    let file;
    try {
      file = readConfigFile(this.configPath);
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      this.reportBadConfig('unreadable', e.message);
      return this.changedByHand(Date.now(), e);
    }
    // Removed: nothing to lose; the next save writes it again.
    if (!file || file.hash === this.configHash) return null;
    const name = basename(this.configPath);
    try {
      const cfg = this.checkFolders(withKeptSecrets(parseConfigText(file.text, this.configPath, 'reload'), this.opts.secrets), `The config file ${this.configPath}`, 'reload');
      this.configHash = file.hash;
      this.configBadHash = null;
      await this.install(cfg);
      this.handEdit = { gen: this.gen, at: file.mtimeMs };
      this.bus.record({ level: 'info', kind: 'config-reloaded', message: `${name} was changed outside Triplicate at ${formatClock(file.mtimeMs)}; the new settings are in use.` });
      return this.changedByHand(file.mtimeMs);
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      this.reportBadConfig(file.hash, `${name} was changed at ${formatClock(file.mtimeMs)} but Triplicate cannot use it. ${e.message}`);
      return this.changedByHand(file.mtimeMs, e);
    }
  }

  /** Once per content of the file: the error event the operator sees. */
  private reportBadConfig(hash: string, message: string): void {
    if (this.configBadHash === hash) return;
    this.configBadHash = hash;
    this.bus.record({ level: 'error', kind: 'config-invalid', message });
  }

  /** Look at config.json when its folder reports a change to it (once the writes settle). */
  private watchConfigFile(): void {
    const name = basename(this.configPath);
    try {
      // The folder, not the file: editors and our own save replace the file by renaming over it.
      this.configWatcher = fsWatch(dirname(this.configPath), { persistent: false }, (_ev, f) => {
        if (f !== null && f !== name) return;
        if (this.configSettle) clearTimeout(this.configSettle);
        this.configSettle = setTimeout(() => this.checkConfigFile(), CONFIG_SETTLE_MS);
        this.configSettle.unref?.();
      });
      this.configWatcher.on('error', () => {
        this.configWatcher?.close();
        this.configWatcher = null; // the poll still notices
      });
    } catch (e) {
      log.warn(`cannot watch ${this.configPath} for changes (${errorText(e)}); it is looked at every ${CONFIG_POLL_MS / 1000} s`);
    }
  }

  /** The fallback: a stat; the file is read only when it looks different. */
  private pollConfigFile(): void {
    let key = '';
    try {
      const st = statSync(this.configPath);
      key = `${st.ino}:${st.size}:${st.mtimeMs}`;
    } catch {}
    if (key === this.configStat) return;
    this.configStat = key;
    this.checkConfigFile();
  }

  private checkConfigFile(): void {
    if (!this.running) return;
    void this.serialConfig(() => this.takeHandEdit()).catch((e) => log.warn(`reading ${this.configPath} again: ${errorText(e)}`));
  }

  /** Put a validated config in use: lanes and watchers follow. */
  private async install(cfg: Config): Promise<Config> {
    const prev = this.cfg;
    this.cfg = cfg;
    this.configGen.set(cfg, ++this.gen);
    if (!this.running) return cfg;
    // targets
    const same = (a: TargetConfig, b: TargetConfig) => JSON.stringify(a) === JSON.stringify(b);
    for (const old of prev.targets) {
      const now = cfg.targets.find((t) => t.id === old.id);
      if (!now || !now.enabled || !same(old, now)) await this.closeLane(old.id);
    }
    for (const t of cfg.targets) {
      if (t.enabled && !this.lanes.has(t.id)) {
        const lane = this.openLane(t);
        lane.primeListing(cfg.roots.map((r) => r.id));
        lane.start();
      }
    }
    // roots
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
    this.bus.emit({ type: 'config' });
    for (const r of newRoots) void this.scanAll({ root: r.id }).catch((e) => log.warn(`scan of ${r.id}: ${errorText(e)}`));
    return cfg;
  }

  // ---- queries ---------------------------------------------------------------------------------

  enabledTargets(): TargetConfig[] {
    return this.cfg.targets.filter((t) => t.enabled).sort((a, b) => a.priority - b.priority);
  }

  enabledRoots(): RootConfig[] {
    return this.cfg.roots.filter((r) => r.enabled);
  }

  targetLabel(id: string): string {
    return this.cfg.targets.find((t) => t.id === id)?.label ?? id;
  }

  private scheduleStatus(): void {
    this.statusCache = null;
    if (this.statusTimer) return;
    this.statusTimer = setTimeout(() => {
      this.statusTimer = null;
      if (!this.running || !this.catalog.db.open) return;
      try {
        this.bus.emit({ type: 'status', status: this.status() });
      } catch (e) {
        log.warn(`status: ${errorText(e)}`);
      }
    }, 500);
    this.statusTimer.unref?.();
  }

  private targetStatusOf(t: TargetConfig, counts: { target_id: string; state: string; n: number; bytes: number }[]): TargetStatus {
    const c = (state: string) => counts.find((r) => r.target_id === t.id && r.state === state);
    const h = this.health.view(t.id, t.enabled);
    const uploading = c('uploading')?.n ?? 0;
    const st: TargetStatus = {
      label: t.label,
      synced_count: c('synced')?.n ?? 0,
      synced_bytes: c('synced')?.bytes ?? 0,
      pending: c('pending')?.n ?? 0,
      uploading,
      failed: c('failed')?.n ?? 0,
      skipped: c('skipped')?.n ?? 0,
      state: h.state === 'unknown' && (c('synced')?.n ?? 0) > 0 ? 'online' : h.state,
      // the meter averages the last seconds: once nothing is copied, no rate stays on the card
      rate_bps: uploading > 0 ? (this.lanes.get(t.id)?.meter.rate() ?? 0) : 0,
    };
    if (h.reason) st.reason = h.reason;
    if (h.detail) st.detail = h.detail;
    if (h.offline_since) st.offline_since = h.offline_since;
    if (h.next_try_at) st.next_try_at = h.next_try_at;
    return st;
  }

  /** The status the overview, the tray and `GET .../status` show. Cached for 250 ms. */
  status(): SyncStatus {
    const now = Date.now();
    if (this.statusCache && now - this.statusCache.at < 250) return this.statusCache.value;
    const targets = this.enabledTargets();
    const ids = targets.map((t) => t.id);
    // The catalog's totals are kept by triggers; they are read again only once something was written.
    const aggKey = this.catalog.totalChanges();
    if (this.aggCache?.key !== aggKey) this.aggCache = { key: aggKey, counts: this.catalog.copyCounts(), states: this.catalog.fileStates() };
    const { counts, states } = this.aggCache;
    const copies: CopyCounts = { pending: 0, uploading: 0, synced: 0, failed: 0, skipped: 0 };
    for (const r of counts) if (ids.includes(r.target_id)) copies[r.state] += r.n;
    // enabled destinations first, in priority order: the sentence names them in that order
    const tmap: Record<string, TargetStatus> = {};
    const perTarget: Record<`${string}_synced_count`, number> = {};
    for (const t of [...targets, ...this.cfg.targets.filter((x) => !x.enabled)]) {
      const st = this.targetStatusOf(t, counts);
      tmap[t.id] = st;
      perTarget[`${t.id}_synced_count`] = st.synced_count;
    }
    const f = countFiles(states, ids);
    const s: SyncStatus = {
      pending: f.pending,
      uploading: f.uploading,
      synced: f.synced,
      failed: f.failed,
      skipped: f.skipped,
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
    const transcoding = this.service<MediaService>('media')?.transcoding();
    if (transcoding) s.transcoding = transcoding;
    const folderProblem = [...this.rootProblems.values()][0];
    Object.assign(s, summarize(s, { folders: this.cfg.roots.length, ...(folderProblem ? { folderProblem } : {}) }));
    this.statusCache = { at: now, value: s };
    return s;
  }

  private diskInfo(): SyncStatus['disk'] {
    const out: NonNullable<SyncStatus['disk']> = [];
    for (const r of this.enabledRoots()) {
      try {
        const fs = statfsSync(r.path);
        out.push({ path: r.path, free_bytes: fs.bavail * fs.bsize, total_bytes: fs.blocks * fs.bsize });
      } catch {}
    }
    return out;
  }

  fileRecord(f: FileRow): FileRecord {
    const copies: CopyInfo[] = this.catalog.copiesOfFile(f.id).map((c) => {
      const ci: CopyInfo = { target_id: c.target_id, state: c.state, attempts: c.attempts };
      if (c.last_error) ci.last_error = c.last_error;
      if (c.next_attempt_at) ci.next_attempt_at = c.next_attempt_at;
      if (c.synced_at) ci.synced_at = c.synced_at;
      return ci;
    });
    const rec: FileRecord = {
      id: f.id,
      key: fileKey(f.root_id, f.rel_path),
      root_id: f.root_id,
      rel_path: f.rel_path,
      size: f.size,
      mtime_ms: f.mtime_ms,
      sha256: f.sha256,
      kind: f.kind,
      local: f.local_state,
      copies,
    };
    if (f.derived_from) {
      const src = this.catalog.fileById(f.derived_from);
      if (src) rec.derived_from = fileKey(src.root_id, src.rel_path);
    }
    const media = this.service<MediaService>('media')?.mediaInfo(f.id);
    if (media) rec.media = media;
    return rec;
  }

  queue(q: QueueQuery & { local?: 'present' | 'missing' }): Page<FileRecord> {
    const limit = Math.min(Math.max(Number(q.limit ?? 100) || 100, 1), 1000);
    const offset = Math.max(Number(q.offset ?? 0) || 0, 0);
    const { rows, total } = this.catalog.queryFiles({ ...q, limit, offset });
    return { items: rows.map((r) => this.fileRecord(r)), total, offset, limit };
  }

  file(key: string): FileRecord | undefined {
    const { rootId, relPath } = parseFileKey(key);
    const f = this.catalog.fileByPath(rootId, relPath);
    return f ? this.fileRecord(f) : undefined;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** What the desktop shell and the CLI call. Services (admin API, downloads, media...) are added by `createEngine`. */
export function createEngine(opts: EngineOptions): Engine {
  const engine = new Engine(opts);
  installSharing(engine, { download: { port: opts.downloadPort } });
  installFileRoutes(engine);
  engine.use(new WebhookNotifier(opts.notify));
  engine.use(new RestoreService(engine));
  engine.use(new MediaService(engine));
  return engine;
}

export { configSchema, ConfigError };

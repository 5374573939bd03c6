// The composition root: builds everything from a config and a data dir; start() / stop().
// Runs under plain Node: the CLI, a service, or the desktop app's engine process (utilityProcess); imports nothing
// from 'electron'.
import { join, resolve } from 'node:path';
import type { FileRecord, Page, QueueQuery, ScanReport, SyncStatus, TargetStatus, TestConnectionResult } from '../../shared/api';
import { configSchema, type Config, type RootConfig, type TargetConfig } from '../../shared/config';
import { plural } from '../../shared/format';
import type { NotifyOptions } from '../../shared/notify';
import { Catalog, type FileRow } from './catalog/catalog';
import { FileRecords } from './catalog/records';
import { ConfigError, defaultConfigPath } from './config/config';
import { OwnData } from './config/folders';
import { ConfigStore, type ApplyOptions } from './core/config-store';
import type { SecretStore } from './config/secrets';
import type { EngineContext, EngineService } from './core/context';
import { DataDirLock, loadOrCreateToken, tokenFileOf } from './core/data-dir';
import { TargetRegistry } from './core/targets';
import { EventBus } from './events';
import { AdminServer } from './http/admin';
import { coreHandlers } from './http/admin-handlers';
import { installFileRoutes } from './http/files';
import { notFound } from './http/router';
import { createSharing, type Sharing } from './http/sharing';
import { configureLogging, log } from './log';
import { MediaService } from './media/service';
import { WebhookNotifier } from './notify';
import { tightenDataDir } from './private-files';
import { RestoreService } from './restore/service';
import type { TargetHealth } from './sync/health';
import { GuardError } from './sync/guard';
import type { Ingestor } from './sync/ingest';
import { SyncService } from './sync/service';
import type { TargetLane } from './sync/uploader';
import type { Stabilizer } from './sync/watcher';
import { EngineLockedError, errorText } from './util';

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

export type { EngineService };

export { EngineLockedError };

/**
 * The engine, built from a data folder and its config: the context every service receives, the
 * services, and the wiring between them (each gets the context plus the few functions it needs
 * from the others, never this object). It owns the order of start and stop. Its other methods
 * are the facade the CLI, the desktop shell and the tests use.
 */
export class Engine {
  readonly dataDir: string;
  readonly configPath: string;
  readonly ctx: EngineContext;
  readonly catalog: Catalog;
  readonly bus: EventBus;
  readonly ownData: OwnData;
  readonly token: string;
  readonly sync: SyncService;
  readonly records: FileRecords;
  /** The admin API + web console; services register their routes on it. */
  readonly admin: AdminServer;
  readonly sharing: Sharing;
  readonly media: MediaService;
  readonly restore: RestoreService;
  /** Started in this order, stopped in the reverse one (the sync service around them: see start()). */
  private readonly services: EngineService[] = [];
  private running = false;
  private readonly lock: DataDirLock;

  constructor(opts: EngineOptions) {
    this.dataDir = resolve(opts.dataDir);
    tightenDataDir(this.dataDir);
    configureLogging(this.dataDir, { console: opts.logToConsole ?? false });
    this.configPath = opts.configFile ? resolve(opts.configFile) : defaultConfigPath(this.dataDir);
    this.ownData = new OwnData(this.dataDir, this.configPath);
    // Read before the lock and the catalog: a config that cannot be used changes nothing.
    const initial = ConfigStore.read(this.configPath, this.ownData, opts.secrets);
    this.lock = new DataDirLock(this.dataDir);
    this.lock.acquire();
    try {
      this.catalog = new Catalog(join(this.dataDir, 'catalog.db'));
    } catch (e) {
      this.lock.release();
      throw e;
    }
    this.token = loadOrCreateToken(this.dataDir);
    this.bus = new EventBus(this.catalog);
    const config = new ConfigStore(this.configPath, this.ownData, this.bus, initial, opts.secrets);
    const ctx: EngineContext = { dataDir: this.dataDir, ownData: this.ownData, catalog: this.catalog, bus: this.bus, config, targets: new TargetRegistry(config, this.catalog) };
    this.ctx = ctx;

    // The sync service and the media service call each other: each gets functions of the other.
    const sync = new SyncService(ctx, { watch: opts.watch, scanOnStart: opts.scanOnStart }, {
      fileChanged: (fileId, root, rel) => this.media.fileChanged(fileId, root, rel),
      whenGone: (f, root, attempts) => this.media.whenGone(f, root, attempts),
      transcoding: () => this.media.transcoding(),
    });
    this.sync = sync;
    this.records = new FileRecords(this.catalog, (id) => this.media.mediaInfo(id));
    const admin = new AdminServer(ctx, { port: opts.adminPort, host: opts.adminHost, webRoot: opts.webRoot, token: this.token, startedAt: sync.startedAt, status: () => sync.status() });
    this.admin = admin;
    admin.register(coreHandlers(ctx, { sync, records: this.records, testTarget: (t, signal) => ctx.targets.test(t, signal), login: (pw, client) => admin.login(pw, client) }));
    this.sharing = createSharing(
      ctx,
      admin,
      {
        startedAt: sync.startedAt,
        offline: (id) => sync.health.view(id, true).state === 'offline',
        wakeLanes: () => sync.wakeLanes(),
        filterFor: (root) => sync.ingestor.filterFor(root),
      },
      { download: { port: opts.downloadPort } },
    );
    installFileRoutes(ctx, admin, {
      ingestor: sync.ingestor,
      touch: (root, rel) => sync.stabilizer.touch(root, rel),
      status: () => sync.status(),
      wakeLanes: () => sync.wakeLanes(),
    });
    this.restore = new RestoreService(ctx, { ingestor: sync.ingestor, wakeLanes: () => sync.wakeLanes(), heldFolders: () => sync.guard.heldFolders(), holds: () => sync.guard.status() }, admin);
    // The burst guard's two answers: back the held changes up, or put the files back as they were.
    const guardError = (e: unknown) => (e instanceof GuardError ? notFound(e.message) : e);
    admin.register({
      guardAccept: ({ body }) => {
        try {
          const r = sync.guard.accept(body?.hold);
          sync.wakeLanes();
          return r;
        } catch (e) {
          throw guardError(e);
        }
      },
      guardRollback: ({ body }) => sync.guard.rollback((req) => this.restore.restoreFiles(req), body?.hold).catch((e: unknown) => Promise.reject(guardError(e))),
    });
    this.media = new MediaService(ctx, { ingestor: sync.ingestor, uploadsBusy: () => sync.uploadsBusy(), paused: () => sync.paused, fileRecord: (f) => this.records.of(f) }, admin);
    this.services.push(admin, this.sharing.downloads, this.sharing.tunnel, new WebhookNotifier(ctx, () => sync.status(), opts.notify), this.restore, this.media);
  }

  get cfg(): Config {
    return this.ctx.config.get();
  }

  /** Tests: put a config in use as it is, unchecked and unsaved (as an old config.json would be). */
  set cfg(cfg: Config) {
    this.ctx.config.replaceUnchecked(cfg);
  }

  /** Where the admin API and the download server listen, once they do. */
  get endpoints(): Partial<EngineEndpoints> {
    const out: Partial<EngineEndpoints> = {};
    if (this.admin.url) {
      out.adminUrl = this.admin.url;
      out.token = this.token;
    }
    if (this.sharing.downloads.url) out.downloadUrl = this.sharing.downloads.url;
    return out;
  }

  get startedAt(): number {
    return this.sync.startedAt;
  }

  get health(): TargetHealth {
    return this.sync.health;
  }

  get ingestor(): Ingestor {
    return this.sync.ingestor;
  }

  get stabilizer(): Stabilizer {
    return this.sync.stabilizer;
  }

  get lanes(): Map<string, TargetLane> {
    return this.sync.lanes;
  }

  get rootProblems(): Map<string, string> {
    return this.sync.rootProblems;
  }

  get paused(): boolean {
    return this.sync.paused;
  }

  /** The admin token's file (0600): the one place the token is written. */
  get tokenFile(): string {
    return tokenFileOf(this.dataDir);
  }

  // ---- lifecycle -----------------------------------------------------------------------------

  /** A service by name: 'sync', 'admin', 'download', 'tunnel', 'notify', 'restore', 'media'. */
  service<T extends EngineService>(name: string): T | undefined {
    if (name === 'sync') return this.sync as unknown as T;
    return this.services.find((s) => s.name === name) as T | undefined;
  }

  /**
   * Lanes open first (the services may ask for their backends), then the services start in order,
   * then uploads, scans, watchers and the config file's watch begin.
   */
  async start(): Promise<EngineEndpoints> {
    if (this.running) return this.endpoints as EngineEndpoints;
    this.running = true;
    this.sync.open();
    for (const s of this.services) await s.start();
    await this.sync.start();
    this.ctx.config.start();
    this.bus.record({ level: 'info', kind: 'engine-started', message: `Triplicate started with ${plural(this.cfg.roots.length, 'folder')} and ${plural(this.ctx.targets.enabled().length, 'destination')}.` });
    const ep = this.endpoints;
    return { adminUrl: ep.adminUrl ?? '', downloadUrl: ep.downloadUrl, token: this.token };
  }

  /** Wait for the scan started by start() (tests, the CLI's `status` after `serve`). */
  initialScanDone(): Promise<void> {
    return this.sync.initialScanDone();
  }

  /** Config changes end, then uploads and scans, then the services (reverse order), then the catalog. */
  async stop(): Promise<void> {
    if (!this.running) {
      this.ctx.targets.close();
      this.catalog.close();
      this.lock.release();
      return;
    }
    this.running = false;
    await this.ctx.config.stop();
    await this.sync.stop();
    for (const s of [...this.services].reverse()) {
      try {
        await s.stop();
      } catch (e) {
        log.warn(`stopping ${s.name}: ${errorText(e)}`);
      }
    }
    await this.sync.drain();
    this.ctx.targets.close();
    this.catalog.close();
    this.lock.release();
  }

  // ---- the sync service, the config and the catalog, as the CLI and the tests use them --------

  scanAll(opts: { dryRun?: boolean; root?: string } = {}): Promise<ScanReport[]> {
    return this.sync.scanAll(opts);
  }

  status(): SyncStatus {
    return this.sync.status();
  }

  uploadsBusy(now = Date.now()): boolean {
    return this.sync.uploadsBusy(now);
  }

  wakeLanes(): void {
    this.sync.wakeLanes();
  }

  setPausedAll(paused: boolean): void {
    this.sync.setPausedAll(paused);
  }

  initialSync(root?: string): Promise<{ queued: number; reports: ScanReport[] }> {
    return this.sync.initialSync(root);
  }

  retryFailed(target?: string): number {
    return this.sync.retryFailed(target);
  }

  retryFile(key: string, target?: string): number {
    return this.sync.retryFile(key, target);
  }

  pauseTarget(id: string, paused: boolean): TargetStatus {
    return this.sync.pauseTarget(id, paused);
  }

  testTarget(t: TargetConfig, signal?: AbortSignal): Promise<TestConnectionResult> {
    return this.ctx.targets.test(t, signal);
  }

  /** Validate, save (0600) and apply a new config (see ConfigStore.apply): lanes and watchers follow. */
  applyConfig(next: unknown, opts: ApplyOptions = {}): Promise<Config> {
    return this.ctx.config.apply(next, opts);
  }

  enabledTargets(): TargetConfig[] {
    return this.ctx.targets.enabled();
  }

  enabledRoots(): RootConfig[] {
    return this.ctx.config.enabledRoots();
  }

  targetLabel(id: string): string {
    return this.ctx.targets.label(id);
  }

  requireTarget(id: string): TargetConfig {
    return this.ctx.targets.require(id);
  }

  fileRecord(f: FileRow): FileRecord {
    return this.records.of(f);
  }

  queue(q: QueueQuery & { local?: 'present' | 'missing' }): Page<FileRecord> {
    return this.records.queue(q);
  }

  file(key: string): FileRecord | undefined {
    return this.records.file(key);
  }
}

/** What the desktop shell and the CLI call. */
export function createEngine(opts: EngineOptions): Engine {
  return new Engine(opts);
}

export { configSchema, ConfigError };

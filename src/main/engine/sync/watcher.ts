// Watches storage roots with chokidar and hands a file to ingest once it is stable: its size and
// mtime have not changed for the stability window (a file being copied in is not uploaded half-written).
import { watch, type FSWatcher } from 'chokidar';
import { watch as fsWatch, type FSWatcher as NodeWatcher } from 'node:fs';
import { lstat, opendir, readdir, stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import type { RootConfig } from '../../../shared/config';
import { log } from '../log';
import { errnoOf } from '../util';
import { RESTORE_TEMP_PREFIX } from './filter';
import { makeDirFilter } from './filter';
import type { Ingestor } from './ingest';

interface Pending {
  root: RootConfig;
  rel: string;
  size: number;
  mtimeMs: number;
  stableSince: number;
  timer: NodeJS.Timeout | null;
}

export class Stabilizer {
  private readonly pending = new Map<string, Pending>();
  private closed = false;

  constructor(
    private readonly ingestor: Ingestor,
    private readonly stabilityMs: () => number,
  ) {}

  get size(): number {
    return this.pending.size;
  }

  has(root: RootConfig, rel: string): boolean {
    return this.pending.has(`${root.id}\0${rel}`);
  }

  /** Something happened to this file: check it until it stops changing, then ingest it. */
  touch(root: RootConfig, rel: string): void {
    if (this.closed) return;
    const id = `${root.id}\0${rel}`;
    const p = this.pending.get(id);
    if (p) {
      p.stableSince = Date.now();
      return;
    }
    const entry: Pending = { root, rel, size: -1, mtimeMs: -1, stableSince: Date.now(), timer: null };
    this.pending.set(id, entry);
    this.schedule(id, entry);
  }

  private schedule(id: string, p: Pending): void {
    const win = this.stabilityMs();
    p.timer = setTimeout(() => void this.check(id, p), Math.max(50, Math.min(win / 2, 1000)));
    p.timer.unref?.();
  }

  private async check(id: string, p: Pending): Promise<void> {
    if (this.closed) return;
    let st;
    try {
      st = await stat(join(p.root.path, ...p.rel.split('/')));
    } catch (e) {
      this.pending.delete(id);
      // closed while the stat ran (the engine stopping): the catalog may be closed already
      if (errnoOf(e) === 'ENOENT' && !this.closed) this.ingestor.markMissing(p.root.id, p.rel);
      return;
    }
    if (this.closed) return;
    const now = Date.now();
    if (st.size !== p.size || st.mtimeMs !== p.mtimeMs) {
      p.size = st.size;
      p.mtimeMs = st.mtimeMs;
      p.stableSince = now;
    }
    if (now - p.stableSince >= this.stabilityMs()) {
      this.pending.delete(id);
      const r = await this.ingestor.ingest(p.root, p.rel);
      if (r === 'unstable') this.touch(p.root, p.rel);
      return;
    }
    this.schedule(id, p);
  }

  close(): void {
    this.closed = true;
    for (const p of this.pending.values()) if (p.timer) clearTimeout(p.timer);
    this.pending.clear();
  }
}

/** Our own temp files' names: the built-in filter excludes them. */
const OWN_TEMP_PREFIX = '.triplicate-';

/** When a new folder's contents are looked at again (ms after chokidar reported it). */
const SWEEP_AFTER_MS = [1000, 5000];
/** Files looked at per sweep, at most (a bounded walk; the periodic rescan covers the rest). */
const SWEEP_MAX_FILES = 100_000;

export interface RootWatcherOptions {
  usePolling: boolean;
  onError?: (message: string) => void;
  /** Is this file cataloged with this size and mtime (ms, truncated)? Those a sweep leaves alone. */
  known?: (rel: string, size: number, mtimeMs: number) => boolean;
  /** Cataloged files (names on disk) under a folder that disappeared: each is looked at (and found gone). */
  filesUnder?: (relDir: string) => string[];
  /** Force chokidar on Linux too (tests). */
  chokidar?: boolean;
}

export class RootWatcher {
  private watcher: FSWatcher | null = null;
  /** New folders waiting for their sweeps (-> when chokidar reported them), and the sweeps' timers. */
  private readonly sweepDirs = new Map<string, number>();
  private readonly sweepTimers = new Set<NodeJS.Timeout>();
  private closed = false;
  /** Triplicate's own files inside this root (a root from before the config check): never looked at. */
  private ownData: (rel: string) => boolean = () => false;

  constructor(
    private readonly root: RootConfig,
    private readonly ingestor: Ingestor,
    private readonly stabilizer: Stabilizer,
    private readonly opts: RootWatcherOptions,
  ) {}

  async start(): Promise<void> {
    this.ownData = await this.ingestor.ownDataFilter(this.root);
    // Linux: one inotify watch per folder. chokidar adds one per file, which for 100,000 photos
    // costs over a gigabyte of memory and runs out of fs.inotify.max_user_watches (8,192 on many
    // systems), after which changes go unseen. Polling (network shares) and other systems: chokidar.
    if (process.platform === 'linux' && !this.opts.usePolling && !this.opts.chokidar) return this.startDirs();
    const filter = this.ingestor.filterFor(this.root);
    const rootPath = this.root.path;
    const toRel = (abs: string) => relative(rootPath, abs).split(sep).join('/');
    this.watcher = watch(rootPath, {
      ignoreInitial: true,
      persistent: true,
      followSymlinks: false,
      usePolling: this.opts.usePolling,
      interval: 2000,
      binaryInterval: 5000,
      ignorePermissionErrors: true,
      // Directories are always walked (filters work on file paths); files are filtered here.
      ignored: (abs, stats) => {
        const rel = toRel(abs);
        if (rel !== '' && this.ownData(rel)) return true;
        if (!stats || stats.isDirectory()) return false;
        return rel !== '' && !filter(rel.normalize('NFC'));
      },
    });
    this.watcher.on('add', (abs) => this.stabilizer.touch(this.root, toRel(abs)));
    this.watcher.on('change', (abs) => this.stabilizer.touch(this.root, toRel(abs)));
    this.watcher.on('unlink', (abs) => this.stabilizer.touch(this.root, toRel(abs)));
    // chokidar reads a new folder, then watches it: a file created in between raises no event. Look
    // at each new folder again a little later (twice) and hand over what nobody has seen.
    this.watcher.on('addDir', (abs) => this.scheduleSweep(toRel(abs)));
    this.watcher.on('error', (e) => {
      log.warn(`watcher error in ${this.root.label}: ${String(e)}`);
      this.opts.onError?.(String(e));
    });
    await new Promise<void>((resolve) => this.watcher!.once('ready', () => resolve()));
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.sweepTimers) clearTimeout(t);
    this.sweepTimers.clear();
    await this.watcher?.close();
    this.watcher = null;
    for (const w of this.dirs.values()) w.close();
    this.dirs.clear();
  }

  // ---- Linux: a watch per folder ------------------------------------------------------------------

  /** Watched folders ('' is the root) -> their watcher. */
  private readonly dirs = new Map<string, NodeWatcher>();
  /** Paths with an event waiting to be looked at (a file being written raises one per write). */
  private readonly checking = new Set<string>();
  private watchErrorSaid = false;

  /** Number of folders watched (tests, diagnostics). */
  get watchedFolders(): number {
    return this.dirs.size;
  }

  private absOf(rel: string): string {
    return rel ? join(this.root.path, ...rel.split('/')) : this.root.path;
  }

  private async startDirs(): Promise<void> {
    await this.addTree('', false);
  }

  /**
   * Watch a folder and everything under it: each folder is watched before it is read, so a file
   * created meanwhile raises an event or is listed. With `sweep`, files nobody has seen are handed
   * to the stabilizer (a folder that appeared, or one moved in).
   */
  private async addTree(top: string, sweep: boolean): Promise<void> {
    const dirOk = makeDirFilter(this.root.exclude);
    const filter = this.ingestor.filterFor(this.root);
    const stack = [top];
    while (stack.length && !this.closed) {
      const rel = stack.pop()!;
      if (this.dirs.has(rel)) continue;
      let w: NodeWatcher;
      try {
        w = fsWatch(this.absOf(rel), { persistent: true }, (ev, name) => {
          // Our own temp files (a restore writing, then renaming them; never backed up): nothing to look at.
          if (typeof name === 'string' && name.startsWith(OWN_TEMP_PREFIX) && (ev === 'change' || name.startsWith(RESTORE_TEMP_PREFIX))) return;
          this.onEvent(rel, name);
        });
      } catch (e) {
        if (errnoOf(e) === 'ENOENT' || errnoOf(e) === 'ENOTDIR') continue;
        this.watchError(e, rel);
        continue;
      }
      w.on('error', () => this.dropTree(rel));
      this.dirs.set(rel, w);
      let ents;
      try {
        ents = await readdir(this.absOf(rel), { withFileTypes: true });
      } catch {
        continue; // gone again, or unreadable: the scan reports it
      }
      for (const d of ents) {
        const r = rel ? `${rel}/${d.name}` : d.name;
        if (this.ownData(r)) continue;
        if (d.isDirectory()) {
          if (dirOk(r)) stack.push(r);
        } else if (sweep && d.isFile() && filter(r.normalize('NFC')) && !this.stabilizer.has(this.root, r)) {
          const st = await stat(this.absOf(r)).catch(() => null);
          if (st && !this.opts.known?.(r, st.size, Math.trunc(st.mtimeMs)) && !this.ingestor.isVouched(this.root.id, r, st)) this.stabilizer.touch(this.root, r);
        }
      }
    }
  }

  private watchError(e: unknown, rel: string): void {
    const code = errnoOf(e);
    const msg =
      code === 'ENOSPC'
        ? `Triplicate cannot watch every folder of ${this.root.label} (the system allows no more watches: raise fs.inotify.max_user_watches). Changes there are found by the next scan.`
        : `Triplicate cannot watch the folder "${rel || '.'}" of ${this.root.label} (${code ?? String(e)}). Changes there are found by the next scan.`;
    if (!this.watchErrorSaid) {
      this.watchErrorSaid = true;
      log.warn(msg);
      this.opts.onError?.(msg);
    }
  }

  /** Stop watching a folder and everything under it. */
  private dropTree(rel: string): void {
    for (const [d, w] of this.dirs) {
      if (d === rel || (rel === '' ? true : d.startsWith(`${rel}/`))) {
        w.close();
        this.dirs.delete(d);
      }
    }
  }

  private onEvent(relDir: string, name: string | Buffer | null): void {
    if (this.closed) return;
    if (name === null || name === undefined) {
      // the kernel lost track (queue overflow): look at the whole folder again
      void this.resweep(relDir);
      return;
    }
    const rel = relDir ? `${relDir}/${String(name)}` : String(name);
    if (this.checking.has(rel)) return;
    // a file being written raises an event per write: a file already waiting to settle only needs its clock reset
    if (this.stabilizer.has(this.root, rel)) {
      this.stabilizer.touch(this.root, rel);
      return;
    }
    this.checking.add(rel);
    setImmediate(() => void this.check(rel).finally(() => this.checking.delete(rel)));
  }

  private async resweep(relDir: string): Promise<void> {
    this.dropTree(relDir);
    await this.addTree(relDir, true);
  }

  private async check(rel: string): Promise<void> {
    if (this.ownData(rel)) return;
    let st;
    try {
      st = await lstat(this.absOf(rel));
    } catch (e) {
      if (errnoOf(e) !== 'ENOENT' && errnoOf(e) !== 'ENOTDIR') return;
      if (this.dirs.has(rel)) {
        // a folder went away (deleted or moved out): its files are looked at, and found gone
        this.dropTree(rel);
        for (const f of this.opts.filesUnder?.(rel) ?? []) this.stabilizer.touch(this.root, f);
      } else this.stabilizer.touch(this.root, rel);
      return;
    }
    if (st.isDirectory()) {
      if (!this.dirs.has(rel) && makeDirFilter(this.root.exclude)(rel)) await this.addTree(rel, true);
      return;
    }
    // A file the restore just wrote and recorded, untouched since: nothing to wait for or read.
    if (st.isFile() && this.ingestor.isVouched(this.root.id, rel, st)) return;
    if (st.isFile() && this.ingestor.filterFor(this.root)(rel.normalize('NFC'))) this.stabilizer.touch(this.root, rel);
    // symlinks, sockets, devices: not backed up
  }

  // ---- chokidar: a second look at new folders --------------------------------------------------

  private scheduleSweep(relDir: string): void {
    if (this.closed || relDir === '' || relDir.startsWith('..')) return;
    this.sweepDirs.set(relDir, Date.now());
    for (const ms of SWEEP_AFTER_MS) {
      const t = setTimeout(() => {
        this.sweepTimers.delete(t);
        void this.sweep();
      }, ms);
      t.unref?.();
      this.sweepTimers.add(t);
    }
  }

  /** Walk the new folders (each once, nested ones through their parent) and touch unseen files. */
  private async sweep(): Promise<void> {
    const now = Date.now();
    const all = [...this.sweepDirs.keys()];
    // a folder is done once its last sweep ran
    for (const [d, at] of this.sweepDirs) if (now - at >= SWEEP_AFTER_MS[SWEEP_AFTER_MS.length - 1]! - 20) this.sweepDirs.delete(d);
    const tops = all.filter((d) => !all.some((o) => o !== d && d.startsWith(`${o}/`)));
    const dirOk = makeDirFilter(this.root.exclude);
    let budget = SWEEP_MAX_FILES;
    for (const top of tops) {
      const stack = [top];
      while (stack.length && budget > 0 && !this.closed) {
        const rel = stack.pop()!;
        let dir;
        try {
          dir = await opendir(join(this.root.path, ...rel.split('/')));
        } catch {
          continue; // gone again, or unreadable: the scan reports it
        }
        try {
          for await (const d of dir) {
            const r = `${rel}/${d.name}`;
            if (this.ownData(r)) continue;
            if (d.isDirectory()) {
              if (dirOk(r)) stack.push(r);
            } else if (d.isFile()) {
              if (--budget <= 0) break;
              if (this.stabilizer.has(this.root, r)) continue;
              const st = await stat(join(this.root.path, ...r.split('/'))).catch(() => null);
              if (!st || this.opts.known?.(r, st.size, Math.trunc(st.mtimeMs))) continue;
              this.stabilizer.touch(this.root, r);
            }
          }
        } catch {}
      }
    }
  }
}

// Watches storage roots with chokidar and hands a file to ingest once it is stable: its size and
// mtime have not changed for the stability window (a file being copied in is not uploaded half-written).
import { watch, type FSWatcher } from 'chokidar';
import { stat } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import type { RootConfig } from '../../../shared/config';
import { log } from '../log';
import { errnoOf } from '../util';
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
      if (errnoOf(e) === 'ENOENT') this.ingestor.markMissing(p.root.id, p.rel);
      return;
    }
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

export class RootWatcher {
  private watcher: FSWatcher | null = null;

  constructor(
    private readonly root: RootConfig,
    private readonly ingestor: Ingestor,
    private readonly stabilizer: Stabilizer,
    private readonly opts: { usePolling: boolean; onError?: (message: string) => void },
  ) {}

  async start(): Promise<void> {
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
        if (!stats || stats.isDirectory()) return false;
        const rel = toRel(abs);
        return rel !== '' && !filter(rel.normalize('NFC'));
      },
    });
    this.watcher.on('add', (abs) => this.stabilizer.touch(this.root, toRel(abs)));
    this.watcher.on('change', (abs) => this.stabilizer.touch(this.root, toRel(abs)));
    this.watcher.on('unlink', (abs) => this.stabilizer.touch(this.root, toRel(abs)));
    this.watcher.on('error', (e) => {
      log.warn(`watcher error in ${this.root.label}: ${String(e)}`);
      this.opts.onError?.(String(e));
    });
    await new Promise<void>((resolve) => this.watcher!.once('ready', () => resolve()));
  }

  async close(): Promise<void> {
    await this.watcher?.close();
    this.watcher = null;
  }
}

// Ingest: the one path by which a file on disk enters the catalog and the queue, whether the
// scanner found it, the watcher saw it settle, the UI dropped it or the transcoder wrote it.
import { access, lstat, realpath } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config, RootConfig } from '../../../shared/config';
import { KeyError, extensionOf, fileKey, mediaKindOf, normalizeRelPath, objectKey } from '../../../shared/keys';
import type { Catalog } from '../catalog/catalog';
import type { OwnData } from '../config/folders';
import { log } from '../log';
import type { EventBus } from '../events';
import { describeLocalError, errnoOf, errorText } from '../util';
import { makeFilter, type PathFilter } from './filter';
import type { BurstGuard } from './guard';
import { sha256File } from './hash';
import { sniff, type Looks } from './sniff';

export interface SyncContext {
  catalog: Catalog;
  bus: EventBus;
  config(): Config;
  /** Enabled targets' ids. */
  targetIds(): string[];
  /** Triplicate's own files (data folder, config file): never taken, whatever the roots say. */
  ownData?: OwnData;
  /** Called for a new or changed file (the media pipeline queues a transcode for videos). */
  onFileChanged?(fileId: number, root: RootConfig, relPath: string): void;
  /** Judges each new, changed and gone file; holds a folder's changes back after a burst. */
  guard?: BurstGuard;
}

export interface IngestOptions {
  signal?: AbortSignal;
  derivedFrom?: number;
  /** Told the sentence when the file cannot be backed up (unreadable, name not representable). */
  onProblem?: (message: string) => void;
}

export type IngestResult = 'new' | 'changed' | 'same' | 'reappeared' | 'excluded' | 'gone' | 'unstable' | 'error';

/** A file Triplicate wrote itself and whose content it checked (a restore): what lstat said right after. */
export interface Vouch {
  sha256: string;
  size: number;
  ino: number;
  mtimeMs: number;
  ctimeMs: number;
}

type StatLike = Pick<Vouch, 'ino' | 'size' | 'mtimeMs' | 'ctimeMs'>;

/** Vouches kept at most (the oldest go first) and for how long: a lost one only costs a hash. */
const VOUCH_MAX = 20_000;
const VOUCH_TTL_MS = 10 * 60_000;

export class Ingestor {
  private readonly filters = new Map<string, { key: string; fn: PathFilter }>();
  /** Files being hashed right now: a second ingest of the same path waits for the first. */
  private readonly inflight = new Map<string, Promise<IngestResult>>();
  /** (root id, name on disk) -> content a restore just wrote and verified, and when. */
  private readonly vouched = new Map<string, Vouch & { at: number }>();
  /** Files read to hash them (tests, diagnostics). */
  hashes = 0;

  constructor(private readonly ctx: SyncContext) {}

  /**
   * The restore wrote this file (name on disk, "/" separators) and checked its sha256: while the
   * file stays exactly as it was then (same inode, size, mtime and ctime, so nothing wrote to it,
   * renamed over it or set its times), ingest takes that sha256 instead of reading it again.
   */
  vouch(rootId: string, diskRelPath: string, v: Vouch): void {
    const now = Date.now();
    const id = `${rootId}\0${diskRelPath}`;
    this.vouched.delete(id);
    this.vouched.set(id, { ...v, at: now });
    for (const [k, old] of this.vouched) {
      if (this.vouched.size <= VOUCH_MAX && now - old.at < VOUCH_TTL_MS) break;
      this.vouched.delete(k);
    }
  }

  /** Is this file (name on disk) as a restore left it, content checked? The watcher need not look at it. */
  isVouched(rootId: string, diskRelPath: string, st: StatLike): boolean {
    return this.vouchedFor(`${rootId}\0${diskRelPath}`, st) !== undefined;
  }

  private vouchedFor(id: string, st: StatLike): Vouch | undefined {
    const v = this.vouched.get(id);
    if (!v) return undefined;
    if (v.ino === st.ino && v.size === st.size && v.mtimeMs === st.mtimeMs && v.ctimeMs === st.ctimeMs && Date.now() - v.at < VOUCH_TTL_MS) return v;
    this.vouched.delete(id); // changed since: hash it like any other file
    return undefined;
  }

  /**
   * For a walk of `root` (scanner, watcher): which relative paths ("/" separators) are Triplicate's
   * own files, to be skipped. Only a root that holds the data folder (refused by the config check,
   * so a config from before it, or a link) has any.
   */
  async ownDataFilter(root: RootConfig): Promise<PathFilter> {
    const own = this.ctx.ownData;
    if (!own) return () => false;
    let real: string;
    try {
      real = await realpath(root.path);
    } catch {
      return () => false; // not there: nothing to walk
    }
    const fn = own.walkFilter(real);
    let said = false;
    return (rel) => {
      if (!fn(rel)) return false;
      if (!said) log.warn(`${root.label}: skipping "${rel}": it is Triplicate's own data (its settings, keys and catalog are never backed up)`);
      said = true;
      return true;
    };
  }

  filterFor(root: RootConfig): PathFilter {
    const key = JSON.stringify([root.include, root.exclude]);
    const cached = this.filters.get(root.id);
    if (cached && cached.key === key) return cached.fn;
    const fn = makeFilter(root.include, root.exclude);
    this.filters.set(root.id, { key, fn });
    return fn;
  }

  /** Hash and record one file and queue its uploads. `relPath` uses "/" separators. */
  ingest(root: RootConfig, relPath: string, opts: IngestOptions = {}): Promise<IngestResult> {
    const id = `${root.id}\0${relPath}`;
    const running = this.inflight.get(id);
    // A change during hashing: hash again after the current run, so the newest content wins.
    const p = (running ? running.then(() => this.doIngest(root, relPath, opts)) : this.doIngest(root, relPath, opts)).finally(() => {
      if (this.inflight.get(id) === p) this.inflight.delete(id);
    });
    this.inflight.set(id, p);
    return p;
  }

  /** A file that cannot be backed up: the event log says why, and so does the caller's onProblem. */
  private problem(opts: IngestOptions, e: Parameters<EventBus['record']>[0]): void {
    this.ctx.bus.record(e);
    opts.onProblem?.(e.message);
  }

  private async doIngest(root: RootConfig, rawRel: string, opts: IngestOptions): Promise<IngestResult> {
    const { catalog, bus } = this.ctx;
    let rel: string;
    try {
      rel = normalizeRelPath(rawRel);
      // The key must fit every target: check early so the reason is recorded once, on the file.
      objectKey('', root.id, rel);
    } catch (e) {
      if (e instanceof KeyError) {
        this.problem(opts, { level: 'warn', kind: 'file-skipped', message: `${e.message} (${root.label}: ${rawRel})`, file_key: `${root.id}/${rawRel}` });
        return 'error';
      }
      throw e;
    }
    if (!this.filterFor(root)(rel)) return 'excluded';
    // Open by the name on disk: on Linux an NFD name cannot be opened by its NFC form.
    const diskRelPath = rawRel.replace(/^\/+/, '');
    const abs = join(root.path, ...diskRelPath.split('/'));
    const key = fileKey(root.id, rel);
    const known = catalog.fileByPath(root.id, rel);
    if (known && (known.disk_rel ?? known.rel_path) !== diskRelPath && known.local_state === 'present' && (await exists(join(root.path, ...(known.disk_rel ?? known.rel_path).split('/'))))) {
      this.problem(opts, {
        level: 'warn',
        kind: 'file-skipped',
        message: `"${rel}" in ${root.label} exists twice with the same name written in two Unicode forms (NFC and NFD). Only one is backed up: rename one of them.`,
        file_key: key,
      });
      return 'error';
    }
    let before;
    let real: string | undefined;
    try {
      before = await lstat(abs);
      // The last wall around the data folder, by the file's real path: a link, or a root around
      // the data folder (which the config check refuses), cannot reach it.
      if (this.ctx.ownData && before.isFile()) real = await realpath(abs);
    } catch (e) {
      if (errnoOf(e) === 'ENOENT') {
        this.markMissing(root.id, rel);
        return 'gone';
      }
      this.problem(opts, { level: 'warn', kind: 'file-unreadable', message: describeLocalError(e, `"${rel}" in ${root.label}`), file_key: key, detail: errorText(e) });
      return 'error';
    }
    if (!before.isFile()) return 'excluded';
    if (real !== undefined && this.ctx.ownData?.covers(real)) {
      log.warn(`${root.label}: not backing up "${rel}": it is Triplicate's own data (${real})`);
      return 'excluded';
    }
    // Restored by us a moment ago and untouched since: its content is known, nothing to read.
    const vouched = this.vouchedFor(`${root.id}\0${diskRelPath}`, before);
    let hashed;
    // what the first bytes look like, from the read that hashes them (none for a vouched file: trusted)
    let looks: Looks | undefined;
    const guard = this.ctx.guard;
    try {
      if (vouched) hashed = { sha256: vouched.sha256, size: vouched.size };
      else {
        this.hashes++;
        hashed = await sha256File(abs, opts.signal, before.size, guard && ((head) => (looks = sniff(extensionOf(rel), head))));
        looks ??= 'ok'; // an empty file
      }
    } catch (e) {
      if (errnoOf(e) === 'ENOENT') {
        this.markMissing(root.id, rel);
        return 'gone';
      }
      if (opts.signal?.aborted) return 'error';
      this.problem(opts, { level: 'warn', kind: 'file-unreadable', message: describeLocalError(e, `"${rel}" in ${root.label}`), file_key: key, detail: errorText(e) });
      return 'error';
    }
    let after = before;
    try {
      if (!vouched) after = await lstat(abs);
    } catch {
      this.markMissing(root.id, rel);
      return 'gone';
    }
    // Still being written: the hash may not match what is on disk now; the watcher comes back.
    if (after.size !== before.size || after.mtimeMs !== before.mtimeMs || hashed.size !== after.size) return 'unstable';

    const mtime = Math.trunc(after.mtimeMs);
    const targets = this.ctx.targetIds();
    const res = catalog.transaction(() => {
      const r = catalog.recordFile({ root_id: root.id, rel_path: rel, disk_rel: diskRelPath, size: hashed.size, mtime_ms: mtime, sha256: hashed.sha256, kind: mediaKindOf(rel), derived_from: opts.derivedFrom });
      if (r.change === 'new' || r.change === 'changed') {
        const v = guard?.judge({ id: r.id, root_id: root.id, rel_path: rel, mtime_ms: mtime }, r.change, looks);
        if (!v?.hold) for (const t of targets) catalog.queueUpload(r.id, t, hashed.size, v?.runAfter ? { runAfter: v.runAfter } : {});
        else for (const t of targets) catalog.holdCopy(r.id, t, hashed.size);
      } else {
        if (r.change === 'reappeared') guard?.reappeared(r.id);
        // same or reappeared: queue only the copies that are not already safe with this content
        // (none while the burst guard holds the file back: the destinations keep its previous content)
        if (!guard?.isHeld(r.id)) {
          for (const t of targets) {
            const c = catalog.copy(r.id, t);
            if (!c || (c.state !== 'synced' && c.state !== 'pending' && c.state !== 'uploading') || (c.state === 'synced' && c.sha256 !== hashed.sha256)) {
              catalog.queueUpload(r.id, t, hashed.size);
            }
          }
        }
      }
      return r;
    });
    if (res.change === 'new' || res.change === 'changed' || res.change === 'reappeared') {
      bus.emit({ type: 'file', file_key: key, change: res.change === 'new' ? 'added' : res.change === 'changed' ? 'changed' : 'restored' });
    }
    if ((res.change === 'new' || res.change === 'changed') && !guard?.isHeld(res.id)) this.ctx.onFileChanged?.(res.id, root, rel);
    return res.change;
  }

  /** Wait for every ingest in flight (the engine calls this before it closes the catalog). */
  async drain(): Promise<void> {
    while (this.inflight.size) await Promise.allSettled([...this.inflight.values()]);
  }

  /** A cataloged file is no longer on disk. Remote copies stay (deletes never cascade). */
  markMissing(rootId: string, rawRel: string): boolean {
    let rel: string;
    try {
      rel = normalizeRelPath(rawRel);
    } catch {
      return false;
    }
    const row = this.ctx.catalog.fileByPath(rootId, rel);
    if (!row || row.local_state === 'missing') return false;
    this.ctx.catalog.setLocalState(row.id, 'missing');
    this.ctx.guard?.gone(row);
    this.ctx.bus.emit({ type: 'file', file_key: fileKey(rootId, rel), change: 'missing' });
    return true;
  }
}

async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}

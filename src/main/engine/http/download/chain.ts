// The source chain of a download: the local file (opened by its name on disk, never through a
// symlink that leaves its root, never a file of Triplicate's own data folder), else each enabled
// target in priority order (one that is down is skipped; targets seen down recently or marked
// offline go last), else 404, or 503 when a target that might hold the file could not be asked,
// because "not found" would be a lie that clients and caches keep.
// Bytes from a target are checked against the SHA-256 they must have: a small object before its
// first byte goes out (a damaged copy is passed over for the next target), a big one while it
// streams, its last chunk held back until the hash is known (a damaged copy is cut off short of
// its Content-Length). A damaged copy is queued for repair and passed over until it is repaired.
import { createHash } from 'node:crypto';
import { close as fsClose, constants as fsc, existsSync, fstat, open as fsOpen, readlinkSync, stat as fsStat, type Stats } from 'node:fs';
import { realpath } from 'node:fs/promises';
import { join, sep } from 'node:path';
import { pipeline, type Readable, Transform, type TransformCallback } from 'node:stream';
import type { RootConfig, TargetConfig } from '../../../../shared/config';
import { objectKey } from '../../../../shared/keys';
import { isStorageError, type GetResult, type ObjectInfo, type StorageBackend } from '../../backends/types';
import { diskRel, type CopyRow, type FileRow } from '../../catalog/catalog';
import type { EngineContext } from '../../core/context';
import { log } from '../../log';
import { errorText } from '../../util';
import { planResponse, weakEtag, type Representation, type Span } from '../ranges';
import { NOT_FOUND, readSpan, send, sendBuffer, sendError, sendFile, type ServeCtx } from './answer';

/** A target that failed is tried after the others for this long. */
const DOWN_MEMORY_MS = 15_000;

/**
 * sent; missing (not there); other (there, with other content than the catalog's); damaged (its
 * bytes do not match its checksum, or a repair of it is pending); down; gone (the client left).
 */
type TryResult = 'sent' | 'missing' | 'other' | 'damaged' | 'down' | 'gone';

/** The object on a target is not what the catalog says (changed since): ask it again. */
class ChangedError extends Error {}

/** The bytes of an object do not hash to the SHA-256 they must have. */
class DamagedError extends Error {
  constructor(readonly actual: string) {
    super(`the bytes do not match their checksum (they hash to ${actual})`);
  }
}

/**
 * Objects up to this size are read whole into memory and checked before their first byte goes
 * out (a damaged copy can then be passed over): phone photos and thumbnails, while 64 downloads at
 * once (the default limit) hold at most 256 MiB.
 */
const CHECK_IN_MEMORY_MAX = 4 * 1024 * 1024;

/** What the source chain asks of the sync service (wired by the composition root). */
export interface ChainDeps {
  /** The destination is known to be offline for uploads: tried last. */
  offline(targetId: string): boolean;
  /** A repair was queued: the upload lanes look at their queues. */
  wakeLanes(): void;
}

/** The sources of the files a download names, tried in order, with what is remembered of them. */
export class SourceChain {
  private readonly downUntil = new Map<string, number>();
  /** Small local files kept in memory (bounded), so hot thumbnails and photos cost one stat per request. */
  private readonly smallFiles = new SmallFileCache();
  /**
   * Local files found missing, and when: a failed open is a trip through the thread pool, so for
   * SMALL_FILE_VALID_MS such a file is served from a target (the same bytes: the SHA-256 is checked).
   */
  private readonly localMisses = new Map<string, number>();
  /**
   * The catalog rows a download reads, remembered SMALL_FILE_VALID_MS per file key: SQLite reads are a
   * good share of a small download. Safe: a copy trusted from a row is still checked against the
   * SHA-256 the target returns, and a local file is stat'ed, not taken from the row.
   */
  private readonly rows = new Map<string, KnownRows>();
  /** Damaged objects of other content than the catalog's, already reported (target, key, hash). */
  private readonly damagedSeen = new Set<string>();

  constructor(
    private readonly core: EngineContext,
    private readonly deps: ChainDeps,
  ) {}

  /**
   * The target's one backend (core/targets.ts), shared with uploads and restores (its pool is sized
   * for server.maxConcurrentDownloads too), as downloads retry and wait: two tries, and a target
   * that does not answer within a few seconds is passed over for the next copy.
   */
  private backendFor(t: TargetConfig): StorageBackend | undefined {
    return this.core.targets.backend(t.id, 'download');
  }

  /** A new config: what was remembered of files and their rows may be stale. */
  forget(): void {
    this.smallFiles.clear();
    this.localMisses.clear();
    this.rows.clear();
  }

  /** Enabled targets by priority; those seen failing recently (or offline for uploads) go last. */
  private targetOrder(): TargetConfig[] {
    const now = Date.now();
    const ts = this.core.targets.enabled();
    const bad = (t: TargetConfig) => (this.downUntil.get(t.id) ?? 0) > now || this.deps.offline(t.id);
    const good = ts.filter((t) => !bad(t));
    return good.length === ts.length ? ts : [...good, ...ts.filter(bad)];
  }

  private markDown(t: TargetConfig, e: unknown): void {
    const was = (this.downUntil.get(t.id) ?? 0) > Date.now();
    this.downUntil.set(t.id, Date.now() + DOWN_MEMORY_MS);
    if (!was) log.warn(`download: ${t.label} did not answer, trying the next copy: ${isStorageError(e) ? `${e.kind}: ${e.detail || e.message}` : errorText(e)}`);
  }

  /** The file's catalog row (and a place for its copies' rows), at most SMALL_FILE_VALID_MS old. */
  known(key: string, rootId: string, relPath: string): KnownRows {
    const now = Date.now();
    let k = this.rows.get(key);
    if (!k || now - k.at >= SMALL_FILE_VALID_MS) {
      if (!k && this.rows.size >= ROWS_MAX) this.rows.clear();
      k = { at: now, file: this.core.catalog.fileByPath(rootId, relPath), copies: new Map() };
      this.rows.set(key, k);
    }
    return k;
  }

  /** The file's copy on a target, from the same memory as its row. */
  private copyRow(k: KnownRows, targetId: string): CopyRow | undefined {
    if (!k.file) return undefined;
    if (k.copies.has(targetId)) return k.copies.get(targetId);
    const c = this.core.catalog.copy(k.file.id, targetId);
    k.copies.set(targetId, c);
    return c;
  }

  /**
   * Serve a file key. A small file served less than SMALL_FILE_VALID_MS ago is answered from
   * memory at once (like nginx's open_file_cache); everything else returns a promise.
   */
  serve(ctx: ServeCtx, key: string): Promise<void> | void {
    const root = this.core.config.get().roots.find((r) => r.id === ctx.rootId);
    if (!root) return sendError(ctx.req, ctx.res, 404, 'not_found', NOT_FOUND);
    const hit = this.smallFiles.get(key);
    if (hit && hit.root === root.path && Date.now() - hit.checkedAt < SMALL_FILE_VALID_MS) {
      ctx.entry.source = 'local';
      return sendBuffer(ctx, hit.buf, hit.rep);
    }
    return this.serveSlow(ctx, key, root, hit && hit.root === root.path ? hit : undefined);
  }

  private async serveSlow(ctx: ServeCtx, key: string, root: RootConfig, hit: CachedFile | undefined): Promise<void> {
    if (hit) {
      // A small file served before, last checked more than a second ago: one stat proves it is
      // still the same file (inode, size, modification and change times) before it is served
      // from memory again.
      const now = Date.now();
      const st = await new Promise<Stats | null>((res) => fsStat(hit.abs, (e, x) => res(e ? null : x)));
      if (st?.isFile() && sameFile(st, hit)) {
        hit.checkedAt = now;
        hit.rep = { size: hit.size, etag: this.localEtag(this.known(key, ctx.rootId, ctx.relPath).file, hit.size, hit.mtimeMs), lastModified: hit.mtimeMs };
        ctx.entry.source = 'local';
        return sendBuffer(ctx, hit.buf, hit.rep);
      }
      this.smallFiles.delete(key);
    }
    const known = this.known(key, ctx.rootId, ctx.relPath);
    const f = known.file;
    // Only files the catalog knows are served (checked before admission; gone from it since: gone).
    if (!f) return sendError(ctx.req, ctx.res, 404, 'not_found', NOT_FOUND);
    const missKey = `${root.path}\0${key}`;
    const missedAt = this.localMisses.get(missKey);
    const abs = join(root.path, ...diskRel(f).split('/'));
    let local: { fd: number; st: Stats } | null = null;
    if (missedAt === undefined || Date.now() - missedAt >= SMALL_FILE_VALID_MS) {
      local = await this.openLocal(root, abs, ctx.relPath);
      if (local) this.localMisses.delete(missKey);
      else {
        if (this.localMisses.size >= LOCAL_MISSES_MAX) this.localMisses.clear();
        this.localMisses.set(missKey, Date.now());
      }
    }
    if (local) {
      ctx.entry.source = 'local';
      const { st } = local;
      const rep: Representation = { size: st.size, etag: this.localEtag(f, st.size, st.mtimeMs), lastModified: st.mtimeMs };
      try {
        let body: number | Buffer = local.fd;
        if (st.size <= this.smallFiles.maxEntry) {
          body = await readSpan(local.fd, 0, st.size);
          this.smallFiles.set(key, { buf: body, abs, root: root.path, dev: st.dev, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs, ctimeMs: st.ctimeMs, rep, checkedAt: Date.now() });
          await sendBuffer(ctx, body, rep);
        } else await sendFile(ctx, body, rep);
      } finally {
        fsClose(local.fd, () => undefined);
      }
      return;
    }
    let down = 0;
    let damaged = 0;
    const other: TargetConfig[] = [];
    for (const t of this.targetOrder()) {
      if (ctx.gone) return;
      const r = await this.tryTarget(ctx, t, known, true);
      if (r === 'sent' || r === 'gone') return;
      if (r === 'down') down++;
      if (r === 'damaged') damaged++;
      if (r === 'other') other.push(t);
    }
    // No target has the content the catalog knows; one has some other content under this name
    // (an older version whose upload is pending, or an object changed behind our back): serve it
    // as it is, with its own ETag, rather than nothing.
    for (const t of other) {
      if (ctx.gone) return;
      const r = await this.tryTarget(ctx, t, known, false);
      if (r === 'sent' || r === 'gone') return;
      if (r === 'down') down++;
      if (r === 'damaged') damaged++;
    }
    if (ctx.gone) return;
    if (down > 0) {
      ctx.entry.error = 'sources_down';
      return sendError(
        ctx.req,
        ctx.res,
        503,
        'sources_unavailable',
        "This file is not on the server's own disk, and its backup copies cannot be reached right now. Try again in a few minutes.",
        { 'retry-after': '60' },
      );
    }
    if (damaged > 0) {
      ctx.entry.error = 'copies_damaged';
      const why = "This file is not on the server's own disk, and its backup copies are damaged, so it was not sent. The operator has been told; ask the person who shared it.";
      return sendError(ctx.req, ctx.res, 502, 'copies_damaged', why);
    }
    sendError(ctx.req, ctx.res, 404, 'not_found', NOT_FOUND);
  }

  /**
   * Open the local file, or null: absent, not a regular file, or reached through a symlink that
   * leads out of the root. On Linux the check is made on the file actually opened (the path of
   * /proc/self/fd/N), so nothing can be swapped between the check and the open; elsewhere the path
   * is resolved first (realpath) and the resolved path opened. O_NOFOLLOW refuses a symlink as the
   * last component either way (the scanner never backs those up).
   */
  private async openLocal(root: RootConfig, abs: string, relPath: string): Promise<{ fd: number; st: Stats } | null> {
    const rootReal = await realpath(root.path).catch(() => null);
    if (!rootReal) return null;
    const inside = rootReal.endsWith(sep) ? rootReal : rootReal + sep;
    const refuse = () => log.warn(`download: refused "${root.id}/${relPath}": it resolves to a place outside the folder ${root.path}`);
    let path = abs;
    if (!PROC_FD) {
      try {
        path = await realpath(abs);
      } catch {
        return null;
      }
      if (!path.startsWith(inside) || this.core.ownData.covers(path)) {
        refuse();
        return null;
      }
    }
    let fd: number;
    try {
      fd = await new Promise<number>((res, rej) => fsOpen(path, fsc.O_RDONLY | (fsc.O_NOFOLLOW ?? 0), (e, n) => (e ? rej(e) : res(n))));
    } catch {
      return null;
    }
    try {
      // Never a file of Triplicate's own data folder, whatever the catalog says (a third wall after
      // the folder rules and the scanner).
      const real = PROC_FD ? readlinkSync(`/proc/self/fd/${fd}`) : path;
      if (!real.startsWith(inside) || this.core.ownData.covers(real)) {
        refuse();
      } else {
        const st = await new Promise<Stats>((res, rej) => fstat(fd, (e, x) => (e ? rej(e) : res(x))));
        if (st.isFile()) return { fd, st };
      }
    } catch {}
    fsClose(fd, () => undefined);
    return null;
  }

  /** Strong ETag (the catalog's SHA-256) when the file on disk is the one the catalog hashed, else weak. */
  private localEtag(f: FileRow | undefined, size: number, mtimeMs: number): string {
    return f?.sha256 && f.size === size && f.mtime_ms === Math.trunc(mtimeMs) ? `"${f.sha256}"` : weakEtag(size, mtimeMs);
  }

  /**
   * Serve from one target. `strict`: the catalog knows the file's content, and a target whose
   * object differs (another size or SHA-256) is passed over ('other') for one that has the right
   * bytes; only when no target has them is a differing object served, as it is (non-strict).
   */
  private async tryTarget(ctx: ServeCtx, t: TargetConfig, known: KnownRows, strict: boolean): Promise<TryResult> {
    let key: string;
    try {
      key = objectKey(t.prefix, ctx.rootId, ctx.relPath);
    } catch {
      return 'missing';
    }
    const backend = this.backendFor(t);
    if (!backend) return 'missing'; // switched off since the order was made
    const f = known.file;
    const want = strict && f?.sha256 ? { size: f.size, sha256: f.sha256 } : undefined;
    const copy = want ? this.copyRow(known, t.id) : undefined;
    // A copy found damaged stays passed over until its repair made it synced again.
    if (copy && copy.state !== 'synced' && this.core.catalog.repairQueued(copy.file_id, t.id)) return 'damaged';
    // A copy the catalog knows as synced with this content: GET straight away (one round trip).
    let trusted = ctx.method === 'GET' && !!want && copy?.state === 'synced' && copy.sha256 === want.sha256;
    for (let attempt = 0; attempt < 2; attempt++) {
      let rep: Representation & { sha256?: string };
      if (trusted) {
        rep = { size: f!.size, etag: `"${f!.sha256}"`, lastModified: f!.mtime_ms, sha256: f!.sha256! };
      } else {
        let info: ObjectInfo | null;
        try {
          info = await backend.head(key, ctx.signal);
        } catch (e) {
          if (ctx.gone) return 'gone';
          this.markDown(t, e);
          return 'down';
        }
        if (!info) return 'missing';
        if (want && (info.size !== want.size || (info.sha256 !== undefined && info.sha256 !== want.sha256))) return 'other';
        rep = {
          size: info.size,
          etag: info.sha256 ? `"${info.sha256}"` : weakEtag(info.size, info.lastModified ?? 0),
          lastModified: info.mtimeMs ?? info.lastModified,
          sha256: info.sha256,
        };
      }
      const plan = planResponse(ctx.method, ctx.req.headers, rep);
      const open = async (range?: Span): Promise<GetResult> => {
        const got = await backend.get(key, { range, signal: ctx.signal });
        if (got.totalSize !== rep.size || (rep.sha256 && got.info.sha256 && got.info.sha256 !== rep.sha256)) {
          got.body.destroy();
          throw new ChangedError(`the object changed: ${got.totalSize} bytes, sha256 ${got.info.sha256 ?? '?'}`);
        }
        return got;
      };
      // The SHA-256 the bytes must have: the catalog's, or (non-strict) the object's own.
      const check = want?.sha256 ?? rep.sha256;
      let inMemory: Promise<Buffer> | undefined;
      try {
        await send(ctx, rep, plan, async (span) => {
          if (check && rep.size <= CHECK_IN_MEMORY_MAX) {
            // Every range of it is served from the whole object, checked before the headers go out.
            inMemory ??= open().then((got) => readChecked(got.body, rep.size, check));
            return (await inMemory).subarray(span.start, span.end + 1);
          }
          const whole = span.start === 0 && span.end === rep.size - 1;
          const got = await open(whole ? undefined : span);
          // A part of a big file cannot be checked against the whole file's hash: it is served
          // from a copy not known to be damaged (one found damaged is passed over, above).
          if (!check || !whole) return got.body;
          const checked = new CheckedStream(rep.size, check, (actual) => this.damaged(ctx, t, known, strict, actual));
          pipeline(got.body, checked, () => undefined); // a failing source destroys `checked`, which breaks the response
          return checked;
        });
        ctx.entry.source = t.id;
        return 'sent';
      } catch (e) {
        if (ctx.gone) return 'gone';
        if (e instanceof ChangedError) {
          trusted = false;
          continue;
        }
        if (e instanceof DamagedError) {
          this.damaged(ctx, t, known, strict, e.actual);
          return 'damaged';
        }
        if (isStorageError(e) && e.kind === 'not_found') return 'missing';
        this.markDown(t, e);
        return 'down';
      }
    }
    return 'other';
  }

  /**
   * The copy on `t` is damaged: its bytes hash to `actual`, not to the SHA-256 they must have. A
   * copy of the catalog's content is no longer trusted: a repair job on its lane (downloads pass
   * it over until the repair is done) and an event in Activity. Other content (non-strict) has no
   * copy to repair: the operator is told once.
   */
  private damaged(ctx: ServeCtx, t: TargetConfig, known: KnownRows, strict: boolean, actual: string): void {
    const key = `${ctx.rootId}/${ctx.relPath}`;
    const f = known.file;
    ctx.entry.error = `damaged copy on ${t.id}`;
    const message = `The copy of "${key}" on ${t.label} is damaged: its bytes do not match its checksum, so it was not sent.`;
    const detail = `the bytes hash to ${actual}`;
    if (strict && f?.sha256) {
      const reason = `The copy on ${t.label} is damaged (its bytes do not match its checksum). Triplicate replaces it with a good copy.`;
      this.core.catalog.queueRepair(f.id, t.id, f.size, reason);
      known.copies.delete(t.id);
      this.core.bus.record({ level: 'error', kind: 'copy-damaged', message: `${message} Triplicate replaces it with a good copy.`, file_key: key, target_id: t.id, detail });
      this.core.bus.emit({ type: 'copy', file_key: key, target_id: t.id, state: 'pending', error: reason });
      this.deps.wakeLanes();
      return;
    }
    const seen = `${t.id}\0${key}\0${actual}`;
    if (this.damagedSeen.has(seen)) return;
    if (this.damagedSeen.size >= ROWS_MAX) this.damagedSeen.clear();
    this.damagedSeen.add(seen);
    this.core.bus.record({ level: 'error', kind: 'copy-damaged', message, file_key: key, target_id: t.id, detail });
  }
}

/** A file's catalog rows as read at `at`: its own, and its copy per target id (read when first needed). */
export interface KnownRows {
  at: number;
  file: FileRow | undefined;
  copies: Map<string, CopyRow | undefined>;
  /** Whether a link opens it (DownloadServer), once asked. */
  linkOpens?: boolean;
}

interface CachedFile {
  buf: Buffer;
  /** Where it was read from, and the root folder it belongs to (a changed root path misses). */
  abs: string;
  root: string;
  /** Size, ETag and Last-Modified, as served. */
  rep: Representation;
  /** When a stat last proved it current. */
  checkedAt: number;
  /** SmallFileCache's insertion counter when it was last moved to the young end. */
  seq?: number;
  dev: number;
  ino: number;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
}

/** The same file as when it was cached: same inode, size, modification and change times. */
function sameFile(st: Stats, c: CachedFile): boolean {
  return st.ino === c.ino && st.dev === c.dev && st.size === c.size && st.mtimeMs === c.mtimeMs && st.ctimeMs === c.ctimeMs;
}

/**
 * LRU of small files' content, by file key. An entry is used within SMALL_FILE_VALID_MS of the
 * last check, or after a stat shows the very same file (inode, size, mtime, ctime): an edited or
 * replaced file is read again, at most a second late.
 */
class SmallFileCache {
  private readonly map = new Map<string, CachedFile>();
  private bytes = 0;
  /** Insertion counter: an entry is moved to the young end only when it has aged (fewer Map rehashes). */
  private seq = 0;
  constructor(
    readonly maxBytes = 32 * 1024 * 1024,
    readonly maxEntry = 512 * 1024,
  ) {}
  get(path: string): CachedFile | undefined {
    const e = this.map.get(path);
    if (e && this.seq - (e.seq ?? 0) > this.map.size >> 1) {
      // Used again but in the older half: move it to the young end (an approximate LRU that does
      // not delete and re-insert the hot entries on every request).
      this.map.delete(path);
      this.map.set(path, e);
      e.seq = ++this.seq;
    }
    return e;
  }
  set(path: string, e: CachedFile): void {
    if (e.size > this.maxEntry) return;
    this.delete(path);
    e.seq = ++this.seq;
    this.map.set(path, e);
    this.bytes += e.size;
    for (const [k, v] of this.map) {
      if (this.bytes <= this.maxBytes) break;
      this.map.delete(k);
      this.bytes -= v.size;
    }
  }
  delete(path: string): void {
    const e = this.map.get(path);
    if (!e) return;
    this.map.delete(path);
    this.bytes -= e.size;
  }
  clear(): void {
    this.map.clear();
    this.bytes = 0;
  }
}

/** A cached small file is served without a stat for this long after the last check. */
const SMALL_FILE_VALID_MS = 1_000;
/** Files whose catalog rows are remembered, at most (all forgotten at once when full: a second's worth). */
const ROWS_MAX = 10_000;
/** Remembered local misses at most (all forgotten at once when full: they are a second's worth). */
const LOCAL_MISSES_MAX = 10_000;

const PROC_FD = process.platform === 'linux' && existsSync('/proc/self/fd');

/** A whole object read into memory, checked against the SHA-256 it must have (DamagedError if not). */
async function readChecked(body: Readable, size: number, sha256: string): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(size);
  let got = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      if (got + chunk.length > size) throw new Error(`the source gave more than ${size} bytes`);
      chunk.copy(buf, got);
      got += chunk.length;
    }
  } finally {
    body.destroy();
  }
  if (got !== size) throw new Error(`the source ended after ${got} of ${size} bytes`);
  const actual = createHash('sha256').update(buf).digest('hex');
  if (actual !== sha256) throw new DamagedError(actual);
  return buf;
}

/**
 * A whole object passed through and hashed one chunk behind: the last chunk goes out only once
 * the hash of all of it is known to be `sha256`. Otherwise `onDamaged` is told and the stream
 * fails, which destroys the response short of its Content-Length: the client never sees a clean end.
 */
class CheckedStream extends Transform {
  private readonly hash = createHash('sha256');
  private held: Buffer | null = null;
  private bytes = 0;
  constructor(
    private readonly size: number,
    private readonly sha256: string,
    private readonly onDamaged: (actual: string) => void,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    if (this.held) this.push(this.held);
    this.held = chunk;
    cb();
  }
  override _flush(cb: TransformCallback): void {
    if (this.bytes !== this.size) return cb(new Error(`the source ended after ${this.bytes} of ${this.size} bytes`));
    const actual = this.hash.digest('hex');
    if (actual !== this.sha256) {
      this.onDamaged(actual);
      return cb(new DamagedError(actual));
    }
    if (this.held) this.push(this.held);
    this.held = null;
    cb();
  }
}

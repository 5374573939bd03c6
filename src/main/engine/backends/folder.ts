// Folder backend: a mounted NAS share (SMB/NFS) or a USB disk. Objects are plain files under
// the folder, `<root>/<key>`, so a person can browse the copy with a file manager.
//
// - Writes are atomic: data goes to `.triplicate-tmp-<random>` in the destination directory,
//   is fsynced, gets the source mtime, then is renamed over the final name.
// - Metadata (sha256, mtime, size, content type) lives in a sidecar JSON file in a parallel
//   hidden tree, `<root>/.triplicate-meta/<key>.json` (no xattrs: FAT/exFAT and many SMB servers
//   drop them). The sidecar is written after the data and records the data's size and mtime;
//   head() trusts its sha256 only while they still match, so a crash between the two writes (or
//   someone replacing the file by hand) reads as "no sha256" and the engine uploads again.
// - Keys never escape the folder: "..", ".", empty segments, absolute paths and NUL are refused.
// - The folder itself is never created: a missing folder usually means an unmounted share, and
//   writing into the bare mount point would fill the server's own disk.
import { createHash, randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { copyFile, mkdir, open, readdir, readFile, rename, rmdir, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { FolderTargetConfig } from '../../../shared/config';
import { compareKeys, localBodyError, meterBody, throwIfAborted, wrapBody } from './streams';
import {
  abortError,
  StorageError,
  type BodySource,
  type GetOptions,
  type GetResult,
  type ListOptions,
  type ObjectInfo,
  type PutOptions,
  type StorageBackend,
} from './types';

/** Hidden tree holding the metadata sidecars. Keys may not start with it. */
export const META_DIR = '.triplicate-meta';
/** Prefix of in-progress temp files; never listed, never a valid key segment. */
export const TEMP_PREFIX = '.triplicate-tmp-';
/** FAT keeps mtimes to 2 s; tolerate that much when matching a sidecar to its file. */
const MTIME_TOLERANCE_MS = 2000;

interface Sidecar {
  sha256: string;
  mtimeMs: number;
  size: number;
  contentType?: string;
}

export interface FolderBackendOptions {
  /** fsync data, sidecars and directories (default true). Only tests turn it off. */
  fsync?: boolean;
  /**
   * Refuse to work when the marker file is missing (see MARKER_FILE). The engine sets this once
   * it knows the target holds copies, so that an unmounted share (an empty mount point) is
   * reported as such even right after a restart, instead of being filled from the local disk.
   */
  requireMarker?: boolean;
}

/**
 * `<root>/.triplicate-meta/folder.json`, written by the first upload. Once seen (or when
 * `requireMarker` is set), its absence means "this is not the folder we wrote to": typically the
 * share is unmounted and the path is the bare mount point on the server's own disk.
 */
export const MARKER_FILE = 'folder.json';

export class FolderBackend implements StorageBackend {
  readonly id: string;
  readonly kind = 'folder' as const;
  readonly description: string;
  readonly prefix: string;
  readonly root: string;
  private readonly metaRoot: string;
  private readonly fsync: boolean;
  private markerSeen: boolean;

  constructor(target: FolderTargetConfig, opts: FolderBackendOptions = {}) {
    this.id = target.id;
    this.prefix = target.prefix;
    this.root = resolve(target.path);
    this.metaRoot = join(this.root, META_DIR);
    this.description = `${target.label} (folder ${this.root})`;
    this.fsync = opts.fsync ?? true;
    this.markerSeen = opts.requireMarker ?? false;
  }

  // ---------------------------------------------------------------------------------------------

  async put(key: string, body: BodySource, opts: PutOptions): Promise<ObjectInfo> {
    const segs = this.segments(key);
    throwIfAborted(opts.signal);
    await this.checkRoot();
    const file = join(this.root, ...segs);
    const dir = dirname(file);
    const temp = join(dir, TEMP_PREFIX + randomBytes(8).toString('hex'));
    const mtimeMs = Math.round(opts.mtimeMs);
    let metered: ReturnType<typeof meterBody> | undefined;
    try {
      await this.ensureMarker();
      await mkdir(dir, { recursive: true });
      let src;
      try {
        src = body.open();
      } catch (e) {
        throw localBodyError(e as Error, key);
      }
      metered = meterBody(src, body.size, opts.onProgress);
      const out = (await open(temp, 'wx', 0o644)).createWriteStream();
      await pipeline(metered.stream, out, { signal: opts.signal });
      await this.finishFile(temp, mtimeMs);
      await rename(temp, file);
      const contentType = opts.contentType ?? 'application/octet-stream';
      await this.writeSidecar(segs, { sha256: opts.sha256, mtimeMs, size: body.size, contentType });
      await this.syncDir(dir);
      return { key, size: body.size, sha256: opts.sha256, mtimeMs, contentType, lastModified: Date.now() };
    } catch (e) {
      await unlink(temp).catch(() => {});
      if (opts.signal?.aborted) throw abortError();
      if (e instanceof StorageError) throw e;
      const local = metered?.localError();
      if (local) throw localBodyError(local, key);
      throw this.mapError(e, 'put', key);
    }
  }

  async get(key: string, opts: GetOptions = {}): Promise<GetResult> {
    const segs = this.segments(key);
    throwIfAborted(opts.signal);
    const file = join(this.root, ...segs);
    let fh;
    try {
      fh = await open(file, 'r');
    } catch (e) {
      throw await this.missingOr(e, 'get', key);
    }
    try {
      const st = await fh.stat();
      if (!st.isFile()) throw this.notFound(key);
      const size = st.size;
      let start = 0;
      let end = size - 1;
      const range = opts.range;
      if (range) {
        if (!Number.isSafeInteger(range.start) || range.start < 0 || (range.end !== undefined && range.end < range.start) || range.start >= size) {
          throw new StorageError(
            'invalid',
            `The requested byte range of "${key}" is outside the file on ${this.description}.`,
            `get: range ${range.start}-${range.end ?? ''} of ${size} bytes`,
          );
        }
        start = range.start;
        end = Math.min(range.end ?? size - 1, size - 1);
      }
      const contentLength = size === 0 ? 0 : end - start + 1;
      const info = await this.infoFor(key, segs, st);
      // A zero-byte read stream with end -1 would read the whole file: give an empty one.
      const raw = contentLength === 0 ? undefined : fh.createReadStream({ start, end, autoClose: true });
      if (!raw) await fh.close();
      const body = wrapBody(raw, (e) => this.mapError(e, 'get', key), opts.signal);
      return { body, contentLength, totalSize: size, info };
    } catch (e) {
      await fh.close().catch(() => {});
      if (e instanceof StorageError) throw e;
      throw this.mapError(e, 'get', key);
    }
  }

  async head(key: string, signal?: AbortSignal): Promise<ObjectInfo | null> {
    const segs = this.segments(key);
    throwIfAborted(signal);
    let st: Stats;
    try {
      st = await stat(join(this.root, ...segs));
    } catch (e) {
      const err = await this.missingOr(e, 'head', key);
      if (err.kind === 'not_found') return null;
      throw err;
    }
    if (!st.isFile()) return null;
    return this.infoFor(key, segs, st);
  }

  async *list(prefix: string, opts: ListOptions = {}): AsyncGenerator<ObjectInfo> {
    await this.checkRoot();
    // Start in the deepest directory the prefix names entirely ("a/b/c" -> "a/b/").
    const slash = prefix.lastIndexOf('/');
    const baseKey = slash >= 0 ? prefix.slice(0, slash + 1) : '';
    if (baseKey && !this.safeSegments(baseKey.slice(0, -1))) return; // cannot match any valid key
    yield* this.walk(baseKey, prefix, opts.startAfter, opts.signal);
  }

  /** Depth-first walk in UTF-8 byte order of the full keys (the order S3 lists in). */
  private async *walk(dirKey: string, prefix: string, startAfter: string | undefined, signal?: AbortSignal): AsyncGenerator<ObjectInfo> {
    throwIfAborted(signal);
    const dirPath = dirKey ? join(this.root, ...dirKey.slice(0, -1).split('/')) : this.root;
    let entries;
    try {
      entries = await readdir(dirPath, { withFileTypes: true });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') return;
      throw this.mapError(e, 'list', prefix);
    }
    const items = entries
      .filter((d) => !(dirKey === '' && d.name === META_DIR) && !d.name.startsWith(TEMP_PREFIX) && (d.isFile() || d.isDirectory()))
      .map((d) => ({ name: d.name, dir: d.isDirectory(), sortKey: dirKey + d.name + (d.isDirectory() ? '/' : '') }))
      .sort((a, b) => compareKeys(a.sortKey, b.sortKey));
    for (const it of items) {
      const key = dirKey + it.name;
      if (it.dir) {
        const sub = key + '/';
        if (!(sub.startsWith(prefix) || prefix.startsWith(sub))) continue;
        // Every key under `sub` sorts before startAfter: skip the whole directory.
        if (startAfter !== undefined && compareKeys(sub, startAfter) < 0 && !startAfter.startsWith(sub)) continue;
        yield* this.walk(sub, prefix, startAfter, signal);
        continue;
      }
      if (!key.startsWith(prefix)) continue;
      if (startAfter !== undefined && compareKeys(key, startAfter) <= 0) continue;
      let st: Stats;
      try {
        st = await stat(join(dirPath, it.name));
      } catch (e) {
        // Deleted while listing: skip it. Unless the whole share went away: then say so (and a
        // retrying caller resumes after the last key), rather than end the listing early.
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw this.mapError(e, 'list', key);
        await this.checkRoot();
        continue;
      }
      // Like S3's listing: no metadata (sha256, mtime) here; head() has it.
      yield { key, size: st.size, lastModified: Math.round(st.ctimeMs) };
    }
  }

  async delete(key: string, signal?: AbortSignal): Promise<void> {
    const segs = this.segments(key);
    throwIfAborted(signal);
    const file = join(this.root, ...segs);
    try {
      await unlink(file);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        await this.checkRoot(); // absent key: fine; absent folder: say so
      } else if (code === 'EISDIR' || code === 'EPERM') {
        // EPERM is what Linux answers for unlink() on a directory: a directory is not an object.
        const st = await stat(file).catch(() => null);
        if (!st?.isDirectory()) throw this.mapError(e, 'delete', key);
      } else {
        throw this.mapError(e, 'delete', key);
      }
    }
    await unlink(this.sidecarPath(segs)).catch(() => {});
    await this.pruneEmptyDirs(dirname(file), this.root);
    await this.pruneEmptyDirs(dirname(this.sidecarPath(segs)), this.metaRoot);
  }

  async copy(srcKey: string, dstKey: string, signal?: AbortSignal): Promise<void> {
    const srcSegs = this.segments(srcKey);
    const dstSegs = this.segments(dstKey);
    throwIfAborted(signal);
    const src = join(this.root, ...srcSegs);
    const dst = join(this.root, ...dstSegs);
    let st: Stats;
    try {
      st = await stat(src);
    } catch (e) {
      throw await this.missingOr(e, 'copy', srcKey);
    }
    if (!st.isFile()) throw this.notFound(srcKey);
    const meta = await this.readSidecar(srcSegs);
    const dir = dirname(dst);
    const temp = join(dir, TEMP_PREFIX + randomBytes(8).toString('hex'));
    try {
      await mkdir(dir, { recursive: true });
      // Copy-on-write clone where the file system can (btrfs, XFS, APFS), a plain copy elsewhere.
      await copyFile(src, temp, fsConstants.COPYFILE_FICLONE);
      throwIfAborted(signal);
      await this.finishFile(temp, st.mtimeMs);
      await rename(temp, dst);
      if (meta && sidecarMatches(meta, st)) await this.writeSidecar(dstSegs, meta);
      else await unlink(this.sidecarPath(dstSegs)).catch(() => {});
      await this.syncDir(dir);
    } catch (e) {
      await unlink(temp).catch(() => {});
      if (signal?.aborted) throw abortError();
      if (e instanceof StorageError) throw e;
      throw this.mapError(e, 'copy', `${srcKey} -> ${dstKey}`);
    }
  }

  /** Remove temp files older than `olderThanMs` under the prefix (left by a crash). */
  async cleanupIncomplete(prefix: string, olderThanMs: number, signal?: AbortSignal): Promise<number> {
    await this.checkRoot();
    const cutoff = Date.now() - olderThanMs;
    const slash = prefix.lastIndexOf('/');
    const baseKey = slash >= 0 ? prefix.slice(0, slash + 1) : '';
    if (baseKey && !this.safeSegments(baseKey.slice(0, -1))) return 0;
    let removed = 0;
    const visit = async (dirPath: string, depth: number): Promise<void> => {
      throwIfAborted(signal);
      if (depth > 256) return; // deeper than any real path: a symlink loop or worse
      const entries = await readdir(dirPath, { withFileTypes: true }).catch(() => []);
      for (const d of entries) {
        const p = join(dirPath, d.name);
        if (d.isDirectory() && !(dirPath === this.root && d.name === META_DIR)) await visit(p, depth + 1);
        else if (d.isFile() && d.name.startsWith(TEMP_PREFIX)) {
          const st = await stat(p).catch(() => null);
          // ctime: the temp file's mtime is set to the source's, which may be years old.
          if (st && st.ctimeMs < cutoff && (await unlink(p).then(() => true, () => false))) removed++;
        }
      }
    };
    await visit(baseKey ? join(this.root, ...baseKey.slice(0, -1).split('/')) : this.root, 0);
    return removed;
  }

  // ---------------------------------------------------------------------------------------------
  // helpers

  /** Split and validate a key; throws 'invalid' for anything that could escape the folder. */
  private segments(key: string): string[] {
    const segs = this.safeSegments(key);
    if (!segs) {
      throw new StorageError(
        'invalid',
        `The name "${key.replace(/\0/g, '\\0')}" cannot be stored in a folder (it is empty, absolute, contains "..", "." or an empty part, or a reserved name).`,
        `folder: rejected key ${JSON.stringify(key)}`,
      );
    }
    const full = join(this.root, ...segs);
    const rel = relative(this.root, full);
    if (rel.startsWith('..') || isAbsolute(rel)) {
      throw new StorageError('invalid', `The name "${key}" points outside the folder.`, `folder: key escapes root: ${JSON.stringify(key)}`);
    }
    return segs;
  }

  private safeSegments(key: string): string[] | null {
    if (typeof key !== 'string' || key.length === 0 || key.includes('\0')) return null;
    if (process.platform === 'win32' && (key.includes('\\') || /^[a-zA-Z]:/.test(key))) return null;
    const segs = key.split('/');
    for (const s of segs) {
      if (s === '' || s === '.' || s === '..' || s.startsWith(TEMP_PREFIX)) return null;
    }
    if (segs[0] === META_DIR) return null;
    return segs;
  }

  private sidecarPath(segs: string[]): string {
    const last = segs[segs.length - 1]!;
    return join(this.metaRoot, ...segs.slice(0, -1), sidecarName(last));
  }

  private async readSidecar(segs: string[]): Promise<Sidecar | null> {
    try {
      const v = JSON.parse(await readFile(this.sidecarPath(segs), 'utf8')) as Partial<Sidecar>;
      if (typeof v.sha256 !== 'string' || typeof v.mtimeMs !== 'number' || typeof v.size !== 'number') return null;
      return { sha256: v.sha256, mtimeMs: v.mtimeMs, size: v.size, contentType: typeof v.contentType === 'string' ? v.contentType : undefined };
    } catch {
      return null;
    }
  }

  private async writeSidecar(segs: string[], meta: Sidecar): Promise<void> {
    const path = this.sidecarPath(segs);
    const dir = dirname(path);
    await mkdir(dir, { recursive: true });
    const temp = join(dir, TEMP_PREFIX + randomBytes(8).toString('hex'));
    try {
      await writeFile(temp, JSON.stringify(meta), { flag: 'wx' });
      if (this.fsync) {
        const fh = await open(temp, 'r+');
        await fh.sync().finally(() => fh.close());
      }
      await rename(temp, path);
    } catch (e) {
      await unlink(temp).catch(() => {});
      throw e;
    }
  }

  private async infoFor(key: string, segs: string[], st: Stats): Promise<ObjectInfo> {
    const meta = await this.readSidecar(segs);
    const valid = meta !== null && sidecarMatches(meta, st);
    return {
      key,
      size: st.size,
      sha256: valid ? meta.sha256 : undefined,
      mtimeMs: valid ? meta.mtimeMs : undefined,
      // ctime moves when we rename the file into place: the closest thing to "uploaded at".
      lastModified: Math.round(st.ctimeMs),
      contentType: valid ? meta.contentType : undefined,
    };
  }

  /** fsync a finished temp file and give it the source's mtime. */
  private async finishFile(path: string, mtimeMs: number): Promise<void> {
    const when = new Date(mtimeMs);
    if (this.fsync) {
      const fh = await open(path, 'r+');
      try {
        await fh.sync();
        await fh.utimes(when, when);
      } finally {
        await fh.close();
      }
    } else {
      await utimes(path, when, when);
    }
  }

  /** Make a rename durable. Not possible on Windows (and some network file systems): best effort. */
  private async syncDir(dir: string): Promise<void> {
    if (!this.fsync || process.platform === 'win32') return;
    try {
      const fh = await open(dir, 'r');
      await fh.sync().finally(() => fh.close());
    } catch {
      // EINVAL/EISDIR on file systems that cannot fsync a directory.
    }
  }

  /** Remove now-empty directories from `dir` up to (not including) `top`. */
  private async pruneEmptyDirs(dir: string, top: string): Promise<void> {
    let d = dir;
    for (let i = 0; i < 1024 && d !== top && d.startsWith(top + sep); i++) {
      try {
        await rmdir(d);
      } catch {
        return; // not empty (or gone, or not ours to remove): stop here
      }
      d = dirname(d);
    }
  }

  /** The folder must exist and be a directory; it is never created (see the file comment). */
  private async checkRoot(): Promise<void> {
    let st: Stats;
    try {
      st = await stat(this.root);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        throw new StorageError(
          'network',
          `The folder of ${this.description} is not there: the share or disk is probably not connected. Connect it (or fix the path in Destinations); Triplicate keeps retrying.`,
          `folder: stat ${this.root}: ${code}`,
          { cause: e },
        );
      }
      throw this.mapError(e, 'stat-root');
    }
    if (!st.isDirectory()) {
      throw new StorageError(
        'no_bucket',
        `${this.description}: "${this.root}" is a file, not a folder. Choose a folder in Destinations.`,
        `folder: ${this.root} is not a directory`,
      );
    }
    if (!this.markerSeen) {
      this.markerSeen = await this.markerExists();
      return;
    }
    if (!(await this.markerExists())) {
      throw new StorageError(
        'network',
        `The folder of ${this.description} is there but empty of Triplicate's files: the share or disk is probably not connected (only its mount point is left). Connect it; Triplicate keeps retrying.`,
        `folder: ${join(this.metaRoot, MARKER_FILE)} is missing`,
      );
    }
  }

  private async markerExists(): Promise<boolean> {
    return stat(join(this.metaRoot, MARKER_FILE)).then(
      (st) => st.isFile(),
      () => false,
    );
  }

  /** Write the marker on first use (after checkRoot() found the folder). */
  private async ensureMarker(): Promise<void> {
    if (this.markerSeen) return;
    await mkdir(this.metaRoot, { recursive: true });
    const path = join(this.metaRoot, MARKER_FILE);
    await writeFile(path, JSON.stringify({ triplicate: 1, target: this.id, createdAt: new Date().toISOString() }), { flag: 'wx' }).catch((e) => {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    });
    this.markerSeen = true;
  }

  /** ENOENT on a key is not_found, unless the whole folder is gone (then: not mounted). */
  private async missingOr(e: unknown, op: string, key: string): Promise<StorageError> {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') {
      await this.checkRoot();
      return this.notFound(key);
    }
    return this.mapError(e, op, key);
  }

  private notFound(key: string): StorageError {
    return new StorageError('not_found', `The object "${key}" is not on ${this.description}.`, `folder: ${key}: ENOENT`);
  }

  private mapError(e: unknown, op: string, key?: string): StorageError {
    if (e instanceof StorageError) return e;
    const err = e as NodeJS.ErrnoException;
    const code = err?.code ?? '';
    const detail = `${op}${key !== undefined ? ` "${key}"` : ''}; ${err?.name ?? 'Error'}${code ? ` ${code}` : ''}${err?.syscall ? ` (${err.syscall})` : ''}; ${err?.message ?? String(e)}`;
    const t = this.description;
    const make = (kind: ConstructorParameters<typeof StorageError>[0], message: string) => new StorageError(kind, message, detail, { cause: e });
    const name = key !== undefined ? ` "${key}"` : '';
    switch (code) {
      case 'ABORT_ERR':
        return make('aborted', 'The operation was cancelled.');
      case 'ENOSPC':
      case 'EDQUOT':
        return make('no_space', `${t} is full. Free some space on the disk or share; Triplicate retries later.`);
      case 'EACCES':
      case 'EPERM':
        return make(
          'auth',
          `Triplicate may not write to ${t}. Give the account Triplicate runs as permission to write there, or choose another folder in Destinations.`,
        );
      case 'EROFS':
        return make('auth', `${t} is read-only (a write-protected disk or a share mounted read-only). Make it writable or choose another folder.`);
      case 'EIO':
      case 'ESTALE':
      case 'ENOTCONN':
      case 'EHOSTDOWN':
      case 'EHOSTUNREACH':
      case 'ENETUNREACH':
      case 'ECONNRESET':
      case 'ECONNREFUSED':
      case 'ENXIO':
      case 'ENODEV':
      case 'ENOENT':
        return make('network', `${t} stopped answering (the share or disk may have been disconnected). Check the connection; Triplicate keeps retrying.`);
      case 'ETIMEDOUT':
        return make('timeout', `${t} did not answer in time. Check the connection to the share; Triplicate keeps retrying.`);
      case 'ENAMETOOLONG':
        return make('invalid', `The name${name} is too long for the file system of ${t}. Shorten the folder or file name.`);
      case 'EINVAL':
      case 'EILSEQ':
        return make('invalid', `The name${name} contains characters the file system of ${t} does not allow (FAT and Windows shares refuse : * ? " < > |).`);
      case 'ENOTDIR':
      case 'EISDIR':
      case 'EEXIST':
      case 'ENOTEMPTY':
        return make('invalid', `${t} has a file and a folder with the same name where${name} should go. Rename one of them.`);
      case 'EMFILE':
      case 'ENFILE':
        return make('server', 'Triplicate has too many files open at once. It waits and tries again.');
      default:
        return make('unknown', `Something went wrong writing to ${t} (${code || err?.name || 'error'}). Triplicate tries again later; the detail may help.`);
    }
  }
}

function sidecarMatches(meta: Sidecar, st: Stats): boolean {
  return meta.size === st.size && Math.abs(meta.mtimeMs - st.mtimeMs) <= MTIME_TOLERANCE_MS;
}

/**
 * The sidecar's file name: `<name>.json`, or, for a name within 5 bytes of the usual 255-byte limit
 * (a name the data file itself may have), the name's first 200 bytes, "~" and a hash of the whole name.
 */
export function sidecarName(name: string): string {
  if (Buffer.byteLength(name) + '.json'.length <= 255) return `${name}.json`;
  let head = '';
  for (const ch of name) {
    if (Buffer.byteLength(head + ch) > 200) break;
    head += ch;
  }
  return `${head}~${createHash('sha256').update(name).digest('hex').slice(0, 16)}.json`;
}

// Writing a restored file: stream the object to a temp name next to the destination, hash while
// writing (an object up to WHOLE_MAX is read whole and written with one call), check size and
// sha256, fsync, set the mtime, rename over the final name. Anything that fails removes the temp
// file. A destination path never leaves its destination folder, whatever the key said ("..",
// absolute paths, a symlinked folder on the way).
import { createHash, type Hash } from 'node:crypto';
import fs from 'node:fs';
import { mkdir, realpath, rename, unlink } from 'node:fs/promises';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { KeyError, normalizeRelPath } from '../../../shared/keys';
import { StorageError, type StorageBackend } from '../backends/types';
import { RESTORE_TEMP_PREFIX } from '../sync/filter';
import { errnoOf, errorText } from '../util';

// Temp names start with `.triplicate-`: the scanner, the watcher and the filters ignore them.
export { RESTORE_TEMP_PREFIX };

/** The destination cannot take the file: not writable, full. Stops the whole restore. */
export class DestinationError extends Error {
  constructor(
    message: string,
    readonly code: string,
    readonly fatal: boolean,
  ) {
    super(message);
    this.name = 'DestinationError';
  }
}

/**
 * The object is not the content we expect. `kind`: 'other' when its metadata names other content
 * (another writer, a stale catalog: keep it, the next upload preserves it as a version); 'size'
 * when its size is wrong; 'bytes' when its bytes do not match its own checksum (corrupt).
 */
export class IntegrityError extends Error {
  constructor(
    message: string,
    readonly kind: 'other' | 'size' | 'bytes' = 'bytes',
  ) {
    super(message);
    this.name = 'IntegrityError';
  }
}

/**
 * `<destRoot>/<rel>`, refusing anything that would land outside destRoot: "..", absolute paths,
 * drive letters, NUL (normalizeRelPath) and, as a last check, the resolved path itself.
 */
export function safeJoin(destRoot: string, rel: string): string {
  if (isAbsolute(rel) || /^[a-zA-Z]:/.test(rel) || rel.startsWith('\\')) throw new KeyError(`the path "${rel}" is absolute`);
  const norm = normalizeRelPath(rel);
  const root = resolve(destRoot);
  const out = resolve(root, ...norm.split('/'));
  if (!out.startsWith(root + sep)) throw new KeyError(`the path "${rel}" leaves its folder`);
  return out;
}

/** Same, for a path on disk that may not be NFC (a catalog's disk_rel): only the escape checks. */
export function safeJoinRaw(destRoot: string, rel: string): string {
  if (isAbsolute(rel) || rel.includes('\0')) throw new KeyError(`the path "${rel}" is absolute`);
  const parts = rel.split('/');
  if (parts.some((p) => p === '..' || p === '.' || p === '')) throw new KeyError(`the path "${rel}" leaves its folder`);
  const root = resolve(destRoot);
  const out = resolve(root, ...parts);
  if (!out.startsWith(root + sep)) throw new KeyError(`the path "${rel}" leaves its folder`);
  return out;
}

function relativeTo(root: string, p: string): string {
  return relative(root, p).split(sep).join('/');
}

export function tempPathFor(dest: string, tag: string): string {
  return join(dirname(dest), `${RESTORE_TEMP_PREFIX}${tag}`);
}

/** A sentence for a local write failure; fatal ones stop the restore (every file would fail the same way). */
export function destinationError(e: unknown, where: string, rel: string): DestinationError {
  const code = errnoOf(e) ?? 'EUNKNOWN';
  switch (code) {
    case 'ENOSPC':
    case 'EDQUOT':
      return new DestinationError(`The disk holding ${where} is full. Free some space, then start the restore again; the files already restored are kept.`, code, true);
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return new DestinationError(`Triplicate may not write into ${where}. Give the Triplicate user permission to write there (or restore to another folder), then start the restore again.`, code, true);
    case 'ENOTDIR':
    case 'EEXIST':
      return new DestinationError(`"${rel}" cannot be restored: a file in ${where} has the name of one of its folders. Rename that file, or restore to another folder.`, code, false);
    case 'EISDIR':
      return new DestinationError(`"${rel}" cannot be restored: there is a folder with that name in ${where}. Rename the folder, or restore to another folder.`, code, false);
    case 'ENAMETOOLONG':
      return new DestinationError(`"${rel}" cannot be restored: its path is too long for this system. Restore it to a folder with a shorter path.`, code, false);
    default:
      return new DestinationError(`Writing "${rel}" into ${where} failed: ${errorText(e)}.`, code, false);
  }
}

/** Make the parent folders and check that they really are inside destRoot (no symlink escape). */
export async function prepareDir(destRoot: string, dest: string, cache?: Set<string>): Promise<void> {
  const dir = dirname(dest);
  if (cache?.has(dir)) return;
  let realRoot: string;
  let realDir: string;
  try {
    await mkdir(dir, { recursive: true });
    [realRoot, realDir] = await Promise.all([realpath(destRoot), realpath(dir)]);
  } catch (e) {
    throw destinationError(e, destRoot, relativeTo(destRoot, dest));
  }
  if (realDir !== realRoot && !realDir.startsWith(realRoot + sep)) {
    throw new DestinationError(`The folder "${dir}" leads outside ${destRoot} (a link). Triplicate does not restore through it; remove the link or restore to another folder.`, 'ELINK', false);
  }
  cache?.add(dir);
}

export interface FetchOptions {
  backend: StorageBackend;
  key: string;
  dest: string;
  temp: string;
  /** Expected content; null: unknown (an object without metadata), take what comes and report its hash. */
  expectedSha: string | null;
  expectedSize: number | null;
  mtimeMs: number | null;
  signal: AbortSignal;
  onBytes?: (n: number) => void;
  fsync: boolean;
  /** The whole content is in and matches: only the fsync, mtime and rename are left. */
  onVerified?: () => void;
  /** Last check before the rename (a file that appeared meanwhile); throw to give up. */
  beforeRename?: () => Promise<void>;
  /** For messages: the destination folder and the file's name. */
  where: string;
  rel: string;
  /** A transfer that moves no byte for this long is given up (a stalled server). Default 120 s. */
  stallMs?: number;
}

/** Bytes per write call (and per progress report). */
const WRITE_BATCH = 1 << 20;

const fsOpen = promisify(fs.open);
const fsClose = promisify(fs.close);
const fsFsync = promisify(fs.fsync);
const fsFutimes = promisify(fs.futimes);

const fsWritev = (fd: number, bufs: Buffer[]) =>
  new Promise<number>((resolve, reject) => fs.writev(fd, bufs, (err, n) => (err ? reject(err) : resolve(n))));

/**
 * The end of the download pipeline: hashes and counts every chunk, checks the size, and writes to
 * the file descriptor in batches of about 1 MiB (one writev each, no copy): far fewer system calls
 * and stream hops than a hashing transform in front of an fs.WriteStream.
 */
class HashingFileWriter extends Writable {
  readonly hash = createHash('sha256');
  size = 0;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  constructor(
    private readonly fd: number,
    private readonly expectedSize: number | null,
    private readonly onBytes?: (n: number) => void,
    private readonly onChunk?: () => void,
  ) {
    super({ highWaterMark: 1 << 20 });
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.onChunk?.();
    this.size += chunk.length;
    if (this.expectedSize != null && this.size > this.expectedSize) return cb(new IntegrityError(`it holds more than the ${this.expectedSize} bytes it should`, 'size'));
    this.hash.update(chunk);
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    if (this.pendingBytes < WRITE_BATCH) return cb();
    this.flush().then(() => cb(), cb);
  }
  override _final(cb: (e?: Error | null) => void): void {
    this.flush().then(() => cb(), cb);
  }
  private async flush(): Promise<void> {
    if (!this.pendingBytes) return;
    const bufs = this.pending;
    const n = this.pendingBytes;
    this.pending = [];
    this.pendingBytes = 0;
    await writeAll(this.fd, bufs, n);
    this.onBytes?.(n);
  }
}

/** Write `bufs` (`n` bytes) at the file's position with one writev; a short write (rare on regular files) goes on piecewise. */
async function writeAll(fd: number, bufs: Buffer[], n: number): Promise<void> {
  let written = await fsWritev(fd, bufs);
  if (written >= n) return;
  const rest = Buffer.concat(bufs, n).subarray(written);
  for (let off = 0; off < rest.length; off += written) {
    written = await new Promise<number>((res, rej) => fs.write(fd, rest, off, rest.length - off, null, (err, w) => (err ? rej(err) : res(w))));
  }
}

/**
 * Objects up to this size are read whole (hashed as the chunks come), checked, and written with
 * one call: a stream pipeline per photo costs more CPU than its bytes. 64 at once hold 128 MiB at most.
 */
const WHOLE_MAX = 2 * 1024 * 1024;

/** The whole body as its chunks, hashed into `hash`; an IntegrityError when it holds more or fewer than `size` bytes. */
async function readWhole(body: NodeJS.ReadableStream, size: number, hash: Hash, alive: () => void): Promise<Buffer[]> {
  const chunks: Buffer[] = [];
  let got = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    alive();
    got += chunk.length;
    if (got > size) throw new IntegrityError(`it holds more than the ${size} bytes it should`, 'size');
    hash.update(chunk);
    chunks.push(chunk);
  }
  if (got !== size) throw new IntegrityError(`it ended after ${got} of ${size} bytes`, 'size');
  return chunks;
}

export interface Fetched {
  sha256: string;
  size: number;
  /** lstat of the file right after the rename, when it could be read. */
  stat?: fs.Stats;
}

/** Download `key` into `dest` atomically. Returns the written content's hash and size. */
export async function fetchToFile(o: FetchOptions): Promise<Fetched> {
  // A watchdog: no byte for stallMs fails the transfer (the next target is tried), so a job never
  // hangs on a server that keeps the connection open and sends nothing.
  const stallMs = o.stallMs ?? 120_000;
  const ac = new AbortController();
  let stalled = false;
  let lastByte = Date.now();
  const onOuter = () => ac.abort();
  if (o.signal.aborted) ac.abort();
  else o.signal.addEventListener('abort', onOuter, { once: true });
  const watchdog = setInterval(() => {
    if (Date.now() - lastByte > stallMs) {
      stalled = true;
      ac.abort();
    }
  }, Math.min(5000, Math.max(100, stallMs / 4)));
  watchdog.unref?.();
  try {
    return await fetchInner({ ...o, signal: ac.signal }, () => (lastByte = Date.now()));
  } catch (e) {
    if (stalled && !o.signal.aborted) throw new StorageError('timeout', `The transfer of "${o.rel}" stalled: no data for ${Math.round(stallMs / 1000)} s.`, 'stalled');
    throw e;
  } finally {
    clearInterval(watchdog);
    o.signal.removeEventListener('abort', onOuter);
  }
}

async function fetchInner(o: FetchOptions, alive: () => void): Promise<Fetched> {
  // Open the temp file while the request is on its way: each costs a round trip.
  const opening = fsOpen(o.temp, 'w', 0o644).then(
    (fd) => ({ fd }),
    (error: unknown) => ({ error }),
  );
  let res: Awaited<ReturnType<StorageBackend['get']>>;
  try {
    res = await o.backend.get(o.key, { signal: o.signal });
  } catch (e) {
    const op = await opening;
    if ('fd' in op) {
      await fsClose(op.fd).catch(() => undefined);
      await unlink(o.temp).catch(() => undefined);
    }
    throw e;
  }
  // An abort after the last byte (during fsync or rename) still destroys the body with an error:
  // the pipeline reports errors while it runs; afterwards nobody would listen.
  res.body.on('error', () => undefined);
  const op = await opening;
  let fd: number | undefined = 'fd' in op ? op.fd : undefined;
  let ok = false;
  try {
    if ('error' in op) throw destinationError(op.error, o.where, o.rel);
    if (o.expectedSize != null && res.totalSize !== o.expectedSize) throw new IntegrityError(`its size is ${res.totalSize} bytes instead of ${o.expectedSize}`, 'size');
    if (o.expectedSha && res.info.sha256 && res.info.sha256 !== o.expectedSha) throw new IntegrityError('its checksum metadata names other content', 'other');
    let size: number;
    let sha256: string;
    if (o.expectedSize != null && o.expectedSize <= WHOLE_MAX) {
      const hash = createHash('sha256');
      const chunks = await readWhole(res.body, o.expectedSize, hash, alive);
      size = o.expectedSize;
      sha256 = hash.digest('hex');
      try {
        if (size) await writeAll(fd!, chunks, size);
      } catch (e) {
        throw destinationError(e, o.where, o.rel);
      }
      chunks.length = 0; // the tail (fsync, rename, catalog) holds none of the bytes
      o.onBytes?.(size);
    } else {
      const check = new HashingFileWriter(fd!, o.expectedSize, o.onBytes, alive);
      try {
        await pipeline(res.body, check);
      } catch (e) {
        if (errnoOf(e) && !(e instanceof StorageError)) throw destinationError(e, o.where, o.rel);
        throw e;
      }
      size = check.size;
      if (o.expectedSize != null && size !== o.expectedSize) throw new IntegrityError(`it ended after ${size} of ${o.expectedSize} bytes`, 'size');
      sha256 = check.hash.digest('hex');
    }
    if (o.expectedSha && sha256 !== o.expectedSha) throw new IntegrityError('its content does not match its checksum');
    o.onVerified?.();
    try {
      // Half a millisecond in: the stored time truncates back to the same millisecond.
      const t = o.mtimeMs != null ? (o.mtimeMs + 0.5) / 1000 : null;
      await Promise.all([o.fsync ? fsFsync(fd!) : null, t != null ? fsFutimes(fd!, t, t) : null]);
      const f = fd!;
      fd = undefined;
      await fsClose(f);
    } catch (e) {
      throw destinationError(e, o.where, o.rel);
    }
    await o.beforeRename?.();
    try {
      await rename(o.temp, o.dest);
    } catch (e) {
      throw destinationError(e, o.where, o.rel);
    }
    ok = true;
    // The directory entry is not fsynced per file (a restore writes thousands): a power cut may
    // lose a rename, never leave a half file under the real name; the next scan finds it missing.
    // What the file looks like now (the rename set its ctime): ingest trusts our hash while it stays so.
    let stat: fs.Stats | undefined;
    try {
      stat = fs.lstatSync(o.dest, { throwIfNoEntry: false });
    } catch {}
    return { sha256, size, stat };
  } catch (e) {
    if (o.signal.aborted && !(e instanceof DestinationError) && !(e instanceof IntegrityError)) throw new StorageError('aborted', 'The restore was cancelled.', 'AbortError');
    throw e;
  } finally {
    if (fd !== undefined) await fsClose(fd).catch(() => undefined);
    if (!ok && 'fd' in op) await unlink(o.temp).catch(() => undefined);
    if (!res.body.destroyed) res.body.destroy();
  }
}

/**
 * What is at the destination now. A plain stat that does not throw for "not there" (cheap: no
 * error object, no thread-pool round trip; restores write into local folders).
 */
export function destinationState(dest: string): { kind: 'none' } | { kind: 'dir' } | { kind: 'file'; size: number; mtimeMs: number } {
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(dest, { throwIfNoEntry: false });
  } catch (e) {
    if (errnoOf(e) === 'ENOTDIR') return { kind: 'none' };
    throw e;
  }
  if (!st) return { kind: 'none' };
  if (st.isDirectory()) return { kind: 'dir' };
  return { kind: 'file', size: st.size, mtimeMs: Math.trunc(st.mtimeMs) };
}

// Writing a restored file: stream the object to a temp name next to the destination, hash while
// writing, check size and sha256, fsync, set the mtime, rename over the final name. Anything that
// fails removes the temp file. A destination path never leaves its destination folder, whatever
// the key said ("..", absolute paths, a symlinked folder on the way).
import { createHash } from 'node:crypto';
import { mkdir, open, realpath, rename, stat, unlink } from 'node:fs/promises';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { KeyError, normalizeRelPath } from '../../../shared/keys';
import { StorageError, type StorageBackend } from '../backends/types';
import { errnoOf, errorText } from '../util';

/** Temp names start with `.triplicate-`: the scanner, the watcher and the filters ignore them. */
export const RESTORE_TEMP_PREFIX = '.triplicate-restore-';

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

/** The bytes on the target are not the content its metadata (or our catalog) names. */
export class IntegrityError extends Error {
  constructor(message: string) {
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
  /** Last check before the rename (a file that appeared meanwhile); throw to give up. */
  beforeRename?: () => Promise<void>;
  /** For messages: the destination folder and the file's name. */
  where: string;
  rel: string;
}

const BATCH = 1 << 20;

/** Download `key` into `dest` atomically. Returns the written content's hash and size. */
export async function fetchToFile(o: FetchOptions): Promise<{ sha256: string; size: number }> {
  const res = await o.backend.get(o.key, { signal: o.signal });
  // An abort after the last byte (during fsync or rename) still destroys the body with an error:
  // the loop below reports errors while it reads; afterwards nobody would listen.
  res.body.on('error', () => undefined);
  if (o.expectedSize != null && res.totalSize !== o.expectedSize) {
    res.body.destroy();
    throw new IntegrityError(`its size is ${res.totalSize} bytes instead of ${o.expectedSize}`);
  }
  if (o.expectedSha && res.info.sha256 && res.info.sha256 !== o.expectedSha) {
    res.body.destroy();
    throw new IntegrityError('its checksum metadata names other content');
  }
  let fh;
  try {
    fh = await open(o.temp, 'w', 0o644);
  } catch (e) {
    res.body.destroy();
    throw destinationError(e, o.where, o.rel);
  }
  let ok = false;
  try {
    const hash = createHash('sha256');
    let size = 0;
    let batch: Buffer[] = [];
    let batchBytes = 0;
    const flush = async () => {
      if (batchBytes === 0) return;
      const buf = batch.length === 1 ? batch[0]! : Buffer.concat(batch, batchBytes);
      batch = [];
      const n = batchBytes;
      batchBytes = 0;
      let off = 0;
      try {
        while (off < buf.length) off += (await fh!.write(buf, off, buf.length - off)).bytesWritten;
      } catch (e) {
        throw destinationError(e, o.where, o.rel);
      }
      o.onBytes?.(n);
    };
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      hash.update(chunk);
      size += chunk.length;
      if (o.expectedSize != null && size > o.expectedSize) throw new IntegrityError(`it holds more than the ${o.expectedSize} bytes it should`);
      batch.push(chunk);
      batchBytes += chunk.length;
      if (batchBytes >= BATCH) await flush();
    }
    await flush();
    if (o.expectedSize != null && size !== o.expectedSize) throw new IntegrityError(`it ended after ${size} of ${o.expectedSize} bytes`);
    const sha256 = hash.digest('hex');
    if (o.expectedSha && sha256 !== o.expectedSha) throw new IntegrityError('its content does not match its checksum');
    try {
      if (o.fsync) await fh.sync();
      if (o.mtimeMs != null) {
        // Half a millisecond in: the stored time truncates back to the same millisecond.
        const t = (o.mtimeMs + 0.5) / 1000;
        await fh.utimes(t, t);
      }
    } catch (e) {
      throw destinationError(e, o.where, o.rel);
    }
    await fh.close();
    fh = undefined;
    await o.beforeRename?.();
    try {
      await rename(o.temp, o.dest);
    } catch (e) {
      throw destinationError(e, o.where, o.rel);
    }
    ok = true;
    if (o.fsync) await syncDir(dirname(o.dest));
    return { sha256, size };
  } catch (e) {
    if (o.signal.aborted && !(e instanceof DestinationError) && !(e instanceof IntegrityError)) throw new StorageError('aborted', 'The restore was cancelled.', 'AbortError');
    throw e;
  } finally {
    if (fh) await fh.close().catch(() => undefined);
    if (!ok) await unlink(o.temp).catch(() => undefined);
    if (!res.body.destroyed) res.body.destroy();
  }
}

async function syncDir(dir: string): Promise<void> {
  let fh;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch {
    // Some file systems (SMB, Windows) cannot fsync a directory; the rename is still atomic.
  } finally {
    await fh?.close().catch(() => undefined);
  }
}

/** What is at the destination now. */
export async function destinationState(dest: string): Promise<{ kind: 'none' } | { kind: 'dir' } | { kind: 'file'; size: number; mtimeMs: number }> {
  try {
    const st = await stat(dest);
    if (st.isDirectory()) return { kind: 'dir' };
    return { kind: 'file', size: st.size, mtimeMs: Math.trunc(st.mtimeMs) };
  } catch (e) {
    if (errnoOf(e) === 'ENOENT') return { kind: 'none' };
    if (errnoOf(e) === 'ENOTDIR') return { kind: 'none' };
    throw e;
  }
}

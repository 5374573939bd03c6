// The scanner walks a storage root, hashes only what is new or changed (size + mtime differ from
// the catalog), records what disappeared, and reports. It runs at start, periodically (to catch
// what watchers miss on network shares) and on "initial sync". With dryRun it writes nothing.
import { readdirSync, statSync, statfsSync, type Dirent } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join, sep } from 'node:path';
import type { ScanReport } from '../../../shared/api';
import type { RootConfig } from '../../../shared/config';
import { fileKey, normalizeRelPath } from '../../../shared/keys';
import { describeLocalError, errnoOf, errorText, forEachLimit } from '../util';
import { makeDirFilter } from './filter';
import type { Ingestor, SyncContext } from './ingest';
import type { ScanIndexEntry } from '../catalog/catalog';

export interface ScanOptions {
  dryRun?: boolean;
  signal?: AbortSignal;
  /** Files whose mtime is this recent may still be written: handed to onUnstable instead of hashed. */
  stabilityMs?: number;
  onUnstable?: (root: RootConfig, relPath: string) => void;
}

/** Below this many cataloged files, an empty folder is taken at its word. */
const UNMOUNTED_GUARD_MIN_FILES = 10;

export class RootProblem extends Error {}

interface Found {
  rel: string;
  /** the name on disk ("/" separators, not normalized) */
  raw: string;
  size: number;
  mtimeMs: number;
}

/** A name read back from the disk that was not valid UTF-8 (Node decodes it with U+FFFD). */
const NOT_UTF8 = /\uFFFD/;

function notUtf8(what: string): string {
  return `The name of ${what} is not valid UTF-8 (it was probably written by an older system), so Triplicate cannot open it. Rename it.`;
}

/**
 * File systems (Linux statfs f_type) where a stat may wait on a network or a daemon: their folders
 * are listed with many stats in flight from the start.
 */
const REMOTE_FS = new Set([
  0x6969, // NFS
  0x517b, // SMB
  0xff534d42, // CIFS
  0xfe534d42, // SMB2
  0x65735546, // FUSE (sshfs, rclone mount, …)
  0x564c, // NCP
  0x73757245, // Coda
  0x00c36400, // Ceph
  0x0bd00bd0, // Lustre
  0x47504653, // GPFS
  0x6b414653, // AFS
  0x5346414f, // OpenAFS
]);
/** A stat slower than this (ms) means a cold disk or a network: list with stats in flight. */
const SLOW_STAT_MS = 4;
/** Stats in flight on a slow file system. */
const STAT_CONCURRENCY = 32;
/** The synchronous listing yields to the event loop this often (ms). */
const YIELD_EVERY_MS = 10;

function remoteFs(path: string): boolean {
  if (process.platform !== 'linux') return false;
  try {
    return REMOTE_FS.has(Number(statfsSync(path).type) >>> 0);
  } catch {
    return false;
  }
}

/** True when normalizeRelPath would return the path as it is (printable ASCII, no "." segments…). */
export function plainRel(p: string): boolean {
  return (
    /^[\x20-\x5b\x5d-\x7e]+$/.test(p) && // printable ASCII without "\\": NFC as it is
    !p.startsWith('/') &&
    !p.endsWith('/') &&
    !p.includes('//') &&
    !/(?:^|\/)\.\.?(?:\/|$)/.test(p) &&
    !/^[a-zA-Z]:(?:\/|$)/.test(p)
  );
}

type StatLike = { size: number; mtimeMs: number };

export async function scanRoot(ctx: SyncContext, ingestor: Ingestor, root: RootConfig, opts: ScanOptions = {}): Promise<ScanReport> {
  const report: ScanReport = { root_id: root.id, files_seen: 0, files_new: 0, files_changed: 0, files_missing: 0, bytes_to_upload: 0, errors: [] };
  if (opts.dryRun) report.would_upload = [];
  const { catalog } = ctx;
  const known = catalog.scanIndex(root.id);
  /** Cataloged files met on disk (their index entries, marked). */
  const seen = new Set<ScanIndexEntry>();
  /** Folders that could not be read, and files whose stat failed: neither present nor gone. */
  const unread = new Set<string>();
  const unknown = new Set<string>();
  const filter = ingestor.filterFor(root);
  const dirOk = makeDirFilter(root.exclude);
  const targets = ctx.targetIds();
  const stabilityMs = opts.stabilityMs ?? 0;
  const hashConcurrency = ctx.config().sync.hashConcurrency;

  try {
    const rs = await stat(root.path);
    if (!rs.isDirectory()) throw new RootProblem(`"${root.path}" is a file, not a folder. Choose the folder that holds the photos and videos.`);
  } catch (e) {
    if (e instanceof RootProblem) throw e;
    throw new RootProblem(describeLocalError(e, `the folder "${root.path}" (${root.label})`).replace('is no longer there (moved or deleted)', 'is not there: is the disk plugged in or the share mounted?'));
  }

  const ownData = await ingestor.ownDataFilter(root);
  const toHash: Found[] = [];
  /** The catalog's form of a name on disk, or null when it is skipped (filtered, or not representable). */
  const prepare = (rawRel: string): string | null => {
    let rel: string;
    if (plainRel(rawRel)) rel = rawRel;
    else {
      try {
        rel = normalizeRelPath(rawRel);
      } catch (e) {
        report.errors.push({ rel_path: rawRel, error: errorText(e) });
        return null;
      }
    }
    return filter(rel) ? rel : null;
  };
  const statFailed = (rawRel: string, rel: string, e: unknown) => {
    if (errnoOf(e) === 'ENOENT') {
      // Deleted since the folder was listed (then it is simply gone), or a name we cannot open.
      if (NOT_UTF8.test(rawRel)) report.errors.push({ rel_path: rel, error: notUtf8(`"${rel}" in ${root.label}`) });
      return;
    }
    unknown.add(rel);
    report.errors.push({ rel_path: rel, error: describeLocalError(e, `"${rel}" in ${root.label}`) });
  };
  const consider = (rawRel: string, rel: string, st: StatLike) => {
    report.files_seen++;
    const prev = known.get(rel);
    if (prev) seen.add(prev);
    const mtime = Math.trunc(st.mtimeMs);
    if (prev && prev[0] === st.size && prev[1] === mtime && prev[2] && prev[3]) return;
    if (!prev) report.files_new++;
    else report.files_changed++;
    report.bytes_to_upload += st.size * targets.length;
    if (opts.dryRun) {
      report.would_upload!.push({ key: fileKey(root.id, rel), size: st.size, targets });
      return;
    }
    if (stabilityMs > 0 && Date.now() - st.mtimeMs < stabilityMs && opts.onUnstable) {
      opts.onUnstable(root, rawRel);
      return;
    }
    toHash.push({ rel, raw: rawRel, size: st.size, mtimeMs: mtime });
  };

  // List every folder and stat every file. On a local disk with a warm cache a synchronous stat
  // costs a few microseconds, less than a promise around it: folders are read synchronously, with
  // the event loop let through every few ms. A file system whose stats are slow (a network share,
  // a cold disk) is read with many stats in flight instead, from its first slow stats on.
  let fast = !remoteFs(root.path);
  let slowStats = 0;
  let lastYield = performance.now();
  const stack: string[] = [''];
  while (stack.length) {
    if (opts.signal?.aborted) break;
    const relDir = stack.pop()!;
    const absDir = relDir ? join(root.path, ...relDir.split('/')) : root.path;
    let ents: Dirent[];
    try {
      ents = fast ? readdirSync(absDir, { withFileTypes: true }) : await readdir(absDir, { withFileTypes: true });
    } catch (e) {
      if (relDir === '') throw e;
      unread.add(relDir);
      report.errors.push({ rel_path: relDir, error: errnoOf(e) === 'ENOENT' && NOT_UTF8.test(relDir) ? notUtf8(`the folder "${relDir}"`) : describeLocalError(e, `the folder "${relDir}"`) });
      continue;
    }
    // Files are stat'ed as they are listed while stats are fast; the rest of the folder goes to
    // the parallel path once they are not.
    const later: { raw: string; rel: string; abs: string }[] = [];
    const prefix = relDir ? `${relDir}/` : '';
    const absPrefix = absDir + sep;
    for (const d of ents) {
      const raw = prefix + d.name;
      if (d.isDirectory()) {
        if (dirOk(raw) && !ownData(raw)) stack.push(raw);
        continue;
      }
      if (!d.isFile() || ownData(raw)) continue; // symlinks, sockets, devices: not backed up
      const rel = prepare(raw);
      if (rel === null) continue;
      if (!fast) {
        later.push({ raw, rel, abs: absPrefix + d.name });
        continue;
      }
      const t0 = performance.now();
      let st: StatLike | undefined;
      try {
        st = statSync(absPrefix + d.name);
      } catch (e) {
        statFailed(raw, rel, e);
      }
      const t1 = performance.now();
      if (st) consider(raw, rel, st);
      if (t1 - t0 > SLOW_STAT_MS && ++slowStats >= 3) fast = false;
      if (t1 - lastYield > YIELD_EVERY_MS) {
        await new Promise((r) => setImmediate(r));
        lastYield = performance.now();
      }
    }
    if (later.length) {
      await forEachLimit(later, STAT_CONCURRENCY, async (f) => {
        let st: StatLike;
        try {
          st = await stat(f.abs);
        } catch (e) {
          statFailed(f.raw, f.rel, e);
          return;
        }
        consider(f.raw, f.rel, st);
      });
    }
  }

  if (!opts.dryRun) {
    await forEachLimit(toHash, hashConcurrency, async (f) => {
      if (opts.signal?.aborted) return;
      const r = await ingestor.ingest(root, f.raw, { signal: opts.signal, onProblem: (error) => report.errors.push({ rel_path: f.rel, error }) });
      if (r === 'unstable') opts.onUnstable?.(root, f.raw);
    });
  }
  if (opts.signal?.aborted) return report;

  // What the catalog knows but the disk no longer has.
  const gone: string[] = [];
  const underUnread = (rel: string) => unread.has('') || [...unread].some((d) => rel.startsWith(`${d.normalize('NFC')}/`));
  if (seen.size < known.size) for (const [rel, row] of known) if (!seen.has(row) && row[3] && !unknown.has(rel) && !underUnread(rel)) gone.push(rel);
  report.files_missing = gone.length;
  let presentBefore = 0;
  for (const r of known.values()) if (r[3]) presentBefore++;
  if (gone.length >= UNMOUNTED_GUARD_MIN_FILES && gone.length === presentBefore && report.files_seen === 0) {
    // An empty mount point looks exactly like "everything was deleted". Say so, change nothing.
    throw new RootProblem(
      `The folder "${root.path}" (${root.label}) is empty, but Triplicate knows ${gone.length} files in it. ` +
        'If it is a network share or an external disk, it is probably not mounted: connect it and Triplicate carries on. ' +
        'If the files were really deleted, use Restore to bring them back.',
    );
  }
  if (!opts.dryRun) {
    catalog.transaction(() => {
      for (const rel of gone) ingestor.markMissing(root.id, rel);
    });
    if (gone.length) ctx.bus.record({ level: 'warn', kind: 'files-missing', message: `${gone.length} file${gone.length === 1 ? ' is' : 's are'} no longer in ${root.label}. Their backups are kept; use Restore to bring them back.` });
  }
  return report;
}

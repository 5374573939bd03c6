// The scanner walks a storage root, hashes only what is new or changed (size + mtime differ from
// the catalog), records what disappeared, and reports. It runs at start, periodically (to catch
// what watchers miss on network shares) and on "initial sync". With dryRun it writes nothing.
import { opendir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { ScanReport } from '../../../shared/api';
import type { RootConfig } from '../../../shared/config';
import { fileKey, normalizeRelPath } from '../../../shared/keys';
import { describeLocalError, errnoOf, errorText, forEachLimit } from '../util';
import { makeDirFilter } from './filter';
import type { Ingestor, SyncContext } from './ingest';

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
 * Walk a directory tree: regular files only, symlinks skipped (loops, escapes). Folders that could
 * not be read (in full) go to `unread`: what the catalog knows under them is unknown, not deleted.
 */
async function* walk(rootPath: string, dirOk: (rel: string) => boolean, errors: ScanReport['errors'], unread: Set<string>, signal?: AbortSignal): AsyncGenerator<{ rel: string; abs: string }> {
  const stack: string[] = [''];
  while (stack.length) {
    if (signal?.aborted) return;
    const relDir = stack.pop()!;
    const absDir = relDir ? join(rootPath, ...relDir.split('/')) : rootPath;
    let dir;
    try {
      dir = await opendir(absDir, { bufferSize: 256 });
    } catch (e) {
      if (relDir === '') throw e;
      unread.add(relDir);
      errors.push({ rel_path: relDir, error: errnoOf(e) === 'ENOENT' && NOT_UTF8.test(relDir) ? notUtf8(`the folder "${relDir}"`) : describeLocalError(e, `the folder "${relDir}"`) });
      continue;
    }
    try {
      for await (const d of dir) {
        const rel = relDir ? `${relDir}/${d.name}` : d.name;
        if (d.isDirectory()) {
          if (dirOk(rel)) stack.push(rel);
        } else if (d.isFile()) {
          yield { rel, abs: join(absDir, d.name) };
        }
        // symlinks, sockets, devices: not backed up
      }
    } catch (e) {
      unread.add(relDir);
      errors.push({ rel_path: relDir || '.', error: describeLocalError(e, `the folder "${relDir || '.'}"`) });
    }
  }
}

export async function scanRoot(ctx: SyncContext, ingestor: Ingestor, root: RootConfig, opts: ScanOptions = {}): Promise<ScanReport> {
  const report: ScanReport = { root_id: root.id, files_seen: 0, files_new: 0, files_changed: 0, files_missing: 0, bytes_to_upload: 0, errors: [] };
  if (opts.dryRun) report.would_upload = [];
  const { catalog } = ctx;
  const known = catalog.filesOfRoot(root.id);
  const seen = new Set<string>();
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

  // Stat in parallel (network shares are latency-bound); hash the changed ones with fewer workers.
  const toHash: Found[] = [];
  await forEachLimit(walk(root.path, dirOk, report.errors, unread, opts.signal), 32, async ({ rel: rawRel, abs }) => {
    let rel: string;
    try {
      rel = normalizeRelPath(rawRel);
    } catch (e) {
      report.errors.push({ rel_path: rawRel, error: errorText(e) });
      return;
    }
    if (!filter(rel)) return;
    let st;
    try {
      st = await stat(abs);
    } catch (e) {
      if (errnoOf(e) === 'ENOENT') {
        // Deleted since the folder was listed (then it is simply gone), or a name we cannot open.
        if (NOT_UTF8.test(rawRel)) report.errors.push({ rel_path: rel, error: notUtf8(`"${rel}" in ${root.label}`) });
        return;
      }
      unknown.add(rel);
      report.errors.push({ rel_path: rel, error: describeLocalError(e, `"${rel}" in ${root.label}`) });
      return;
    }
    seen.add(rel);
    report.files_seen++;
    const prev = known.get(rel);
    const mtime = Math.trunc(st.mtimeMs);
    if (prev && prev.size === st.size && prev.mtime_ms === mtime && prev.sha256 && prev.local_state === 'present') return;
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
  });

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
  for (const [rel, row] of known) if (!seen.has(rel) && row.local_state === 'present' && !unknown.has(rel) && !underUnread(rel)) gone.push(rel);
  report.files_missing = gone.length;
  const presentBefore = [...known.values()].filter((r) => r.local_state === 'present').length;
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

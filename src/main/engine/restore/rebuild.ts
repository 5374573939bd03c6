// Disaster recovery without a catalog: list a target and HEAD each object (sha256 + mtime from the
// metadata) to rebuild the catalog: every file as missing locally with a synced copy on that
// target, every preserved version with the time in its name (our own clock when it was saved).
// Keys that are not `<root id>/<relative path>` (a "..", an absolute path, a foreign object) are
// skipped and reported, never restored.
import { KeyError, mediaKindOf, parseFileKey } from '../../../shared/keys';
import type { TargetConfig } from '../../../shared/config';
import type { ObjectInfo, StorageBackend } from '../backends/types';
import { errorText, forEachLimit } from '../util';
import type { RestoreStore } from './store';

export interface RebuildReport {
  target_id: string;
  objects: number;
  files: number;
  files_added: number;
  versions: number;
  bytes: number;
  skipped: { key: string; reason: string }[];
  seconds: number;
}

const VERSION_NAME = /^(\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}(?:\.\d{3})?Z)_([0-9a-f]{16})$/;

/** `2024-05-03T10-11-12.345Z` (the stamp in a version name) -> ms. */
export function parseVersionStamp(stamp: string): number {
  const iso = stamp.replace(/^(\d{4}-\d{2}-\d{2}T)(\d{2})-(\d{2})-(\d{2})/, '$1$2:$3:$4');
  return Date.parse(iso);
}

/** Split a version object's key (after `<prefix><versionsPrefix>`) into its file and time. */
export function parseVersionKey(rest: string): { rootId: string; relPath: string; savedAt: number; sha16: string } | null {
  const slash = rest.lastIndexOf('/');
  if (slash <= 0) return null;
  const m = VERSION_NAME.exec(rest.slice(slash + 1));
  if (!m) return null;
  const savedAt = parseVersionStamp(m[1]!);
  if (!Number.isFinite(savedAt)) return null;
  try {
    const { rootId, relPath } = parseFileKey(rest.slice(0, slash));
    return { rootId, relPath, savedAt, sha16: m[2]! };
  } catch {
    return null;
  }
}

export async function rebuildFromTarget(store: RestoreStore, target: TargetConfig, backend: StorageBackend, opts: { signal?: AbortSignal; concurrency?: number; onProgress?: (r: RebuildReport) => void } = {}): Promise<RebuildReport> {
  const t0 = Date.now();
  const report: RebuildReport = { target_id: target.id, objects: 0, files: 0, files_added: 0, versions: 0, bytes: 0, skipped: [], seconds: 0 };
  const prefix = target.prefix;
  const versionsArea = target.versionsPrefix;
  const skip = (key: string, reason: string) => {
    if (report.skipped.length < 1000) report.skipped.push({ key, reason });
  };
  let lastProgress = 0;

  await forEachLimit(backend.list(prefix, { signal: opts.signal }), opts.concurrency ?? 16, async (o: ObjectInfo) => {
    report.objects++;
    const rest = o.key.slice(prefix.length);
    if (!o.key.startsWith(prefix)) return skip(o.key, 'outside the target prefix');
    if (versionsArea && rest.startsWith(versionsArea)) {
      const v = parseVersionKey(rest.slice(versionsArea.length));
      if (!v) return skip(o.key, 'not a version name Triplicate writes');
      const head = await backend.head(o.key, opts.signal);
      if (!head?.sha256 || !head.sha256.startsWith(v.sha16)) return skip(o.key, 'its checksum metadata is missing or does not match its name');
      if (store.insertVersion({ target_id: target.id, root_id: v.rootId, rel_path: v.relPath, object_key: o.key, sha256: head.sha256, size: head.size, mtime_ms: head.mtimeMs ?? null, saved_at: v.savedAt, reason: 'overwritten', locked_until: head.lockedUntil ?? null })) report.versions++;
      return;
    }
    if (rest.startsWith('.triplicate/') || rest.split('/').some((s) => s.startsWith('.triplicate-'))) return; // probes, temp files
    let rootId: string;
    let relPath: string;
    try {
      ({ rootId, relPath } = parseFileKey(rest));
    } catch (e) {
      return skip(o.key, e instanceof KeyError ? e.message : errorText(e));
    }
    const head = await backend.head(o.key, opts.signal);
    if (!head) return; // deleted while we listed
    const now = Date.now();
    const mtime = head.mtimeMs ?? o.lastModified ?? now;
    const r = store.addRebuilt({ root_id: rootId, rel_path: relPath, size: head.size, mtime_ms: Math.trunc(mtime), sha256: head.sha256 ?? null, kind: mediaKindOf(relPath), first_seen: Math.min(Math.trunc(mtime), now), locked_until: head.lockedUntil ?? null }, target.id, now);
    report.files++;
    report.bytes += head.size;
    if (r.added) report.files_added++;
    if (opts.onProgress && now - lastProgress > 1000) {
      lastProgress = now;
      opts.onProgress({ ...report, seconds: (now - t0) / 1000 });
    }
  });
  report.seconds = (Date.now() - t0) / 1000;
  return report;
}

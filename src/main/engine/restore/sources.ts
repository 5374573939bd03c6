// Where a file's content can be read back from: per target in priority order, the object holding
// the wanted content (the current object, or a version under the versions prefix).
import type { TargetConfig } from '../../../shared/config';
import { objectKey } from '../../../shared/keys';
import type { Catalog, FileRow } from '../catalog/catalog';
import type { RestoreStore, VersionRow } from './store';
import { existedAt, holdersOfDeleted, liveAt, timeline } from './timeline';

export interface Source {
  target: TargetConfig;
  key: string;
  /** Expected content; null when nothing names it (an object without metadata). */
  sha256: string | null;
  size: number | null;
  mtimeMs: number | null;
  /** The target's current object of the file (a damaged one is uploaded again). */
  current: boolean;
}

export type Want =
  | { mode: 'latest' }
  | { mode: 'at'; at: number }
  | { mode: 'version'; target: string; id: number | 'current' };

export function currentKey(t: TargetConfig, f: Pick<FileRow, 'root_id' | 'rel_path'>): string {
  return objectKey(t.prefix, f.root_id, f.rel_path);
}

function groupByTarget(rows: VersionRow[]): Map<string, VersionRow[]> {
  const m = new Map<string, VersionRow[]>();
  for (const r of rows) {
    const l = m.get(r.target_id);
    if (l) l.push(r);
    else m.set(r.target_id, [r]);
  }
  return m;
}

/** Did the file exist at `at` (before its first sighting, or while deleted: no)? */
export function fileExistedAt(store: RestoreStore, f: FileRow, at: number): boolean {
  return existedAt(at, f.first_seen, store.versionsOfFile(f.root_id, f.rel_path));
}

/** Sources for the wanted content, best first. `targets` in priority order (enabled ones). */
export function sourcesFor(catalog: Catalog, store: RestoreStore, targets: TargetConfig[], f: FileRow, want: Want): Source[] {
  const rows = store.versionsOfFile(f.root_id, f.rel_path);
  const byTarget = groupByTarget(rows);
  const out: Source[] = [];
  const fallback: Source[] = [];

  const current = (t: TargetConfig, sha: string | null): Source | null => {
    const c = catalog.copy(f.id, t.id);
    if (!c || c.synced_at == null || c.sha256 !== sha) return null;
    return { target: t, key: currentKey(t, f), sha256: sha, size: c.size ?? (sha === f.sha256 ? f.size : null), mtimeMs: sha === f.sha256 ? f.mtime_ms : null, current: true };
  };
  const versionSource = (t: TargetConfig, r: VersionRow): Source => ({ target: t, key: r.object_key, sha256: r.sha256, size: r.size, mtimeMs: r.mtime_ms, current: false });
  const contentOf = (t: TargetConfig, r: VersionRow): Source[] => {
    if (r.reason === 'overwritten') return [versionSource(t, r)];
    // a deletion: the content stayed the current object, or was preserved when a new file took the name
    const cur = current(t, r.sha256);
    const held = holdersOfDeleted(timeline(byTarget.get(t.id) ?? []), r).map((h) => versionSource(t, h));
    return cur ? [cur, ...held] : held;
  };

  if (want.mode === 'latest') {
    for (const t of targets) {
      const c = current(t, f.sha256);
      if (c && catalog.copy(f.id, t.id)?.state === 'synced') out.push(c);
      else if (c) fallback.push(c);
    }
    // the same content preserved as a version (a file changed back and forth, or re-uploaded)
    if (f.sha256) {
      for (const t of targets) for (const r of byTarget.get(t.id) ?? []) if (r.reason === 'overwritten' && r.sha256 === f.sha256) fallback.push(versionSource(t, r));
    }
    return [...out, ...fallback];
  }

  if (want.mode === 'version') {
    const t = targets.find((x) => x.id === want.target);
    if (!t) return [];
    if (want.id === 'current') {
      const c = catalog.copy(f.id, t.id);
      return c?.sha256 ? [current(t, c.sha256)].filter((s): s is Source => s !== null) : [];
    }
    const r = rows.find((x) => x.id === want.id && x.target_id === t.id);
    return r ? contentOf(t, r) : [];
  }

  // as it was at a time
  if (!existedAt(want.at, f.first_seen, rows)) return [];
  for (const t of targets) {
    const live = liveAt(timeline(byTarget.get(t.id) ?? []), want.at);
    if (live.kind === 'version') out.push(...contentOf(t, live.row));
    else {
      const c = catalog.copy(f.id, t.id);
      const s = c?.sha256 ? current(t, c.sha256) : null;
      if (s) out.push(s);
    }
  }
  return out;
}

// The prune job: apply a target's retention policy (planPrune in retention.ts) to its versions.
// Deletes only keys under the target's versions prefix, and current objects only of files that
// have been gone from local disk (checked again right before) longer than the policy allows.
// Nothing of a folder the burst guard holds (sync/guard.ts): a burst's deletions and rewrites are
// what ransomware wants pruned, and the roll-back needs the versions from before it.
// Nothing still locked (Object Lock, `immutableDays`: the date is in the catalog since it was
// written): those stay, counted, until their date. A delete the destination refuses (a key made
// without delete permission, a lock Triplicate did not know of) is counted too, never an error of
// the destination; after the first refusal for want of permission no other delete is tried.
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULT_RETENTION, type RootConfig, type TargetConfig } from '../../../shared/config';
import { plural } from '../../../shared/format';
import { fileKey, objectKey, parseFileKey } from '../../../shared/keys';
import { isStorageError, type StorageBackend } from '../backends/types';
import { diskRel, type Catalog } from '../catalog/catalog';
import type { EventBus } from '../events';
import { errnoOf } from '../util';
import { planPrune, type PrunableVersion, type PruneFileState } from './retention';
import type { RestoreStore, VersionRow } from './store';

export interface PruneContext {
  catalog: Catalog;
  store: RestoreStore;
  bus: EventBus;
  root(id: string): RootConfig | undefined;
  /** Folders held by the burst guard (asked again before each deletion: a burst may trip mid-prune). */
  heldFolders(): ReadonlySet<string>;
}

export interface PruneResult {
  versions_deleted: number;
  files_expired: number;
  bytes_freed: number;
  versions_kept: number;
  /** Versions left alone because their folder is held by the burst guard. */
  versions_held: number;
  /** Old versions, and deleted files, left alone because they are locked (Object Lock) until `locked_until`. */
  versions_locked: number;
  files_locked: number;
  /** The latest date (ms) those locks hold until; null when none is known. */
  locked_until: number | null;
  /** Objects the destination refused to delete (the key may not delete); `refused` says why. */
  delete_refused: number;
  refused?: string;
}

type Row = VersionRow & PrunableVersion;

async function stillGone(ctx: PruneContext, rootId: string, disk: string): Promise<boolean> {
  const root = ctx.root(rootId);
  if (!root) return true; // the folder was removed from Triplicate
  try {
    await stat(join(root.path, ...disk.split('/')));
    return false;
  } catch (e) {
    // Only "not there" counts; an unreadable or unmounted folder says nothing.
    if (errnoOf(e) !== 'ENOENT') return false;
    try {
      await stat(root.path);
      return true;
    } catch {
      return false;
    }
  }
}

export async function pruneTarget(ctx: PruneContext, target: TargetConfig, backend: StorageBackend, opts: { now: number; dryRun: boolean; signal?: AbortSignal; onTick?: () => void }): Promise<PruneResult> {
  const policy = target.retention ?? DEFAULT_RETENTION;
  const isHeld = (rootId: string) => ctx.heldFolders().has(rootId);
  const heldNow = ctx.heldFolders();
  const all = ctx.store.versionsOfTarget(target.id);
  const rows: Row[] = all.filter((r) => !heldNow.has(r.root_id)).map((r) => ({ ...r, key: fileKey(r.root_id, r.rel_path) }));
  const files = new Map<string, PruneFileState>();
  for (const r of rows) {
    if (files.has(r.key)) continue;
    const f = ctx.catalog.fileByPath(r.root_id, r.rel_path);
    if (!f) {
      files.set(r.key, { present: false, currentSynced: false });
      continue;
    }
    const c = ctx.catalog.copy(f.id, target.id);
    files.set(r.key, { present: f.local_state === 'present', currentSynced: c?.state === 'synced' && c.sha256 === f.sha256, firstSeen: f.first_seen });
  }
  const plan = planPrune(rows, opts.now, policy, files);
  const result: PruneResult = {
    versions_deleted: 0,
    files_expired: 0,
    bytes_freed: 0,
    versions_kept: plan.keep.length,
    versions_held: all.length - rows.length,
    versions_locked: 0,
    files_locked: 0,
    locked_until: null,
    delete_refused: 0,
  };
  const versionsArea = target.prefix + target.versionsPrefix;
  const lockedNow = (until: number | null | undefined): boolean => {
    if (until == null || until <= opts.now) return false;
    result.locked_until = Math.max(result.locked_until ?? 0, until);
    return true;
  };
  /** Delete one object; false when the destination refused (counted, and after a refusal of the key, nothing more is tried). */
  let keyRefused = false;
  const tryDelete = async (key: string, kind: 'version' | 'file'): Promise<boolean> => {
    if (keyRefused) {
      result.delete_refused++;
      return false;
    }
    try {
      await backend.delete(key, opts.signal);
      return true;
    } catch (e) {
      if (!isStorageError(e) || e.kind !== 'refused') throw e;
      if (e.locked) result[kind === 'version' ? 'versions_locked' : 'files_locked']++;
      else {
        keyRefused = true;
        result.delete_refused++;
        result.refused = e.message;
      }
      return false;
    }
  };

  // Expired deleted files: make sure they are really still gone.
  const expired = new Set<string>();
  for (const key of plan.expire) {
    const { rootId, relPath } = parseFileKey(key);
    const f = ctx.catalog.fileByPath(rootId, relPath);
    if (f && (f.local_state !== 'missing' || !(await stillGone(ctx, rootId, diskRel(f))))) continue;
    expired.add(key);
  }
  const currentLock = (key: string): number | null | undefined => {
    const { rootId, relPath } = parseFileKey(key);
    const f = ctx.catalog.fileByPath(rootId, relPath);
    return f ? ctx.catalog.copy(f.id, target.id)?.locked_until : undefined;
  };
  if (opts.dryRun) {
    const del = plan.delete.filter((v) => (!plan.expire.includes(v.key) || expired.has(v.key)) && !lockedNow(v.locked_until));
    const files = [...expired].filter((k) => !lockedNow(currentLock(k)));
    result.versions_locked = plan.delete.filter((v) => (!plan.expire.includes(v.key) || expired.has(v.key)) && (v.locked_until ?? 0) > opts.now).length;
    result.files_locked = expired.size - files.length;
    return { ...result, versions_deleted: del.length, files_expired: files.length, bytes_freed: del.reduce((a, v) => a + v.size, 0) };
  }

  for (const v of plan.delete) {
    if (plan.expire.includes(v.key) && !expired.has(v.key)) continue;
    if (!v.object_key.startsWith(versionsArea)) continue; // never anything but a version object
    if (isHeld(v.root_id)) continue;
    if (lockedNow(v.locked_until)) {
      result.versions_locked++;
      continue;
    }
    opts.onTick?.();
    if (!(await tryDelete(v.object_key, 'version'))) continue;
    ctx.store.deleteVersion(v.id);
    result.versions_deleted++;
    result.bytes_freed += v.size;
  }
  for (const key of expired) {
    const { rootId, relPath } = parseFileKey(key);
    if (isHeld(rootId)) continue;
    const f = ctx.catalog.fileByPath(rootId, relPath);
    const c = f ? ctx.catalog.copy(f.id, target.id) : undefined;
    if (lockedNow(c?.locked_until)) {
      result.files_locked++;
      continue;
    }
    if (!(await tryDelete(objectKey(target.prefix, rootId, relPath), 'file'))) continue;
    ctx.catalog.transaction(() => {
      for (const r of rows) if (r.key === key && r.reason === 'deleted') ctx.store.deleteVersion(r.id);
      if (f) ctx.store.forgetCopy(f.id, target.id);
    });
    result.files_expired++;
    result.bytes_freed += c?.size ?? f?.size ?? 0;
    ctx.bus.record({ level: 'info', kind: 'retention-expired', message: `"${key}" was deleted from this computer more than ${policy.deletedDays} days ago; its copy on ${target.label} was removed as the retention policy says.`, file_key: key, target_id: target.id });
  }
  for (const d of plan.dropRows) if (!plan.expire.includes(d.key)) ctx.store.deleteVersion(d.id);
  return result;
}

/**
 * What a prune left on `label` and why, in sentences ("" when nothing): locked objects stay until
 * their date, refused deletes because of the key. The counts are the result's own.
 */
export function pruneLeftNote(label: string, r: Pick<PruneResult, 'versions_locked' | 'files_locked' | 'locked_until' | 'delete_refused'>): string {
  const out: string[] = [];
  const locked = r.versions_locked + r.files_locked;
  if (locked > 0) {
    const what = [r.versions_locked ? plural(r.versions_locked, 'old version') : '', r.files_locked ? plural(r.files_locked, 'deleted file') : ''].filter(Boolean).join(' and ');
    const until = r.locked_until ? ` until ${new Date(r.locked_until).toISOString().slice(0, 10)}${locked > 1 ? ' at the latest' : ''}` : ' until their retention date';
    out.push(`${what} on ${label} ${locked === 1 ? 'is' : 'are'} locked (Object Lock)${until} and stay${locked === 1 ? 's' : ''} until then.`);
  }
  if (r.delete_refused > 0) {
    out.push(
      `${label} refused to delete ${plural(r.delete_refused, 'object')}: its key may not delete, so ${r.delete_refused === 1 ? 'it stays' : 'they stay'} (a lifecycle rule on the bucket can remove old versions instead).`,
    );
  }
  return out.join(' ');
}

// Retention: which previous contents of files a target keeps. Pure: planPrune(versions, now,
// policy) decides, the prune job (prune.ts) carries it out. Unit-tested on a simulated clock.
//
// The policy (per target; DEFAULT_RETENTION in src/shared/config.ts):
// - every version saved less than `keepAllDays` ago is kept;
// - beyond that, restore points: 00:00 UTC of each of the next `dailyDays` days back, then
//   Monday 00:00 UTC of each of the next `weeklyWeeks` weeks back. For each point the content
//   that was live then (timeline.ts, the same rule "restore as it was on <date>" uses) is kept;
// - every other version older than `keepAllDays` is deleted;
// - a file deleted locally more than `deletedDays` ago is expired: its current object and all its
//   versions go (it can no longer be restored);
// - never pruned: the current object of a file that exists locally, and, while that file's copy on
//   the target is not synced, its newest version (then the newest copy the target has).
import type { RetentionPolicy } from '../../../shared/config';
import { existedAt, holdersOfDeleted, liveAt, timeline, type HistoryRow } from './timeline';

export const DAY_MS = 86_400_000;

export interface PrunableVersion extends HistoryRow {
  /** File key `<root>/<rel path>`. */
  key: string;
  /** Object holding this content (for 'deleted' rows a placeholder: the content is the current object). */
  object_key: string;
  size: number;
}

export interface PruneFileState {
  /** The file exists on local disk. */
  present: boolean;
  /** The target's copy of the current content is synced (its current object is that content). */
  currentSynced: boolean;
  /** When the file first appeared (engine clock); restore points before it need nothing. */
  firstSeen?: number | null;
}

export interface PrunePlan<V extends PrunableVersion = PrunableVersion> {
  /** Version objects to delete (reason 'overwritten'), with their rows. */
  delete: V[];
  /** Version objects kept. */
  keep: V[];
  /** Files deleted locally longer ago than deletedDays: delete the current object and every version. */
  expire: string[];
  /** 'deleted' rows (metadata, no object) no longer needed by any restore point. */
  dropRows: V[];
}

/** UTC midnights t with lo < t <= hi, newest first. */
function midnights(lo: number, hi: number): number[] {
  const out: number[] = [];
  let t = Math.floor(hi / DAY_MS) * DAY_MS;
  for (let i = 0; i < 100_000 && t > lo; i++, t -= DAY_MS) out.push(t);
  return out;
}

/** The restore points the policy keeps at `now`: daily UTC midnights, then weekly Monday midnights. */
export function restorePoints(now: number, policy: RetentionPolicy): { daily: number[]; weekly: number[] } {
  const keepAllEnd = now - policy.keepAllDays * DAY_MS;
  const dailyEnd = keepAllEnd - policy.dailyDays * DAY_MS;
  const weeklyEnd = dailyEnd - policy.weeklyWeeks * 7 * DAY_MS;
  const daily = midnights(dailyEnd, keepAllEnd);
  const weekly = midnights(weeklyEnd, dailyEnd).filter((t) => new Date(t).getUTCDay() === 1);
  return { daily, weekly };
}

export function planPrune<V extends PrunableVersion>(versions: readonly V[], now: number, policy: RetentionPolicy, files: ReadonlyMap<string, PruneFileState> = new Map()): PrunePlan<V> {
  const plan: PrunePlan<V> = { delete: [], keep: [], expire: [], dropRows: [] };
  const { daily, weekly } = restorePoints(now, policy);
  const points = [...daily, ...weekly];
  const keepAllFrom = now - policy.keepAllDays * DAY_MS;
  const horizon = now - (policy.keepAllDays + policy.dailyDays + policy.weeklyWeeks * 7) * DAY_MS;

  const byKey = new Map<string, V[]>();
  for (const v of versions) {
    const list = byKey.get(v.key);
    if (list) list.push(v);
    else byKey.set(v.key, [v]);
  }

  for (const [key, rows] of byKey) {
    const state = files.get(key);
    const present = state?.present ?? false;
    const events = timeline(rows);
    const objects = rows.filter((r) => r.reason === 'overwritten');
    const deletions = rows.filter((r) => r.reason === 'deleted');

    // A file still deleted after deletedDays: everything of it goes.
    const openDeletion = deletions.filter((d) => d.gone_until == null).sort((a, b) => b.saved_at - a.saved_at)[0];
    if (!present && openDeletion && now - openDeletion.saved_at >= policy.deletedDays * DAY_MS) {
      plan.expire.push(key);
      plan.delete.push(...objects);
      plan.dropRows.push(...deletions);
      continue;
    }

    const needed = new Set<V>();
    for (const v of objects) if (v.saved_at > keepAllFrom) needed.add(v);
    for (const p of points) {
      if (!existedAt(p, state?.firstSeen, rows)) continue;
      const live = liveAt(events, p);
      if (live.kind !== 'version') continue;
      if (live.row.reason === 'overwritten') needed.add(live.row);
      else for (const h of holdersOfDeleted(events, live.row)) needed.add(h);
    }
    if (present && state && !state.currentSynced && objects.length) {
      const newest = objects.reduce((a, b) => (b.saved_at > a.saved_at || (b.saved_at === a.saved_at && b.id > a.id) ? b : a));
      needed.add(newest);
    }
    for (const v of objects) (needed.has(v) ? plan.keep : plan.delete).push(v);
    // A closed deletion older than every restore point no longer matters; an open one always does.
    for (const d of deletions) if (d.gone_until != null && d.gone_until <= horizon) plan.dropRows.push(d);
  }
  return plan;
}

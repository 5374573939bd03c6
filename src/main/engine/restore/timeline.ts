// A file's history on one target, from our own catalog: which content was live at a given time.
// Pure functions, shared by "restore as it was on <date>" and the retention planner, so both agree
// on what a restore point is.
//
// Every time is the engine's own clock (saved_at is stamped by the engine when it preserved a
// version or saw the deletion), never the object's Last-Modified from the target: the server's
// clock may be skewed, and an object copied later would sort wrongly.
//
// The model, per (target, file):
// - an 'overwritten' row says: content `sha256` was live until `saved_at`, then replaced;
// - a 'deleted' row says: content `sha256` was live until `saved_at`, then the local file went
//   away; it came back at `gone_until` (null: still gone) with content `back_sha256`;
// - after the last row, the copy's current object is live.
// When a file came back with different content, the uploader later preserves the old object as
// 'overwritten' too; that row holds the deleted content, but it is not a change of the file
// (the file was absent meanwhile), so it is "stale" for the timeline.

export interface HistoryRow {
  id: number;
  saved_at: number;
  reason: 'overwritten' | 'deleted';
  sha256: string;
  gone_until?: number | null;
  back_sha256?: string | null;
}

export interface TimelineEvent<R extends HistoryRow = HistoryRow> {
  row: R;
  /** An 'overwritten' row that only preserved a deleted file's content after a new file took its name. */
  stale: boolean;
}

export function byTime<R extends HistoryRow>(a: R, b: R): number {
  return a.saved_at - b.saved_at || a.id - b.id;
}

/** The rows of one target and one file in order, stale preservations marked. */
export function timeline<R extends HistoryRow>(rows: readonly R[]): TimelineEvent<R>[] {
  const sorted = [...rows].sort(byTime);
  const out: TimelineEvent<R>[] = [];
  let lastDeleted: R | null = null;
  for (const row of sorted) {
    let stale = false;
    if (row.reason === 'deleted') {
      lastDeleted = row;
    } else if (lastDeleted && row.sha256 === lastDeleted.sha256 && lastDeleted.gone_until != null && lastDeleted.back_sha256 != null && lastDeleted.back_sha256 !== lastDeleted.sha256) {
      stale = true;
      lastDeleted = null; // only the first preservation after the return is the stale one
    } else {
      lastDeleted = null;
    }
    out.push({ row, stale });
  }
  return out;
}

/** Did the file exist (locally) at time t? Before it was first seen, or inside a deletion gap: no. */
export function existedAt(t: number, firstSeen: number | null | undefined, rows: readonly HistoryRow[]): boolean {
  if (firstSeen != null && t < firstSeen) return false;
  for (const r of rows) {
    if (r.reason !== 'deleted') continue;
    if (t >= r.saved_at && (r.gone_until == null || t < r.gone_until)) return false;
  }
  return true;
}

export type Live<R extends HistoryRow> = { kind: 'version'; row: R } | { kind: 'current' };

/**
 * The content live at time t on this target: the first non-stale row saved after t (its content
 * was replaced, or deleted, after t), else the current object. Check existedAt() first.
 */
export function liveAt<R extends HistoryRow>(events: readonly TimelineEvent<R>[], t: number): Live<R> {
  for (const e of events) {
    if (e.stale) continue;
    if (e.row.saved_at > t) return { kind: 'version', row: e.row };
  }
  return { kind: 'current' };
}

/** Rows that hold the same content as a 'deleted' row after it (where that content went when a new file replaced the object). */
export function holdersOfDeleted<R extends HistoryRow>(events: readonly TimelineEvent<R>[], deleted: R): R[] {
  return events.filter((e) => e.row.reason === 'overwritten' && e.row.sha256 === deleted.sha256 && byTime(e.row, deleted) > 0).map((e) => e.row);
}

// What the status says: the file-level counts and the one sentence with its colour. Pure, so the
// engine (API, CLI), the tray and the tests use the same words; the overview shows the engine's.

import type { CopyState, GuardCounts, GuardHold, SyncStatus, TargetState, TargetStatus } from './api';
import { formatBytes, formatClock, formatCount, joinNames, plural } from './format';

/**
 * A file that is not synced on every enabled destination takes the first of these states that one
 * of its copies has: failed (it needs the operator) before uploading (being copied now) before
 * pending (still to copy) before skipped (will not be copied: deleted or replaced before it could
 * be, its folder removed). With no destination at all, a file is pending (waiting for one).
 * A destination without a copy row counts as pending for a file that is here (its copy is about to
 * be queued) and as skipped for a file gone from here (nothing can be copied any more).
 */
export const FILE_STATE_ORDER: readonly CopyState[] = ['failed', 'uploading', 'pending', 'skipped'];

export function fileState(copies: readonly (CopyState | undefined)[], local: 'present' | 'missing'): CopyState {
  if (copies.length === 0) return 'pending';
  const states = copies.map((c) => c ?? (local === 'present' ? 'pending' : 'skipped'));
  if (states.every((c) => c === 'synced')) return 'synced';
  return FILE_STATE_ORDER.find((s) => states.includes(s))!;
}

/**
 * Files grouped by their copies, as the catalog keeps them (table file_states): `sig` lists each
 * copy as "<destination id>:<state>", space separated; n files of `bytes` bytes in all.
 */
export interface FileStateRow {
  sig: string;
  local_state: 'present' | 'missing';
  n: number;
  bytes: number;
}

export type FileCounts = Pick<
  SyncStatus,
  'pending' | 'uploading' | 'synced' | 'failed' | 'skipped' | 'held' | 'total_files' | 'total_size_bytes' | 'synced_size_bytes' | 'safe_files' | 'missing_local_files' | 'missing_safe_files'
>;

function copiesOf(sig: string): Map<string, CopyState> {
  const copies = new Map<string, CopyState>();
  for (const part of sig.split(' ')) {
    const i = part.lastIndexOf(':');
    if (i > 0) copies.set(part.slice(0, i), part.slice(i + 1) as CopyState);
  }
  return copies;
}

/**
 * The seed's file counts for the enabled destinations `targetIds`. `heldRows`: the same rows for
 * the files the burst guard holds back (a subset of `rows`); one that would be pending is held.
 */
export function countFiles(rows: readonly FileStateRow[], targetIds: readonly string[], heldRows: readonly FileStateRow[] = []): FileCounts {
  const c: FileCounts = { pending: 0, uploading: 0, synced: 0, failed: 0, skipped: 0, held: 0, total_files: 0, total_size_bytes: 0, synced_size_bytes: 0, safe_files: 0, missing_local_files: 0, missing_safe_files: 0 };
  for (const r of rows) {
    if (r.n <= 0) continue;
    const copies = copiesOf(r.sig);
    const state = fileState(targetIds.map((id) => copies.get(id)), r.local_state);
    c[state] += r.n;
    c.total_files += r.n;
    c.total_size_bytes += r.bytes;
    if (r.local_state === 'missing') c.missing_local_files += r.n;
    if (state === 'synced') {
      c.synced_size_bytes += r.bytes;
      if (r.local_state === 'missing') c.missing_safe_files += r.n;
    }
  }
  for (const r of heldRows) {
    const copies = copiesOf(r.sig);
    if (r.n <= 0 || fileState(targetIds.map((id) => copies.get(id)), r.local_state) !== 'pending') continue;
    c.pending -= r.n;
    c.held += r.n;
  }
  c.safe_files = c.synced;
  return c;
}

/**
 * Per destination, the held files that would go to it: `pending` of them have a pending copy row
 * (the card's pending count includes them), `held` adds those here without a copy row yet.
 */
export function heldPerTarget(heldRows: readonly FileStateRow[], targetId: string): { pending: number; held: number } {
  const out = { pending: 0, held: 0 };
  for (const r of heldRows) {
    const copy = copiesOf(r.sig).get(targetId);
    if (copy === 'pending') out.pending += r.n;
    if (copy === 'pending' || (copy === undefined && r.local_state === 'present')) out.held += r.n;
  }
  return out;
}

/** What a destination's card says it is doing: "Working" only while something can go to it. */
export function cardState(t: TargetStatus): TargetState | 'held' {
  if ((t.state === 'online' || t.state === 'unknown') && t.held > 0 && waitingOf(t) === 0) return 'held';
  return t.state;
}

/**
 * Files to offer to bring back (the Restore page's count, its nav badge, the Overview's button):
 * a folder the burst guard holds is left out whole, as the engine's bulk restore leaves it out. Its
 * missing files are the burst's to answer (the roll-back restores them as they were before it).
 */
export function missingToOffer(s: SyncStatus): number {
  const held = (s.guard?.holds ?? []).reduce((a, h) => a + h.missing, 0);
  return Math.max(0, s.missing_local_files - held);
}

const ROLL_BACK = (clock: string) => `“Put everything back as it was at ${clock}”`;
const ACCEPT = '“These changes are mine: back them up”';

/**
 * Why a held folder's missing files are not brought back with the others, and what to do: the
 * Restore page (with the app's clock) and the engine's bulk restore say the same. `missing`: the
 * files left out. "Media is on hold since 14:02: a burst of changes there looks like ransomware.
 * Its 300 missing files are not brought back from here until you answer on the Overview: …"
 */
export function heldFolderNote(h: Pick<GuardHold, 'root_label' | 'tripped_at' | 'since' | 'missing'>, clock: (ms: number) => string = formatClock): string {
  const left = h.missing > 0 ? `Its ${plural(h.missing, 'missing file')} ${isAre(h.missing)} not brought back from here until you answer on the Overview` : 'Answer on the Overview';
  return `${h.root_label} is on hold since ${clock(h.tripped_at)}: a burst of changes there looks like ransomware. ${left}: ${ROLL_BACK(clock(h.since))} or ${ACCEPT}.`;
}

/**
 * A destination's line while folders are held (the app adds the way to the Overview): "Holding 300
 * changes from Media since 14:02." `t.held` counts the changes, the number the Overview's card
 * shows; none when no folder is held.
 */
export function heldTargetNote(t: Pick<TargetStatus, 'held'>, holds: readonly Pick<GuardHold, 'root_label' | 'tripped_at'>[], clock: (ms: number) => string = formatClock): string | undefined {
  if (!holds.length) return undefined;
  const names = joinNames(holds.map((h) => h.root_label));
  const since = clock(Math.min(...holds.map((h) => h.tripped_at)));
  if (t.held > 0) return `Holding ${plural(t.held, 'change')} from ${names} since ${since}.`;
  return `Changes in ${names} are held back since ${since}.`;
}

export interface SummaryContext {
  /** Folders in the config. */
  folders: number;
  /** A folder that cannot be read, in words. */
  folderProblem?: string;
}

export interface Summary {
  summary: string;
  health: SyncStatus['health'];
}

const isAre = (n: number) => (n === 1 ? 'is' : 'are');
const waitingOf = (t: TargetStatus) => t.pending + t.uploading;

/** "5 files to NAS and 3 to Cloud", "5 files to NAS and Cloud" */
function toEach(targets: TargetStatus[], what: 'to' | 'for', suffix = ''): string {
  const counts = targets.map(waitingOf);
  const names = targets.map((t) => `${t.label}${suffix}`);
  if (counts.every((n) => n === counts[0])) return `${plural(counts[0]!, 'file')} ${what} ${joinNames(names)}`;
  return joinNames(targets.map((t, i) => (i === 0 ? `${plural(counts[i]!, 'file')} ${what} ${names[i]}` : `${formatCount(counts[i]!)} ${what} ${names[i]}`)));
}

/** "1 file is waiting for Cloud (paused)", "2 files are waiting for NAS (paused) and 3 for Cloud (paused)" */
function waitingForPaused(paused: TargetStatus[]): string {
  const first = waitingOf(paused[0]!);
  const verb = paused.length === 1 ? isAre(first) : 'are';
  const counts = paused.map(waitingOf);
  if (counts.every((n) => n === first)) return `${plural(first, 'file')} ${verb} waiting for ${joinNames(paused.map((t) => `${t.label} (paused)`))}`;
  return `${plural(first, 'file')} ${verb} waiting for ${paused[0]!.label} (paused) and ` + joinNames(paused.slice(1).map((t) => `${formatCount(waitingOf(t))} for ${t.label} (paused)`));
}

/** Files gone from this computer, when anything else comes first. */
function missingSentence(s: SyncStatus, names: string): string {
  const m = s.missing_local_files;
  const kept = s.missing_safe_files;
  if (m === 0) return '';
  if (kept === m) return ` ${plural(m, 'file')} ${isAre(m)} no longer on this computer and ${isAre(m)} kept on ${names}.`;
  if (kept > 0) return ` ${plural(m, 'file')} ${isAre(m)} no longer on this computer; ${formatCount(kept)} of them ${isAre(kept)} kept on ${names}.`;
  return ` ${plural(m, 'file')} ${isAre(m)} no longer on this computer.`;
}

/**
 * The sentence and the colour, from the status alone. The first that applies: everything paused,
 * files given up, a folder that cannot be read, a destination that does not answer (the tray's
 * order: paused, failing, behind), no folder, no destination, copying, looking for files,
 * converting videos, a paused destination with files waiting, and then where the files are.
 */
export function summarize(s: SyncStatus, ctx: SummaryContext): Summary {
  // a burst that looks like ransomware comes before everything: the backups are at stake
  const hold = s.guard?.holds[0];
  if (hold) return { summary: hold.summary, health: 'failing' };
  const toCopy = s.pending + s.uploading;
  // the operator's own pause comes first (the tray shows it above everything else)
  if (s.paused) {
    const waits = toCopy > 0 ? `${plural(toCopy, 'file')} ${toCopy === 1 ? 'waits' : 'wait'} to be copied; press` : 'Press';
    return { summary: `Backups are paused. ${waits} Resume to carry on.`, health: 'paused' };
  }
  const targets = Object.values(s.targets).filter((t) => t.state !== 'disabled');
  if (s.failed > 0) {
    const where = targets.filter((t) => t.failed > 0).map((t) => t.label);
    return { summary: `${plural(s.failed, 'file')} could not be copied${where.length ? ` to ${joinNames(where)}` : ''}. Open Activity to see why, then press Retry.`, health: 'failing' };
  }
  if (ctx.folderProblem) return { summary: ctx.folderProblem, health: 'failing' };
  const offline = targets.filter((t) => t.state === 'offline');
  if (offline.length) {
    const parts = offline.map((t) => {
      const w = waitingOf(t);
      const since = t.offline_since ? ` since ${formatClock(t.offline_since)}` : '';
      const next = t.next_try_at ? `; next try at ${formatClock(t.next_try_at)}` : '';
      return w > 0 ? `${plural(w, 'file')} ${isAre(w)} waiting for ${t.label}: it has not answered${since}${next}.` : `${t.label} has not answered${since}${next}; nothing is waiting for it.`;
    });
    return { summary: parts.join(' '), health: 'behind' };
  }
  if (ctx.folders === 0) return { summary: 'Add a folder with photos and videos to start backing up.', health: 'syncing' };
  if (targets.length === 0) return { summary: 'Add a destination (the NAS or the cloud) so Triplicate can keep copies of your files.', health: 'behind' };
  const names = joinNames(targets.map((t) => t.label));
  const paused = targets.filter((t) => t.state === 'paused');
  const pausedWaiting = paused.filter((t) => waitingOf(t) > 0);
  const alsoPaused = pausedWaiting.length ? ` ${waitingForPaused(pausedWaiting)}.` : '';
  const active = targets.filter((t) => t.state !== 'paused' && waitingOf(t) > 0);
  if (active.length) return { summary: `Copying ${toEach(active, 'to')}…${alsoPaused}`, health: 'syncing' };
  if (s.scanning) return { summary: `Looking for new and changed files…${alsoPaused}`, health: 'syncing' };
  const converting = s.transcoding?.active ?? 0;
  if (converting > 0) {
    const more = s.transcoding!.queued > 0 ? ` (${formatCount(s.transcoding!.queued)} more waiting)` : '';
    return { summary: `Converting ${plural(converting, 'video')} so every device can play ${converting === 1 ? 'it' : 'them'}${more}…${alsoPaused}`, health: 'syncing' };
  }
  if (pausedWaiting.length) {
    const others = targets.filter((t) => t.state !== 'paused');
    const upToDate = others.length ? `; ${joinNames(others.map((t) => t.label))} ${others.length === 1 ? 'is' : 'are'} up to date.` : '.';
    return { summary: `${waitingForPaused(pausedWaiting)}${upToDate}${missingSentence(s, names)}`, health: 'paused' };
  }
  // files here that are not yet copied anywhere (not hashed yet, a destination just added)
  if (toCopy > 0) return { summary: `Getting ${plural(toCopy, 'file')} ready to copy…`, health: 'syncing' };
  const settled = whereFilesAre(s, targets.length + 1, names);
  if (paused.length) return { summary: `${joinNames(paused.map((t) => t.label))} ${paused.length === 1 ? 'is' : 'are'} paused. ${settled.summary}`, health: 'paused' };
  return settled;
}

/** Nothing waits and nothing failed: every file is synced or skipped. */
function whereFilesAre(s: SyncStatus, places: number, names: string): Summary {
  const total = s.total_files;
  if (total === 0) return { summary: 'No files yet. Put photos and videos in your folders and they are copied automatically.', health: 'green' };
  const here = s.safe_files - s.missing_safe_files;
  if (here === total) {
    const size = formatBytes(s.synced_size_bytes);
    return { summary: total === 1 ? `The 1 file (${size}) is safe in ${places} places.` : `All ${formatCount(total)} files (${size}) are safe in ${places} places.`, health: 'green' };
  }
  const parts: string[] = [];
  if (here > 0) parts.push(`${plural(here, 'file')} ${isAre(here)} safe in ${places} places`);
  const kept = s.missing_safe_files;
  if (kept > 0) parts.push(`${parts.length ? formatCount(kept) : plural(kept, 'file')} ${isAre(kept)} no longer on this computer and ${isAre(kept)} kept on ${names}`);
  const left = s.skipped;
  if (left > 0) parts.push(`${parts.length ? formatCount(left) : plural(left, 'file')} ${left === 1 ? 'was' : 'were'} not copied (Activity says why)`);
  const text = parts.join('; ');
  // gone from here but on every destination: a copy is behind (not red: nothing is lost)
  return { summary: `${text.charAt(0).toUpperCase()}${text.slice(1)}.`, health: kept > 0 ? 'behind' : 'green' };
}

/**
 * The burst guard's sentence: what happened, when, and what Triplicate did. "At 14:32, 300 files in
 * Media were rewritten so they no longer look like what their names say and renamed to .locked:
 * Triplicate stopped copying this folder's changes and deletions; the destinations keep the files as
 * they were at 14:31."
 */
export function guardSentence(h: { root_label: string; tripped_at: number; since: number; counts: GuardCounts }): string {
  const c = h.counts;
  const parts: string[] = [];
  if (c.rewritten) parts.push(`${plural(c.rewritten, 'file')} ${c.rewritten === 1 ? 'was' : 'were'} rewritten so they no longer look like what their names say`);
  if (c.renamed) parts.push(`${plural(c.renamed, 'file')} ${c.renamed === 1 ? 'was' : 'were'} renamed${c.extension ? ` to .${c.extension}` : ''}`);
  if (c.suspicious_new) parts.push(`${plural(c.suspicious_new, 'new file')} ${c.suspicious_new === 1 ? 'looks' : 'look'} encrypted or misnamed`);
  if (c.deleted) parts.push(`${plural(c.deleted, 'file')} ${c.deleted === 1 ? 'was' : 'were'} deleted`);
  const what = parts.length ? joinNames(parts) : 'many files changed at once';
  return `At ${formatClock(h.tripped_at)}, in ${h.root_label}, ${what}: this looks like ransomware, so Triplicate stopped copying the folder's changes and deletions, and the destinations keep the files as they were at ${formatClock(h.since)}.`;
}

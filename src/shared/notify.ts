// Which native notifications (and webhook messages) the operator gets, decided from the engine's
// status and events. Pure: no timers, no I/O, no electron; the caller passes `now`.
//
// Only what a person must act on or wants to know: a destination failing for 15 minutes, files
// given up, a restore finished, a disk nearly full. Each is sent once per occurrence, repeated
// at most every `remindAfterMs` while it lasts, and during quiet hours it is delivered silently.
import type { EngineEvent, SyncStatus } from './api';

export type NoticeKind = 'target-offline' | 'target-back' | 'files-failed' | 'restore-done' | 'restore-failed' | 'disk-low' | 'guard-held';

export interface Notice {
  /** De-duplication key: one open occurrence per key. */
  key: string;
  kind: NoticeKind;
  severity: 'info' | 'warn' | 'error';
  title: string;
  body: string;
  at: number;
  /** true during quiet hours: show it without sound (the webhook still gets it). */
  silent: boolean;
  target_id?: string;
  /** A page of the app that helps: the notification click opens it. */
  page: 'overview' | 'destinations' | 'activity' | 'restore' | 'settings';
}

export interface NotifyOptions {
  /** A destination has to be offline this long before anyone is told. */
  targetOfflineAfterMs: number;
  /** While a problem lasts, remind at most this often. */
  remindAfterMs: number;
  /** A new "files given up" notice for the same destination needs this much time since the last one. */
  failedMinIntervalMs: number;
  /** A disk is nearly full below either threshold. */
  diskFreeRatio: number;
  diskFreeBytes: number;
  /** Local time "HH:MM"-"HH:MM"; may wrap past midnight. */
  quietHours?: { start: string; end: string };
  siteName?: string;
}

export const DEFAULT_NOTIFY_OPTIONS: NotifyOptions = {
  targetOfflineAfterMs: 15 * 60_000,
  remindAfterMs: 6 * 3600_000,
  failedMinIntervalMs: 3600_000,
  diskFreeRatio: 0.05,
  diskFreeBytes: 2 * 1024 ** 3,
};

/** Hysteresis: a low disk is "fine again" only above 1.5x the thresholds, so it does not flap. */
const DISK_REARM_FACTOR = 1.5;
const MAX_REMEMBERED_RESTORES = 200;

export class NotificationRules {
  private readonly opts: NotifyOptions;
  /** target id -> first time we saw it offline (or the engine's offline_since) */
  private offlineSince = new Map<string, number>();
  /** target id -> when we last notified about the current outage */
  private offlineNotifiedAt = new Map<string, number>();
  private failedNotified = new Map<string, { count: number; at: number }>();
  private diskNotifiedAt = new Map<string, number>();
  private restoresSeen: string[] = [];
  /** Burst-guard holds already told (a hold lasts until the operator answers: told once). */
  private holdsSeen = new Set<number>();

  constructor(opts: Partial<NotifyOptions> = {}) {
    this.opts = { ...DEFAULT_NOTIFY_OPTIONS, ...opts };
  }

  /** Feed every status the engine sends (the SSE `status` event or a fetched status). */
  onStatus(s: SyncStatus, now: number): Notice[] {
    const out: Notice[] = [];
    const silent = isQuietTime(now, this.opts.quietHours);
    // --- a burst of changes that looks like ransomware: never silent, the backups are at stake
    const holds = s.guard?.holds ?? [];
    for (const h of holds) {
      if (this.holdsSeen.has(h.id)) continue;
      this.holdsSeen.add(h.id);
      out.push({
        key: `guard-held:${h.id}`,
        kind: 'guard-held',
        severity: 'error',
        title: `Changes in ${h.root_label} are held back: ransomware?`,
        body: `${h.summary} Open Triplicate to back the changes up or put everything back.`,
        at: now,
        silent: false,
        page: 'overview',
      });
    }
    for (const id of [...this.holdsSeen]) if (!holds.some((h) => h.id === id)) this.holdsSeen.delete(id);
    for (const [id, t] of Object.entries(s.targets)) {
      const label = t.label || id;
      // --- a destination that does not answer
      if (t.state === 'offline') {
        const since = this.offlineSince.get(id) ?? t.offline_since ?? now;
        if (!this.offlineSince.has(id)) this.offlineSince.set(id, Math.min(since, now));
        const start = this.offlineSince.get(id)!;
        const notifiedAt = this.offlineNotifiedAt.get(id);
        const due = notifiedAt === undefined ? now - start >= this.opts.targetOfflineAfterMs : now - notifiedAt >= this.opts.remindAfterMs;
        if (due) {
          this.offlineNotifiedAt.set(id, now);
          const mins = Math.round((now - start) / 60_000);
          const waiting = t.pending + t.failed;
          out.push({
            key: `target-offline:${id}`,
            kind: 'target-offline',
            severity: 'error',
            title: `${label} has not answered for ${formatDuration(mins)}`,
            body:
              (t.reason ? ensureSentence(t.reason) + ' ' : `Check that ${label} is switched on and connected. `) +
              (waiting > 0 ? `${formatCount(waiting)} ${plural(waiting, 'file waits', 'files wait')} for it; Triplicate keeps trying.` : 'Triplicate keeps trying.'),
            at: now,
            silent,
            target_id: id,
            page: 'destinations',
          });
        }
      } else if (t.state === 'online' || t.state === 'paused' || t.state === 'disabled') {
        // paused/disabled by the operator: that ends an outage without a "back" message
        const wasNotified = this.offlineNotifiedAt.has(id);
        this.offlineSince.delete(id);
        this.offlineNotifiedAt.delete(id);
        if (wasNotified && t.state === 'online') {
          out.push({
            key: `target-back:${id}`,
            kind: 'target-back',
            severity: 'info',
            title: `${label} answers again`,
            body: t.pending > 0 ? `Copying resumes: ${formatCount(t.pending)} ${plural(t.pending, 'file', 'files')} to go.` : 'Copying resumes.',
            at: now,
            silent,
            target_id: id,
            page: 'overview',
          });
        }
      }
      // --- files given up
      if (t.failed <= 0) {
        this.failedNotified.delete(id);
      } else {
        const prev = this.failedNotified.get(id);
        const grew = !prev || t.failed > prev.count;
        const spaced = !prev || now - prev.at >= this.opts.failedMinIntervalMs;
        if (grew && spaced) {
          this.failedNotified.set(id, { count: t.failed, at: now });
          out.push({
            key: `files-failed:${id}`,
            kind: 'files-failed',
            severity: 'error',
            title: `${formatCount(t.failed)} ${plural(t.failed, 'file', 'files')} could not be copied to ${label}`,
            body: 'Triplicate gave up after several tries. Open Activity to see why, then press "Retry all failed".',
            at: now,
            silent,
            target_id: id,
            page: 'activity',
          });
        }
      }
    }
    // targets that disappeared from the status (removed from the config): forget them
    for (const id of [...this.offlineSince.keys()]) if (!(id in s.targets)) { this.offlineSince.delete(id); this.offlineNotifiedAt.delete(id); }
    for (const id of [...this.failedNotified.keys()]) if (!(id in s.targets)) this.failedNotified.delete(id);

    // --- a disk nearly full
    for (const d of s.disk ?? []) {
      if (d.total_bytes <= 0) continue;
      const low = d.free_bytes < this.opts.diskFreeBytes || d.free_bytes / d.total_bytes < this.opts.diskFreeRatio;
      const fine =
        d.free_bytes >= this.opts.diskFreeBytes * DISK_REARM_FACTOR && d.free_bytes / d.total_bytes >= this.opts.diskFreeRatio * DISK_REARM_FACTOR;
      const last = this.diskNotifiedAt.get(d.path);
      if (low && (last === undefined || now - last >= this.opts.remindAfterMs)) {
        this.diskNotifiedAt.set(d.path, now);
        const pct = Math.round((d.free_bytes / d.total_bytes) * 100);
        out.push({
          key: `disk-low:${d.path}`,
          kind: 'disk-low',
          severity: 'warn',
          title: 'The disk is nearly full',
          body: `Only ${formatBytes(d.free_bytes)} (${pct}%) is free on ${d.path}. New photos and videos may not fit; move old files away or add a bigger disk.`,
          at: now,
          silent,
          page: 'overview',
        });
      } else if (fine) {
        this.diskNotifiedAt.delete(d.path);
      }
    }
    return out;
  }

  /** Feed every event from the stream; only restores end in a notice here. */
  onEvent(ev: EngineEvent, now: number): Notice[] {
    if (ev.type !== 'restore') return [];
    const p = ev.progress;
    if (p.state !== 'done' && p.state !== 'failed') return [];
    if (this.restoresSeen.includes(p.id)) return [];
    this.restoresSeen.push(p.id);
    if (this.restoresSeen.length > MAX_REMEMBERED_RESTORES) this.restoresSeen.splice(0, this.restoresSeen.length - MAX_REMEMBERED_RESTORES);
    const silent = isQuietTime(now, this.opts.quietHours);
    if (p.state === 'done' && p.files_failed === 0) {
      return [{
        key: `restore:${p.id}`,
        kind: 'restore-done',
        severity: 'info',
        title: 'Restore finished',
        body: `${formatCount(p.files_done)} ${plural(p.files_done, 'file is', 'files are')} back (${formatBytes(p.bytes_done)}).`,
        at: now,
        silent,
        page: 'restore',
      }];
    }
    const failed = p.state === 'failed' ? Math.max(1, p.files_failed) : p.files_failed;
    return [{
      key: `restore:${p.id}`,
      kind: 'restore-failed',
      severity: 'error',
      title: p.state === 'failed' ? 'Restore stopped' : 'Restore finished with problems',
      body:
        `${formatCount(p.files_done)} ${plural(p.files_done, 'file is', 'files are')} back, ${formatCount(failed)} could not be restored. ` +
        (p.message ? ensureSentence(p.message) + ' ' : '') +
        'Open Restore to see which and try again.',
      at: now,
      silent,
      page: 'restore',
    }];
  }
}

// ---------------------------------------------------------------------------------------------
// helpers (pure)

/** True when `now` (local time) falls inside the window; a window may wrap past midnight. */
export function isQuietTime(now: number, quiet?: { start: string; end: string }): boolean {
  if (!quiet) return false;
  const s = parseHhmm(quiet.start);
  const e = parseHhmm(quiet.end);
  if (s === null || e === null || s === e) return false;
  const d = new Date(now);
  const m = d.getHours() * 60 + d.getMinutes();
  return s < e ? m >= s && m < e : m >= s || m < e;
}

function parseHhmm(v: string): number | null {
  const m = /^(\d{1,2}):(\d{2})$/.exec(v);
  if (!m) return null;
  const h = Number(m[1]);
  const min = Number(m[2]);
  if (h > 23 || min > 59) return null;
  return h * 60 + min;
}

export function formatDuration(minutes: number): string {
  if (minutes < 60) return `${minutes} ${plural(minutes, 'minute', 'minutes')}`;
  const h = Math.floor(minutes / 60);
  if (h < 48) return `${h} ${plural(h, 'hour', 'hours')}`;
  const d = Math.floor(h / 24);
  return `${d} days`;
}

export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return '?';
  const units = ['bytes', 'KB', 'MB', 'GB', 'TB', 'PB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  return i === 0 ? `${v} bytes` : `${v >= 100 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}

function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}

function plural(n: number, one: string, many: string): string {
  return n === 1 ? one : many;
}

function ensureSentence(s: string): string {
  const t = s.trim();
  return /[.!?]$/.test(t) ? t : `${t}.`;
}

// The catalog: an index of files, their copies on each target, the durable job queue and the
// operator-visible event log. Every query is a prepared statement; nothing awaits inside a
// transaction (better-sqlite3 is synchronous). The files on disk and the objects on the targets are
// the truth: a rescan plus HEAD requests rebuild all of this.
import type { CopyState, EventRecord } from '../../../shared/api';
import type { MediaKind } from '../../../shared/keys';
import type { FileStateRow } from '../../../shared/status';
import { openCatalog, type DB } from './db';

export interface FileRow {
  id: number;
  root_id: string;
  rel_path: string;
  /** Name on disk when it differs from rel_path (NFD names); use diskRel(). */
  disk_rel: string | null;
  size: number;
  mtime_ms: number;
  sha256: string | null;
  kind: MediaKind;
  local_state: 'present' | 'missing';
  derived_from: number | null;
  first_seen: number;
  last_seen: number;
}

export interface CopyRow {
  file_id: number;
  target_id: string;
  state: CopyState;
  sha256: string | null;
  size: number | null;
  attempts: number;
  last_error: string | null;
  error_detail: string | null;
  next_attempt_at: number | null;
  synced_at: number | null;
  verified_at: number | null;
  updated_at: number;
  /** Until when the object cannot be deleted (Object Lock, migration 7); null: not locked or not known. */
  locked_until?: number | null;
}

export interface JobRow {
  id: number;
  lane: string;
  kind: string;
  file_id: number;
  state: 'queued' | 'running';
  priority: number;
  run_after: number;
  attempts: number;
  rerun: number;
  lease_owner: string | null;
  lease_until: number | null;
  fence: number;
  payload: string | null;
  last_error: string | null;
  created_at: number;
}

export interface TargetStateRow {
  target_id: string;
  paused: number;
  offline_since: number | null;
  failures: number;
  next_try_at: number | null;
  reason: string | null;
  detail: string | null;
  updated_at: number;
}

export type KnownFile = Pick<FileRow, 'id' | 'rel_path' | 'disk_rel' | 'size' | 'mtime_ms' | 'sha256' | 'local_state'>;

/** [size, mtime_ms, hashed, present] of a cataloged file. */
export type ScanIndexEntry = [number, number, boolean, boolean];

export type ScanChange = 'new' | 'changed' | 'same' | 'reappeared';

export interface EnqueueOptions {
  priority?: number;
  runAfter?: number;
  payload?: unknown;
}

/** A state filter matching at most this many copies lists them from the copies index. */
const FEW_MATCHES = 5000;

/** Max rows kept in the event log (oldest pruned). */
const EVENTS_KEEP = 50_000;

export class Catalog {
  readonly db: DB;
  private readonly s;
  private readonly adhoc = new Map<string, import('better-sqlite3').Statement>();

  constructor(pathOrDb: string | DB) {
    this.db = typeof pathOrDb === 'string' ? openCatalog(pathOrDb) : pathOrDb;
    const db = this.db;
    this.s = {
      fileByPath: db.prepare<[string, string], FileRow>('SELECT * FROM files WHERE root_id = ? AND rel_path = ?'),
      fileById: db.prepare<[number], FileRow>('SELECT * FROM files WHERE id = ?'),
      filesOfRoot: db.prepare<[string], KnownFile>(
        'SELECT id, rel_path, disk_rel, size, mtime_ms, sha256, local_state FROM files WHERE root_id = ?',
      ),
      scanIndex: db.prepare<[string], unknown[]>(`SELECT rel_path, size, mtime_ms, sha256 IS NOT NULL, local_state = 'present' FROM files WHERE root_id = ?`).raw(true),
      insertFile: db.prepare(
        `INSERT INTO files (root_id, rel_path, disk_rel, size, mtime_ms, sha256, kind, local_state, derived_from, first_seen, last_seen)
         VALUES (@root_id, @rel_path, @disk_rel, @size, @mtime_ms, @sha256, @kind, 'present', @derived_from, @now, @now)`,
      ),
      updateFile: db.prepare(
        `UPDATE files SET size = @size, mtime_ms = @mtime_ms, sha256 = @sha256, disk_rel = @disk_rel, local_state = 'present', last_seen = @now WHERE id = @id`,
      ),
      presentUnder: db.prepare<[string, string, string], { rel_path: string; disk_rel: string | null }>(
        `SELECT rel_path, disk_rel FROM files WHERE root_id = ? AND rel_path >= ? AND rel_path < ? AND local_state = 'present'`,
      ),
      setLocalState: db.prepare<[string, number, number]>('UPDATE files SET local_state = ?, last_seen = ? WHERE id = ?'),
      setDerived: db.prepare<[number | null, number]>('UPDATE files SET derived_from = ? WHERE id = ?'),

      copy: db.prepare<[number, string], CopyRow>('SELECT * FROM copies WHERE file_id = ? AND target_id = ?'),
      copiesOfFile: db.prepare<[number], CopyRow>('SELECT * FROM copies WHERE file_id = ? ORDER BY target_id'),
      upsertPendingCopy: db.prepare(
        `INSERT INTO copies (file_id, target_id, state, size, attempts, updated_at) VALUES (@file_id, @target_id, 'pending', @size, 0, @now)
         ON CONFLICT (file_id, target_id) DO UPDATE SET state = 'pending', size = @size, attempts = 0, last_error = NULL,
           error_detail = NULL, next_attempt_at = NULL, updated_at = @now`,
      ),
      setCopy: db.prepare(
        `UPDATE copies SET state = @state, last_error = @last_error, error_detail = @error_detail, next_attempt_at = @next_attempt_at,
           attempts = @attempts, updated_at = @now WHERE file_id = @file_id AND target_id = @target_id`,
      ),
      // A lock only ever lasts longer: the date of an earlier write of the same key may still hold.
      setCopySynced: db.prepare(
        `INSERT INTO copies (file_id, target_id, state, sha256, size, attempts, synced_at, verified_at, updated_at, locked_until)
         VALUES (@file_id, @target_id, 'synced', @sha256, @size, 0, @now, @now, @now, @locked_until)
         ON CONFLICT (file_id, target_id) DO UPDATE SET state = 'synced', sha256 = @sha256, size = @size, last_error = NULL,
           error_detail = NULL, next_attempt_at = NULL, synced_at = @now, verified_at = @now, updated_at = @now,
           locked_until = CASE WHEN @locked_until IS NULL THEN locked_until ELSE max(@locked_until, coalesce(locked_until, 0)) END`,
      ),
      failedCopies: db.prepare<[string | null, string | null], { file_id: number; target_id: string; size: number | null }>(
        `SELECT file_id, target_id, size FROM copies WHERE state = 'failed' AND (? IS NULL OR target_id = ?)`,
      ),
      copyCounts: db.prepare<[], { target_id: string; state: CopyState; n: number; bytes: number | null }>(
        // kept by triggers (migration 4)
        'SELECT target_id, state, n, bytes FROM copy_totals WHERE n > 0',
      ),

      // positional parameters: binding by name costs a few percent on the hottest insert
      enqueue: db.prepare<[string, string, number, number, number, string | null, number]>(
        `INSERT INTO jobs (lane, kind, file_id, state, priority, run_after, payload, created_at)
         VALUES (?, ?, ?, 'queued', ?, ?, ?, ?)
         ON CONFLICT (lane, kind, file_id) DO UPDATE SET
           rerun = CASE WHEN state = 'running' THEN 1 ELSE rerun END,
           run_after = CASE WHEN state = 'queued' THEN min(run_after, excluded.run_after) ELSE run_after END,
           priority = max(priority, excluded.priority),
           payload = coalesce(excluded.payload, payload)`,
      ),
      claim: db.prepare<[string, number, string, number], JobRow>(
        `UPDATE jobs SET state = 'running', lease_owner = ?, lease_until = ?, fence = fence + 1, rerun = 0
         WHERE id = (SELECT id FROM jobs WHERE lane = ? AND state = 'queued' AND run_after <= ?
                     ORDER BY priority DESC, run_after, id LIMIT 1)
         RETURNING *`,
      ),
      heartbeat: db.prepare<[number, number, number]>(`UPDATE jobs SET lease_until = ? WHERE id = ? AND fence = ? AND state = 'running'`),
      completeDelete: db.prepare<[number, number]>(`DELETE FROM jobs WHERE id = ? AND fence = ? AND state = 'running' AND rerun = 0`),
      completeRerun: db.prepare<[number, number]>(
        `UPDATE jobs SET state = 'queued', rerun = 0, attempts = 0, lease_owner = NULL, lease_until = NULL, run_after = 0, last_error = NULL
         WHERE id = ? AND fence = ? AND state = 'running'`,
      ),
      release: db.prepare(
        `UPDATE jobs SET state = 'queued', lease_owner = NULL, lease_until = NULL, run_after = @run_after,
           attempts = attempts + @charge, last_error = @error
         WHERE id = @id AND fence = @fence AND state = 'running'`,
      ),
      dropJob: db.prepare<[number, number]>(`DELETE FROM jobs WHERE id = ? AND fence = ? AND state = 'running'`),
      reap: db.prepare<[number]>(`UPDATE jobs SET state = 'queued', lease_owner = NULL, lease_until = NULL WHERE state = 'running' AND lease_until < ?`),
      resetRunning: db.prepare(`UPDATE jobs SET state = 'queued', lease_owner = NULL, lease_until = NULL, fence = fence + 1 WHERE state = 'running'`),
      deleteJobsOfLane: db.prepare<[string]>(`DELETE FROM jobs WHERE lane = ?`),
      deleteJob: db.prepare<[string, string, number]>(`DELETE FROM jobs WHERE lane = ? AND kind = ? AND file_id = ? AND state = 'queued'`),
      jobFor: db.prepare<[string, string, number], JobRow>('SELECT * FROM jobs WHERE lane = ? AND kind = ? AND file_id = ?'),
      laneCounts: db.prepare<[], { lane: string; state: string; n: number }>('SELECT lane, state, count(*) AS n FROM jobs GROUP BY lane, state'),
      nextRunAfter: db.prepare<[string], { t: number | null }>(`SELECT min(run_after) AS t FROM jobs WHERE lane = ? AND state = 'queued'`),
      hasRunnable: db.prepare<[string, number], { x: number }>(`SELECT 1 AS x FROM jobs WHERE lane = ? AND state = 'queued' AND run_after <= ? LIMIT 1`),

      addEvent: db.prepare(
        `INSERT INTO events (ts, level, kind, message, file_key, target_id, detail) VALUES (@ts, @level, @kind, @message, @file_key, @target_id, @detail)`,
      ),
      eventsAfter: db.prepare<[number, number], EventRecordRow>('SELECT * FROM events WHERE id > ? ORDER BY id LIMIT ?'),
      eventsLatest: db.prepare<[number], EventRecordRow>('SELECT * FROM events ORDER BY id DESC LIMIT ?'),
      pruneEvents: db.prepare<[number]>('DELETE FROM events WHERE id <= (SELECT max(id) FROM events) - ?'),

      targetState: db.prepare<[string], TargetStateRow>('SELECT * FROM target_state WHERE target_id = ?'),
      upsertTargetState: db.prepare(
        `INSERT INTO target_state (target_id, paused, offline_since, failures, next_try_at, reason, detail, updated_at)
         VALUES (@target_id, @paused, @offline_since, @failures, @next_try_at, @reason, @detail, @updated_at)
         ON CONFLICT (target_id) DO UPDATE SET paused = @paused, offline_since = @offline_since, failures = @failures,
           next_try_at = @next_try_at, reason = @reason, detail = @detail, updated_at = @updated_at`,
      ),

      missingCopies: db.prepare(
        `INSERT INTO copies (file_id, target_id, state, size, attempts, updated_at)
         SELECT f.id, @target, 'pending', f.size, 0, @now FROM files f
         WHERE f.local_state = 'present' AND f.sha256 IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM copies c WHERE c.file_id = f.id AND c.target_id = @target)
           AND NOT EXISTS (SELECT 1 FROM guard_held h WHERE h.file_id = f.id)`,
      ),
      jobsForOrphanCopies: db.prepare(
        `INSERT INTO jobs (lane, kind, file_id, state, priority, run_after, created_at)
         SELECT 'upload:' || c.target_id, 'upload', c.file_id, 'queued', 0, coalesce(c.next_attempt_at, 0), @now FROM copies c
         WHERE c.target_id = @target AND c.state IN ('pending', 'uploading')
           AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.lane = 'upload:' || c.target_id AND j.kind IN ('upload', 'repair') AND j.file_id = c.file_id)
           AND NOT EXISTS (SELECT 1 FROM guard_held h WHERE h.file_id = c.file_id)`,
      ),
      uploadingToPending: db.prepare(`UPDATE copies SET state = 'pending' WHERE state = 'uploading'`),
      addVersion: db.prepare(
        `INSERT INTO versions (target_id, root_id, rel_path, object_key, sha256, size, mtime_ms, saved_at, reason, locked_until)
         VALUES (@target_id, @root_id, @rel_path, @object_key, @sha256, @size, @mtime_ms, @saved_at, @reason, @locked_until)
         ON CONFLICT (target_id, object_key) DO NOTHING`,
      ),
      fileTotals: db.prepare<[], { n: number; bytes: number | null; missing: number | null }>(
        // kept by triggers (migration 4)
        `SELECT n, bytes, missing FROM file_totals WHERE id = 1`,
      ),
      fileStates: db.prepare<[], FileStateRow>(
        // kept by triggers (migration 5)
        'SELECT copy_sig AS sig, local_state, n, bytes FROM file_states WHERE n > 0',
      ),
      kvGet: db.prepare<[string], { value: string }>('SELECT value FROM kv WHERE key = ?'),
      totalChanges: db.prepare<[], { n: number }>('SELECT total_changes() AS n'),
      kvSet: db.prepare<[string, string]>('INSERT INTO kv (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
    };
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  // ---- files -------------------------------------------------------------------------------

  fileByPath(rootId: string, relPath: string): FileRow | undefined {
    return this.s.fileByPath.get(rootId, relPath);
  }

  fileById(id: number): FileRow | undefined {
    return this.s.fileById.get(id);
  }

  /**
   * (rel_path -> [size, mtime_ms, hashed, present]) for one root: what the scanner compares the
   * disk against. Plain arrays: for 100,000 files this is a third of the time of row objects.
   */
  scanIndex(rootId: string): Map<string, ScanIndexEntry> {
    const m = new Map<string, ScanIndexEntry>();
    for (const r of this.s.scanIndex.all(rootId) as [string, number, number, number, number][]) m.set(r[0], [r[1], r[2], r[3] === 1, r[4] === 1]);
    return m;
  }

  /** (rel_path -> row) for one root. */
  filesOfRoot(rootId: string): Map<string, KnownFile> {
    const m = new Map<string, KnownFile>();
    for (const r of this.s.filesOfRoot.iterate(rootId)) m.set(r.rel_path, r);
    return m;
  }

  /**
   * Record a file as seen on disk with its hash. Returns its id and what changed:
   * new, changed (different content), reappeared (was missing, same content) or same.
   */
  recordFile(
    f: { root_id: string; rel_path: string; disk_rel?: string | null; size: number; mtime_ms: number; sha256: string; kind: MediaKind; derived_from?: number | null },
    now = Date.now(),
  ): { id: number; change: ScanChange; previous?: FileRow } {
    const prev = this.s.fileByPath.get(f.root_id, f.rel_path);
    const disk_rel = f.disk_rel && f.disk_rel !== f.rel_path ? f.disk_rel : null;
    if (!prev) {
      const info = this.s.insertFile.run({ ...f, disk_rel, derived_from: f.derived_from ?? null, now });
      return { id: Number(info.lastInsertRowid), change: 'new' };
    }
    const same = prev.sha256 === f.sha256 && prev.size === f.size;
    if (same && prev.mtime_ms === f.mtime_ms && prev.local_state === 'present' && prev.disk_rel === disk_rel) return { id: prev.id, change: 'same', previous: prev };
    this.s.updateFile.run({ id: prev.id, size: f.size, mtime_ms: f.mtime_ms, sha256: f.sha256, disk_rel, now });
    if (f.derived_from !== undefined) this.s.setDerived.run(f.derived_from, prev.id);
    if (same) return { id: prev.id, change: prev.local_state === 'missing' ? 'reappeared' : 'same', previous: prev };
    return { id: prev.id, change: 'changed', previous: prev };
  }

  /** Names on disk of the present files under a folder (`relDir/...`). */
  presentUnder(rootId: string, relDir: string): string[] {
    const lo = `${relDir}/`;
    const hi = `${relDir}0`; // '0' follows '/': every path that starts with "relDir/"
    return this.s.presentUnder.all(rootId, lo, hi).map((r) => r.disk_rel ?? r.rel_path);
  }

  setLocalState(fileId: number, state: 'present' | 'missing', now = Date.now()): void {
    this.s.setLocalState.run(state, now, fileId);
  }

  // ---- copies ------------------------------------------------------------------------------

  copy(fileId: number, targetId: string): CopyRow | undefined {
    return this.s.copy.get(fileId, targetId);
  }

  copiesOfFile(fileId: number): CopyRow[] {
    return this.s.copiesOfFile.all(fileId);
  }

  /** Mark a copy pending and queue its upload job (one transaction). */
  queueUpload(fileId: number, targetId: string, size: number, opts: EnqueueOptions = {}, now = Date.now()): void {
    this.transaction(() => {
      this.s.upsertPendingCopy.run({ file_id: fileId, target_id: targetId, size, now });
      this.enqueue(uploadLane(targetId), 'upload', fileId, opts, now);
    });
  }

  /**
   * The file changed but the burst guard holds its upload back: its copies are no longer current
   * (they wait, as pending, with no job), so it counts as held, like one held after it was queued.
   */
  holdCopy(fileId: number, targetId: string, size: number, now = Date.now()): void {
    this.s.upsertPendingCopy.run({ file_id: fileId, target_id: targetId, size, now });
  }

  /**
   * A copy whose bytes do not match its checksum (its metadata still does): no longer synced, with
   * the reason, and a repair job on its target's lane (one transaction). The job is the durable
   * mark of a damaged copy: downloads pass the copy over while it is queued.
   */
  queueRepair(fileId: number, targetId: string, size: number, reason: string, now = Date.now()): void {
    this.transaction(() => {
      this.s.upsertPendingCopy.run({ file_id: fileId, target_id: targetId, size, now });
      this.setCopyState(fileId, targetId, 'pending', { last_error: reason }, now);
      this.enqueue(uploadLane(targetId), REPAIR, fileId, { priority: 1 }, now);
    });
  }

  /** A repair of this copy is queued or running (see queueRepair). */
  repairQueued(fileId: number, targetId: string): boolean {
    return this.s.jobFor.get(uploadLane(targetId), REPAIR, fileId) !== undefined;
  }

  setCopyState(
    fileId: number,
    targetId: string,
    state: CopyState,
    f: { attempts?: number; last_error?: string | null; error_detail?: string | null; next_attempt_at?: number | null } = {},
    now = Date.now(),
  ): void {
    const cur = this.s.copy.get(fileId, targetId);
    this.s.setCopy.run({
      file_id: fileId,
      target_id: targetId,
      state,
      attempts: f.attempts ?? cur?.attempts ?? 0,
      last_error: f.last_error === undefined ? (cur?.last_error ?? null) : f.last_error,
      error_detail: f.error_detail === undefined ? (cur?.error_detail ?? null) : f.error_detail,
      next_attempt_at: f.next_attempt_at === undefined ? null : f.next_attempt_at,
      now,
    });
  }

  /** `lockedUntil`: until when the object just written (or found) cannot be deleted, when it is locked. */
  markCopySynced(fileId: number, targetId: string, sha256: string, size: number, now = Date.now(), lockedUntil: number | null = null): void {
    this.s.setCopySynced.run({ file_id: fileId, target_id: targetId, sha256, size, now, locked_until: lockedUntil });
  }

  failedCopies(targetId?: string): { file_id: number; target_id: string; size: number | null }[] {
    return this.s.failedCopies.all(targetId ?? null, targetId ?? null);
  }

  copyCounts(): { target_id: string; state: CopyState; n: number; bytes: number }[] {
    return this.s.copyCounts.all().map((r) => ({ ...r, bytes: r.bytes ?? 0 }));
  }

  // ---- job queue ---------------------------------------------------------------------------

  /** Queue a job; if the same (lane, kind, file) is running, it runs once more after it finishes. */
  enqueue(lane: string, kind: string, fileId: number, opts: EnqueueOptions = {}, now = Date.now()): void {
    this.s.enqueue.run(lane, kind, fileId, opts.priority ?? 0, opts.runAfter ?? 0, opts.payload === undefined ? null : JSON.stringify(opts.payload), now);
  }

  /** Claim the next runnable job of a lane with a lease; the returned fence must accompany every later call. */
  claim(lane: string, owner: string, leaseMs: number, now = Date.now()): JobRow | undefined {
    return this.s.claim.get(owner, now + leaseMs, lane, now);
  }

  /** Extend a lease; false when the job is no longer ours (fenced off). */
  heartbeat(job: Pick<JobRow, 'id' | 'fence'>, leaseMs: number, now = Date.now()): boolean {
    return this.s.heartbeat.run(now + leaseMs, job.id, job.fence).changes === 1;
  }

  /**
   * Finish a job. False when the fence no longer matches (a stale worker): the caller must not
   * record its result. A job re-queued while it ran goes back to the queue instead of away.
   */
  complete(job: Pick<JobRow, 'id' | 'fence'>): boolean {
    if (this.s.completeDelete.run(job.id, job.fence).changes === 1) return true;
    return this.s.completeRerun.run(job.id, job.fence).changes === 1;
  }

  /** Put a claimed job back for later. chargeAttempt: count it against the job's retries. */
  release(job: Pick<JobRow, 'id' | 'fence'>, runAfter: number, error: string | null, chargeAttempt: boolean): boolean {
    return this.s.release.run({ id: job.id, fence: job.fence, run_after: runAfter, error, charge: chargeAttempt ? 1 : 0 }).changes === 1;
  }

  /** Remove a claimed job without doing it (gave up, or nothing to do). */
  drop(job: Pick<JobRow, 'id' | 'fence'>): boolean {
    return this.s.dropJob.run(job.id, job.fence).changes === 1;
  }

  /** Jobs whose lease ran out go back to the queue (their fence makes the old worker's result void). */
  reapExpiredLeases(now = Date.now()): number {
    return this.s.reap.run(now).changes;
  }

  /** At start, with the data-dir lock held: every running job belonged to a dead process. */
  resetRunningJobs(): number {
    return this.s.resetRunning.run().changes;
  }

  /**
   * Make sure every present, hashed file has a copy on `targetId` and every pending copy has a job:
   * covers a newly added target, a catalog rebuilt by a rescan, and any crash between steps.
   * Returns how many copies were added and how many jobs were queued.
   */
  queueMissingCopies(targetId: string, now = Date.now()): { copies: number; jobs: number } {
    return this.transaction(() => {
      const copies = this.s.missingCopies.run({ target: targetId, now }).changes;
      const jobs = this.s.jobsForOrphanCopies.run({ target: targetId, now }).changes;
      return { copies, jobs };
    });
  }

  /** At start: a copy shown as uploading belonged to a dead process. */
  resetUploadingCopies(): number {
    return this.s.uploadingToPending.run().changes;
  }

  cancelQueued(lane: string, kind: string, fileId: number): boolean {
    return this.s.deleteJob.run(lane, kind, fileId).changes === 1;
  }

  deleteLane(lane: string): number {
    return this.s.deleteJobsOfLane.run(lane).changes;
  }

  jobFor(lane: string, kind: string, fileId: number): JobRow | undefined {
    return this.s.jobFor.get(lane, kind, fileId);
  }

  laneCounts(): { lane: string; state: string; n: number }[] {
    return this.s.laneCounts.all();
  }

  nextRunAfter(lane: string): number | null {
    return this.s.nextRunAfter.get(lane)?.t ?? null;
  }

  /**
   * Whether a job of the lane may run now. Cheap with a backlog (the first queued job answers;
   * nextRunAfter's min() reads every queued job of the lane: 3.4 ms for 50,000).
   */
  hasRunnable(lane: string, now = Date.now()): boolean {
    return this.s.hasRunnable.get(lane, now) !== undefined;
  }

  // ---- events ------------------------------------------------------------------------------

  addEvent(e: Omit<EventRecord, 'id' | 'ts'> & { ts?: number }): EventRecord {
    const row = { ts: e.ts ?? Date.now(), level: e.level, kind: e.kind, message: e.message, file_key: e.file_key ?? null, target_id: e.target_id ?? null, detail: e.detail ?? null };
    const id = Number(this.s.addEvent.run(row).lastInsertRowid);
    if (id % 1000 === 0) this.s.pruneEvents.run(EVENTS_KEEP);
    return toEvent({ id, ...row });
  }

  events(after = 0, limit = 200): EventRecord[] {
    if (after <= 0) return this.s.eventsLatest.all(limit).reverse().map(toEvent);
    return this.s.eventsAfter.all(after, limit).map(toEvent);
  }

  // ---- target state ------------------------------------------------------------------------

  targetState(targetId: string): TargetStateRow | undefined {
    return this.s.targetState.get(targetId);
  }

  saveTargetState(row: TargetStateRow): void {
    this.s.upsertTargetState.run(row);
  }

  /** Changes when anything was written, by this connection or another one: a cheap "has anything changed?". */
  totalChanges(): string {
    return `${this.s.totalChanges.get()!.n}.${this.db.pragma('data_version', { simple: true }) as number}`;
  }

  fileTotals(): { files: number; bytes: number; missing: number } {
    const r = this.s.fileTotals.get()!;
    return { files: r.n, bytes: r.bytes ?? 0, missing: r.missing ?? 0 };
  }

  /** Files grouped by the states of their copies, for the status's file counts (countFiles). */
  fileStates(): FileStateRow[] {
    return this.s.fileStates.all();
  }

  /** The Activity listing: files with their copies, filtered and paged, newest first. */
  queryFiles(q: { state?: CopyState | 'all'; target?: string; root?: string; q?: string; local?: 'present' | 'missing'; held?: 'exclude'; offset?: number; limit?: number }): { rows: FileRow[]; total: number } {
    const limit = Math.min(Math.max(q.limit ?? 100, 1), 1000);
    const offset = Math.max(q.offset ?? 0, 0);
    const fileWhere: string[] = [];
    const fileArgs: (string | number)[] = [];
    if (q.root) {
      fileWhere.push('f.root_id = ?');
      fileArgs.push(q.root);
    }
    if (q.local) {
      fileWhere.push('f.local_state = ?');
      fileArgs.push(q.local);
    }
    if (q.held === 'exclude') fileWhere.push(`NOT EXISTS (SELECT 1 FROM guard_holds h WHERE h.root_id = f.root_id AND h.state = 'held')`);
    if (q.q) {
      fileWhere.push("f.rel_path LIKE ? ESCAPE '\\'");
      fileArgs.push(`%${q.q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
    }
    const byState = q.state && q.state !== 'all';
    let knownTotal: number | undefined;
    if (byState) {
      // A state (and target) filter usually picks few files among many ("pending on the NAS" when
      // almost everything is safe): count them from the copies index, and when they are few, list
      // them from there too instead of testing every file.
      const copyWhere = q.target ? 'c.target_id = ? AND c.state = ?' : 'c.state = ?';
      const copyArgs = q.target ? [q.target, q.state!] : [q.state!];
      const matching = this.stmt(`SELECT count(${q.target ? '*' : 'DISTINCT c.file_id'}) AS n FROM copies c WHERE ${copyWhere}`).get(...copyArgs) as { n: number };
      if (matching.n <= FEW_MATCHES) {
        const ids = `SELECT DISTINCT c.file_id FROM copies c WHERE ${copyWhere}`;
        const w = fileWhere.length ? `AND ${fileWhere.join(' AND ')}` : '';
        const total = fileWhere.length ? (this.stmt(`SELECT count(*) AS n FROM files f WHERE f.id IN (${ids}) ${w}`).get(...copyArgs, ...fileArgs) as { n: number }).n : matching.n;
        const rows = this.stmt(`SELECT f.* FROM files f WHERE f.id IN (${ids}) ${w} ORDER BY f.id DESC LIMIT ? OFFSET ?`).all(...copyArgs, ...fileArgs, limit, offset) as FileRow[];
        return { rows, total };
      }
      if (fileWhere.length === 0) knownTotal = matching.n;
    }
    const where = [...fileWhere];
    const args = [...fileArgs];
    if (byState) {
      if (q.target) {
        where.push('EXISTS (SELECT 1 FROM copies c WHERE c.file_id = f.id AND c.state = ? AND c.target_id = ?)');
        args.push(q.state!, q.target);
      } else {
        where.push('EXISTS (SELECT 1 FROM copies c WHERE c.file_id = f.id AND c.state = ?)');
        args.push(q.state!);
      }
    } else if (q.target) {
      where.push('EXISTS (SELECT 1 FROM copies c WHERE c.file_id = f.id AND c.target_id = ?)');
      args.push(q.target);
    }
    const w = where.length ? `WHERE ${where.join(' AND ')}` : '';
    const total = knownTotal ?? (this.stmt(`SELECT count(*) AS n FROM files f ${w}`).get(...args) as { n: number }).n;
    const rows = this.stmt(`SELECT f.* FROM files f ${w} ORDER BY f.id DESC LIMIT ? OFFSET ?`).all(...args, limit, offset) as FileRow[];
    return { rows, total };
  }

  /** A prepared statement for SQL built from a few fixed shapes (the Activity filters), kept. */
  private stmt(sql: string): import('better-sqlite3').Statement {
    let st = this.adhoc.get(sql);
    if (!st) {
      st = this.db.prepare(sql);
      this.adhoc.set(sql, st);
    }
    return st;
  }

  // ---- versions ----------------------------------------------------------------------------

  addVersion(v: { target_id: string; root_id: string; rel_path: string; object_key: string; sha256: string; size: number; mtime_ms: number | null; saved_at: number; reason: 'overwritten' | 'deleted'; locked_until?: number | null }): void {
    this.s.addVersion.run({ ...v, locked_until: v.locked_until ?? null });
  }

  // ---- kv ----------------------------------------------------------------------------------

  kvGet(key: string): string | undefined {
    return this.s.kvGet.get(key)?.value;
  }

  kvSet(key: string, value: string): void {
    this.s.kvSet.run(key, value);
  }
}

interface EventRecordRow {
  id: number;
  ts: number;
  level: string;
  kind: string;
  message: string;
  file_key: string | null;
  target_id: string | null;
  detail: string | null;
}

function toEvent(r: EventRecordRow): EventRecord {
  const e: EventRecord = { id: r.id, ts: r.ts, level: r.level as EventRecord['level'], kind: r.kind, message: r.message };
  if (r.file_key) e.file_key = r.file_key;
  if (r.target_id) e.target_id = r.target_id;
  if (r.detail) e.detail = r.detail;
  return e;
}

/** The relative path to open on disk (differs from rel_path for names stored in NFD). */
export function diskRel(f: Pick<FileRow, 'rel_path' | 'disk_rel'>): string {
  return f.disk_rel ?? f.rel_path;
}

/** Kind of the upload-lane job that replaces a damaged copy (see Catalog.queueRepair). */
export const REPAIR = 'repair';

export function uploadLane(targetId: string): string {
  return `upload:${targetId}`;
}

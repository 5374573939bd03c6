// The restore, version and verification queries on the catalog database (tables of migrations 1
// and 2). Prepared statements only; nothing awaits inside a transaction.
import type { RestoreProgress } from '../../../shared/api';
import type { Catalog, CopyRow, FileRow, JobRow } from '../catalog/catalog';

export const RESTORE_LANE = 'restore';

export interface RestoreRunRow {
  id: string;
  created_at: number;
  updated_at: number;
  finished_at: number | null;
  state: RestoreProgress['state'];
  request: string;
  files_total: number;
  files_done: number;
  files_failed: number;
  files_skipped: number;
  bytes_total: number;
  bytes_done: number;
  message: string | null;
}

export interface VersionRow {
  id: number;
  target_id: string;
  root_id: string;
  rel_path: string;
  object_key: string;
  sha256: string;
  size: number;
  mtime_ms: number | null;
  saved_at: number;
  reason: 'overwritten' | 'deleted';
  gone_until: number | null;
  back_sha256: string | null;
  /** Until when the version object cannot be deleted (Object Lock, migration 7). */
  locked_until?: number | null;
}

export interface CopyWithFile extends CopyRow {
  root_id: string;
  rel_path: string;
  local_state: 'present' | 'missing';
  file_sha256: string | null;
  file_size: number;
  read_at: number | null;
}

export type Outcome = 'done' | 'failed' | 'skipped';

export class RestoreStore {
  private readonly s;

  constructor(readonly catalog: Catalog) {
    const db = catalog.db;
    this.s = {
      insertRun: db.prepare(
        `INSERT INTO restores (id, created_at, updated_at, state, request, files_total, bytes_total, files_skipped, message)
         VALUES (@id, @now, @now, @state, @request, @files_total, @bytes_total, @files_skipped, @message)`,
      ),
      run: db.prepare<[string], RestoreRunRow>('SELECT * FROM restores WHERE id = ?'),
      recentRuns: db.prepare<[number], RestoreRunRow>('SELECT * FROM restores ORDER BY created_at DESC, rowid DESC LIMIT ?'),
      activeRuns: db.prepare<[], RestoreRunRow>(`SELECT * FROM restores WHERE state IN ('planning','running') ORDER BY created_at`),
      setRunState: db.prepare<[string, string | null, number, number | null, string]>('UPDATE restores SET state = ?, message = ?, updated_at = ?, finished_at = ? WHERE id = ?'),
      setRunMessage: db.prepare<[string | null, number, string]>('UPDATE restores SET message = ?, updated_at = ? WHERE id = ?'),
      countRun: db.prepare(
        `UPDATE restores SET files_done = files_done + @done, files_failed = files_failed + @failed, files_skipped = files_skipped + @skipped,
           bytes_done = bytes_done + @bytes, updated_at = @now WHERE id = @id`,
      ),
      setTotals: db.prepare<[number, number, number, string]>('UPDATE restores SET files_total = ?, bytes_total = ?, updated_at = ? WHERE id = ?'),
      // EXISTS, not count(*): asked after every file, a count would walk the run's remaining jobs each time
      jobsLeft: db.prepare<[string, string], { n: number }>('SELECT EXISTS (SELECT 1 FROM jobs WHERE lane = ? AND kind = ?) AS n'),
      queuedJobsOf: db.prepare<[string, string], JobRow>(`SELECT * FROM jobs WHERE lane = ? AND kind = ? AND state = 'queued'`),
      deleteQueuedOf: db.prepare<[string, string]>(`DELETE FROM jobs WHERE lane = ? AND kind = ? AND state = 'queued'`),
      deleteAllOf: db.prepare<[string, string]>(`DELETE FROM jobs WHERE lane = ? AND kind = ?`),

      versionsOfFile: db.prepare<[string, string], VersionRow>('SELECT * FROM versions WHERE root_id = ? AND rel_path = ? ORDER BY saved_at, id'),
      versionsOfTarget: db.prepare<[string], VersionRow>('SELECT * FROM versions WHERE target_id = ? ORDER BY root_id, rel_path, saved_at, id'),
      versionById: db.prepare<[number], VersionRow>('SELECT * FROM versions WHERE id = ?'),
      deleteVersion: db.prepare<[number]>('DELETE FROM versions WHERE id = ?'),
      insertVersion: db.prepare(
        `INSERT OR IGNORE INTO versions (target_id, root_id, rel_path, object_key, sha256, size, mtime_ms, saved_at, reason, locked_until)
         VALUES (@target_id, @root_id, @rel_path, @object_key, @sha256, @size, @mtime_ms, @saved_at, @reason, @locked_until)`,
      ),

      syncedCopies: db.prepare<[string], CopyWithFile>(
        `SELECT c.*, f.root_id, f.rel_path, f.local_state, f.sha256 AS file_sha256, f.size AS file_size FROM copies c JOIN files f ON f.id = c.file_id
         WHERE c.target_id = ? AND c.state = 'synced' ORDER BY c.verified_at IS NOT NULL, c.verified_at, c.file_id`,
      ),
      sampleCopies: db.prepare<[string], CopyWithFile>(
        `SELECT c.*, f.root_id, f.rel_path, f.local_state, f.sha256 AS file_sha256, f.size AS file_size FROM copies c JOIN files f ON f.id = c.file_id
         WHERE c.target_id = ? AND c.state = 'synced' ORDER BY c.read_at IS NOT NULL, c.read_at, c.synced_at, c.file_id`,
      ),
      setVerified: db.prepare<[number, number, string]>('UPDATE copies SET verified_at = ? WHERE file_id = ? AND target_id = ?'),
      setRead: db.prepare<[number, number, number, string]>('UPDATE copies SET read_at = ?, verified_at = ? WHERE file_id = ? AND target_id = ?'),
      deleteCopy: db.prepare<[number, string]>('DELETE FROM copies WHERE file_id = ? AND target_id = ?'),
      copiesLeft: db.prepare<[number], { n: number }>('SELECT count(*) AS n FROM copies WHERE file_id = ?'),
      deleteFile: db.prepare<[number]>('DELETE FROM files WHERE id = ?'),
      insertRebuiltFile: db.prepare(
        `INSERT INTO files (root_id, rel_path, disk_rel, size, mtime_ms, sha256, kind, local_state, first_seen, last_seen)
         VALUES (@root_id, @rel_path, NULL, @size, @mtime_ms, @sha256, @kind, 'missing', @first_seen, @now)
         ON CONFLICT (root_id, rel_path) DO NOTHING`,
      ),
      rebuiltCopy: db.prepare(
        `INSERT INTO copies (file_id, target_id, state, sha256, size, attempts, synced_at, verified_at, updated_at, locked_until)
         VALUES (@file_id, @target_id, 'synced', @sha256, @size, 0, @now, @now, @now, @locked_until)
         ON CONFLICT (file_id, target_id) DO UPDATE SET state = 'synced', sha256 = @sha256, size = @size, synced_at = coalesce(synced_at, @now),
           verified_at = @now, last_error = NULL, error_detail = NULL, updated_at = @now, locked_until = coalesce(@locked_until, locked_until)`,
      ),
      setFileSha: db.prepare<[string, number]>('UPDATE files SET sha256 = ? WHERE id = ? AND sha256 IS NULL'),
    };
  }

  // ---- runs ----------------------------------------------------------------------------------

  insertRun(r: { id: string; state: RestoreRunRow['state']; request: unknown; files_total: number; bytes_total: number; files_skipped: number; message: string | null }, now = Date.now()): void {
    this.s.insertRun.run({ ...r, request: JSON.stringify(r.request), now });
  }

  run(id: string): RestoreRunRow | undefined {
    return this.s.run.get(id);
  }

  recentRuns(limit = 10): RestoreRunRow[] {
    return this.s.recentRuns.all(limit);
  }

  activeRuns(): RestoreRunRow[] {
    return this.s.activeRuns.all();
  }

  setRunState(id: string, state: RestoreRunRow['state'], message: string | null, now = Date.now()): void {
    const finished = state === 'done' || state === 'failed' || state === 'cancelled' ? now : null;
    this.s.setRunState.run(state, message, now, finished, id);
  }

  setRunMessage(id: string, message: string | null, now = Date.now()): void {
    this.s.setRunMessage.run(message, now, id);
  }

  setTotals(id: string, files: number, bytes: number, now = Date.now()): void {
    this.s.setTotals.run(files, bytes, now, id);
  }

  count(id: string, outcome: Outcome, bytes: number, now = Date.now()): void {
    this.s.countRun.run({ id, done: outcome === 'done' ? 1 : 0, failed: outcome === 'failed' ? 1 : 0, skipped: outcome === 'skipped' ? 1 : 0, bytes, now });
  }

  /** Whether the run still has a job (queued or running). */
  hasJobsLeft(runId: string): boolean {
    return this.s.jobsLeft.get(RESTORE_LANE, runId)!.n === 1;
  }

  queuedJobsOf(runId: string): JobRow[] {
    return this.s.queuedJobsOf.all(RESTORE_LANE, runId);
  }

  deleteQueuedJobs(runId: string): number {
    return this.s.deleteQueuedOf.run(RESTORE_LANE, runId).changes;
  }

  deleteAllJobs(runId: string): number {
    return this.s.deleteAllOf.run(RESTORE_LANE, runId).changes;
  }

  // ---- versions ------------------------------------------------------------------------------

  versionsOfFile(rootId: string, relPath: string): VersionRow[] {
    return this.s.versionsOfFile.all(rootId, relPath);
  }

  versionsOfTarget(targetId: string): VersionRow[] {
    return this.s.versionsOfTarget.all(targetId);
  }

  versionById(id: number): VersionRow | undefined {
    return this.s.versionById.get(id);
  }

  deleteVersion(id: number): void {
    this.s.deleteVersion.run(id);
  }

  insertVersion(v: Omit<VersionRow, 'id' | 'gone_until' | 'back_sha256'>): boolean {
    return this.s.insertVersion.run({ ...v, locked_until: v.locked_until ?? null }).changes === 1;
  }

  // ---- copies (verification) -----------------------------------------------------------------

  syncedCopies(targetId: string): CopyWithFile[] {
    return this.s.syncedCopies.all(targetId);
  }

  sampleCopies(targetId: string): CopyWithFile[] {
    return this.s.sampleCopies.all(targetId);
  }

  setVerified(fileId: number, targetId: string, now = Date.now()): void {
    this.s.setVerified.run(now, fileId, targetId);
  }

  setRead(fileId: number, targetId: string, now = Date.now()): void {
    this.s.setRead.run(now, now, fileId, targetId);
  }

  /** A copy whose object is gone for good (retention expired it); the file row goes with its last copy. */
  forgetCopy(fileId: number, targetId: string): void {
    this.s.deleteCopy.run(fileId, targetId);
    const f = this.catalog.fileById(fileId);
    if (f && f.local_state === 'missing' && this.s.copiesLeft.get(fileId)!.n === 0) this.s.deleteFile.run(fileId);
  }

  // ---- rebuild -------------------------------------------------------------------------------

  /** Record an object found by listing a target (no catalog): the file as missing, the copy as synced. */
  addRebuilt(
    f: { root_id: string; rel_path: string; size: number; mtime_ms: number; sha256: string | null; kind: FileRow['kind']; first_seen: number; locked_until?: number | null },
    targetId: string,
    now = Date.now(),
  ): { id: number; added: boolean } {
    return this.catalog.transaction(() => {
      const { locked_until, ...file } = f;
      const added = this.s.insertRebuiltFile.run({ ...file, now }).changes === 1;
      const row = this.catalog.fileByPath(f.root_id, f.rel_path)!;
      if (f.sha256 && row.sha256 == null) this.s.setFileSha.run(f.sha256, row.id);
      // A copy is only "synced" when it holds the cataloged content.
      if ((row.sha256 ?? f.sha256) === f.sha256) this.s.rebuiltCopy.run({ file_id: row.id, target_id: targetId, sha256: f.sha256, size: f.size, now, locked_until: locked_until ?? null });
      return { id: row.id, added };
    });
  }
}

// The burst guard: ransomware rewrites every photo as encrypted noise within minutes, often
// renaming it (`.locked`), and a faithful backup would copy the noise over the good copies. Ingest
// (the one path into the catalog) tells the guard every new, changed and gone file with what its
// first bytes look like (sniff.ts). The guard keeps a sliding window per folder of the suspicious
// ones: content that no longer looks like its name (or noise where the previous content was not),
// names moved to an extension that is no known format, deletions that were no move or conversion.
// Past a threshold it holds the folder: its changed and deleted files, and new files that look
// wrong, stop going to the destinations (the previous objects stay current) until the operator
// accepts the changes or puts the files back as they were just before the burst. The hold lives
// in the catalog (migration 6) and survives restarts.
//
// A suspicious file's upload waits holdSuspiciousSeconds before it may run: a fast burst trips the
// guard before the first of its files leave, and the trip cancels those waiting uploads.
import { copyFile, mkdir, rename, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { GuardCounts, GuardHold, GuardRollbackResult, RestoreProgress, RestoreRequest } from '../../../shared/api';
import type { GuardSettings } from '../../../shared/config';
import { plural } from '../../../shared/format';
import { IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, extensionOf, fileKey } from '../../../shared/keys';
import { guardSentence, type FileStateRow } from '../../../shared/status';
import { diskRel, uploadLane, type Catalog, type FileRow } from '../catalog/catalog';
import type { EventBus } from '../events';
import { log } from '../log';
import { errnoOf, errorText } from '../util';
import { knownFormat, type Looks } from './sniff';

export interface GuardContext {
  catalog: Catalog;
  bus: EventBus;
  settings(): GuardSettings;
  rootLabel(id: string): string;
  /** Where a root is on disk (undefined: no longer configured). */
  rootPath(id: string): string | undefined;
  targetIds(): string[];
  /** Suspicious new files put aside by a roll-back go under <quarantineDir>/<hold>. */
  quarantineDir: string;
}

/** What ingest does with a new or changed file: hold it back, or queue it (after `runAfter`). */
export interface GuardVerdict {
  hold: boolean;
  runAfter?: number;
}

type Kind = 'rewritten' | 'suspicious_new' | 'renamed';

interface Suspect {
  at: number;
  fileId: number;
  rel: string;
  kind: Kind;
  /** The new extension of a renamed file. */
  ext?: string;
  /** Its content's mtime: the burst began no later. */
  mtime: number;
}

interface Gone {
  at: number;
  fileId: number;
  rel: string;
  sha256: string | null;
}

interface Window {
  suspects: Suspect[];
  gones: Gone[];
  /** Present files of the folder, counted lately (the thresholds are shares of it). */
  present?: { n: number; at: number };
}

interface HoldRow {
  id: number;
  root_id: string;
  state: 'held' | 'accepted' | 'rolled-back';
  tripped_at: number;
  since: number;
  counts: string;
  resolved_at: number | null;
}

type HeldChange = 'changed' | 'new' | 'gone';

/** A deletion counts once it stayed unexplained this long (a move's new name is hashed by then). */
const SETTLE_MS = 10_000;
/** The folder's file count is read again after this long. */
const PRESENT_TTL_MS = 5_000;
const MEDIA = new Set<string>([...IMAGE_EXTENSIONS, ...VIDEO_EXTENSIONS]);

export class BurstGuard {
  private readonly windows = new Map<string, Window>();
  /** Files held back (any hold), by id: the upload lanes ask before each job. */
  private readonly held = new Set<number>();
  /** Holds in force by root. */
  private readonly holds = new Map<string, { row: HoldRow; counts: GuardCounts }>();
  private timer: NodeJS.Timeout | null = null;
  private readonly s;

  constructor(private readonly ctx: GuardContext) {
    const db = ctx.catalog.db;
    this.s = {
      looks: db.prepare<[number], { looks: Looks }>('SELECT looks FROM file_looks WHERE file_id = ?'),
      setLooks: db.prepare<[number, string]>('INSERT INTO file_looks (file_id, looks) VALUES (?, ?) ON CONFLICT (file_id) DO UPDATE SET looks = excluded.looks'),
      clearLooks: db.prepare<[number]>('DELETE FROM file_looks WHERE file_id = ?'),
      insertHold: db.prepare<[string, number, number, string]>(`INSERT INTO guard_holds (root_id, state, tripped_at, since, counts) VALUES (?, 'held', ?, ?, ?)`),
      setCounts: db.prepare<[string, number]>('UPDATE guard_holds SET counts = ? WHERE id = ?'),
      resolve: db.prepare<[string, number, number]>('UPDATE guard_holds SET state = ?, resolved_at = ? WHERE id = ?'),
      activeHolds: db.prepare<[], HoldRow>(`SELECT * FROM guard_holds WHERE state = 'held' ORDER BY id`),
      hold: db.prepare<[number], HoldRow>('SELECT * FROM guard_holds WHERE id = ?'),
      holdFile: db.prepare<[number, number, string]>('INSERT INTO guard_held (file_id, hold_id, change) VALUES (?, ?, ?) ON CONFLICT (file_id) DO NOTHING'),
      heldOf: db.prepare<[number], { file_id: number; change: HeldChange }>('SELECT file_id, change FROM guard_held WHERE hold_id = ?'),
      heldCount: db.prepare<[number], { n: number }>('SELECT count(*) AS n FROM guard_held WHERE hold_id = ?'),
      missing: db.prepare<[string], { n: number }>(`SELECT count(*) AS n FROM files WHERE root_id = ? AND local_state = 'missing'`),
      heldStates: db.prepare<[], FileStateRow>(
        'SELECT f.copy_sig AS sig, f.local_state, count(*) AS n, coalesce(sum(f.size), 0) AS bytes FROM guard_held g JOIN files f ON f.id = g.file_id GROUP BY f.copy_sig, f.local_state',
      ),
      allHeld: db.prepare<[], { file_id: number }>('SELECT file_id FROM guard_held'),
      heldRoots: db.prepare<[], { root_id: string }>('SELECT DISTINCT f.root_id FROM guard_held g JOIN files f ON f.id = g.file_id'),
      release: db.prepare<[number]>('DELETE FROM guard_held WHERE file_id = ?'),
      releaseHold: db.prepare<[number]>('DELETE FROM guard_held WHERE hold_id = ?'),
      deleteFile: db.prepare<[number]>('DELETE FROM files WHERE id = ?'),
      present: db.prepare<[string], { n: number }>(`SELECT count(*) AS n FROM files WHERE root_id = ? AND local_state = 'present'`),
      sameContent: db.prepare<[string, number], { x: number }>(`SELECT 1 AS x FROM files WHERE sha256 = ? AND local_state = 'present' AND id != ? LIMIT 1`),
      sameStem: db.prepare<[string, string, string], { rel_path: string }>(`SELECT rel_path FROM files WHERE root_id = ? AND rel_path > ? AND rel_path < ? AND local_state = 'present' LIMIT 20`),
    };
    // Held files of a hold already ended (a roll-back's restore that a restart interrupted) go free:
    // the restore resumes by itself and what it writes is trusted.
    db.prepare(`DELETE FROM guard_held WHERE hold_id IN (SELECT id FROM guard_holds WHERE state != 'held')`).run();
    for (const row of this.s.activeHolds.all()) this.holds.set(row.root_id, { row, counts: JSON.parse(row.counts) as GuardCounts });
    for (const r of this.s.allHeld.all()) this.held.add(r.file_id);
  }

  close(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** Is this file held back from the destinations? */
  isHeld(fileId: number): boolean {
    return this.held.has(fileId);
  }

  /**
   * Folders retention must leave alone: a hold in force, or a roll-back still restoring (it reads
   * the versions as they were before the burst). Ransomware wants exactly these deletions pruned.
   */
  heldFolders(): Set<string> {
    const out = new Set(this.holds.keys());
    for (const r of this.s.heldRoots.all()) out.add(r.root_id);
    return out;
  }

  /**
   * A file was recorded new or changed (inside ingest's transaction). `looks`: what its first
   * bytes say; undefined when its content was not read (a restore wrote and checked it: trusted).
   */
  judge(f: Pick<FileRow, 'id' | 'root_id' | 'rel_path' | 'mtime_ms'>, change: 'new' | 'changed', looks: Looks | undefined, now = Date.now()): GuardVerdict {
    const cfg = this.ctx.settings();
    const prev = change === 'changed' ? this.s.looks.get(f.id)?.looks : undefined;
    if (looks !== undefined && looks !== 'ok') {
      if (prev !== looks) this.s.setLooks.run(f.id, looks);
    } else if (prev !== undefined || looks === undefined) {
      this.s.clearLooks.run(f.id);
    }
    if (looks === undefined) {
      // restored by us: whatever held it back is over for this file
      if (this.held.delete(f.id)) this.s.release.run(f.id);
      return { hold: false };
    }
    if (!cfg.enabled) return { hold: false };
    const bad = looks !== 'ok' && prev !== looks;
    const renamedTo = change === 'new' ? this.renamedAway(f.root_id, f.rel_path) : undefined;
    const hold = this.holds.get(f.root_id);
    if (hold) {
      if (change === 'changed' || bad || renamedTo !== undefined) {
        this.holdFiles(hold.row.id, [[f.id, change]]);
        if (renamedTo !== undefined) {
          // its old name was counted as deleted when it went
          const was = this.ctx.catalog.fileByPath(f.root_id, stripExt(f.rel_path));
          if (was && this.held.has(was.id) && hold.counts.deleted > 0) hold.counts.deleted--;
          this.count(hold, 'renamed', renamedTo);
        } else if (change === 'new') this.count(hold, 'suspicious_new');
        else if (bad) this.count(hold, 'rewritten');
        return { hold: true };
      }
      return { hold: false };
    }
    if (!bad && renamedTo === undefined) return { hold: false };
    const w = this.window(f.root_id, now);
    w.suspects.push({ at: now, fileId: f.id, rel: f.rel_path, kind: renamedTo !== undefined ? 'renamed' : change === 'changed' ? 'rewritten' : 'suspicious_new', ext: renamedTo, mtime: f.mtime_ms });
    if (this.check(f.root_id, now)) return { hold: true };
    return { hold: false, runAfter: now + cfg.holdSuspiciousSeconds * 1000 };
  }

  /** A cataloged file is gone from disk (ingest's markMissing). */
  gone(f: Pick<FileRow, 'id' | 'root_id' | 'rel_path' | 'sha256'>, now = Date.now()): void {
    if (!this.ctx.settings().enabled) return;
    const hold = this.holds.get(f.root_id);
    if (hold) {
      this.holdFiles(hold.row.id, [[f.id, 'gone']]);
      this.count(hold, 'deleted');
      return;
    }
    this.window(f.root_id, now).gones.push({ at: now, fileId: f.id, rel: f.rel_path, sha256: f.sha256 });
    this.scheduleDeletes();
  }

  /** A file came back with the content it had: nothing of it needs holding back. */
  reappeared(fileId: number): void {
    if (this.held.delete(fileId)) this.s.release.run(fileId);
  }

  // ---- the window --------------------------------------------------------------------------

  private window(rootId: string, now: number): Window {
    let w = this.windows.get(rootId);
    if (!w) {
      w = { suspects: [], gones: [] };
      this.windows.set(rootId, w);
    }
    const from = now - this.ctx.settings().windowMinutes * 60_000;
    while (w.suspects.length && w.suspects[0]!.at < from) w.suspects.shift();
    while (w.gones.length && w.gones[0]!.at < from) w.gones.shift();
    return w;
  }

  /**
   * "a.jpg.locked" or "a.locked" where "a.jpg" just went away, the new extension no photo or video
   * format: the new extension, else undefined.
   */
  private renamedAway(rootId: string, rel: string): string | undefined {
    const ext = extensionOf(rel);
    if (!ext || MEDIA.has(ext) || knownFormat(ext)) return undefined;
    const stem = rel.slice(0, rel.length - ext.length - 1);
    const was = this.ctx.catalog.fileByPath(rootId, stem);
    if (was && was.local_state === 'missing') return ext;
    const w = this.windows.get(rootId);
    if (w?.gones.some((g) => g.rel === stem || stripExt(g.rel) === stem)) return ext;
    return undefined;
  }

  /** A deletion explained by a move (the same content elsewhere) or a conversion (the same name, another format) is no deletion. */
  private explained(rootId: string, g: Gone): boolean {
    const f = this.ctx.catalog.fileById(g.fileId);
    if (!f || f.local_state === 'present') return true;
    if (g.sha256 && this.s.sameContent.get(g.sha256, g.fileId)) return true;
    const stem = stripExt(g.rel);
    return this.s.sameStem.all(rootId, `${stem}.`, `${stem}/`).some((r) => stripExt(r.rel_path) === stem && knownFormat(extensionOf(r.rel_path)));
  }

  private presentFiles(rootId: string, w: Window, now: number): number {
    if (!w.present || now - w.present.at > PRESENT_TTL_MS) w.present = { n: this.s.present.get(rootId)?.n ?? 0, at: now };
    return w.present.n;
  }

  /** Trip when the suspicious files, or the unexplained deletions, pass their thresholds. */
  private check(rootId: string, now: number): boolean {
    const cfg = this.ctx.settings();
    const w = this.window(rootId, now);
    const settled = w.gones.filter((g) => now - g.at >= SETTLE_MS);
    if (w.suspects.length < cfg.minFiles && settled.length < cfg.minFiles) return false;
    const present = this.presentFiles(rootId, w, now);
    const files = Math.max(cfg.minFiles, Math.min(cfg.burstFiles, Math.ceil((present * cfg.burstPercent) / 100)));
    if (w.suspects.length >= files) return this.trip(rootId, w, now), true;
    const deletes = Math.max(files, Math.ceil(((present + settled.length) * cfg.deletePercent) / 100));
    if (settled.length < deletes) return false;
    const unexplained = settled.filter((g) => !this.explained(rootId, g));
    if (unexplained.length < deletes) return false;
    this.trip(rootId, w, now);
    return true;
  }

  private scheduleDeletes(): void {
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      if (this.checkDeletes()) this.scheduleDeletes();
    }, SETTLE_MS);
    this.timer.unref?.();
  }

  /** Look at the deletions of every folder (the timer does, SETTLE_MS after one; tests pass a later `now`). True while some are left to look at. */
  checkDeletes(now = Date.now()): boolean {
    let more = false;
    for (const [rootId, w] of this.windows) {
      if (!w.gones.length || this.holds.has(rootId)) continue;
      try {
        if (!this.check(rootId, now) && this.window(rootId, now).gones.length) more = true;
      } catch (e) {
        log.warn(`burst guard: ${errorText(e)}`);
      }
    }
    return more;
  }

  // ---- holding -----------------------------------------------------------------------------

  private trip(rootId: string, w: Window, now: number): void {
    const counts: GuardCounts = { rewritten: 0, suspicious_new: 0, renamed: 0, deleted: 0 };
    const exts = new Map<string, number>();
    const files: [number, HeldChange][] = [];
    let first = now;
    for (const s of w.suspects) {
      counts[s.kind]++;
      if (s.ext) exts.set(s.ext, (exts.get(s.ext) ?? 0) + 1);
      files.push([s.fileId, s.kind === 'rewritten' ? 'changed' : 'new']);
      first = Math.min(first, s.at, s.mtime);
    }
    // a file renamed away is one file, not a deletion too
    const renamedFrom = new Set(w.suspects.filter((s) => s.kind === 'renamed').map((s) => stripExt(s.rel)));
    for (const g of w.gones) {
      if (this.explained(rootId, g)) continue;
      if (!renamedFrom.has(g.rel) && !renamedFrom.has(stripExt(g.rel))) counts.deleted++;
      files.push([g.fileId, 'gone']);
      first = Math.min(first, g.at);
    }
    const top = [...exts].sort((a, b) => b[1] - a[1])[0];
    if (top) counts.extension = top[0];
    // the last millisecond before the first sign of the burst (a file seen a moment before it still counts)
    const since = first - 1;
    const id = Number(this.s.insertHold.run(rootId, now, since, JSON.stringify(counts)).lastInsertRowid);
    const row = this.s.hold.get(id)!;
    const hold = { row, counts };
    this.holds.set(rootId, hold);
    this.windows.delete(rootId);
    this.holdFiles(id, files);
    const sentence = this.sentence(hold);
    this.ctx.bus.record({ level: 'error', kind: 'guard-held', message: sentence, detail: `hold ${id}: ${plural(files.length, 'file')} held back` });
  }

  /** Hold files back: their queued uploads are cancelled (a running one finishes). */
  private holdFiles(holdId: number, files: [number, HeldChange][]): void {
    const { catalog } = this.ctx;
    const lanes = this.ctx.targetIds().map(uploadLane);
    catalog.transaction(() => {
      for (const [fileId, change] of files) {
        this.s.holdFile.run(fileId, holdId, change);
        this.held.add(fileId);
        for (const lane of lanes) catalog.cancelQueued(lane, 'upload', fileId);
      }
    });
  }

  private count(hold: { row: HoldRow; counts: GuardCounts }, kind: Kind | 'deleted', ext?: string): void {
    const c = hold.counts;
    c[kind]++;
    if (ext && !c.extension) c.extension = ext;
    this.s.setCounts.run(JSON.stringify(c), hold.row.id);
  }

  private sentence(h: { row: HoldRow; counts: GuardCounts }): string {
    return guardSentence({ root_label: this.ctx.rootLabel(h.row.root_id), tripped_at: h.row.tripped_at, since: h.row.since, counts: h.counts });
  }

  /** The held files grouped as the catalog's file_states (the status counts them apart). */
  heldStates(): FileStateRow[] {
    return this.held.size ? this.s.heldStates.all() : [];
  }

  /** The holds in force, for the status. */
  status(): GuardHold[] {
    return [...this.holds.values()].map((h) => ({
      id: h.row.id,
      root_id: h.row.root_id,
      root_label: this.ctx.rootLabel(h.row.root_id),
      tripped_at: h.row.tripped_at,
      since: h.row.since,
      files: this.s.heldCount.get(h.row.id)?.n ?? 0,
      missing: this.s.missing.get(h.row.root_id)?.n ?? 0,
      counts: { ...h.counts },
      summary: this.sentence(h),
    }));
  }

  private chosen(holdId: number | undefined): { row: HoldRow; counts: GuardCounts }[] {
    const all = [...this.holds.values()];
    if (holdId === undefined) return all;
    const h = all.find((x) => x.row.id === holdId);
    if (!h) throw new GuardError(`There is no burst held back with the number ${holdId} (it may have been resolved already).`);
    return [h];
  }

  private end(h: { row: HoldRow }, state: 'accepted' | 'rolled-back', keepHeld = false): void {
    this.s.resolve.run(state, Date.now(), h.row.id);
    if (!keepHeld) {
      for (const r of this.s.heldOf.all(h.row.id)) this.held.delete(r.file_id);
      this.s.releaseHold.run(h.row.id);
    }
    this.holds.delete(h.row.root_id);
    this.windows.delete(h.row.root_id);
  }

  /** "These changes are mine": the held files go to the destinations like any change. */
  accept(holdId?: number): { accepted: number } {
    const { catalog, bus } = this.ctx;
    const targets = this.ctx.targetIds();
    let n = 0;
    for (const h of this.chosen(holdId)) {
      const rows = this.s.heldOf.all(h.row.id);
      catalog.transaction(() => {
        this.end(h, 'accepted');
        for (const r of rows) {
          const f = catalog.fileById(r.file_id);
          if (!f || f.local_state !== 'present' || !f.sha256) continue;
          for (const t of targets) catalog.queueUpload(f.id, t, f.size);
          n++;
        }
      });
      bus.record({ level: 'info', kind: 'guard-accepted', message: `The burst of changes in ${this.ctx.rootLabel(h.row.root_id)} was accepted as the operator's own: ${plural(n, 'file')} ${n === 1 ? 'is' : 'are'} backed up now.` });
    }
    return { accepted: n };
  }

  /**
   * "Put everything back as it was at <since>": suspicious new files move out of the folder to the
   * quarantine (kept, not deleted: a decryptor may turn up, and insurers ask for them); the changed
   * and deleted files are restored as they were at `since` from the nearest destination. Each file
   * stays held back until the restore writes it (ingest then trusts what the restore checked).
   */
  async rollback(restore: (req: RestoreRequest) => RestoreProgress, holdId?: number): Promise<GuardRollbackResult> {
    const { catalog, bus } = this.ctx;
    const out: GuardRollbackResult = { quarantined: 0 };
    for (const h of this.chosen(holdId)) {
      const rows = this.s.heldOf.all(h.row.id);
      const keys: string[] = [];
      const aside: FileRow[] = [];
      for (const r of rows) {
        const f = catalog.fileById(r.file_id);
        if (!f) continue;
        if (r.change === 'new') aside.push(f);
        else keys.push(fileKey(f.root_id, f.rel_path));
      }
      const dir = join(this.ctx.quarantineDir, `${new Date(h.row.tripped_at).toISOString().slice(0, 19).replace(/[:T]/g, '-')}-${h.row.id}`);
      const rootPath = this.ctx.rootPath(h.row.root_id);
      // Out of the catalog first, so the watcher finds nothing to mark missing; never uploaded ones leave no trace.
      catalog.transaction(() => {
        for (const f of aside) {
          this.held.delete(f.id);
          this.s.release.run(f.id);
          if (catalog.copiesOfFile(f.id).some((c) => c.state === 'synced')) catalog.setLocalState(f.id, 'missing');
          else this.s.deleteFile.run(f.id);
        }
      });
      if (rootPath) {
        for (const f of aside) {
          if (await moveAside(join(rootPath, ...diskRel(f).split('/')), join(dir, f.root_id, ...diskRel(f).split('/')))) out.quarantined++;
        }
      }
      if (out.quarantined) out.quarantine_dir = this.ctx.quarantineDir;
      this.end(h, 'rolled-back', true);
      let run: RestoreProgress | undefined;
      if (keys.length) {
        run = restore({ keys, at: h.row.since, overwrite: true });
        out.restore = run;
        this.releaseWhenDone(h.row.id, run);
      } else {
        this.s.releaseHold.run(h.row.id);
      }
      const moved = out.quarantined ? ` ${plural(out.quarantined, 'suspicious file')} ${out.quarantined === 1 ? 'was' : 'were'} moved out of the folder to ${dir}.` : '';
      bus.record({ level: 'info', kind: 'guard-rolled-back', message: `Putting ${plural(keys.length, 'file')} of ${this.ctx.rootLabel(h.row.root_id)} back as ${keys.length === 1 ? 'it was' : 'they were'} before the burst.${moved}` });
    }
    return out;
  }

  /** Files the restore could not write stay held back until it ends; then they are released (their state shows in Restore). */
  private releaseWhenDone(holdId: number, run: RestoreProgress): void {
    const finish = () => {
      for (const r of this.s.heldOf.all(holdId)) this.held.delete(r.file_id);
      this.s.releaseHold.run(holdId);
    };
    if (run.state === 'done' || run.state === 'failed' || run.state === 'cancelled') return finish();
    const off = this.ctx.bus.on((e) => {
      if (e.type !== 'restore' || e.progress.id !== run.id) return;
      if (e.progress.state !== 'done' && e.progress.state !== 'failed' && e.progress.state !== 'cancelled') return;
      off();
      try {
        finish();
      } catch (err) {
        log.warn(`burst guard: ${errorText(err)}`);
      }
    });
  }
}

export class GuardError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GuardError';
  }
}

function stripExt(rel: string): string {
  const ext = extensionOf(rel);
  return ext ? rel.slice(0, rel.length - ext.length - 1) : rel;
}

/** Move a file into the quarantine (copy and delete across disks). False when it is not there. */
async function moveAside(from: string, to: string): Promise<boolean> {
  await mkdir(dirname(to), { recursive: true });
  try {
    await rename(from, to);
    return true;
  } catch (e) {
    if (errnoOf(e) === 'ENOENT') return false;
    if (errnoOf(e) !== 'EXDEV') throw e;
  }
  await copyFile(from, to);
  await unlink(from);
  return true;
}

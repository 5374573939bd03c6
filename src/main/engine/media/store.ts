// The media table (migration 1): what ffprobe / sharp read from a file, and the state of its
// conversion. One row per cataloged file that is a picture or a video; prepared statements only.
import type { MediaInfo, MediaQuery } from '../../../shared/api';
import type { Catalog, FileRow } from '../catalog/catalog';

export type TranscodeState = NonNullable<MediaInfo['transcode_state']>;

export interface MediaRow {
  file_id: number;
  duration_s: number | null;
  width: number | null;
  height: number | null;
  video_codec: string | null;
  audio_codec: string | null;
  captured_at: number | null;
  transcode_state: TranscodeState;
  transcode_reason: string | null;
  mp4_file_id: number | null;
  poster_file_id: number | null;
  updated_at: number;
}

export type ProbeFields = Pick<MediaInfo, 'duration_s' | 'width' | 'height' | 'video_codec' | 'audio_codec' | 'captured_at'>;

/** Files the media service still has work for (see MediaStore.unfinished). */
export interface UnfinishedRow {
  id: number;
  root_id: string;
  rel_path: string;
  kind: FileRow['kind'];
  state: TranscodeState | null;
  has_job: number;
}

export const TRANSCODE_LANE = 'transcode';
export const TRANSCODE_KIND = 'transcode';

export class MediaStore {
  private readonly s;

  constructor(private readonly catalog: Catalog) {
    const db = catalog.db;
    this.s = {
      get: db.prepare<[number], MediaRow>('SELECT * FROM media WHERE file_id = ?'),
      upsertInfo: db.prepare(
        `INSERT INTO media (file_id, duration_s, width, height, video_codec, audio_codec, captured_at, updated_at)
         VALUES (@file_id, @duration_s, @width, @height, @video_codec, @audio_codec, @captured_at, @now)
         ON CONFLICT (file_id) DO UPDATE SET duration_s = excluded.duration_s, width = excluded.width, height = excluded.height,
           video_codec = excluded.video_codec, audio_codec = excluded.audio_codec, captured_at = excluded.captured_at, updated_at = excluded.updated_at`,
      ),
      ensure: db.prepare<[number, number]>('INSERT OR IGNORE INTO media (file_id, updated_at) VALUES (?, ?)'),
      setState: db.prepare(
        `INSERT INTO media (file_id, transcode_state, transcode_reason, updated_at) VALUES (@file_id, @state, @reason, @now)
         ON CONFLICT (file_id) DO UPDATE SET transcode_state = excluded.transcode_state, transcode_reason = excluded.transcode_reason,
           updated_at = excluded.updated_at`,
      ),
      setDone: db.prepare(
        `UPDATE media SET transcode_state = 'done', transcode_reason = @reason, mp4_file_id = @mp4, poster_file_id = @poster, updated_at = @now
         WHERE file_id = @file_id`,
      ),
      resetRunning: db.prepare(`UPDATE media SET transcode_state = 'queued' WHERE transcode_state = 'running'`),
      setDerived: db.prepare('UPDATE files SET derived_from = @original WHERE id = @id AND (derived_from IS NULL OR derived_from <> @original)'),
      queued: db.prepare<[string], { n: number }>(`SELECT count(*) AS n FROM jobs WHERE lane = ? AND state = 'queued'`),
      // Present pictures and videos without a media row (never looked at), and videos whose
      // conversion is waiting, running or not started, with whether a job exists for them.
      unfinished: db.prepare<[string], UnfinishedRow>(
        `SELECT f.id, f.root_id, f.rel_path, f.kind, m.transcode_state AS state,
                EXISTS (SELECT 1 FROM jobs j WHERE j.lane = ? AND j.file_id = f.id) AS has_job
         FROM files f LEFT JOIN media m ON m.file_id = f.id
         WHERE f.local_state = 'present' AND f.sha256 IS NOT NULL AND f.kind IN ('image', 'video')
           AND (m.file_id IS NULL OR (f.kind = 'video' AND m.transcode_state IN ('none', 'queued', 'running') AND m.mp4_file_id IS NULL))`,
      ),
      byOutput: db.prepare<[number, number], { file_id: number }>('SELECT file_id FROM media WHERE mp4_file_id = ? OR poster_file_id = ?'),
      doneOriginals: db.prepare<[], { file_id: number; root_id: string }>(
        `SELECT m.file_id, f.root_id FROM media m JOIN files f ON f.id = m.file_id
         WHERE m.transcode_state = 'done' AND m.mp4_file_id IS NOT NULL AND f.local_state = 'present'`,
      ),
    };
  }

  get(fileId: number): MediaRow | undefined {
    return this.s.get.get(fileId);
  }

  /** Store what a probe read (replaces the previous probe of this file). */
  saveInfo(fileId: number, info: ProbeFields, now = Date.now()): void {
    this.s.upsertInfo.run({
      file_id: fileId,
      duration_s: info.duration_s ?? null,
      width: info.width ?? null,
      height: info.height ?? null,
      video_codec: info.video_codec ?? null,
      audio_codec: info.audio_codec ?? null,
      captured_at: info.captured_at ?? null,
      now,
    });
  }

  /** A row without information: the file was looked at (so it is not looked at again at every start). */
  ensure(fileId: number, now = Date.now()): void {
    this.s.ensure.run(fileId, now);
  }

  setState(fileId: number, state: TranscodeState, reason: string | null, now = Date.now()): void {
    this.s.setState.run({ file_id: fileId, state, reason, now });
  }

  setDone(fileId: number, mp4: number | null, poster: number | null, reason: string | null, now = Date.now()): void {
    this.s.setDone.run({ file_id: fileId, mp4, poster, reason, now });
  }

  /** At start: a conversion shown as running belonged to a process that is gone. */
  resetRunning(): number {
    return this.s.resetRunning.run().changes;
  }

  /** Mark `fileId` as made from `originalId` (the watcher may have cataloged it first, without the link). */
  setDerived(fileId: number, originalId: number): void {
    this.s.setDerived.run({ original: originalId, id: fileId });
  }

  queuedCount(): number {
    return this.s.queued.get(TRANSCODE_LANE)?.n ?? 0;
  }

  unfinished(): UnfinishedRow[] {
    return this.s.unfinished.all(TRANSCODE_LANE);
  }

  /** The original a converted MP4 or poster was made from. */
  originalOf(outputFileId: number): number | undefined {
    return this.s.byOutput.get(outputFileId, outputFileId)?.file_id;
  }

  doneOriginals(): { file_id: number; root_id: string }[] {
    return this.s.doneOriginals.all();
  }

  /** The API's view of a row (keys of the MP4 and the poster instead of ids). */
  info(fileId: number): MediaInfo | undefined {
    const m = this.get(fileId);
    if (!m) return undefined;
    const out: MediaInfo = { transcode_state: m.transcode_state };
    if (m.duration_s !== null) out.duration_s = m.duration_s;
    if (m.width !== null) out.width = m.width;
    if (m.height !== null) out.height = m.height;
    if (m.video_codec) out.video_codec = m.video_codec;
    if (m.audio_codec) out.audio_codec = m.audio_codec;
    if (m.captured_at !== null) out.captured_at = m.captured_at;
    if (m.transcode_reason) out.transcode_reason = m.transcode_reason;
    const key = (id: number | null) => {
      const f = id === null ? undefined : this.catalog.fileById(id);
      return f ? `${f.root_id}/${f.rel_path}` : undefined;
    };
    const mp4 = key(m.mp4_file_id);
    if (mp4) out.mp4_key = mp4;
    const poster = key(m.poster_file_id);
    if (poster) out.poster_key = poster;
    return out;
  }

  /**
   * The Media page: pictures and videos (not the MP4s and posters Triplicate made: their original
   * carries them as mp4_key / poster_key), filtered, sorted and paged.
   */
  list(q: MediaQuery): { rows: FileRow[]; total: number; offset: number; limit: number } {
    const where: string[] = ['f.derived_from IS NULL'];
    const args: (string | number)[] = [];
    if (q.kind === 'image' || q.kind === 'video') {
      where.push('f.kind = ?');
      args.push(q.kind);
    } else {
      where.push(`f.kind IN ('image', 'video')`);
    }
    if (q.root) {
      where.push('f.root_id = ?');
      args.push(q.root);
    }
    if (q.q) {
      where.push("f.rel_path LIKE ? ESCAPE '\\'");
      args.push(`%${String(q.q).replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
    }
    const order =
      q.sort === 'name'
        ? 'f.rel_path COLLATE NOCASE ASC, f.id'
        : q.sort === 'mtime'
          ? 'f.mtime_ms DESC, f.id DESC'
          : 'coalesce(m.captured_at, f.mtime_ms) DESC, f.id DESC';
    const limit = Math.min(Math.max(Math.trunc(Number(q.limit ?? 100)) || 100, 1), 500);
    const offset = Math.max(Math.trunc(Number(q.offset ?? 0)) || 0, 0);
    const w = `WHERE ${where.join(' AND ')}`;
    const db = this.catalog.db;
    const total = (db.prepare(`SELECT count(*) AS n FROM files f ${w}`).get(...args) as { n: number }).n;
    const rows = db
      .prepare(`SELECT f.* FROM files f LEFT JOIN media m ON m.file_id = f.id ${w} ORDER BY ${order} LIMIT ? OFFSET ?`)
      .all(...args, limit, offset) as FileRow[];
    return { rows, total, offset, limit };
  }
}

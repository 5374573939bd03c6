// A file of the catalog as the API shows it: its row, its copies, and (from the media service,
// through the hook the composition root passes) what it holds.
import type { CopyInfo, FileRecord, MediaInfo, Page, QueueQuery } from '../../../shared/api';
import { fileKey, parseFileKey } from '../../../shared/keys';
import type { Catalog, FileRow } from './catalog';

export class FileRecords {
  constructor(
    private readonly catalog: Catalog,
    private readonly mediaInfo: (fileId: number) => MediaInfo | undefined = () => undefined,
  ) {}

  of(f: FileRow): FileRecord {
    const copies: CopyInfo[] = this.catalog.copiesOfFile(f.id).map((c) => {
      const ci: CopyInfo = { target_id: c.target_id, state: c.state, attempts: c.attempts };
      if (c.last_error) ci.last_error = c.last_error;
      if (c.next_attempt_at) ci.next_attempt_at = c.next_attempt_at;
      if (c.synced_at) ci.synced_at = c.synced_at;
      return ci;
    });
    const rec: FileRecord = {
      id: f.id,
      key: fileKey(f.root_id, f.rel_path),
      root_id: f.root_id,
      rel_path: f.rel_path,
      size: f.size,
      mtime_ms: f.mtime_ms,
      sha256: f.sha256,
      kind: f.kind,
      local: f.local_state,
      copies,
    };
    if (f.derived_from) {
      const src = this.catalog.fileById(f.derived_from);
      if (src) rec.derived_from = fileKey(src.root_id, src.rel_path);
    }
    const media = this.mediaInfo(f.id);
    if (media) rec.media = media;
    return rec;
  }

  queue(q: QueueQuery & { local?: 'present' | 'missing' }): Page<FileRecord> {
    const limit = Math.min(Math.max(Number(q.limit ?? 100) || 100, 1), 1000);
    const offset = Math.max(Number(q.offset ?? 0) || 0, 0);
    const { rows, total } = this.catalog.queryFiles({ ...q, limit, offset });
    return { items: rows.map((r) => this.of(r)), total, offset, limit };
  }

  file(key: string): FileRecord | undefined {
    const { rootId, relPath } = parseFileKey(key);
    const f = this.catalog.fileByPath(rootId, relPath);
    return f ? this.of(f) : undefined;
  }
}

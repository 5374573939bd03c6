// Status on a big catalog (100,000 files, two destinations): every count comes from trigger-kept
// totals (copies per destination and state; files grouped by the states of their copies), so the
// file counts and the copy counts are exact at once, and the overview is told by a status event.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { EngineEvent, SyncStatus } from '../../src/shared/api';
import { startEngine } from '../helpers/engine';
import { useTeardown } from '../helpers/teardown';

const td = useTeardown();

const fileCounts = (s: SyncStatus) => ({ pending: s.pending, uploading: s.uploading, synced: s.synced, failed: s.failed, skipped: s.skipped, total_files: s.total_files });

describe('status on 100,000 files', () => {
  it('is exact at once, for the files and for the copies', async () => {
    const base = td.dir('trip-status-');
    const target = (id: string) => ({ id, label: id, kind: 'folder' as const, path: join(base, id), enabled: true, priority: 1, concurrency: 1, versionsPrefix: '.triplicate/versions/', prefix: '' });
    const engine = td.add(await startEngine(join(base, 'data'), { roots: [{ id: 'media', label: 'Media', path: join(base, 'media') }], targets: [target('nas'), target('usb')] }, { watch: false, scanOnStart: false }));
    engine.setPausedAll(true);
    const N = 100_000;
    engine.catalog.db.exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${N})
      INSERT INTO files (id, root_id, rel_path, size, mtime_ms, sha256, kind, local_state, first_seen, last_seen)
      SELECT i, 'media', 'd/IMG_' || i || '.jpg', 100, 1, 's', 'image', 'present', 1, 1 FROM n`);
    for (const t of ['nas', 'usb']) engine.catalog.db.exec(`INSERT INTO copies (file_id, target_id, state, sha256, size, attempts, updated_at) SELECT id, '${t}', 'synced', 's', 100, 0, 1 FROM files`);
    const statuses: SyncStatus[] = [];
    const off = engine.bus.on((e: EngineEvent) => {
      if (e.type === 'status') statuses.push(e.status);
    });
    await new Promise((r) => setTimeout(r, 300)); // past the 250 ms cache
    let s = engine.status();
    expect(fileCounts(s)).toEqual({ pending: 0, uploading: 0, synced: N, failed: 0, skipped: 0, total_files: N });
    expect(s.safe_files).toBe(N);
    expect(s.synced_size_bytes).toBe(100 * N);
    expect([s.nas_synced_count, s.usb_synced_count]).toEqual([N, N]);
    // one copy changes: every count follows at once
    engine.catalog.setCopyState(7, 'nas', 'pending');
    engine.catalog.setLocalState(8, 'missing');
    engine.bus.emit({ type: 'copy', file_key: 'media/d/IMG_7.jpg', target_id: 'nas', state: 'pending' });
    await new Promise((r) => setTimeout(r, 300));
    s = engine.status();
    expect(fileCounts(s)).toEqual({ pending: 1, uploading: 0, synced: N - 1, failed: 0, skipped: 0, total_files: N });
    expect(s.safe_files).toBe(N - 1);
    expect(s.copies).toEqual({ pending: 1, uploading: 0, synced: 2 * N - 1, failed: 0, skipped: 0 });
    expect([s.nas_synced_count, s.usb_synced_count]).toEqual([N - 1, N]);
    expect([s.missing_local_files, s.missing_safe_files]).toEqual([1, 1]);
    // and a status event carries it to the overview
    const until = Date.now() + 10_000;
    while (Date.now() < until && !statuses.some((x) => x.safe_files === N - 1)) await new Promise((r) => setTimeout(r, 100));
    expect(statuses.some((x) => x.safe_files === N - 1 && x.pending === 1)).toBe(true);
    off();
  });
});

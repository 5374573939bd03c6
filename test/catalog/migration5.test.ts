// Migration 5: files grouped by the states of their copies (files.copy_sig, table file_states), kept
// by triggers, so the status counts files without reading every copy. The groups must always equal
// a fresh grouping, whatever writes the catalog, and give the same file counts as a plain count.
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import type { CopyState } from '../../src/shared/api';
import { countFiles, fileState } from '../../src/shared/status';
import { Catalog } from '../../src/main/engine/catalog/catalog';
import { migrate, schemaVersion } from '../../src/main/engine/catalog/db';
import { migrations } from '../../src/main/engine/catalog/migrations';
import { randomWrites } from './random-writes';

/** Grouped afresh from the tables. */
function grouped(db: Database.Database) {
  return db
    .prepare(
      `SELECT coalesce((SELECT group_concat(c.target_id || ':' || c.state, ' ' ORDER BY c.target_id) FROM copies c WHERE c.file_id = f.id), '') AS sig,
              f.local_state, count(*) AS n, sum(f.size) AS bytes
       FROM files f GROUP BY 1, 2`,
    )
    .all() as { sig: string; local_state: string }[];
}

const sorted = <T extends { sig: string; local_state: string }>(rows: T[]) => [...rows].sort((a, b) => (a.sig === b.sig ? (a.local_state < b.local_state ? -1 : 1) : a.sig < b.sig ? -1 : 1));

/** The seed's counts, one file at a time. */
function plainCounts(db: Database.Database, targets: string[]) {
  const files = db.prepare('SELECT id, local_state FROM files').all() as { id: number; local_state: 'present' | 'missing' }[];
  const copy = db.prepare('SELECT state FROM copies WHERE file_id = ? AND target_id = ?');
  const out: Record<CopyState, number> = { pending: 0, uploading: 0, synced: 0, failed: 0, skipped: 0 };
  for (const f of files) out[fileState(targets.map((t) => (copy.get(f.id, t) as { state: CopyState } | undefined)?.state), f.local_state)]++;
  return out;
}

describe('migration 5', () => {
  it('groups the files of an existing version-4 catalog', () => {
    const db = new Database(':memory:');
    migrate(db, migrations.filter((m) => m.version <= 4));
    db.prepare(`INSERT INTO files (id, root_id, rel_path, size, mtime_ms, sha256, kind, local_state, first_seen, last_seen) VALUES (1, 'r', 'a', 10, 1, 's', 'image', 'present', 1, 1), (2, 'r', 'b', 20, 1, 's', 'image', 'missing', 1, 1), (3, 'r', 'c', 5, 1, NULL, 'image', 'present', 1, 1)`).run();
    db.prepare(`INSERT INTO copies (file_id, target_id, state, sha256, size, attempts, updated_at) VALUES (1, 'nas', 'synced', 's', 10, 0, 1), (2, 'nas', 'synced', 's', 20, 0, 1), (1, 'cloud', 'pending', NULL, 10, 0, 1), (2, 'cloud', 'synced', 's', 20, 0, 1)`).run();
    migrate(db);
    expect(schemaVersion(db)).toBeGreaterThanOrEqual(5);
    const cat = new Catalog(db);
    expect(sorted(cat.fileStates())).toEqual([
      { sig: '', local_state: 'present', n: 1, bytes: 5 },
      { sig: 'cloud:pending nas:synced', local_state: 'present', n: 1, bytes: 10 },
      { sig: 'cloud:synced nas:synced', local_state: 'missing', n: 1, bytes: 20 },
    ]);
    expect(countFiles(cat.fileStates(), ['nas', 'cloud'])).toMatchObject({ pending: 2, synced: 1, total_files: 3, total_size_bytes: 35, synced_size_bytes: 20, missing_local_files: 1, missing_safe_files: 1 });
    // the NAS alone: file 1 is there too
    expect(countFiles(cat.fileStates(), ['nas'])).toMatchObject({ pending: 1, synced: 2, total_files: 3 });
    // a new copy moves its file to another group
    cat.markCopySynced(1, 'cloud', 's', 10);
    expect(countFiles(cat.fileStates(), ['nas', 'cloud'])).toMatchObject({ pending: 1, synced: 2, total_files: 3 });
    cat.close();
  });

  it('keeps the groups equal to a fresh grouping through 5,000 random writes', () => {
    const cat = new Catalog(':memory:');
    randomWrites(cat, 5000, 4242, () => {
      expect(sorted(cat.fileStates())).toEqual(sorted(grouped(cat.db)));
      for (const set of [['nas'], ['nas', 'cloud'], ['nas', 'cloud', 'usb'], []]) {
        const c = countFiles(cat.fileStates(), set);
        expect({ pending: c.pending, uploading: c.uploading, synced: c.synced, failed: c.failed, skipped: c.skipped }).toEqual(plainCounts(cat.db, set));
        expect(c.pending + c.uploading + c.synced + c.failed + c.skipped).toBe(c.total_files);
      }
    });
    cat.close();
  });
});

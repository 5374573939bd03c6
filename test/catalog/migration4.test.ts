// Migration 4: the status totals (copies per target and state, files) are kept by triggers. The
// totals must always equal a fresh count, whatever writes the catalog: checked after a few
// thousand random operations. (Files safe everywhere: migration 5.)
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { Catalog } from '../../src/main/engine/catalog/catalog';
import { migrate, schemaVersion } from '../../src/main/engine/catalog/db';
import { migrations } from '../../src/main/engine/catalog/migrations';
import { randomWrites } from './random-writes';

function counted(db: Database.Database) {
  const copies = db.prepare('SELECT target_id, state, count(*) AS n, coalesce(sum(size), 0) AS bytes FROM copies GROUP BY target_id, state ORDER BY target_id, state').all();
  const files = db.prepare(`SELECT count(*) AS files, coalesce(sum(size), 0) AS bytes, coalesce(sum(local_state = 'missing'), 0) AS missing FROM files`).get();
  return { copies, files };
}

function kept(cat: Catalog) {
  return cat.copyCounts().sort((a, b) => (a.target_id + a.state < b.target_id + b.state ? -1 : 1));
}

describe('migration 4', () => {
  it('fills the totals of an existing version-3 catalog', () => {
    const db = new Database(':memory:');
    migrate(db, migrations.filter((m) => m.version <= 3));
    db.prepare(`INSERT INTO files (id, root_id, rel_path, size, mtime_ms, sha256, kind, local_state, first_seen, last_seen) VALUES (1, 'r', 'a', 10, 1, 's', 'image', 'present', 1, 1), (2, 'r', 'b', 20, 1, 's', 'image', 'missing', 1, 1)`).run();
    db.prepare(`INSERT INTO copies (file_id, target_id, state, sha256, size, attempts, updated_at) VALUES (1, 'nas', 'synced', 's', 10, 0, 1), (2, 'nas', 'synced', 's', 20, 0, 1), (1, 'cloud', 'pending', NULL, 10, 0, 1)`).run();
    migrate(db);
    expect(schemaVersion(db)).toBeGreaterThanOrEqual(4);
    const cat = new Catalog(db);
    expect(cat.fileTotals()).toEqual({ files: 2, bytes: 30, missing: 1 });
    expect(kept(cat)).toEqual([
      { target_id: 'cloud', state: 'pending', n: 1, bytes: 10 },
      { target_id: 'nas', state: 'synced', n: 2, bytes: 30 },
    ]);
  });

  it('keeps the totals equal to a fresh count through 5,000 random writes', () => {
    const cat = new Catalog(':memory:');
    randomWrites(cat, 5000, 12345, () => {
      const c = counted(cat.db);
      expect(kept(cat)).toEqual(c.copies);
      expect(cat.fileTotals()).toEqual(c.files);
    });
    cat.close();
  });
});

// Migration 7: until when each copy and each kept version is locked (Object Lock, issue 19). The
// columns start empty on an existing catalog; a lock date only ever grows when a copy is synced
// again, and a sync that knows no date keeps the one there.
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { Catalog } from '../../src/main/engine/catalog/catalog';
import { migrate, schemaVersion } from '../../src/main/engine/catalog/db';
import { migrations } from '../../src/main/engine/catalog/migrations';

describe('migration 7', () => {
  it('adds locked_until to copies and versions of a version-6 catalog', () => {
    const db = new Database(':memory:');
    db.pragma('foreign_keys = ON');
    migrate(db, migrations.filter((m) => m.version <= 6));
    db.prepare(`INSERT INTO files (id, root_id, rel_path, size, mtime_ms, sha256, kind, local_state, first_seen, last_seen) VALUES (1, 'r', 'a.jpg', 10, 1, 's1', 'image', 'present', 1, 1)`).run();
    db.prepare(`INSERT INTO copies (file_id, target_id, state, sha256, size, attempts, synced_at, updated_at) VALUES (1, 'nas', 'synced', 's1', 10, 0, 1, 1)`).run();
    db.prepare(`INSERT INTO versions (target_id, root_id, rel_path, object_key, sha256, size, saved_at, reason) VALUES ('nas', 'r', 'a.jpg', 'v/a', 's0', 9, 1, 'overwritten')`).run();
    migrate(db);
    expect(schemaVersion(db)).toBeGreaterThanOrEqual(7);
    expect(db.prepare('SELECT locked_until FROM copies').get()).toEqual({ locked_until: null });
    expect(db.prepare('SELECT locked_until FROM versions').get()).toEqual({ locked_until: null });

    const cat = new Catalog(db);
    cat.markCopySynced(1, 'nas', 's1', 10, 2, 5000);
    expect(cat.copy(1, 'nas')?.locked_until).toBe(5000);
    cat.markCopySynced(1, 'nas', 's1', 10, 3, null); // "already there", no date known: the one there stays
    expect(cat.copy(1, 'nas')?.locked_until).toBe(5000);
    cat.markCopySynced(1, 'nas', 's1', 10, 4, 4000); // an earlier date never shortens a lock
    expect(cat.copy(1, 'nas')?.locked_until).toBe(5000);
    cat.markCopySynced(1, 'nas', 's1', 10, 5, 9000);
    expect(cat.copy(1, 'nas')?.locked_until).toBe(9000);
    cat.addVersion({ target_id: 'nas', root_id: 'r', rel_path: 'a.jpg', object_key: 'v/b', sha256: 's1', size: 10, mtime_ms: 1, saved_at: 6, reason: 'overwritten', locked_until: 7000 });
    expect(db.prepare(`SELECT locked_until FROM versions WHERE object_key = 'v/b'`).get()).toEqual({ locked_until: 7000 });
    cat.close();
  });
});

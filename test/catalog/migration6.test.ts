// Migration 6: the burst guard's tables (holds, the files they hold back, files whose content did
// not look like their name). A held file gets no copy and no upload job from the catalog's own
// "queue what is missing" (sync/guard.ts decides when it goes).
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { Catalog } from '../../src/main/engine/catalog/catalog';
import { migrate, schemaVersion } from '../../src/main/engine/catalog/db';
import { migrations } from '../../src/main/engine/catalog/migrations';

describe('migration 6', () => {
  it('adds the guard tables to a version-5 catalog, and held files get no copies or jobs', () => {
    const db = new Database(':memory:');
    db.pragma('foreign_keys = ON');
    migrate(db, migrations.filter((m) => m.version <= 5));
    db.prepare(`INSERT INTO files (id, root_id, rel_path, size, mtime_ms, sha256, kind, local_state, first_seen, last_seen) VALUES (1, 'r', 'a.jpg', 10, 1, 's1', 'image', 'present', 1, 1), (2, 'r', 'b.jpg', 20, 1, 's2', 'image', 'present', 1, 1)`).run();
    migrate(db);
    expect(schemaVersion(db)).toBeGreaterThanOrEqual(6);
    const hold = Number(db.prepare(`INSERT INTO guard_holds (root_id, state, tripped_at, since, counts) VALUES ('r', 'held', 2, 1, '{}')`).run().lastInsertRowid);
    db.prepare(`INSERT INTO guard_held (file_id, hold_id, change) VALUES (2, ?, 'changed')`).run(hold);
    db.prepare(`INSERT INTO file_looks (file_id, looks) VALUES (2, 'noise')`).run();
    expect(() => db.prepare(`INSERT INTO file_looks (file_id, looks) VALUES (1, 'fine')`).run()).toThrow(/CHECK/);
    const cat = new Catalog(db);
    expect(cat.queueMissingCopies('nas')).toEqual({ copies: 1, jobs: 1 });
    expect(cat.copy(1, 'nas')?.state).toBe('pending');
    expect(cat.copy(2, 'nas')).toBeUndefined();
    // a pending copy of a held file gets no job either
    db.prepare(`INSERT INTO copies (file_id, target_id, state, size, attempts, updated_at) VALUES (2, 'cloud', 'pending', 20, 0, 1)`).run();
    expect(cat.queueMissingCopies('cloud').jobs).toBe(1);
    expect(cat.jobFor('upload:cloud', 'upload', 2)).toBeUndefined();
    // the rows go with their file
    db.prepare('DELETE FROM files WHERE id = 2').run();
    expect(db.prepare('SELECT count(*) AS n FROM guard_held').get()).toEqual({ n: 0 });
    expect(db.prepare('SELECT count(*) AS n FROM file_looks').get()).toEqual({ n: 0 });
    cat.close();
  });
});

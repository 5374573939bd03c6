// Migration 2: restore runs, deletion history in `versions` (triggers), copies.read_at.
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { Catalog } from '../../src/main/engine/catalog/catalog';
import { migrate, schemaVersion } from '../../src/main/engine/catalog/db';
import { migrations } from '../../src/main/engine/catalog/migrations';

describe('migration 2', () => {
  it('upgrades a version-1 database with rows in it', () => {
    const db = new Database(':memory:');
    migrate(db, migrations.filter((m) => m.version === 1));
    db.prepare(`INSERT INTO files (root_id, rel_path, size, mtime_ms, sha256, kind, first_seen, last_seen) VALUES ('r', 'a.jpg', 1, 1, 's', 'image', 1, 1)`).run();
    db.prepare(`INSERT INTO versions (target_id, root_id, rel_path, object_key, sha256, size, saved_at, reason) VALUES ('t', 'r', 'a.jpg', 'k', 's0', 1, 5, 'overwritten')`).run();
    migrate(db);
    expect(schemaVersion(db)).toBeGreaterThanOrEqual(2);
    const v = db.prepare('SELECT gone_until, back_sha256 FROM versions').get();
    expect(v).toEqual({ gone_until: null, back_sha256: null });
    expect(db.prepare('SELECT read_at FROM copies').all()).toEqual([]);
    expect(db.prepare(`SELECT count(*) AS n FROM restores`).get()).toEqual({ n: 0 });
    db.close();
  });

  it('records a deletion per target holding a copy, and the return of the file', () => {
    const cat = new Catalog(':memory:');
    const a = cat.recordFile({ root_id: 'r', rel_path: 'a.jpg', size: 10, mtime_ms: 7, sha256: 'sha-a', kind: 'image' }, 1000).id;
    cat.markCopySynced(a, 'nas', 'sha-a', 10, 1100);
    cat.queueUpload(a, 'cloud', 10, {}, 1100); // never synced: nothing there to keep
    cat.setLocalState(a, 'missing', 2000);
    let rows = cat.db.prepare('SELECT target_id, sha256, size, saved_at, reason, gone_until FROM versions').all();
    expect(rows).toEqual([{ target_id: 'nas', sha256: 'sha-a', size: 10, saved_at: 2000, reason: 'deleted', gone_until: null }]);
    // missing again without coming back: no second row
    cat.setLocalState(a, 'missing', 2500);
    expect(cat.db.prepare('SELECT count(*) AS n FROM versions').get()).toEqual({ n: 1 });
    // back with other content
    cat.recordFile({ root_id: 'r', rel_path: 'a.jpg', size: 11, mtime_ms: 8, sha256: 'sha-b', kind: 'image' }, 3000);
    rows = cat.db.prepare('SELECT gone_until, back_sha256 FROM versions').all();
    expect(rows).toEqual([{ gone_until: 3000, back_sha256: 'sha-b' }]);
    // deleted a second time: a second row (the placeholder key is unique per time)
    cat.setLocalState(a, 'missing', 4000);
    expect(cat.db.prepare(`SELECT count(*) AS n FROM versions WHERE reason = 'deleted'`).get()).toEqual({ n: 2 });
    cat.close();
  });
});

// Migration 4: the status totals (copies per target and state, files) are kept by triggers, and
// "safe in every place" reads a partial index of synced copies. The totals must always equal a
// fresh count, whatever writes the catalog: checked after a few thousand random operations.
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { Catalog } from '../../src/main/engine/catalog/catalog';
import { migrate, schemaVersion } from '../../src/main/engine/catalog/db';
import { migrations } from '../../src/main/engine/catalog/migrations';

function counted(db: Database.Database) {
  const copies = db.prepare('SELECT target_id, state, count(*) AS n, coalesce(sum(size), 0) AS bytes FROM copies GROUP BY target_id, state ORDER BY target_id, state').all();
  const files = db.prepare(`SELECT count(*) AS files, coalesce(sum(size), 0) AS bytes, coalesce(sum(local_state = 'missing'), 0) AS missing FROM files`).get();
  const safe = (ids: string[]) =>
    db
      .prepare(
        `SELECT count(*) AS files, coalesce(sum(s.size), 0) AS bytes FROM (SELECT c.file_id, max(c.size) AS size FROM copies c WHERE c.target_id IN (${ids.map(() => '?').join(',')}) AND c.state = 'synced' GROUP BY c.file_id HAVING count(*) = ${ids.length}) s`,
      )
      .get(...ids);
  return { copies, files, safe };
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
    expect(cat.safeTotals(['nas'])).toEqual({ files: 2, bytes: 30 });
    expect(cat.safeTotals(['nas', 'cloud'])).toEqual({ files: 0, bytes: 0 });
  });

  it('keeps the totals equal to a fresh count through 5,000 random writes', () => {
    const cat = new Catalog(':memory:');
    let x = 12345;
    const rnd = (n: number) => {
      x ^= x << 13;
      x >>>= 0;
      x ^= x >>> 17;
      x ^= x << 5;
      x >>>= 0;
      return x % n;
    };
    const targets = ['nas', 'cloud', 'usb'];
    const states = ['pending', 'uploading', 'synced', 'failed', 'skipped'] as const;
    const ids: number[] = [];
    for (let i = 0; i < 5000; i++) {
      const op = rnd(9);
      if (op === 0 || ids.length < 5) {
        const r = cat.recordFile({ root_id: 'r', rel_path: `f${rnd(400)}`, size: rnd(1000), mtime_ms: rnd(5), sha256: `s${rnd(3)}`, kind: 'image' });
        if (!ids.includes(r.id)) ids.push(r.id);
        continue;
      }
      const id = ids[rnd(ids.length)]!;
      const t = targets[rnd(targets.length)]!;
      if (op === 1) cat.queueUpload(id, t, rnd(1000));
      else if (op === 2) cat.markCopySynced(id, t, 's', rnd(1000));
      else if (op === 3) {
        if (cat.copy(id, t)) cat.setCopyState(id, t, states[rnd(states.length)]!);
      } else if (op === 4) cat.setLocalState(id, rnd(2) ? 'missing' : 'present');
      else if (op === 5) cat.db.prepare('DELETE FROM copies WHERE file_id = ? AND target_id = ?').run(id, t);
      else if (op === 6) {
        cat.db.prepare('DELETE FROM files WHERE id = ?').run(id); // copies go with it (cascade)
        ids.splice(ids.indexOf(id), 1);
      } else if (op === 7) cat.db.prepare('UPDATE copies SET size = ? WHERE file_id = ?').run(rnd(1000), id);
      else cat.db.prepare('UPDATE files SET size = ? WHERE id = ?').run(rnd(1000), id);
      if (i % 500 === 0 || i === 4999) {
        const c = counted(cat.db);
        expect(kept(cat)).toEqual(c.copies);
        expect(cat.fileTotals()).toEqual(c.files);
        for (const set of [['nas'], ['nas', 'cloud'], targets]) expect(cat.safeTotals(set)).toEqual(c.safe(set));
      }
    }
  });
});

// The Activity listing (Catalog.queryFiles) has two ways to answer a state filter: from the copies
// index when few copies match, by testing every file when many do. Both must give exactly what a
// plain filter over all files gives, for every combination of filters and pages.
import { describe, expect, it } from 'vitest';
import { Catalog } from '../../src/main/engine/catalog/catalog';

describe('Activity listing', () => {
  it('matches a brute-force filter for every filter combination, on both paths', () => {
    const cat = new Catalog(':memory:');
    const N = 12_000;
    cat.db.exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${N})
      INSERT INTO files (id, root_id, rel_path, size, mtime_ms, sha256, kind, local_state, first_seen, last_seen)
      SELECT i, CASE WHEN i % 3 = 0 THEN 'r2' ELSE 'r1' END, 'dir/IMG_' || i || '.jpg', i, 1, 's', 'image', CASE WHEN i % 17 = 0 THEN 'missing' ELSE 'present' END, 1, 1 FROM n`);
    // mostly synced (the many-matches path), a few of each other state (the index path)
    const stateOf = (i: number, t: number) => (i % 97 === t ? 'pending' : i % 89 === t ? 'failed' : i % 331 === t ? 'uploading' : i % 211 === 5 ? 'skipped' : 'synced');
    const ins = cat.db.prepare('INSERT INTO copies (file_id, target_id, state, size, attempts, updated_at) VALUES (?, ?, ?, ?, 0, 1)');
    const copies = new Map<number, Record<string, string>>();
    cat.transaction(() => {
      for (let i = 1; i <= N; i++) {
        const c: Record<string, string> = {};
        for (const [t, name] of [[0, 'nas'], [1, 'cloud']] as const) {
          if (name === 'cloud' && i % 50 === 0) continue; // no copy on the cloud at all
          c[name] = stateOf(i, t);
          ins.run(i, name, c[name], i);
        }
        copies.set(i, c);
      }
    });
    const files = cat.db.prepare('SELECT id, root_id, rel_path, local_state FROM files ORDER BY id DESC').all() as { id: number; root_id: string; rel_path: string; local_state: string }[];
    let checked = 0;
    for (const state of ['all', 'synced', 'pending', 'failed', 'uploading', 'skipped'] as const)
      for (const target of [undefined, 'nas', 'cloud'])
        for (const root of [undefined, 'r1'])
          for (const local of [undefined, 'present', 'missing'] as const)
            for (const text of [undefined, 'IMG_1']) {
              const want = files.filter((f) => {
                const c = copies.get(f.id)!;
                if (root && f.root_id !== root) return false;
                if (local && f.local_state !== local) return false;
                if (text && !f.rel_path.includes(text)) return false;
                if (state !== 'all') return target ? c[target] === state : Object.values(c).includes(state);
                return target ? target in c : true;
              });
              for (const offset of [0, 40, 2000]) {
                const got = cat.queryFiles({ state, target, root, local, q: text, offset, limit: 50 });
                expect(got.total, JSON.stringify({ state, target, root, local, text })).toBe(want.length);
                expect(got.rows.map((r) => r.id)).toEqual(want.slice(offset, offset + 50).map((f) => f.id));
                checked++;
              }
            }
    expect(checked).toBe(6 * 3 * 2 * 3 * 2 * 3);
  });
});

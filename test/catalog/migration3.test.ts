// Migration 3: the job queue's claim and lease indexes become partial (queued / running).
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { Catalog } from '../../src/main/engine/catalog/catalog';
import { migrate, schemaVersion } from '../../src/main/engine/catalog/db';
import { migrations } from '../../src/main/engine/catalog/migrations';

describe('migration 3', () => {
  it('upgrades a version-2 database with queued and running jobs, which keep their order and leases', () => {
    const db = new Database(':memory:');
    migrate(db, migrations.filter((m) => m.version <= 2));
    const ins = db.prepare(`INSERT INTO jobs (lane, kind, file_id, state, priority, run_after, lease_owner, lease_until, fence, created_at) VALUES (?, 'upload', ?, ?, ?, ?, ?, ?, ?, 1)`);
    ins.run('upload:nas', 1, 'queued', 0, 0, null, null, 0);
    ins.run('upload:nas', 2, 'queued', 5, 0, null, null, 0);
    ins.run('upload:nas', 3, 'running', 0, 0, 'old-engine', 100, 4);
    migrate(db);
    expect(schemaVersion(db)).toBeGreaterThanOrEqual(3);
    const idx = db.prepare(`SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'jobs' ORDER BY name`).all() as { name: string; sql: string }[];
    expect(idx.find((i) => i.name === 'jobs_claim')?.sql).toMatch(/WHERE state = 'queued'/);
    expect(idx.find((i) => i.name === 'jobs_lease')?.sql).toMatch(/WHERE state = 'running'/);
    const cat = new Catalog(db);
    // the claim uses the partial index and still takes the highest priority first
    const plan = db.prepare(`EXPLAIN QUERY PLAN SELECT id FROM jobs WHERE lane = 'upload:nas' AND state = 'queued' AND run_after <= 9 ORDER BY priority DESC, run_after, id LIMIT 1`).all() as { detail: string }[];
    expect(plan.map((p) => p.detail).join(' ')).toMatch(/jobs_claim/);
    expect(plan.map((p) => p.detail).join(' ')).not.toMatch(/TEMP B-TREE/);
    const a = cat.claim('upload:nas', 'me', 1000, 10)!;
    expect(a.file_id).toBe(2);
    // the expired lease of the old running job is reaped through the other index
    const leasePlan = db.prepare(`EXPLAIN QUERY PLAN UPDATE jobs SET state = 'queued' WHERE state = 'running' AND lease_until < 50`).all() as { detail: string }[];
    expect(leasePlan.map((p) => p.detail).join(' ')).toMatch(/jobs_lease/);
    expect(cat.reapExpiredLeases(200)).toBe(1);
    const b = cat.claim('upload:nas', 'me', 1000, 300)!;
    const c = cat.claim('upload:nas', 'me', 1000, 300)!;
    expect([b.file_id, c.file_id].sort()).toEqual([1, 3]);
    expect(c.file_id === 3 ? c.fence : b.fence).toBe(5); // fence moved on: the old engine's result is void
    expect(cat.claim('upload:nas', 'me', 1000, 300)).toBeUndefined();
    expect(cat.complete(a) && cat.complete(b) && cat.complete(c)).toBe(true);
    expect(db.prepare('SELECT count(*) AS n FROM jobs').get()).toEqual({ n: 0 });
    db.close();
  });
});

import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Catalog, uploadLane } from '../../src/main/engine/catalog/catalog';
import { CatalogVersionError, migrate, openCatalog, schemaVersion } from '../../src/main/engine/catalog/db';
import { LATEST_VERSION, migrations } from '../../src/main/engine/catalog/migrations';

describe('migrations', () => {
  it.each(migrations.map((m) => [m.version, m.name, m] as const))('migration %i (%s) applies on an in-memory database', (version, _name, m) => {
    const db = new Database(':memory:');
    migrate(db, migrations.filter((x) => x.version < version));
    expect(schemaVersion(db)).toBe(version - 1);
    migrate(db, migrations.filter((x) => x.version <= m.version));
    expect(schemaVersion(db)).toBe(version);
    const tables = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table'`).all() as { name: string }[];
    expect(tables.map((t) => t.name)).toEqual(expect.arrayContaining(['files', 'copies', 'jobs', 'events']));
    db.close();
  });

  it('is idempotent and refuses a database from a newer version', () => {
    const db = new Database(':memory:');
    expect(migrate(db)).toBe(LATEST_VERSION);
    expect(migrate(db)).toBe(LATEST_VERSION);
    db.pragma(`user_version = ${LATEST_VERSION + 1}`);
    expect(() => migrate(db)).toThrow(CatalogVersionError);
    db.close();
  });

  it('rolls back a failing migration entirely', () => {
    const db = new Database(':memory:');
    const bad = [...migrations, { version: LATEST_VERSION + 1, name: 'bad', up: (d: Database.Database) => { d.exec('CREATE TABLE x (a)'); d.exec('SYNTAX ERROR'); } }];
    expect(() => migrate(db, bad)).toThrow();
    expect(schemaVersion(db)).toBe(0);
    expect(db.prepare(`SELECT count(*) AS n FROM sqlite_master WHERE name = 'files'`).get()).toEqual({ n: 0 });
    db.close();
  });
});

describe('catalog queue', () => {
  let dir: string | undefined;
  afterEach(() => { if (dir) rmSync(dir, { recursive: true, force: true }); dir = undefined; });

  const file = (cat: Catalog, rel = 'a.jpg') =>
    cat.recordFile({ root_id: 'photos', rel_path: rel, size: 10, mtime_ms: 1, sha256: 'aa', kind: 'image' }).id;

  it('records files and reports what changed', () => {
    const cat = new Catalog(':memory:');
    const a = cat.recordFile({ root_id: 'r', rel_path: 'x.jpg', size: 1, mtime_ms: 1, sha256: 's1', kind: 'image' });
    expect(a.change).toBe('new');
    expect(cat.recordFile({ root_id: 'r', rel_path: 'x.jpg', size: 1, mtime_ms: 1, sha256: 's1', kind: 'image' }).change).toBe('same');
    expect(cat.recordFile({ root_id: 'r', rel_path: 'x.jpg', size: 2, mtime_ms: 2, sha256: 's2', kind: 'image' }).change).toBe('changed');
    cat.setLocalState(a.id, 'missing');
    expect(cat.recordFile({ root_id: 'r', rel_path: 'x.jpg', size: 2, mtime_ms: 2, sha256: 's2', kind: 'image' }).change).toBe('reappeared');
    cat.close();
  });

  it('claims with a lease and a fence; a stale worker cannot finish a reclaimed job', () => {
    const cat = new Catalog(':memory:');
    const id = file(cat);
    cat.queueUpload(id, 'nas', 10, {}, 1000);
    const j1 = cat.claim(uploadLane('nas'), 'w1', 5_000, 1000)!;
    expect(j1).toBeDefined();
    expect(cat.claim(uploadLane('nas'), 'w2', 5_000, 1000)).toBeUndefined();
    // lease runs out; the reaper gives the job back, another worker takes it
    expect(cat.reapExpiredLeases(7000)).toBe(1);
    const j2 = cat.claim(uploadLane('nas'), 'w2', 5_000, 7000)!;
    expect(j2.fence).toBeGreaterThan(j1.fence);
    expect(cat.heartbeat(j1, 5000, 7000)).toBe(false);
    expect(cat.complete(j1)).toBe(false);
    expect(cat.release(j1, 0, 'x', true)).toBe(false);
    expect(cat.complete(j2)).toBe(true);
    expect(cat.laneCounts()).toEqual([]);
    cat.close();
  });

  it('a job queued again while running runs once more', () => {
    const cat = new Catalog(':memory:');
    const id = file(cat);
    cat.queueUpload(id, 'nas', 10);
    const j = cat.claim(uploadLane('nas'), 'w', 5000)!;
    cat.queueUpload(id, 'nas', 10);
    expect(cat.complete(j)).toBe(true);
    const again = cat.claim(uploadLane('nas'), 'w', 5000);
    expect(again?.file_id).toBe(id);
    expect(cat.complete(again!)).toBe(true);
    expect(cat.claim(uploadLane('nas'), 'w', 5000)).toBeUndefined();
    cat.close();
  });

  it('respects run_after and priority, and lanes are independent', () => {
    const cat = new Catalog(':memory:');
    const a = file(cat, 'a.jpg');
    const b = file(cat, 'b.jpg');
    cat.queueUpload(a, 'nas', 10, { runAfter: 5000 }, 0);
    cat.queueUpload(b, 'nas', 10, {}, 0);
    cat.queueUpload(a, 'cloud', 10, {}, 0);
    expect(cat.hasRunnable(uploadLane('nas'), 100)).toBe(true);
    expect(cat.claim(uploadLane('nas'), 'w', 1000, 100)?.file_id).toBe(b);
    // what is left on the lane waits until 5000 (and a running job is not runnable)
    expect(cat.hasRunnable(uploadLane('nas'), 100)).toBe(false);
    expect(cat.nextRunAfter(uploadLane('nas'))).toBe(5000);
    expect(cat.claim(uploadLane('nas'), 'w', 1000, 100)).toBeUndefined();
    expect(cat.claim(uploadLane('cloud'), 'w', 1000, 100)?.file_id).toBe(a);
    expect(cat.hasRunnable(uploadLane('cloud'), 100)).toBe(false);
    expect(cat.hasRunnable(uploadLane('nas'), 5000)).toBe(true);
    expect(cat.claim(uploadLane('nas'), 'w', 1000, 5000)?.file_id).toBe(a);
    cat.close();
  });

  it('survives a crash: running jobs come back after reopen', () => {
    dir = mkdtempSync(join(tmpdir(), 'trip-cat-'));
    const path = join(dir, 'catalog.db');
    const cat = new Catalog(path);
    const id = file(cat);
    cat.queueUpload(id, 'nas', 10);
    const j = cat.claim(uploadLane('nas'), 'w', 60_000)!;
    cat.close(); // the process "dies" with the job running
    const again = new Catalog(openCatalog(path));
    expect(again.resetRunningJobs()).toBe(1);
    const j2 = again.claim(uploadLane('nas'), 'w', 60_000)!;
    expect(j2.fence).toBeGreaterThan(j.fence);
    expect(again.complete(j)).toBe(false);
    expect(again.complete(j2)).toBe(true);
    again.close();
  });

  it('counts copies per target and state', () => {
    const cat = new Catalog(':memory:');
    const a = file(cat, 'a.jpg');
    const b = file(cat, 'b.jpg');
    cat.queueUpload(a, 'nas', 10);
    cat.queueUpload(b, 'nas', 10);
    cat.markCopySynced(a, 'nas', 'aa', 10);
    const counts = cat.copyCounts();
    expect(counts).toEqual(expect.arrayContaining([
      { target_id: 'nas', state: 'pending', n: 1, bytes: 10 },
      { target_id: 'nas', state: 'synced', n: 1, bytes: 10 },
    ]));
    cat.close();
  });
});

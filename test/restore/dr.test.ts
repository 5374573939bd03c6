// Disaster recovery without a catalog: a new machine, an empty data dir with the same config,
// `triplicate restore --all --from nas` rebuilds the catalog from the listing + HEAD metadata and
// restores everything; versions come back with the times in their names (our clock), and the
// engine started afterwards uploads nothing again. Keys that try to leave the destination are
// never written.
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { Catalog } from '../../src/main/engine/catalog/catalog';
import { RestoreStore } from '../../src/main/engine/restore/store';
import { parseVersionKey, rebuildFromTarget } from '../../src/main/engine/restore/rebuild';
import { safeJoin, safeJoinRaw } from '../../src/main/engine/restore/writer';
import { StorageError, type ObjectInfo, type StorageBackend } from '../../src/main/engine/backends/types';
import { bytes, sha256, tempDir, waitForStatus, writeConfig } from '../helpers/engine';
import { MiB, engineFor, forget, mtimeOf, rig, synced, teardown, tree, writeAll } from './helpers';

afterEach(teardown);

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'triplicate.mjs');

/** Run the CLI as its own process (asynchronously: the s3rver targets live in this process). */
async function cli(args: string[]): Promise<{ code: number; lines: Record<string, unknown>[]; stderr: string }> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += String(d)));
  child.stderr.on('data', (d) => (stderr += String(d)));
  const code = await new Promise<number>((resolve) => {
    const t = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.once('exit', (c) => {
      clearTimeout(t);
      resolve(c ?? -1);
    });
  });
  const lines = stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
  return { code, lines, stderr };
}

function snapshot(dir: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const p of readdirSync(dir, { recursive: true }) as string[]) {
    const abs = join(dir, p);
    if (statSync(abs).isFile()) out[p] = statSync(abs).mtimeMs;
  }
  return out;
}

describe('disaster recovery', () => {
  it('restore --all --from nas into an empty data dir brings back every file and the versions, without uploading again', async () => {
    const r = await rig();
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 20; i++) files[`2024/${String(i).padStart(2, '0')}.jpg`] = bytes(30_000 + i * 1000, 700 + i);
    files['Événements/vernissage 🎉.jpg'] = bytes(12_345, 1);
    files['video/tour.mp4'] = bytes(9 * MiB, 2);
    writeAll(r.media, files);
    const old = await engineFor(r, { watch: false });
    await synced(old, 22);
    // one file overwritten twice: two versions on the NAS
    const { writeFileSync, utimesSync } = await import('node:fs');
    for (const seed of [3, 4]) {
      const c = bytes(20_000, seed);
      writeFileSync(join(r.media, '2024/00.jpg'), c);
      utimesSync(join(r.media, '2024/00.jpg'), 1_700_000_000 + seed, 1_700_000_000 + seed);
      files['2024/00.jpg'] = c;
      await old.scanAll();
      await synced(old, 22);
    }
    const mtimes = Object.fromEntries(Object.keys(files).map((k) => [k, mtimeOf(join(r.media, k))]));
    const oldVersions = old.catalog.db.prepare(`SELECT object_key, saved_at, sha256 FROM versions WHERE target_id = 'nas' AND reason = 'overwritten' ORDER BY saved_at`).all();
    expect(oldVersions).toHaveLength(2);
    await old.stop();
    forget(old);

    // the new machine: a new empty disk, a new empty data dir, the same config
    const media2 = join(r.base, 'new-disk');
    mkdirSync(media2);
    const data2 = join(r.base, 'new-data');
    writeConfig(data2, { ...r.cfg, roots: [{ id: 'media', label: 'Media', path: media2 }] });
    const cloudBefore = snapshot(r.cloud.directory);

    const t0 = Date.now();
    const res = await cli(['restore', '--all', '--from', 'nas', '--data-dir', data2]);
    const seconds = (Date.now() - t0) / 1000;
    expect(res.code, res.stderr).toBe(0);
    const rebuild = res.lines.find((l) => l.event === 'rebuild')!;
    expect(rebuild.files).toBe(22);
    expect(rebuild.versions).toBe(2);
    expect(rebuild.skipped).toEqual([]);
    const done = res.lines.find((l) => l.event === 'restore-done')!;
    expect(done.files_done).toBe(22);
    expect(done.files_failed).toBe(0);
    expect(res.stderr).toMatch(/Found 22 files .* and 2 previous versions on NAS/);
    expect(seconds).toBeLessThan(60);

    const now = tree(media2);
    expect(Object.keys(now).sort()).toEqual(Object.keys(files).sort());
    for (const [k, c] of Object.entries(files)) expect(sha256(now[k]!), k).toBe(sha256(c));
    for (const k of Object.keys(files)) expect(mtimeOf(join(media2, k)), `mtime of ${k}`).toBe(mtimes[k]);

    // the rebuilt catalog: every file present with its NAS copy; versions with the saved_at of their names
    const cat = new Catalog(join(data2, 'catalog.db'));
    expect((cat.db.prepare(`SELECT count(*) AS n FROM files WHERE local_state = 'present'`).get() as { n: number }).n).toBe(22);
    expect(cat.db.prepare(`SELECT object_key, saved_at, sha256 FROM versions WHERE target_id = 'nas' ORDER BY saved_at`).all()).toEqual(oldVersions);
    cat.close();

    // a second run finds everything in place
    const again = await cli(['restore', '--all', '--from', 'nas', '--data-dir', data2]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.lines.find((l) => l.event === 'restore-done')!.files_done).toBe(0);

    // verify from the CLI (no engine running): all good
    const v = await cli(['verify', '--full', '--data-dir', data2]);
    expect(v.code, v.stderr).toBe(0);
    expect((v.lines[0] as { ok: boolean }).ok).toBe(true);

    // the engine on the new machine: the cloud copies are recognised by HEAD, nothing is uploaded
    const engine = await engineFor({ ...r, data: data2 }, {}, undefined);
    await waitForStatus(engine, (s) => s.safe_files === 22 && s.pending === 0 && s.uploading === 0 && !s.scanning, 60_000, 'safe in 3 places');
    expect(snapshot(r.cloud.directory)).toEqual(cloudBefore);
  });
});

/** A bucket listing as a hostile or broken server might send it (no real server here stores such keys). */
class ListingBackend implements StorageBackend {
  readonly id = 'odd';
  readonly kind = 's3' as const;
  readonly description = 'odd server';
  constructor(private readonly objects: Record<string, Buffer>) {}
  async put(): Promise<ObjectInfo> {
    throw new StorageError('invalid', 'read only');
  }
  async get(key: string) {
    const b = this.objects[key];
    if (!b) throw new StorageError('not_found', key);
    return { body: Readable.from([b]), contentLength: b.length, totalSize: b.length, info: { key, size: b.length, sha256: sha256(b) } };
  }
  async head(key: string) {
    const b = this.objects[key];
    return b ? { key, size: b.length, sha256: sha256(b), mtimeMs: 1_600_000_000_000 } : null;
  }
  async *list(prefix: string) {
    for (const key of Object.keys(this.objects).sort()) if (key.startsWith(prefix)) yield { key, size: this.objects[key]!.length };
  }
  async delete(): Promise<void> {}
  async copy(): Promise<void> {}
}

describe('keys that try to leave the destination', () => {
  it('are skipped by the rebuild and refused by the path rules', async () => {
    const ok = Buffer.from('fine');
    const backend = new ListingBackend({
      'media/ok.jpg': ok,
      'media/../../../etc/evil.jpg': Buffer.from('x'),
      'media/a/../../b.jpg': Buffer.from('x'),
      '/abs/evil.jpg': Buffer.from('x'),
      'media//double.jpg': Buffer.from('x'),
      'C:/windows/evil.jpg': Buffer.from('x'),
      '.triplicate/versions/media/../../x/2024-01-01T00-00-00.000Z_0123456789abcdef': Buffer.from('x'),
      '.triplicate/probe-1234': Buffer.from('x'),
    });
    const dir = tempDir('trip-keys-');
    const cat = new Catalog(join(dir, 'c.db'));
    const store = new RestoreStore(cat);
    const target = { id: 'odd', label: 'odd', kind: 's3', prefix: '', versionsPrefix: '.triplicate/versions/' } as never;
    const rep = await rebuildFromTarget(store, target, backend);
    expect(rep.files).toBe(1);
    expect(cat.db.prepare('SELECT root_id, rel_path FROM files').all()).toEqual([{ root_id: 'media', rel_path: 'ok.jpg' }]);
    expect(rep.skipped.map((s) => s.key).sort()).toEqual(['.triplicate/versions/media/../../x/2024-01-01T00-00-00.000Z_0123456789abcdef', '/abs/evil.jpg', 'C:/windows/evil.jpg', 'media//double.jpg', 'media/../../../etc/evil.jpg', 'media/a/../../b.jpg'].sort());
    cat.close();

    expect(() => safeJoin('/srv/restore', '../etc/passwd')).toThrow(/leaves its folder/);
    expect(() => safeJoin('/srv/restore', '/etc/passwd')).toThrow(/absolute/);
    expect(() => safeJoin('/srv/restore', 'C:/x')).toThrow(/absolute/);
    expect(() => safeJoin('/srv/restore', 'a/../../x')).toThrow(/leaves its folder/);
    expect(() => safeJoinRaw('/srv/restore', 'a/../x')).toThrow(/leaves its folder/);
    expect(safeJoin('/srv/restore', 'media/a b/c.jpg')).toBe('/srv/restore/media/a b/c.jpg');
    expect(parseVersionKey('media/a.jpg/2024-05-03T10-11-12.345Z_0123456789abcdef')).toEqual({ rootId: 'media', relPath: 'a.jpg', savedAt: Date.UTC(2024, 4, 3, 10, 11, 12, 345), sha16: '0123456789abcdef' });
    expect(parseVersionKey('media/a.jpg/2024-05-03T10-11-12.345Z_xyz')).toBeNull();
  });
});

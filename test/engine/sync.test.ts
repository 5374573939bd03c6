// The 3-2-1 loop end to end: real engine, real s3rver targets, real files.
import { existsSync, mkdirSync, readdirSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createBackend } from '../../src/main/engine/backends';
import type { StorageBackend } from '../../src/main/engine/backends/types';
import type { S3TargetConfig } from '../../src/shared/config';
import { startS3 } from '../helpers/s3';
import { bytes, sha256, startEngine, waitFor, waitForStatus, writeFile } from '../helpers/engine';
import { useTeardown } from '../helpers/teardown';

const MiB = 1024 * 1024;

async function readAll(b: StorageBackend, key: string): Promise<Buffer> {
  const r = await b.get(key);
  const chunks: Buffer[] = [];
  for await (const c of r.body) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function listAll(b: StorageBackend, prefix = ''): Promise<string[]> {
  const keys: string[] = [];
  for await (const o of b.list(prefix)) keys.push(o.key);
  return keys;
}

/** Every file of `files` is on the target, byte-exact, with its sha256 in the metadata. */
async function expectOnTarget(target: S3TargetConfig, files: Record<string, Buffer>, rootId = 'media'): Promise<void> {
  const b = createBackend(target, { retry: false });
  try {
    for (const [rel, content] of Object.entries(files)) {
      const key = `${target.prefix}${rootId}/${rel.normalize('NFC')}`;
      const head = await b.head(key);
      expect(head, `object ${key} on ${target.id}`).not.toBeNull();
      expect(head!.size).toBe(content.length);
      expect(head!.sha256).toBe(sha256(content));
      expect(sha256(await readAll(b, key))).toBe(sha256(content));
    }
  } finally {
    b.close?.();
  }
}

const td = useTeardown();

async function setup(opts: { nasDown?: boolean } = {}) {
  const base = td.dir('trip-sync-');
  const media = join(base, 'media');
  const data = join(base, 'data');
  const nas = td.add(await startS3({ buckets: ['nas'] }));
  const cloud = td.add(await startS3({ buckets: ['cloud'] }));
  if (opts.nasDown) await nas.stop();
  const nasT = nas.target('nas', { label: 'NAS', priority: 1, multipartThreshold: 5 * MiB, partSize: 5 * MiB });
  const cloudT = cloud.target('cloud', { label: 'Cloud', priority: 2, preset: 'r2', region: 'auto', multipartThreshold: 5 * MiB, partSize: 5 * MiB });
  return { base, media, data, nas, cloud, nasT, cloudT };
}

const ODD_NAMES: Record<string, Buffer> = {
  'plain.jpg': bytes(20_000, 1),
  'with spaces/and (brackets) [1].jpg': bytes(3000, 2),
  'Événement/café NFC.jpg': bytes(4000, 3),
  ['Événement/cafe\u0301 NFD-name.jpg'.normalize('NFD')]: bytes(5000, 4),
  'emoji/🎉 party 🎂.png': bytes(6000, 5),
  'empty.txt': Buffer.alloc(0),
  '-leading-dash.jpg': bytes(100, 6),
  [`deep/${'d'.repeat(40)}/${'e'.repeat(40)}/${'f'.repeat(40)}/${'x'.repeat(200)}.jpg`]: bytes(700, 7),
  'big/video.mp4': bytes(12 * MiB, 8),
};

describe('engine sync', () => {
  it('copies every file to both targets, byte-exact, with its sha256 in the metadata', async () => {
    const { media, data, nasT, cloudT } = await setup();
    for (const [rel, c] of Object.entries(ODD_NAMES)) writeFile(media, rel, c);
    writeFile(media, '.DS_Store', 'junk');
    writeFile(media, 'download.crdownload', 'partial');
    const engine = td.add(await startEngine(data, { roots: [{ id: 'media', label: 'Media', path: media }], targets: [nasT, cloudT] }));
    const n = Object.keys(ODD_NAMES).length;
    const s = await waitForStatus(engine, (st) => st.safe_files === n && st.pending === 0 && !st.scanning, 60_000, 'all files safe');
    expect(s.total_files).toBe(n); // OS litter and partial downloads are not backed up
    expect(s.health).toBe('green');
    expect(s.summary).toMatch(new RegExp(`All ${n} files .* are safe in 3 places`));
    expect(s.targets.nas!.synced_count).toBe(n);
    expect(s.targets.cloud!.synced_count).toBe(n);
    await expectOnTarget(nasT, ODD_NAMES);
    await expectOnTarget(cloudT, ODD_NAMES);
    // nothing else was written but our objects (no probe or temp leftovers)
    const b = createBackend(nasT, { retry: false });
    expect((await listAll(b)).sort()).toEqual(Object.keys(ODD_NAMES).map((k) => `media/${k.normalize('NFC')}`).sort());
    b.close?.();
  });

  it('keeps copying to the cloud while the NAS is down, and the NAS catches up by itself', async () => {
    const { media, data, nas, nasT, cloudT } = await setup({ nasDown: true });
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 25; i++) files[`batch/photo-${i}.jpg`] = bytes(50_000 + i, 100 + i);
    for (const [rel, c] of Object.entries(files)) writeFile(media, rel, c);
    const engine = td.add(await startEngine(data, { roots: [{ id: 'media', label: 'Media', path: media }], targets: [nasT, cloudT] }));
    const s = await waitForStatus(engine, (st) => st.targets.cloud!.synced_count === 25 && st.targets.nas!.state === 'offline', 30_000, 'cloud done, NAS offline');
    expect(s.targets.nas!.synced_count).toBe(0);
    expect(s.targets.nas!.failed).toBe(0); // an outage charges no file an attempt
    expect(s.targets.nas!.reason).toMatch(/NAS|127\.0\.0\.1/);
    expect(s.health).toBe('behind');
    expect(s.summary).toMatch(/25 files are waiting for NAS: it has not answered since \d\d:\d\d; next try at \d\d:\d\d\./);
    await expectOnTarget(cloudT, files);
    await nas.start();
    const done = await waitForStatus(engine, (st) => st.safe_files === 25, 30_000, 'NAS caught up');
    expect(done.targets.nas!.state).toBe('online');
    await expectOnTarget(nasT, files);
  });

  it('picks up new files once stable, re-uploads changed ones and keeps the previous content as a version', async () => {
    const { media, data, nasT, cloudT } = await setup();
    writeFile(media, 'a.jpg', bytes(1000, 1));
    const engine = td.add(await startEngine(data, { roots: [{ id: 'media', label: 'Media', path: media }], targets: [nasT, cloudT] }));
    await waitForStatus(engine, (st) => st.safe_files === 1, 20_000);
    writeFile(media, 'new/b.jpg', bytes(2000, 2));
    await waitForStatus(engine, (st) => st.safe_files === 2 && st.pending === 0, 20_000, 'new file synced');
    const v2 = bytes(1500, 3);
    writeFileSync(join(media, 'a.jpg'), v2);
    await waitFor(() => engine.file('media/a.jpg')?.sha256 === sha256(v2), 20_000, 'change hashed');
    await waitForStatus(engine, (st) => st.safe_files === 2 && st.pending === 0 && st.uploading === 0, 20_000, 'changed file synced');
    await expectOnTarget(nasT, { 'a.jpg': v2, 'new/b.jpg': bytes(2000, 2) });
    // the first content is kept under the versions prefix
    const b = createBackend(nasT, { retry: false });
    const versions = await listAll(b, '.triplicate/versions/media/a.jpg/');
    expect(versions).toHaveLength(1);
    expect(sha256(await readAll(b, versions[0]!))).toBe(sha256(bytes(1000, 1)));
    b.close?.();
    // a deleted local file never deletes the remote copies
    unlinkSync(join(media, 'new/b.jpg'));
    await waitForStatus(engine, (st) => st.missing_local_files === 1, 20_000, 'missing noticed');
    await expectOnTarget(cloudT, { 'new/b.jpg': bytes(2000, 2) });
    expect(engine.file('media/new/b.jpg')!.copies.every((c) => c.state === 'synced')).toBe(true);
  });

  it('after the catalog is deleted, a restart rebuilds it without uploading anything again', async () => {
    const { media, data, nas, cloud, nasT, cloudT } = await setup();
    const files: Record<string, Buffer> = { 'x.jpg': bytes(10_000, 1), 'y/z.mov': bytes(6 * MiB, 2), 'empty.txt': Buffer.alloc(0) };
    for (const [rel, c] of Object.entries(files)) writeFile(media, rel, c);
    const cfg = { roots: [{ id: 'media', label: 'Media', path: media }], targets: [nasT, cloudT] };
    let engine = await startEngine(data, cfg);
    await waitForStatus(engine, (st) => st.safe_files === 3, 30_000);
    await engine.stop();
    // s3rver keeps each object as files on disk: their mtimes change only when an object is written
    const snapshot = (dir: string) => {
      const out: Record<string, number> = {};
      const walk = (d: string) => {
        for (const e of readdirSync(d, { withFileTypes: true })) {
          const p = join(d, e.name);
          if (e.isDirectory()) walk(p);
          else out[p] = statSync(p).mtimeMs;
        }
      };
      walk(dir);
      return out;
    };
    const before = { ...snapshot(nas.directory), ...snapshot(cloud.directory) };
    for (const f of ['catalog.db', 'catalog.db-wal', 'catalog.db-shm']) rmSync(join(data, f), { force: true });
    await new Promise((r) => setTimeout(r, 50));
    engine = td.add(await startEngine(data));
    const s = await waitForStatus(engine, (st) => st.safe_files === 3 && st.pending === 0, 30_000, 'rebuilt');
    expect(s.synced).toBe(3);
    expect(s.copies.synced).toBe(6);
    const after = { ...snapshot(nas.directory), ...snapshot(cloud.directory) };
    expect(after).toEqual(before);
  });
  it('a folder destination whose share is not mounted after a restart is an outage, not an empty folder to refill', async () => {
    const { base, media, data } = await setup();
    const share = join(base, 'share');
    mkdirSync(share);
    writeFile(media, 'a.jpg', bytes(1000, 1));
    const folder = { id: 'usb', label: 'USB disk', kind: 'folder' as const, path: share };
    let engine = await startEngine(data, { roots: [{ id: 'media', label: 'Media', path: media }], targets: [folder] });
    await waitForStatus(engine, (st) => st.safe_files === 1, 20_000);
    await engine.stop();
    // the disk is unplugged: only the empty mount point is left
    rmSync(share, { recursive: true, force: true });
    mkdirSync(share);
    writeFile(media, 'b.jpg', bytes(2000, 2));
    engine = td.add(await startEngine(data));
    const st = await waitForStatus(engine, (x) => x.targets.usb!.state === 'offline', 20_000, 'USB disk offline');
    expect(st.targets.usb!.reason).toMatch(/not connected|mount/);
    expect(readdirSync(share)).toEqual([]);
  });
});

describe('engine bad input', () => {
  it('a target with wrong credentials goes offline with a sentence; the other target completes', async () => {
    const { media, data, nasT, cloudT } = await setup();
    writeFile(media, 'a.jpg', bytes(1000, 1));
    const bad = { ...nasT, credentials: { accessKeyId: 'WRONGKEY', secretAccessKey: 'wrong-secret-value' } };
    const engine = td.add(await startEngine(data, { roots: [{ id: 'media', label: 'Media', path: media }], targets: [bad, cloudT] }));
    const s = await waitForStatus(engine, (st) => st.targets.cloud!.synced_count === 1 && st.targets.nas!.state === 'offline', 20_000);
    expect(s.targets.nas!.reason).toMatch(/key|credential|access/i);
    expect(JSON.stringify(s)).not.toContain('wrong-secret-value');
  });

  it('a missing bucket is named in the reason', async () => {
    const { media, data, nasT, cloudT } = await setup();
    writeFile(media, 'a.jpg', bytes(1000, 1));
    const engine = td.add(await startEngine(data, { roots: [{ id: 'media', label: 'Media', path: media }], targets: [{ ...nasT, bucket: 'no-such-bucket' }, cloudT] }));
    const s = await waitForStatus(engine, (st) => st.targets.nas!.state === 'offline' && st.targets.cloud!.synced_count === 1, 20_000);
    expect(s.targets.nas!.reason).toMatch(/no-such-bucket/);
  });

  it('a folder that does not exist is reported, and the engine keeps running', async () => {
    const { base, data, nasT } = await setup();
    const engine = td.add(await startEngine(data, { roots: [{ id: 'gone', label: 'USB disk', path: join(base, 'not-plugged-in') }], targets: [nasT] }));
    await engine.initialScanDone();
    const s = engine.status();
    expect(s.health).toBe('failing');
    expect(s.summary).toMatch(/USB disk.*(plugged in|mounted)/);
  });

  it('an empty mount point does not mark every file missing', async () => {
    const { media, data, nasT } = await setup();
    for (let i = 0; i < 12; i++) writeFile(media, `p${i}.jpg`, bytes(100, i));
    const cfg = { roots: [{ id: 'media', label: 'Share', path: media }], targets: [nasT] };
    const engine = td.add(await startEngine(data, cfg, { watch: false }));
    await waitForStatus(engine, (st) => st.safe_files === 12, 20_000);
    for (let i = 0; i < 12; i++) unlinkSync(join(media, `p${i}.jpg`));
    await engine.scanAll();
    const s = engine.status();
    expect(s.missing_local_files).toBe(0);
    expect(s.summary).toMatch(/empty, but Triplicate knows 12 files/);
  });

  it('a file that changes while it uploads is never marked synced with the old content', async () => {
    const { media, data, nasT } = await setup();
    const v1 = bytes(24 * MiB, 1);
    const p = writeFile(media, 'growing.mov', v1);
    // 8 MB/s: the upload takes about 3 s, long enough to change the file in the middle
    const slow = { ...nasT, bandwidth: { defaultBytesPerSecond: 8 * MiB, schedule: [] } };
    const engine = td.add(await startEngine(data, { roots: [{ id: 'media', label: 'Media', path: media }], targets: [slow] }));
    await waitForStatus(engine, (st) => st.uploading === 1, 20_000, 'upload started');
    const v2 = bytes(24 * MiB, 2);
    writeFileSync(p, v2);
    await waitForStatus(engine, (st) => st.safe_files === 1 && st.pending === 0 && st.uploading === 0, 60_000, 'synced after change');
    expect(engine.file('media/growing.mov')!.sha256).toBe(sha256(v2));
    await expectOnTarget(slow, { 'growing.mov': v2 });
  });

  it('dry run reports what it would upload and uploads nothing', async () => {
    const { media, data, nasT } = await setup();
    writeFile(media, 'a.jpg', bytes(1000, 1));
    writeFile(media, 'b/c.jpg', bytes(2000, 2));
    const { createEngine } = await import('../../src/main/engine/engine');
    const { writeConfig } = await import('../helpers/engine');
    writeConfig(data, { roots: [{ id: 'media', label: 'Media', path: media }], targets: [nasT] });
    const engine = createEngine({ dataDir: data, adminPort: 0 });
    const [r] = await engine.scanAll({ dryRun: true });
    await engine.stop();
    expect(r!.would_upload!.map((w) => w.key).sort()).toEqual(['media/a.jpg', 'media/b/c.jpg']);
    expect(r!.bytes_to_upload).toBe(3000);
    const b = createBackend(nasT, { retry: false });
    expect(await listAll(b)).toEqual([]);
    b.close?.();
    expect(existsSync(join(data, 'catalog.db'))).toBe(true);
  });
});

// Restore against real s3rver targets and a real engine: what is missing comes back byte-exact
// from the first target that has it, a down or damaged target is passed over, a selection goes
// where it is asked, and nothing is written over a different local file.
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import type { EngineEvent, RestoreProgress } from '../../src/shared/api';
import { ApiClient } from '../../src/shared/client';
import { restoreCeiling } from '../../src/shared/config';
import { bytes, sha256, waitFor, waitForStatus } from '../helpers/engine';
import { MiB, backendOf, engineFor, listAll, mtimeOf, readAll, restoreOf, rig, s3rverObjectPath, synced, teardown, tree, writeAll } from './helpers';

afterEach(teardown);

function dataset(n: number, seed = 1): Record<string, Buffer> {
  const files: Record<string, Buffer> = {};
  for (let i = 0; i < n; i++) files[`day-${i % 4}/IMG_${String(i).padStart(4, '0')}.jpg`] = bytes(3000 + ((i * 7919) % 20_000), seed * 1000 + i);
  files['Événements/café 🎉.jpg'] = bytes(4321, seed * 7);
  files['big/clip.mp4'] = bytes(7 * MiB, seed * 13);
  files['empty.txt'] = Buffer.alloc(0);
  return files;
}

describe('restore what is missing', () => {
  it('brings back exactly the deleted third, byte-exact, from the NAS, with mtimes, without uploading again', async () => {
    const r = await rig();
    const files = dataset(27);
    writeAll(r.media, files);
    const engine = await engineFor(r);
    const n = Object.keys(files).length;
    await synced(engine, n);
    const mtimes = Object.fromEntries(Object.keys(files).map((k) => [k, mtimeOf(join(r.media, k))]));

    const keys = Object.keys(files).sort();
    const gone = keys.filter((_, i) => i % 3 === 0);
    for (const k of gone) unlinkSync(join(r.media, k));
    await engine.scanAll();
    expect(engine.status().missing_local_files).toBe(gone.length);

    // s3rver files do not change when nothing is uploaded again
    const cloudObjects = await listAll(backendOf(r.cloudT));
    const events: EngineEvent[] = [];
    const off = engine.bus.on((e) => events.push(e));
    const client = new ApiClient({ baseUrl: engine.endpoints.adminUrl!, token: engine.token });
    const started = await client.call('bulkRestore'); // the seed's POST /api/admin/media-sync/restore, empty body
    expect(started.state).toBe('running');
    expect(started.files_total).toBe(gone.length);
    // how many files at once: none fetched yet; a restore starts at its ceiling
    expect(started.restoring).toEqual({ now: 0, chosen: restoreCeiling(engine.cfg.restore), max: restoreCeiling(engine.cfg.restore) });
    const done = await restoreOf(engine).waitFor(started.id, { timeoutMs: 60_000 });
    off();
    expect(done.state).toBe('done');
    expect(done.files_done).toBe(gone.length);
    expect(done.files_failed).toBe(0);
    expect(done.bytes_done).toBe(gone.reduce((a, k) => a + files[k]!.length, 0));

    const now = tree(r.media);
    expect(Object.keys(now).sort()).toEqual(keys);
    for (const k of keys) expect(sha256(now[k]!), k).toBe(sha256(files[k]!));
    for (const k of gone) expect(mtimeOf(join(r.media, k)), `mtime of ${k}`).toBe(mtimes[k]);
    // no temp files left, the catalog shows everything present again, nothing queued for upload
    expect(JSON.stringify(readdirSync(r.media, { recursive: true }))).not.toContain('.triplicate-');
    const s = engine.status();
    expect(s.missing_local_files).toBe(0);
    expect(s.pending).toBe(0);
    expect(s.safe_files).toBe(n);
    expect(await listAll(backendOf(r.cloudT))).toEqual(cloudObjects);
    // progress went out as events; the last one says done
    const progress = events.filter((e): e is Extract<EngineEvent, { type: 'restore' }> => e.type === 'restore').map((e) => e.progress);
    expect(progress.length).toBeGreaterThan(1);
    expect(progress[progress.length - 1]!.state).toBe('done');
    // no files at once once done (while it runs: pipeline.test.ts)
    expect(progress[progress.length - 1]!.restoring).toBeUndefined();
    expect(done.restoring).toBeUndefined();
    const status = await client.call('restoreStatus');
    expect(status.current).toBeUndefined();
    expect(status.recent[0]!.id).toBe(started.id);
    expect(status.recent[0]!.files_done).toBe(gone.length);
  });

  it('reads from the cloud when the NAS is stopped', async () => {
    const r = await rig();
    const files = dataset(9, 2);
    writeAll(r.media, files);
    const engine = await engineFor(r);
    await synced(engine, Object.keys(files).length);
    for (const k of Object.keys(files)) unlinkSync(join(r.media, k));
    await engine.scanAll();
    await r.nas.stop();
    const outcomes: string[] = [];
    const p = (await restoreOf(engine).restoreMissing({}));
    const done = await restoreOf(engine).waitFor(p.id, { timeoutMs: 60_000 });
    if (done.files_done !== Object.keys(files).length) console.log(JSON.stringify(done), engine.catalog.events(0, 100).map((e) => e.message));
    expect(done.state).toBe('done');
    expect(done.files_done).toBe(Object.keys(files).length);
    void outcomes;
    const now = tree(r.media);
    for (const [k, c] of Object.entries(files)) expect(sha256(now[k]!), k).toBe(sha256(c));
  });

  it('falls over to the cloud when the NAS goes down in the middle of a restore', async () => {
    const r = await rig();
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 6; i++) files[`v/clip-${i}.mp4`] = bytes(6 * MiB, 50 + i);
    writeAll(r.media, files);
    const engine = await engineFor(r, {}, { ...r.cfg, restore: { concurrency: 2 } });
    await synced(engine, 6);
    for (const k of Object.keys(files)) unlinkSync(join(r.media, k));
    await engine.scanAll();
    const svc = restoreOf(engine);
    const from: Record<string, string> = {};
    svc.onOutcome = (k, _o, info) => {
      if (info.from) from[k] = info.from;
    };
    const p = (await svc.restoreMissing({}));
    // stop the NAS once the first file is back (two at a time: four or more are left)
    await waitFor(() => (svc.progress(p.id)?.files_done ?? 0) >= 1, 30_000, 'first file');
    await r.nas.stop();
    const done = await svc.waitFor(p.id, { timeoutMs: 90_000 });
    expect(done.state).toBe('done');
    expect(done.files_done).toBe(6);
    const sources = Object.values(from);
    expect(sources.filter((t) => t === 'nas').length).toBeGreaterThanOrEqual(1);
    expect(sources.filter((t) => t === 'cloud').length).toBeGreaterThanOrEqual(1);
    expect(sources).toHaveLength(6);
    const now = tree(r.media);
    expect(Object.keys(now).sort()).toEqual(Object.keys(files).sort());
    for (const [k, c] of Object.entries(files)) expect(sha256(now[k]!), k).toBe(sha256(c));
  });

  it('detects a corrupted object on the NAS, uses the cloud copy, and gives the NAS a fresh copy', async () => {
    const r = await rig();
    const files = { 'a.jpg': bytes(200_000, 1), 'b.jpg': bytes(300_000, 2) };
    writeAll(r.media, files);
    const engine = await engineFor(r);
    await synced(engine, 2);
    // flip bytes in s3rver's own file: same size, same sha256 metadata, different content
    const objPath = s3rverObjectPath(r.nas, 'media/a.jpg');
    const bad = readFileSync(objPath);
    bad[1000] = bad[1000]! ^ 0xff;
    writeFileSync(objPath, bad);
    rmSync(`${objPath}.md5`, { force: true });
    unlinkSync(join(r.media, 'a.jpg'));
    unlinkSync(join(r.media, 'b.jpg'));
    await engine.scanAll();
    const p = (await restoreOf(engine).restoreMissing({}));
    const done = await restoreOf(engine).waitFor(p.id, { timeoutMs: 60_000 });
    expect(done.files_done).toBe(2);
    expect(sha256(readFileSync(join(r.media, 'a.jpg')))).toBe(sha256(files['a.jpg']));
    const ev = engine.catalog.events(0, 500);
    expect(ev.some((e) => e.kind === 'restore-damaged' && e.target_id === 'nas' && /damaged/.test(e.message))).toBe(true);
    expect(ev.some((e) => e.kind === 'copy-damaged' && e.target_id === 'nas')).toBe(true);
    // the NAS gets the good bytes again
    await waitForStatus(engine, (s) => s.safe_files === 2 && s.pending === 0 && s.uploading === 0, 30_000, 'NAS repaired');
    expect(sha256(await readAll(backendOf(r.nasT), 'media/a.jpg'))).toBe(sha256(files['a.jpg']));
  });

  it('passes over a damaged copy whether the file is read whole (up to 4 MiB) or streamed, and leaves no temp file', async () => {
    const r = await rig();
    const files = { 'small.jpg': bytes(200_000, 31), 'edge.jpg': bytes(4 * MiB, 32), 'big.mp4': bytes(5 * MiB, 33) };
    writeAll(r.media, files);
    const engine = await engineFor(r, { watch: false });
    await synced(engine, 3);
    // the NAS's copies: same size and metadata, one byte flipped near the end
    for (const k of Object.keys(files)) {
      const objPath = s3rverObjectPath(r.nas, `media/${k}`);
      const bad = readFileSync(objPath);
      bad[bad.length - 10] = bad[bad.length - 10]! ^ 0xff;
      writeFileSync(objPath, bad);
      rmSync(`${objPath}.md5`, { force: true });
      unlinkSync(join(r.media, k));
    }
    await engine.scanAll();
    const done = await restoreOf(engine).waitFor((await restoreOf(engine).restoreMissing({})).id, { timeoutMs: 60_000 });
    expect(done.files_done).toBe(3);
    const now = tree(r.media);
    expect(Object.keys(now).sort()).toEqual(Object.keys(files).sort()); // no temp file left
    for (const [k, c] of Object.entries(files)) expect(sha256(now[k]!), k).toBe(sha256(c));
    const damaged = engine.catalog.events(0, 500).filter((e) => e.kind === 'restore-damaged' && e.target_id === 'nas');
    expect(damaged.map((e) => e.file_key).sort()).toEqual(['media/big.mp4', 'media/edge.jpg', 'media/small.jpg']);
  });

  it('detects an object whose bytes were replaced with the sha256 metadata kept (PUT)', async () => {
    const r = await rig();
    const files = { 'x.jpg': bytes(50_000, 9) };
    writeAll(r.media, files);
    const engine = await engineFor(r);
    await synced(engine, 1);
    const nas = backendOf(r.nasT);
    const evil = bytes(50_000, 10);
    await nas.put('media/x.jpg', { size: evil.length, open: () => Readable.from([evil]) }, { sha256: sha256(files['x.jpg']), mtimeMs: 1 });
    unlinkSync(join(r.media, 'x.jpg'));
    await engine.scanAll();
    const p = (await restoreOf(engine).restoreMissing({}));
    const done = await restoreOf(engine).waitFor(p.id, { timeoutMs: 30_000 });
    expect(done.files_done).toBe(1);
    expect(sha256(readFileSync(join(r.media, 'x.jpg')))).toBe(sha256(files['x.jpg']));
  });

  it('an object replaced by other content (its own metadata) is kept as a version, not deleted', async () => {
    const r = await rig();
    const files = { 'y.jpg': bytes(40_000, 21) };
    writeAll(r.media, files);
    const engine = await engineFor(r, { watch: false });
    await synced(engine, 1);
    const nas = backendOf(r.nasT);
    const theirs = bytes(41_000, 22); // another writer's content, with its own correct metadata
    await nas.put('media/y.jpg', { size: theirs.length, open: () => Readable.from([theirs]) }, { sha256: sha256(theirs), mtimeMs: 5 });
    unlinkSync(join(r.media, 'y.jpg'));
    await engine.scanAll();
    const done = await restoreOf(engine).waitFor((await restoreOf(engine).restoreMissing({})).id, { timeoutMs: 30_000 });
    expect(done.files_done).toBe(1);
    expect(sha256(readFileSync(join(r.media, 'y.jpg')))).toBe(sha256(files['y.jpg']));
    // the NAS gets ours again, and theirs is kept under the versions prefix
    await waitForStatus(engine, (s) => s.safe_files === 1 && s.pending === 0 && s.uploading === 0, 30_000, 'NAS repaired');
    expect(sha256(await readAll(nas, 'media/y.jpg'))).toBe(sha256(files['y.jpg']));
    const kept = await listAll(nas, '.triplicate/versions/media/y.jpg/');
    expect(kept).toHaveLength(1);
    expect(sha256(await readAll(nas, kept[0]!))).toBe(sha256(theirs));
  });

  it('never writes over a different local file unless asked, and can be cancelled', async () => {
    const r = await rig();
    const files = { 'keep.jpg': bytes(10_000, 1), 'other.jpg': bytes(12_000, 2) };
    writeAll(r.media, files);
    const engine = await engineFor(r, { watch: false });
    await synced(engine, 2);
    unlinkSync(join(r.media, 'keep.jpg'));
    await engine.scanAll();
    // someone puts a different file under that name before the restore runs
    const theirs = Buffer.from('a new file by a volunteer');
    writeFileSync(join(r.media, 'keep.jpg'), theirs);
    const svc = restoreOf(engine);
    let done = await svc.waitFor((await svc.restoreMissing({})).id, { timeoutMs: 30_000 });
    expect(done.files_done).toBe(0);
    expect(done.files_skipped).toBe(1);
    expect(readFileSync(join(r.media, 'keep.jpg')).equals(theirs)).toBe(true);
    // asked explicitly: replaced
    done = await svc.waitFor(svc.restoreFiles({ keys: ['media/keep.jpg'], overwrite: true }).id, { timeoutMs: 30_000 });
    expect(done.files_done).toBe(1);
    expect(sha256(readFileSync(join(r.media, 'keep.jpg')))).toBe(sha256(files['keep.jpg']));

    // cancel: a big restore stops, queued files are dropped, no temp file is left
    const many: Record<string, Buffer> = {};
    for (let i = 0; i < 30; i++) many[`m/${i}.bin`] = bytes(3 * MiB, 300 + i);
    writeAll(r.media, many);
    await engine.scanAll();
    await synced(engine, 32, 120_000);
    rmSync(join(r.media, 'm'), { recursive: true });
    await engine.scanAll();
    const p = (await svc.restoreMissing({}));
    await waitFor(() => (svc.progress(p.id)?.files_done ?? 0) >= 1, 30_000, 'first file');
    const c = svc.cancel(p.id);
    expect(c.state).toBe('cancelled');
    await waitFor(() => engine.catalog.laneCounts().every((l) => l.lane !== 'restore'), 10_000, 'restore lane empty');
    const after = svc.progress(p.id)!;
    expect(after.state).toBe('cancelled');
    expect(after.files_done).toBeLessThan(30);
    const left = existsSync(join(r.media, 'm')) ? readdirSync(join(r.media, 'm')) : [];
    expect(left.filter((n) => n.startsWith('.triplicate-'))).toEqual([]);
    for (const n of left) expect(sha256(readFileSync(join(r.media, 'm', n)))).toBe(sha256(many[`m/${n}`]!));
  });
});

describe('selective restore', () => {
  it('by folder prefix, by search text and by keys, to the original place or another folder', async () => {
    const r = await rig();
    const files = dataset(12, 3);
    writeAll(r.media, files);
    const engine = await engineFor(r, { watch: false });
    const n = Object.keys(files).length;
    await synced(engine, n);
    rmSync(r.media, { recursive: true });
    mkdirSync(r.media);
    const svc = restoreOf(engine);
    const client = new ApiClient({ baseUrl: engine.endpoints.adminUrl!, token: engine.token });

    // a folder, elsewhere: <to>/<root id>/<path>
    const out = join(r.base, 'out');
    let p: RestoreProgress = await client.call('restoreFiles', { body: { prefix: 'media/day-1/', to: out } });
    p = await svc.waitFor(p.id, { timeoutMs: 30_000 });
    const day1 = Object.keys(files).filter((k) => k.startsWith('day-1/'));
    expect(p.files_done).toBe(day1.length);
    expect(Object.keys(tree(out)).sort()).toEqual(day1.map((k) => `media/${k}`).sort());
    expect(tree(r.media)).toEqual({}); // the original place is untouched

    // search text, in place
    p = await svc.waitFor(svc.restoreFiles({ q: 'café' }).id, { timeoutMs: 30_000 });
    expect(p.files_done).toBe(1);
    expect(sha256(readFileSync(join(r.media, 'Événements/café 🎉.jpg')))).toBe(sha256(files['Événements/café 🎉.jpg']!));

    // keys, in place; then everything else with restore-missing
    p = await svc.waitFor(svc.restoreFiles({ keys: ['media/big/clip.mp4', 'media/empty.txt'] }).id, { timeoutMs: 30_000 });
    expect(p.files_done).toBe(2);
    await engine.scanAll();
    p = await svc.waitFor((await svc.restoreMissing({})).id, { timeoutMs: 30_000 });
    const now = tree(r.media);
    expect(Object.keys(now).sort()).toEqual(Object.keys(files).sort());
    for (const [k, c] of Object.entries(files)) expect(sha256(now[k]!), k).toBe(sha256(c));

    // bad requests are sentences
    await expect(client.call('restoreFiles', { body: {} })).rejects.toThrow(/Choose what to restore/);
    await expect(client.call('restoreFiles', { body: { keys: ['media/../etc/passwd'] } })).rejects.toThrow(/leaves its folder|not a file key/);
    await expect(client.call('restoreFiles', { body: { prefix: 'media/', to: 'relative/dir' } })).rejects.toThrow(/full folder path/);
  });

  it('a full disk or a read-only one stops the restore with one sentence and leaves no partial file', async () => {
    const r = await rig();
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 4; i++) files[`f/${i}.bin`] = bytes(MiB, 70 + i);
    writeAll(r.media, files);
    // one file at a time, so that exactly two of the four fit
    const engine = await engineFor(r, { watch: false }, { ...r.cfg, restore: { concurrency: 1 } });
    await synced(engine, 4);
    const small = join(r.base, 'small-disk');
    mkdirSync(small);
    // a real small file system: tmpfs of 2.5 MB (needs root; elsewhere this case is skipped)
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=2600k', 'tmpfs', small]).status === 0;
    if (!mounted) return;
    try {
      const svc = restoreOf(engine);
      const last = await svc.waitFor(svc.restoreFiles({ prefix: 'media/f/', to: small }).id, { timeoutMs: 30_000 });
      expect(last.state).toBe('failed');
      expect(last.files_done).toBe(2);
      expect(last.message).toMatch(/The disk holding .*small-disk is full\. Free some space, then start the restore again; the files already restored are kept\. \(2 files restored before it stopped\.\)/);
      const left = tree(small);
      expect(Object.keys(left).sort()).toEqual(['media/f/0.bin', 'media/f/1.bin']); // no temp file, no partial file
      for (const [k, c] of Object.entries(left)) expect(sha256(c)).toBe(sha256(files[k.replace(/^media\//, '')]!));
      // read-only: EROFS
      expect(spawnSync('mount', ['-o', 'remount,ro', small]).status).toBe(0);
      const p2 = await svc.waitFor(svc.restoreFiles({ prefix: 'media/f/', to: small, overwrite: true }).id, { timeoutMs: 30_000 });
      expect(p2.state).toBe('failed');
      expect(p2.message).toMatch(/may not write into .*small-disk/);
    } finally {
      spawnSync('umount', [small]);
    }
  });

  it('a file in the way of a folder fails those files with a sentence', async () => {
    const r = await rig();
    const files = { 'a/1.jpg': bytes(100_000, 1), 'a/2.jpg': bytes(100_000, 2), 'a/3.jpg': bytes(100_000, 3) };
    writeAll(r.media, files);
    const engine = await engineFor(r, { watch: false });
    await synced(engine, 3);
    const out = join(r.base, 'readonly');
    mkdirSync(out);
    // a read-only destination: a file where the folder should be makes it fail for this file only;
    // a read-only mount is simulated with a folder the process may not write (not possible as root)
    const isRoot = process.getuid?.() === 0;
    if (!isRoot) {
      chmodSync(out, 0o555);
      const svc = restoreOf(engine);
      const p = await svc.waitFor(svc.restoreFiles({ prefix: 'media/a/', to: out }).id, { timeoutMs: 30_000 });
      expect(p.state).toBe('failed');
      expect(p.message).toMatch(/may not write into .*readonly.*permission/);
      chmodSync(out, 0o755);
    }
    // a file in the way of a folder: that file fails with a sentence, the others are restored
    writeFileSync(join(out, 'media'), 'i am a file');
    const svc = restoreOf(engine);
    const p = await svc.waitFor(svc.restoreFiles({ prefix: 'media/a/', to: out }).id, { timeoutMs: 30_000 });
    expect(p.files_failed).toBe(3);
    const ev = engine.catalog.events(0, 200).filter((e) => e.kind === 'restore-file-failed');
    expect(ev[0]!.message).toMatch(/has the name of one of its folders/);
    expect(readdirSync(out)).toEqual(['media']);
  });
});

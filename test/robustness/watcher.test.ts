// The Linux watcher (one watch per folder, not per file: chokidar's per-file watches cost over a
// gigabyte for 100,000 photos and exhaust fs.inotify.max_user_watches). It must see what chokidar
// saw: new, changed and deleted files, new folders (with files written at once), folders deleted or
// moved, and skip excluded folders and links.
import { mkdirSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Engine } from '../../src/main/engine/engine';
import { RootWatcher } from '../../src/main/engine/sync/watcher';
import { startEngine, waitFor } from '../helpers/engine';
import { useTeardown } from '../helpers/teardown';

const td = useTeardown();

function state(e: Engine, rel: string): string | undefined {
  return e.catalog.fileByPath('media', rel)?.local_state;
}

function sha(e: Engine, rel: string): string | null | undefined {
  return e.catalog.fileByPath('media', rel)?.sha256;
}

describe.runIf(process.platform === 'linux')('the per-folder watcher', () => {
  it('follows files and folders as they come, change, move and go', async () => {
    const base = td.dir('trip-watch-');
    const media = join(base, 'media');
    mkdirSync(join(media, 'a', 'b'), { recursive: true });
    for (let i = 0; i < 300; i++) writeFileSync(join(media, 'a', 'b', `IMG_${i}.jpg`), `photo ${i}`);
    writeFileSync(join(media, 'top.jpg'), 'top');
    const engine = td.add(await startEngine(join(base, 'data'), { roots: [{ id: 'media', label: 'Media', path: media, exclude: ['**/skip/**'] }], targets: [], sync: { stabilityMs: 200 } }));
    await engine.initialScanDone();
    await waitFor(() => engine.status().total_files === 301, 10_000, 'the first scan'); // fresh files settle first
    // one watch per folder, not per file
    const w = (engine.sync as unknown as { watchers: Map<string, RootWatcher> }).watchers.get('media')!;
    expect(w.watchedFolders).toBe(3);

    // a new file, a changed file, a deleted file
    writeFileSync(join(media, 'new.jpg'), 'new');
    writeFileSync(join(media, 'top.jpg'), 'top, edited');
    rmSync(join(media, 'a', 'b', 'IMG_0.jpg'));
    await waitFor(() => state(engine, 'new.jpg') === 'present' && state(engine, 'a/b/IMG_0.jpg') === 'missing', 10_000, 'new and deleted files');
    const edited = sha(engine, 'top.jpg');
    await waitFor(() => sha(engine, 'top.jpg') !== edited || engine.catalog.fileByPath('media', 'top.jpg')!.size === 11, 10_000, 'the edit');
    expect(engine.catalog.fileByPath('media', 'top.jpg')!.size).toBe('top, edited'.length);

    // a new folder tree written at once
    mkdirSync(join(media, 'card', 'DCIM', '100'), { recursive: true });
    for (let i = 0; i < 50; i++) writeFileSync(join(media, 'card', 'DCIM', '100', `P${i}.jpg`), `card ${i}`);
    await waitFor(() => engine.status().total_files === 301 + 1 + 50, 10_000, 'the card');
    expect(w.watchedFolders).toBe(6);

    // an excluded folder is not watched; links are not followed
    mkdirSync(join(media, 'skip'));
    writeFileSync(join(media, 'skip', 'x.jpg'), 'x');
    symlinkSync(join(media, 'a'), join(media, 'link-to-a'));
    symlinkSync('top.jpg', join(media, 'link.jpg'));
    await new Promise((r) => setTimeout(r, 1000));
    expect(state(engine, 'skip/x.jpg')).toBeUndefined();
    expect(state(engine, 'link.jpg')).toBeUndefined();
    expect(w.watchedFolders).toBe(6);

    // a folder moved inside the root: old names missing, new ones present
    renameSync(join(media, 'card'), join(media, 'card-2024'));
    await waitFor(() => state(engine, 'card/DCIM/100/P7.jpg') === 'missing' && state(engine, 'card-2024/DCIM/100/P7.jpg') === 'present', 10_000, 'the move');
    // and still watched under its new name
    writeFileSync(join(media, 'card-2024', 'DCIM', '100', 'late.jpg'), 'late');
    await waitFor(() => state(engine, 'card-2024/DCIM/100/late.jpg') === 'present', 10_000, 'a file in the moved folder');

    // a folder deleted: its files are missing (their backups are kept), its watches gone
    rmSync(join(media, 'a'), { recursive: true });
    // (a loaded machine can mark them in more than one batch: every one within the wait)
    const present = () => (engine.catalog.db.prepare(`SELECT count(*) AS n FROM files WHERE rel_path LIKE 'a/b/%' AND local_state = 'present'`).get() as { n: number }).n;
    await waitFor(() => present() === 0, 10_000, 'every file of the deleted folder missing');
    expect(state(engine, 'a/b/IMG_299.jpg')).toBe('missing');
    expect(w.watchedFolders).toBe(4); // root, card-2024, DCIM, 100
  });
});

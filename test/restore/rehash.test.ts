// A restored file is not read a second time: the watcher sees it appear and knows it as the file
// the restore wrote (ingest would take the sha256 the restore checked before its rename). Only
// while the file is exactly as the restore left it: a file changed afterwards (even with its size
// and mtime put back) is hashed like any other.
import { openSync, closeSync, statSync, unlinkSync, utimesSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { IngestResult } from '../../src/main/engine/sync/ingest';
import { bytes, sha256, waitFor } from '../helpers/engine';
import { MiB, engineFor, restoreOf, rig, synced, teardown, writeAll } from './helpers';

afterEach(teardown);

describe('a restored file and the watcher', () => {
  it('is recorded from the restore’s own check, not hashed again; a later change is hashed', async () => {
    const r = await rig({ sync: { stabilityMs: 200 } });
    const files: Record<string, Buffer> = {};
    for (let i = 0; i < 12; i++) files[`day-${i % 3}/IMG_${i}.jpg`] = bytes(5000 + i * 333, 40 + i);
    files['new-folder/deep/clip.mp4'] = bytes(6 * MiB, 99);
    writeAll(r.media, files);
    const engine = await engineFor(r); // watchers on
    const n = Object.keys(files).length;
    await synced(engine, n);

    const gone = Object.keys(files).filter((_, i) => i % 2 === 0);
    gone.push('new-folder/deep/clip.mp4');
    for (const k of new Set(gone)) unlinkSync(join(r.media, k));
    await waitFor(() => engine.status().missing_local_files === new Set(gone).size, 20_000, 'the watcher to see the deletions');

    // every ingest the watcher does from here on, by path
    const ingested = new Map<string, IngestResult[]>();
    const ingest = engine.ingestor.ingest.bind(engine.ingestor);
    engine.ingestor.ingest = async (root, rel, opts) => {
      const res = await ingest(root, rel, opts);
      ingested.set(rel, [...(ingested.get(rel) ?? []), res]);
      return res;
    };
    const hashesBefore = engine.ingestor.hashes;
    const svc = restoreOf(engine);
    const run = await svc.restoreMissing({});
    const done = await svc.waitFor(run.id, { timeoutMs: 60_000 });
    expect(done.files_done).toBe(new Set(gone).size);
    // The watcher sees each restored file appear and knows it as the restore left it: nothing to
    // wait for, nothing read (at most an ingest that finds it the same). Well past the stability window:
    await new Promise((res) => setTimeout(res, 1500));
    for (const k of new Set(gone)) expect(ingested.get(k) ?? ['same'], k).toEqual(['same']);
    expect(engine.ingestor.hashes).toBe(hashesBefore);
    // ingest asked directly (a rescan that found it changed, an older version put back) takes the restore's hash
    expect(await engine.ingestor.ingest(engine.cfg.roots[0]!, gone[1]!)).toBe('same');
    expect(engine.ingestor.hashes).toBe(hashesBefore);
    const s = engine.status();
    expect(s.missing_local_files).toBe(0);
    expect(s.pending).toBe(0);

    // Changed in place after the restore, same size and mtime put back: hashed, and recorded as changed.
    const k = gone[0]!;
    const abs = join(r.media, k);
    const st = statSync(abs);
    const other = bytes(files[k]!.length, 1234);
    const fd = openSync(abs, 'r+');
    writeSync(fd, other, 0, other.length, 0);
    closeSync(fd);
    utimesSync(abs, st.atime, st.mtime);
    ingested.delete(k);
    await waitFor(() => ingested.has(k), 20_000, 'the watcher to ingest the changed file');
    expect(ingested.get(k)).toEqual(['changed']);
    expect(engine.ingestor.hashes).toBe(hashesBefore + 1);
    expect(engine.catalog.fileByPath('media', k)!.sha256).toBe(sha256(other));
    await engine.stop();
  });
});

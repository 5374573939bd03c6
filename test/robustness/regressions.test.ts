// Regression tests for what the robustness harness (test/robustness/run.mjs) found.
//
// 1. A folder destination could not store a file whose name is near the 255-byte limit: the name
//    fits the destination's file system, but its metadata sidecar `<name>.json` did not
//    (ENAMETOOLONG), so the copy failed with "the name is too long" after every retry.
// 2. A folder that became unreadable (permissions) was taken for deleted: every file in it was
//    marked missing and written into the deletion history.
// 3. Files and folders the scan could not read (permission denied, a name that is not UTF-8) were
//    not backed up and nobody was told: the overview said "All N files are safe".
// 6. A multipart upload went up in one piece or not at all: any failed part (one 503, one reset)
//    failed the whole upload and the next try sent every part again. On a server that refuses a
//    few percent of requests, a big video needs hundreds of parts in a row to succeed: it never
//    finished. Parts (and the completion) are now retried where they failed.
// 5. Files written right after their folder was created were missed by the watcher (chokidar reads a
//    new folder, then watches it: a file created in between raised no event). They waited for the
//    next periodic rescan (an hour by default, never with rescans off) while the overview said
//    "all safe".
// 4. A multipart upload the server refused (503 Slow Down, a reset) was reported as a local read
//    error: tearing the upload down closed the file stream "prematurely", and that was taken for
//    the disk failing. The copy was charged an attempt per try and ended "failed" with "Check that
//    the disk is healthy" instead of the target backing off and catching up.
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FolderBackend, sidecarName } from '../../src/main/engine/backends/folder';
import { S3Backend } from '../../src/main/engine/backends/s3';
import { HashingStream } from '../../src/main/engine/sync/hash';
import { startS3 } from '../helpers/s3';
import { FaultProxy } from './fault-proxy';
import { saveConfig, defaultConfigPath } from '../../src/main/engine/config/config';
import { createEngine } from '../../src/main/engine/engine';
import { cleanup, sha256, tempDir } from '../helpers/engine';
import { asRoot, nodeAsUnprivileged, readableBundle, skipUnlessUnprivileged, unprivilegedSkipReason, type ReadableBundle } from '../helpers/unprivileged';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) {
    spawnSync('chmod', ['-R', 'u+rwX', d]);
    cleanup(d);
  }
});

function body(buf: Buffer) {
  return { size: buf.length, open: () => Readable.from([buf]) };
}

async function readAll(b: FolderBackend, key: string): Promise<Buffer> {
  const r = await b.get(key);
  const chunks: Buffer[] = [];
  for await (const c of r.body) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('folder destination: names at the 255-byte limit', () => {
  const names = [
    `${'x'.repeat(251)}.jpg`, // 255 bytes
    `${'é'.repeat(125)}.jpg`, // 254 bytes
    `${'東'.repeat(83)}.jpg`, // 253 bytes
    `${'x'.repeat(251)}.png`, // same first 200 bytes as the first: its sidecar must differ
  ];

  it('stores, reads back, heads, copies and deletes them with their metadata', async () => {
    const base = tempDir('trip-rg-folder-');
    dirs.push(base);
    const b = new FolderBackend({ id: 'usb', label: 'USB', kind: 'folder', path: base, prefix: '', priority: 1, enabled: true, concurrency: 2, versionsPrefix: '.triplicate/versions/' }, { fsync: false });
    for (const [i, n] of names.entries()) {
      expect(Buffer.byteLength(n)).toBeGreaterThan(250);
      const data = Buffer.from(`content ${i}`);
      await b.put(`media/dir/${n}`, body(data), { sha256: sha256(data), mtimeMs: 1_700_000_000_000 + i });
    }
    for (const [i, n] of names.entries()) {
      const data = Buffer.from(`content ${i}`);
      const h = await b.head(`media/dir/${n}`);
      expect(h?.sha256, n).toBe(sha256(data));
      expect(h?.size).toBe(data.length);
      expect((await readAll(b, `media/dir/${n}`)).toString()).toBe(`content ${i}`);
    }
    // each name has its own sidecar, none longer than 255 bytes
    const side = readdirSync(join(base, '.triplicate-meta', 'media', 'dir'));
    expect(side).toHaveLength(names.length);
    for (const s of side) expect(Buffer.byteLength(s)).toBeLessThanOrEqual(255);
    await b.copy(`media/dir/${names[0]}`, `media/copy/${names[0]}`);
    expect((await b.head(`media/copy/${names[0]}`))?.sha256).toBe(sha256(Buffer.from('content 0')));
    await b.delete(`media/dir/${names[1]}`);
    expect(await b.head(`media/dir/${names[1]}`)).toBeNull();
    expect(readdirSync(join(base, '.triplicate-meta', 'media', 'dir'))).toHaveLength(names.length - 1);
  });

  it('keeps the plain `<name>.json` for every shorter name', () => {
    expect(sidecarName('IMG_0001.jpg')).toBe('IMG_0001.jpg.json');
    expect(sidecarName('x'.repeat(250))).toBe(`${'x'.repeat(250)}.json`);
    const long = sidecarName('x'.repeat(251));
    expect(long).toMatch(/^x{200}~[0-9a-f]{16}\.json$/);
    expect(sidecarName('x'.repeat(252))).not.toBe(long);
  });
});

// ---- unreadable files and folders ----------------------------------------------------------------

interface ScanOut {
  reports: { errors: { rel_path: string; error: string }[]; files_missing: number }[];
  status: { summary: string; health: string; missing: number };
  files: { rel_path: string; local_state: string }[];
}

let scanChild: ReadableBundle | undefined;

/** One scan in a child process, as `nobody` when we are root (root reads everything). */
function scanAsUser(data: string): ScanOut {
  const { cmd, args } = nodeAsUnprivileged([scanChild!.path('scan-child'), data]);
  const r = spawnSync(cmd, args, { cwd: scanChild!.dir, encoding: 'utf8', env: { ...process.env, HOME: '/tmp' }, timeout: 60_000 });
  if (r.status !== 0) throw new Error(`scan child failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as ScanOut;
}

function setup(): { base: string; media: string; data: string } {
  const base = tempDir('trip-rg-perm-');
  dirs.push(base);
  const media = join(base, 'media');
  const data = join(base, 'data');
  mkdirSync(join(media, 'album'), { recursive: true });
  mkdirSync(data, { recursive: true });
  writeFileSync(join(media, 'top.jpg'), 'top');
  writeFileSync(join(media, 'album', 'one.jpg'), 'one');
  writeFileSync(join(media, 'album', 'two.jpg'), 'two');
  saveConfig(defaultConfigPath(data), {
    roots: [{ id: 'media', label: 'Media', path: media }],
    targets: [{ id: 'usb', label: 'USB', kind: 'folder', path: join(base, 'usb') }],
    server: { adminPort: 0, downloadPort: 0 },
    sync: { rescanIntervalMinutes: 0, stabilityMs: 0 },
  });
  if (asRoot) {
    chmodSync(base, 0o755);
    spawnSync('chown', ['-R', 'nobody:', media, data]);
  }
  return { base, media, data };
}

describe('unreadable files and folders', () => {
  const skip = unprivilegedSkipReason();
  beforeAll(async () => {
    if (!skip) scanChild = await readableBundle({ 'scan-child': join(import.meta.dirname, 'fixtures', 'scan-child.mjs') });
  });
  afterAll(() => scanChild?.dispose());
  beforeEach((t) => skipUnlessUnprivileged(t));

  it('a folder that becomes unreadable is not taken for deleted, and the overview says so', () => {
    const { media, data } = setup();
    let out = scanAsUser(data);
    expect(out.files.every((f) => f.local_state === 'present')).toBe(true);
    expect(out.files).toHaveLength(3);
    chmodSync(join(media, 'album'), 0o000);
    out = scanAsUser(data);
    expect(out.files.find((f) => f.rel_path === 'album/one.jpg')?.local_state).toBe('present');
    expect(out.files.find((f) => f.rel_path === 'album/two.jpg')?.local_state).toBe('present');
    expect(out.reports[0]!.files_missing).toBe(0);
    expect(out.status.missing).toBe(0);
    expect(out.status.health).toBe('failing');
    expect(out.status.summary).toMatch(/not allowed to read the folder "album"/);
    // readable again: the problem goes away with the next scan
    chmodSync(join(media, 'album'), 0o755);
    out = scanAsUser(data);
    expect(out.status.summary).not.toMatch(/album/);
    expect(out.reports[0]!.errors).toEqual([]);
  });

  it('an unreadable file is named in the overview instead of "all safe"', () => {
    const { media, data } = setup();
    writeFileSync(join(media, 'secret.jpg'), 'secret');
    if (asRoot) chownSync(join(media, 'secret.jpg'), 65534, 65534);
    chmodSync(join(media, 'secret.jpg'), 0o000);
    const out = scanAsUser(data);
    expect(out.files.map((f) => f.rel_path)).not.toContain('secret.jpg');
    expect(out.reports[0]!.errors.map((e) => e.rel_path)).toEqual(['secret.jpg']);
    expect(out.status.health).toBe('failing');
    expect(out.status.summary).toMatch(/not allowed to read "secret\.jpg" in Media/);
  });
});

describe('names that are not UTF-8', () => {
  it('are reported with a sentence that says to rename them, not "moved or deleted"', async () => {
    const { media, data } = setup();
    // "café.jpg" written in Latin-1 by an old system: not valid UTF-8
    writeFileSync(Buffer.concat([Buffer.from(`${media}/`), Buffer.from([0x63, 0x61, 0x66, 0xe9, 0x2e, 0x6a, 0x70, 0x67])]), 'old');
    const engine = createEngine({ dataDir: data, watch: false, scanOnStart: false, adminPort: 0, downloadPort: 0 });
    try {
      const [rep] = await engine.scanAll();
      expect(rep!.errors).toHaveLength(1);
      expect(rep!.errors[0]!.error).toMatch(/not valid UTF-8.*Rename it/);
      expect(rep!.errors[0]!.error).not.toMatch(/moved or deleted/);
      const s = engine.status();
      expect(s.health).toBe('failing');
      expect(s.summary).toMatch(/not valid UTF-8/);
      expect(engine.catalog.events(0, 50).some((e) => e.kind === 'scan-problems' && /UTF-8/.test(e.message))).toBe(true);
      // the three readable files are cataloged as usual
      expect(s.total_files).toBe(3);
    } finally {
      await engine.stop();
    }
    expect(existsSync(join(data, 'engine.lock'))).toBe(false);
  });
});

describe('a server error in the middle of a multipart upload', () => {
  // persistent faults: the upload fails (after each part was tried a few times), as the target's problem
  for (const fault of ['503 on CreateMultipartUpload', '503 on a part', 'a reset in a part'] as const) {
    it(`${fault} is the target's problem, not a local read error`, async () => {
      const base = tempDir('trip-rg-mpu-');
      dirs.push(base);
      const s3 = await startS3({ buckets: ['nas'], directory: join(base, 's3') });
      const proxy = new FaultProxy(s3.port);
      await proxy.start();
      const file = join(base, 'clip.mp4');
      writeFileSync(file, Buffer.alloc(12 * 1024 * 1024, 7));
      const b = new S3Backend(s3.target('nas', { endpoint: proxy.endpoint, multipartThreshold: 5 * 1024 * 1024, partSize: 5 * 1024 * 1024 }));
      try {
        if (fault === '503 on CreateMultipartUpload') await proxy.setMode({ kind: 'http5xx', status: 503, every: 1 });
        if (fault === '503 on a part') await proxy.setMode({ kind: 'http5xx', status: 503, probability: 1, match: /partNumber=2&/ });
        if (fault === 'a reset in a part') await proxy.setMode({ kind: 'reset', afterBytes: 1024 * 1024 }); // every try of every part
        const err = await b
          .put('media/clip.mp4', { size: 12 * 1024 * 1024, open: () => createReadStream(file).pipe(new HashingStream()) }, { sha256: 'a'.repeat(64), mtimeMs: 1 })
          .then(() => null, (e: { kind?: string; targetLevel?: boolean; message: string }) => e);
        expect(err, 'the upload must fail').not.toBeNull();
        expect(err!.kind, err!.message).not.toBe('local');
        expect(err!.targetLevel).toBe(true);
        expect(err!.message).not.toMatch(/disk is healthy/);
      } finally {
        b.close();
        await proxy.stop();
        await s3.dispose();
      }
    });
  }
});

describe('files written right after their folder was created', () => {
  it('are all picked up by the watcher, without a rescan', async () => {
    const base = tempDir('trip-rg-burst-');
    dirs.push(base);
    const media = join(base, 'media');
    mkdirSync(media);
    const data = join(base, 'data');
    saveConfig(defaultConfigPath(data), {
      roots: [{ id: 'media', label: 'Media', path: media }],
      targets: [],
      server: { adminPort: 0, downloadPort: 0 },
      sync: { rescanIntervalMinutes: 0, stabilityMs: 300 },
      media: { transcode: false },
    });
    const engine = createEngine({ dataDir: data, adminPort: 0, downloadPort: 0 });
    try {
      await engine.start();
      await engine.initialScanDone();
      const dirsN = 30;
      const filesN = 10;
      // the writer runs in its own process while this one (the engine) keeps its event loop running
      const w = spawn(process.execPath, [join(import.meta.dirname, 'fixtures', 'burst-writer.mjs'), media, String(dirsN), String(filesN)]);
      expect(await new Promise((r) => w.once('exit', r))).toBe(0);
      const want = dirsN * filesN;
      const until = Date.now() + 30_000;
      while (Date.now() < until && engine.status().total_files < want) await new Promise((r) => setTimeout(r, 200));
      expect(engine.status().total_files).toBe(want);
    } finally {
      await engine.stop();
    }
  });
});

describe('a multipart upload on a server that refuses some requests', () => {
  it('retries the parts that failed and completes, sending each part at most a few times', async () => {
    const base = tempDir('trip-rg-flaky-');
    dirs.push(base);
    const s3 = await startS3({ buckets: ['nas'], directory: join(base, 's3') });
    const proxy = new FaultProxy(s3.port);
    await proxy.start();
    const size = 26 * 1024 * 1024; // 6 parts of 5 MiB
    const data = Buffer.alloc(size);
    for (let i = 0; i < size; i += 4096) data[i] = (i / 4096) & 0xff;
    const file = join(base, 'clip.mp4');
    writeFileSync(file, data);
    const b = new S3Backend(s3.target('nas', { endpoint: proxy.endpoint, multipartThreshold: 5 * 1024 * 1024, partSize: 5 * 1024 * 1024 }));
    try {
      // every second part request and the first completion are refused: no attempt of the whole
      // upload could ever get every part through in one go
      await proxy.setMode({ kind: 'http5xx', status: 503, every: 2, match: /partNumber=|uploadId=[^&]*$/ });
      await b.put('media/clip.mp4', { size, open: () => createReadStream(file).pipe(new HashingStream()) }, { sha256: sha256(data), mtimeMs: 1 });
      await proxy.setMode({ kind: 'pass' });
      const h = await b.head('media/clip.mp4');
      expect(h?.size).toBe(size);
      expect(h?.sha256).toBe(sha256(data));
      const r = await b.get('media/clip.mp4');
      const chunks: Buffer[] = [];
      for await (const c of r.body) chunks.push(c as Buffer);
      expect(sha256(Buffer.concat(chunks))).toBe(sha256(data));
      expect(proxy.stats.injected5xx).toBeGreaterThanOrEqual(3);
    } finally {
      b.close();
      await proxy.stop();
      await s3.dispose();
    }
  });
});

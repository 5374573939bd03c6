// What only the folder backend has: the files on disk, key safety, sidecar metadata, the marker
// that tells an unmounted share from an empty folder, and real file-system failures (a full
// tmpfs, a read-only mount, a folder the process may not write to).
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { FolderBackend, MARKER_FILE, META_DIR, TEMP_PREFIX } from '../../src/main/engine/backends/folder';
import { StorageError } from '../../src/main/engine/backends/types';
import { nodeAsUnprivileged, readableBundle, skipUnlessUnprivileged, unprivilegedSkipReason, type ReadableBundle } from '../helpers/unprivileged';
import { bufferBody, folderTarget, randomData, readAll, sha256, tempDir } from './helpers';

const REPO = join(dirname(new URL(import.meta.url).pathname), '..', '..');

let dir: { path: string; dispose: () => void };
let root: string;
let b: FolderBackend;

beforeEach(() => {
  dir = tempDir('fold');
  root = join(dir.path, 'share');
  mkdirSync(root);
  b = new FolderBackend(folderTarget(root));
});
afterEach(() => dir.dispose());

async function kindOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    return e instanceof StorageError ? e.kind : `non-storage error: ${String(e)}`;
  }
}

/** The StorageError a call fails with (fails the test if it succeeds). */
async function failure(p: Promise<unknown>): Promise<StorageError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(StorageError);
    return e as StorageError;
  }
  throw new Error('expected the call to fail');
}

/** Every file under a directory, relative, sorted. */
function tree(d: string, base = d): string[] {
  if (!existsSync(d)) return [];
  return readdirSync(d, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? [`${join(d, e.name).slice(base.length + 1)}/`, ...tree(join(d, e.name), base)] : [join(d, e.name).slice(base.length + 1)]))
    .sort();
}

describe('FolderBackend on disk', () => {
  it('stores a plain file with the source mtime, metadata in the hidden tree, no temp files', async () => {
    const data = randomData(5000);
    const mtimeMs = Date.UTC(2021, 5, 1, 12, 0, 0, 250);
    await b.put('site/2021/photo 1.jpg', bufferBody(data), { sha256: sha256(data), mtimeMs, contentType: 'image/jpeg' });
    const file = join(root, 'site', '2021', 'photo 1.jpg');
    expect(readFileSync(file).equals(data)).toBe(true);
    expect(Math.abs(statSync(file).mtimeMs - mtimeMs)).toBeLessThan(2);
    const side = JSON.parse(readFileSync(join(root, META_DIR, 'site', '2021', 'photo 1.jpg.json'), 'utf8'));
    expect(side).toMatchObject({ sha256: sha256(data), mtimeMs, size: 5000, contentType: 'image/jpeg' });
    expect(tree(root).filter((f) => f.includes(TEMP_PREFIX))).toEqual([]);
    // The hidden tree and marker never show up as objects.
    expect((await collect(b.list(''))).map((o) => o.key)).toEqual(['site/2021/photo 1.jpg']);
    expect(existsSync(join(root, META_DIR, MARKER_FILE))).toBe(true);
  });

  it('refuses keys that could leave the folder or clash with its own files', async () => {
    const one = randomData(1);
    const bad = ['../escape.jpg', 'a/../../escape.jpg', '/etc/passwd', 'a//b.jpg', './a.jpg', 'a/./b.jpg', 'a/.', 'a\0b.jpg', `${META_DIR}/x.json`, `a/${TEMP_PREFIX}123`, '', 'trailing/'];
    for (const key of bad) {
      expect(await kindOf(b.put(key, bufferBody(one), { sha256: sha256(one), mtimeMs: 1 })), JSON.stringify(key)).toBe('invalid');
      expect(await kindOf(b.get(key)), JSON.stringify(key)).toBe('invalid');
      expect(await kindOf(b.head(key)), JSON.stringify(key)).toBe('invalid');
      expect(await kindOf(b.delete(key)), JSON.stringify(key)).toBe('invalid');
      expect(await kindOf(b.copy('ok.jpg', key)), JSON.stringify(key)).toBe('invalid');
    }
    expect(readdirSync(dir.path)).toEqual(['share']);
    expect(tree(root)).toEqual([]);
  });

  it('a file replaced behind its back loses its sha256 (the sidecar no longer matches)', async () => {
    const data = randomData(100);
    await b.put('x.bin', bufferBody(data), { sha256: sha256(data), mtimeMs: 1_600_000_000_000 });
    expect((await b.head('x.bin'))?.sha256).toBe(sha256(data));
    writeFileSync(join(root, 'x.bin'), randomData(120)); // someone overwrote it by hand
    const info = await b.head('x.bin');
    expect(info?.size).toBe(120);
    expect(info?.sha256).toBeUndefined();
    // Same size but a different mtime (a crash between data and sidecar, or an edit): untrusted too.
    await b.put('y.bin', bufferBody(data), { sha256: sha256(data), mtimeMs: 1_600_000_000_000 });
    writeFileSync(join(root, 'y.bin'), randomData(100));
    utimesSync(join(root, 'y.bin'), new Date(1_700_000_000_000), new Date(1_700_000_000_000));
    expect((await b.head('y.bin'))?.sha256).toBeUndefined();
  });

  it('delete removes empty parent folders up to the root, in both trees', async () => {
    const one = randomData(3);
    await b.put('a/b/c/one.jpg', bufferBody(one), { sha256: sha256(one), mtimeMs: 1 });
    await b.put('a/keep.jpg', bufferBody(one), { sha256: sha256(one), mtimeMs: 1 });
    await b.delete('a/b/c/one.jpg');
    expect(existsSync(join(root, 'a', 'b'))).toBe(false);
    expect(existsSync(join(root, 'a', 'keep.jpg'))).toBe(true);
    expect(existsSync(join(root, META_DIR, 'a', 'b'))).toBe(false);
    await b.delete('a/keep.jpg');
    expect(existsSync(join(root, 'a'))).toBe(false);
    expect(existsSync(root)).toBe(true);
  });

  it('never creates a missing folder (an unmounted share must not fill the local disk)', async () => {
    rmSync(root, { recursive: true });
    const one = randomData(3);
    const e = await failure(b.put('a.jpg', bufferBody(one), { sha256: sha256(one), mtimeMs: 1 }));
    expect(e).toBeInstanceOf(StorageError);
    expect(e.kind).toBe('network');
    expect(e.targetLevel).toBe(true);
    expect(e.message).toMatch(/not connected/);
    expect(existsSync(root)).toBe(false);
  });

  it('an emptied folder after the marker was seen is "not connected", and nothing is written', async () => {
    const one = randomData(3);
    await b.put('a.jpg', bufferBody(one), { sha256: sha256(one), mtimeMs: 1 });
    // What an unmount leaves behind: the same path, now an empty directory.
    rmSync(root, { recursive: true });
    mkdirSync(root);
    expect(await kindOf(b.put('b.jpg', bufferBody(one), { sha256: sha256(one), mtimeMs: 1 }))).toBe('network');
    expect(await kindOf(b.head('a.jpg'))).toBe('network');
    expect(await kindOf(b.get('a.jpg'))).toBe('network');
    expect(await kindOf(collect(b.list('')))).toBe('network');
    expect(readdirSync(root)).toEqual([]);
    // A fresh backend told that copies exist there (requireMarker) says the same after a restart.
    const restarted = new FolderBackend(folderTarget(root), { requireMarker: true });
    expect(await kindOf(restarted.put('b.jpg', bufferBody(one), { sha256: sha256(one), mtimeMs: 1 }))).toBe('network');
    expect(readdirSync(root)).toEqual([]);
  });

  it('a file where a folder should be is invalid for that key only', async () => {
    const one = randomData(3);
    await b.put('a', bufferBody(one), { sha256: sha256(one), mtimeMs: 1 });
    const e = await failure(b.put('a/b.jpg', bufferBody(one), { sha256: sha256(one), mtimeMs: 1 }));
    expect(e.kind).toBe('invalid');
    expect(e.targetLevel).toBe(false);
    expect(await b.head('a/b.jpg')).toBeNull();
  });

  it('cleanupIncomplete removes old temp files and keeps fresh ones', async () => {
    mkdirSync(join(root, 'x'), { recursive: true });
    const oldTemp = join(root, 'x', `${TEMP_PREFIX}old`);
    const newTemp = join(root, 'x', `${TEMP_PREFIX}new`);
    writeFileSync(oldTemp, 'a');
    writeFileSync(newTemp, 'b');
    expect(await b.cleanupIncomplete('x/', 60_000)).toBe(0); // both younger than a minute
    await new Promise((r) => setTimeout(r, 1500));
    writeFileSync(newTemp, 'b2'); // touch: ctime moves
    // The cut-off half-way between the two files' ctimes (ctime cannot be set back), so a loaded
    // machine's pause between here and the call, up to ~0.7 s, changes nothing.
    const mid = (statSync(oldTemp).ctimeMs + statSync(newTemp).ctimeMs) / 2;
    expect(await b.cleanupIncomplete('', Date.now() - mid)).toBe(1);
    expect(existsSync(oldTemp)).toBe(false);
    expect(existsSync(newTemp)).toBe(true);
  });

  it('lists with a prefix that names no directory, and from the root', async () => {
    const one = randomData(2);
    for (const k of ['p/x.jpg', 'p/y/z.jpg', 'q.jpg']) await b.put(k, bufferBody(one), { sha256: sha256(one), mtimeMs: 1 });
    expect((await collect(b.list(''))).map((o) => o.key)).toEqual(['p/x.jpg', 'p/y/z.jpg', 'q.jpg']);
    expect((await collect(b.list('p/y'))).map((o) => o.key)).toEqual(['p/y/z.jpg']);
    expect((await collect(b.list('nope/deeper/'))).map((o) => o.key)).toEqual([]);
    expect((await collect(b.list('../'))).map((o) => o.key)).toEqual([]);
  });

  it('copy of a large file keeps bytes and metadata', async () => {
    const data = randomData(3 * 1024 * 1024);
    await b.put('v/orig.mov', bufferBody(data), { sha256: sha256(data), mtimeMs: 1_650_000_000_000, contentType: 'video/quicktime' });
    await b.copy('v/orig.mov', '.triplicate/versions/v/orig.mov/2024');
    expect(await b.head('.triplicate/versions/v/orig.mov/2024')).toMatchObject({ sha256: sha256(data), mtimeMs: 1_650_000_000_000, size: data.length });
    expect(sha256(await readAll((await b.get('.triplicate/versions/v/orig.mov/2024')).body))).toBe(sha256(data));
  });
});

// --- real file-system failures --------------------------------------------------------------

const isRoot = process.getuid?.() === 0;

describe('FolderBackend: permission denied (run as an unprivileged user)', () => {
  const skip = unprivilegedSkipReason();
  let putChild: ReadableBundle | undefined;
  beforeAll(async () => {
    if (!skip) putChild = await readableBundle({ 'put-as-user': join(REPO, 'test/backends/fixtures/put-as-user.ts') }, []);
  });
  afterAll(() => putChild?.dispose());

  it('a folder the process may not write to is an auth error naming the fix', (t) => {
    skipUnlessUnprivileged(t);
    // Root may write anywhere, so the put runs in a child process, as "nobody" when we are root.
    // It may reach the folder but not write in it.
    chmodSync(dir.path, 0o755);
    chmodSync(root, 0o555);
    const { cmd, args } = nodeAsUnprivileged([putChild!.path('put-as-user'), root]);
    const r = spawnSync(cmd, args, { cwd: putChild!.dir, encoding: 'utf8', env: { ...process.env, HOME: '/tmp' }, timeout: 30_000 });
    chmodSync(root, 0o755);
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
    expect(out.kind).toBe('auth');
    expect(out.targetLevel).toBe(true);
    expect(out.message).toMatch(/permission to write/);
    expect(out.detail).toMatch(/EACCES/);
  });
});

/** Mount a tmpfs (needs root and CAP_SYS_ADMIN; skipped elsewhere). */
function tryMount(at: string, opts: string): boolean {
  return spawnSync('mount', ['-t', 'tmpfs', '-o', opts, 'tmpfs', at]).status === 0;
}
function unmount(at: string): void {
  spawnSync('umount', ['-l', at]);
}
const canMount = (() => {
  if (!isRoot) return false;
  const t = tempDir('mnt');
  const ok = tryMount(t.path, 'size=64k');
  if (ok) unmount(t.path);
  t.dispose();
  return ok;
})();

describe.skipIf(!canMount)('FolderBackend on real mounts (tmpfs)', () => {
  it('a full disk is no_space, and leaves no temp file behind', async () => {
    expect(tryMount(root, 'size=1m')).toBe(true);
    try {
      const data = randomData(2 * 1024 * 1024);
      const e = await failure(b.put('big.bin', bufferBody(data), { sha256: sha256(data), mtimeMs: 1 }));
      expect(e.kind).toBe('no_space');
      expect(e.targetLevel).toBe(true);
      expect(e.message).toMatch(/full/);
      expect(e.detail).toMatch(/ENOSPC/);
      expect(tree(root).filter((f) => f.includes(TEMP_PREFIX))).toEqual([]);
      expect(await b.head('big.bin')).toBeNull();
    } finally {
      unmount(root);
    }
  });

  it('a read-only mount is an auth error that says read-only', async () => {
    expect(tryMount(root, 'size=1m')).toBe(true);
    try {
      const one = randomData(10);
      await b.put('a.jpg', bufferBody(one), { sha256: sha256(one), mtimeMs: 1 });
      expect(spawnSync('mount', ['-o', 'remount,ro', root]).status).toBe(0);
      const e = await failure(b.put('b.jpg', bufferBody(one), { sha256: sha256(one), mtimeMs: 1 }));
      expect(e.kind).toBe('auth');
      expect(e.message).toMatch(/read-only/);
      expect((await b.head('a.jpg'))?.sha256).toBe(sha256(one)); // reading still works
    } finally {
      unmount(root);
    }
  });

  it('unmounting the share is "not connected"; mounting it again makes it work', async () => {
    // A bind mount of a directory that outlives the mount: the "NAS share".
    const nas = join(dir.path, 'nas-export');
    mkdirSync(nas);
    const bind = () => expect(spawnSync('mount', ['--bind', nas, root]).status).toBe(0);
    const one = randomData(10);
    bind();
    try {
      await b.put('a.jpg', bufferBody(one), { sha256: sha256(one), mtimeMs: 1 });
    } finally {
      unmount(root);
    }
    // The bare mount point is an empty directory on the local disk.
    expect(await kindOf(b.put('b.jpg', bufferBody(one), { sha256: sha256(one), mtimeMs: 1 }))).toBe('network');
    expect(await kindOf(b.head('a.jpg'))).toBe('network');
    expect(readdirSync(root)).toEqual([]);
    bind();
    try {
      expect((await b.head('a.jpg'))?.sha256).toBe(sha256(one));
      await b.put('b.jpg', bufferBody(one), { sha256: sha256(one), mtimeMs: 1 });
    } finally {
      unmount(root);
    }
    expect(existsSync(join(nas, 'b.jpg'))).toBe(true);
  });
});

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

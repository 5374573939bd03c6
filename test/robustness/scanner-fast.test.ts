// The scanner's fast paths (synchronous listing on local disks, the plain-ASCII shortcut around
// normalizeRelPath) must see exactly what the careful path sees.
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { plainRel } from '../../src/main/engine/sync/scanner';
import { normalizeRelPath } from '../../src/shared/keys';
import { cleanup, startEngine, tempDir } from '../helpers/engine';
import { rng } from './lib';

const dirs: string[] = [];
afterEach(() => cleanup(...dirs.splice(0)));

describe('plainRel', () => {
  it('only says "plain" for paths normalizeRelPath returns unchanged (200,000 random paths)', () => {
    const r = rng(42);
    const alphabet = ['a', 'B', '.', '/', '\\', ' ', ':', 'C', '~', '-', 'é', '\u0301', '\t', '#'];
    let plain = 0;
    for (let i = 0; i < 200_000; i++) {
      let p = '';
      for (let n = r.int(1, 8); n > 0; n--) p += r.pick(alphabet);
      if (!plainRel(p)) continue;
      plain++;
      expect(() => normalizeRelPath(p), JSON.stringify(p)).not.toThrow();
      expect(normalizeRelPath(p), JSON.stringify(p)).toBe(p);
    }
    expect(plain).toBeGreaterThan(10_000);
  });

  it('says "plain" for ordinary photo paths', () => {
    for (const p of ['2024/06-event/IMG_0001.jpg', 'a b/c-d_e (1).JPG', '.hidden', '..x/y..', 'x/C:']) expect(plainRel(p), p).toBe(true);
    for (const p of ['a\\b', 'é.jpg', './a', 'a/../b', 'a//b', '/a', 'a/', 'C:', 'C:/x', '..', '.']) expect(plainRel(p), p).toBe(false);
  });
});

describe('the scanner lists what is there, no more', () => {
  it('finds every regular file (odd names included) and skips links, dirs and excluded files', async () => {
    const base = tempDir('trip-scan-');
    dirs.push(base);
    const media = join(base, 'media');
    const files = ['a.jpg', 'sub/b.jpg', 'sub/deeper/c.jpg', 'café.jpg', 'cafe\u0301-nfd.jpg', 'a\\b.jpg', ' sp .jpg', 'x/.hidden'];
    for (const f of files) {
      mkdirSync(join(media, ...f.split('/').slice(0, -1)), { recursive: true });
      writeFileSync(join(media, ...f.split('/')), f);
    }
    writeFileSync(join(media, 'Thumbs.db'), 'x'); // built-in exclude
    symlinkSync('a.jpg', join(media, 'link.jpg'));
    symlinkSync('.', join(media, 'loop'));
    const engine = await startEngine(join(base, 'data'), { roots: [{ id: 'media', label: 'Media', path: media }], targets: [], sync: { stabilityMs: 0 } }, { watch: false, scanOnStart: false });
    try {
      const [rep] = await engine.scanAll();
      expect(rep!.errors).toEqual([]);
      expect(rep!.files_seen).toBe(files.length);
      const rows = engine.catalog.db.prepare('SELECT rel_path FROM files ORDER BY rel_path').all() as { rel_path: string }[];
      expect(rows.map((r) => r.rel_path).sort()).toEqual(files.map((f) => normalizeRelPath(f)).sort());
      const again = await engine.scanAll();
      expect(again[0]!.files_new + again[0]!.files_changed + again[0]!.files_missing).toBe(0);
    } finally {
      await engine.stop();
    }
  });
});

describe('makeFilter', () => {
  it('takes a pattern without "/" as a file name in any folder, one with "/" as a path from the top', async () => {
    const { makeFilter } = await import('../../src/main/engine/sync/filter');
    const f = makeFilter(['*.jpg', '*.key', 'docs/*.pdf'], ['*.key', 'private/**']);
    expect(['a.jpg', 'x/y/a.jpg', 'docs/a.pdf'].filter(f)).toEqual(['a.jpg', 'x/y/a.jpg', 'docs/a.pdf']);
    expect(['x.key', 'keys/x.key', 'private/a.jpg', 'x/docs/a.pdf', 'b.png'].filter(f)).toEqual([]);
    expect(['private/a.jpg', 'a/private/b.jpg'].filter(makeFilter([], ['private/**']))).toEqual(['a/private/b.jpg']);
  });

  it('decides like picomatch on 50,000 random paths, with and without folder rules', async () => {
    const picomatch = (await import('picomatch')).default;
    const { makeFilter, BUILTIN_EXCLUDES } = await import('../../src/main/engine/sync/filter');
    const r = rng(7);
    const segs = ['a', 'IMG_1.jpg', '.DS_Store', '._x', 'Thumbs.db', 'thumbs.DB', '@eaDir', '#recycle', '$RECYCLE.BIN', 'x.tmp', 'y.part', 'y.part-3', '~$doc', '.~lock.f#', '.triplicate', '.triplicate-tmp-1', 'raw', 'tmp', 'b.CR2', '.snapshot', 'System Volume Information', '2024', 'é', 'a b'];
    const rules: [string[], string[]][] = [
      [[], []],
      [['**/*.jpg', '**/*.CR2', 'raw/**'], ['**/tmp/**', '2024/**', '**/*.cr2']],
    ];
    for (const [inc, exc] of rules) {
      const mine = makeFilter(inc, exc);
      const o = { dot: true, nocase: process.platform !== 'linux' };
      const pi = inc.length ? picomatch(inc, o) : null;
      const pe = picomatch([...BUILTIN_EXCLUDES, ...exc], o);
      for (let i = 0; i < 25_000; i++) {
        const p = Array.from({ length: r.int(1, 4) }, () => r.pick(segs)).join('/');
        expect(mine(p), p).toBe((pi === null || pi(p)) && !pe(p));
      }
    }
  });
});

describe('sha256File with a size hint', () => {
  it('hashes small files in one read and big ones streamed, the same digests', async () => {
    const { sha256File } = await import('../../src/main/engine/sync/hash');
    const { createHash } = await import('node:crypto');
    const base = tempDir('trip-hash-');
    dirs.push(base);
    for (const size of [0, 1, 4096, 256 * 1024, 256 * 1024 + 1, 3 * 1024 * 1024]) {
      const buf = Buffer.alloc(size, size % 251);
      const p = join(base, `f${size}`);
      writeFileSync(p, buf);
      const want = createHash('sha256').update(buf).digest('hex');
      expect(await sha256File(p, undefined, size)).toEqual({ sha256: want, size });
      expect(await sha256File(p)).toEqual({ sha256: want, size });
      // the file grew after the caller's stat: what was read is reported, size included
      expect((await sha256File(p, undefined, 10)).size).toBe(size);
    }
  });
});

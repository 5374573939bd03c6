// Issue #16 item 1: Triplicate's own data folder (admin-token, config.json with the destinations'
// keys, catalog.db with the link signing key) is never a storage folder, never inside one, and the
// scanner and the watcher never take a file from it whatever the config says.
import { mkdirSync, readdirSync, readFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createBackend } from '../../src/main/engine/backends';
import { ConfigError, defaultConfigPath } from '../../src/main/engine/config/config';
import { createEngine } from '../../src/main/engine/engine';
import { RootWatcher } from '../../src/main/engine/sync/watcher';
import { rootSchema, type S3TargetConfig } from '../../src/shared/config';
import { ApiClient } from '../../src/shared/client';
import { startS3 } from '../helpers/s3';
import { bytes, startEngine, waitFor, waitForStatus, writeConfig, writeFile } from '../helpers/engine';
import { useTeardown } from '../helpers/teardown';

const td = useTeardown();

/** The data folder's secrets, by file name. */
const SECRET = /(^|\/)(admin-token|config\.json|catalog\.db[^/]*)$/;

async function keysOn(targets: S3TargetConfig[]): Promise<string[]> {
  const keys: string[] = [];
  for (const t of targets) {
    const b = createBackend(t, { retry: false });
    try {
      for await (const o of b.list('')) keys.push(`${t.id}:${o.key}`);
    } finally {
      b.close?.();
    }
  }
  return keys;
}

/** A temp folder with media/a.jpg in it. */
function mediaFolder(prefix: string): { base: string; media: string } {
  const base = td.dir(prefix);
  const media = join(base, 'media');
  writeFile(media, 'a.jpg', bytes(1000, 1));
  return { base, media };
}

async function twoTargets(): Promise<S3TargetConfig[]> {
  const nas = td.add(await startS3({ buckets: ['nas'] }));
  const cloud = td.add(await startS3({ buckets: ['cloud'] }));
  return [nas.target('nas', { label: 'NAS' }), cloud.target('cloud', { label: 'Cloud' })];
}

describe('the data folder is not a storage folder', () => {
  it('the API refuses /, a folder containing the data folder, the data folder, a folder inside it, a link to them and /proc, with a sentence; nothing is saved', async () => {
    const { base, media } = mediaFolder('trip-sec-data-');
    const data = join(base, 'data');
    const targets = await twoTargets();
    const engine = td.add(await startEngine(data, { roots: [{ id: 'media', label: 'Media', path: media }], targets }));
    const client = new ApiClient({ baseUrl: engine.endpoints.adminUrl!, token: engine.token });
    await waitForStatus(engine, (s) => s.safe_files === 1, 30_000, 'the first file backed up');
    mkdirSync(join(data, 'inside'));
    symlinkSync(base, join(base, 'alias'));
    const cfgBefore = readFileSync(defaultConfigPath(data), 'utf8');

    const refused: [string, RegExp][] = [
      [base, /contains Triplicate's own data folder/],
      [data, /is Triplicate's own data folder/],
      [join(data, 'inside'), /is inside Triplicate's own data folder/],
      [join(media, '..', 'data'), /is Triplicate's own data folder/],
      [join(base, 'alias'), /contains Triplicate's own data folder/],
      ['/', /whole disk/],
    ];
    if (process.platform === 'linux') refused.push(['/proc', /system folder/]);
    /** What went wrong: "" when the call was refused with 400 and a sentence matching `why`. */
    const refusal = async (what: string, call: () => Promise<unknown>, why: RegExp): Promise<string> => {
      try {
        await call();
        return `${what}: accepted`;
      } catch (e) {
        const err = e as { status: number; body: { error: string } };
        return err.status === 400 && why.test(err.body.error) ? '' : `${what}: ${err.status} ${err.body?.error}`;
      }
    };
    const got: string[] = [];
    for (const [path, why] of refused) {
      // (disabled: on the old code an accepted "/" would start a scan of the whole disk)
      got.push(await refusal(path, () => client.call('addRoot', { body: { path, label: 'Bad', enabled: false } }), why));
    }
    // moving the existing folder onto the data folder is refused the same way
    got.push(await refusal('updateRoot to the folder holding the data folder', () => client.call('updateRoot', { params: { id: 'media' }, body: { path: base } }), /contains Triplicate's own data folder/));
    // a destination folder inside a backed-up folder (copies of copies) or in the data folder
    for (const [path, why] of [
      [join(media, 'copies'), /inside the folder "Media"/],
      [join(data, 'inside'), /inside Triplicate's own data folder/],
    ] as [string, RegExp][]) {
      mkdirSync(path, { recursive: true });
      got.push(await refusal(`folder destination ${path}`, () => client.call('addTarget', { body: { kind: 'folder', label: 'USB', path } }), why));
    }
    expect(got.filter(Boolean)).toEqual([]);
    expect(engine.cfg.roots.map((r) => [r.id, r.path])).toEqual([['media', media]]);
    expect(engine.cfg.targets.map((t) => t.id)).toEqual(['nas', 'cloud']);
    expect(readFileSync(defaultConfigPath(data), 'utf8')).toBe(cfgBefore);

    // nor can its files be copied into a backed-up folder (a drop, or an import through the API)
    const imported = await client.call('importFiles', { body: { root: 'media', paths: [join(data, 'config.json'), join(data, 'admin-token'), data, join(base, 'alias', 'data')] } });
    expect(imported.copied).toBe(0);
    expect(imported.skipped.map((x) => x.reason)).toEqual(Array(4).fill("It is Triplicate's own data (settings, keys, catalog), which is never copied into a backed-up folder."));
    expect(readdirSync(media).sort()).toEqual(['a.jpg', 'copies']);

    // an ordinary folder next to it is still fine
    const other = join(base, 'other');
    writeFile(other, 'b.jpg', bytes(1000, 2));
    expect((await client.call('addRoot', { body: { path: other, label: 'Other' } })).id).toBe('other');
  });

  it('the rule: home, /srv, /mnt and /run/media stay allowed; ~ holding the data folder is refused with a way out; system folders and drive roots are refused (POSIX, macOS, Windows)', async () => {
    const { folderRefusal, OwnData } = await import('../../src/main/engine/config/folders');
    const home = td.dir('trip-sec-home-');
    const own = new OwnData(join(home, '.triplicate'), join(home, '.triplicate', 'config.json'));
    const elsewhere = td.dir('trip-sec-elsewhere-');
    const other = new OwnData(elsewhere, join(elsewhere, 'config.json'));
    mkdirSync(join(home, '.triplicate'));
    const root = (path: string, o = other, platform: NodeJS.Platform = 'linux') => folderRefusal(path, { own: o, platform, home });
    // allowed
    for (const p of [home, join(home, 'Pictures'), '/srv/media', '/mnt/nas', '/run/media/anna/USB', '/media/usb', '/home/anna', '/data/photos']) expect(root(p), p).toBeNull();
    expect(root('/Volumes/NAS/photos', other, 'darwin')).toBeNull();
    expect(root('/Users/anna/Pictures', other, 'darwin')).toBeNull();
    expect(root('/private/var/folders/x/T/photos', other, 'darwin')).toBeNull();
    expect(root('D:\\Photos', other, 'win32')).toBeNull();
    expect(root('\\\\nas\\share\\photos', other, 'win32')).toBeNull();
    expect(root('C:\\Users\\anna\\Pictures', other, 'win32')).toBeNull();
    // home holding the default data folder: refused, with what to do instead
    const h = root(home, own);
    expect(h).toMatch(/contains Triplicate's own data folder/);
    expect(h).toContain(join(home, 'Pictures'));
    expect(h).toMatch(/--data-dir/);
    expect(root(join(home, 'Pictures'), own)).toBeNull();
    // refused
    for (const p of ['/', '/proc', '/proc/self', '/sys', '/dev', '/etc', '/boot', '/bin', '/sbin', '/usr', '/usr/share', '/lib', '/lib64', '/var/lib', '/var/lib/docker', '/run', '/var']) expect(root(p), p).not.toBeNull();
    for (const p of ['/System', '/Library/Preferences', '/private/etc', '/']) expect(root(p, other, 'darwin'), p).not.toBeNull();
    for (const p of ['C:\\', 'D:\\', 'C:\\Windows', 'c:\\windows\\system32', 'C:\\Program Files', 'C:\\Program Files (x86)\\App', 'C:\\ProgramData']) expect(root(p, other, 'win32'), p).not.toBeNull();
    // case does not get around it where the file system ignores case
    const dataUpper = join(home, 'Data');
    mkdirSync(dataUpper);
    expect(folderRefusal(join(home, 'data'), { own: new OwnData(dataUpper, join(dataUpper, 'config.json')), platform: 'darwin', home })).toMatch(/Triplicate's own data folder/);
  });

  it('a config.json whose folder holds the data folder stops the start with a sentence naming the folder; nothing is uploaded', async () => {
    const { media } = mediaFolder('trip-sec-start-');
    const data = join(media, 'appdata');
    const targets = await twoTargets();
    writeConfig(data, { roots: [{ id: 'media', label: 'Media', path: media }], targets });
    const cfgBefore = readFileSync(defaultConfigPath(data), 'utf8');
    let err: unknown;
    try {
      const engine = td.add(createEngine({ dataDir: data, adminPort: 0, downloadPort: 0 }));
      await engine.start();
      // (the old code starts: give it time to upload, so the test shows what it would send)
      await waitFor(async () => (await keysOn(targets)).some((k) => SECRET.test(k)), 30_000, 'a secret on a destination').catch(() => undefined);
    } catch (e) {
      err = e;
    }
    expect.soft(err).toBeInstanceOf(ConfigError);
    expect.soft((err as Error | undefined)?.message).toMatch(/roots\[0\]\.path: The folder ".*media" contains Triplicate's own data folder/);
    const secrets = (await keysOn(targets)).filter((k) => SECRET.test(k));
    expect(secrets).toEqual([]);
    expect(readFileSync(defaultConfigPath(data), 'utf8')).toBe(cfgBefore);
  }, 120_000);

  it('second wall: the scanner and the watcher take nothing from the data folder, even for a folder written into the config before the check or reached through a link', async () => {
    const { base, media } = mediaFolder('trip-sec-wall-');
    const data = join(base, 'data');
    symlinkSync(base, join(base, 'alias'));
    const targets = await twoTargets();
    const engine = td.add(await startEngine(data, { roots: [{ id: 'media', label: 'Media', path: media }], targets }));
    await waitForStatus(engine, (s) => s.safe_files === 1, 30_000, 'the first file backed up');

    // Bypass the first wall: put bad folders straight into the running config (as an old
    // config.json would have), one holding the data folder and one reaching it through a link.
    const everything = rootSchema.parse({ id: 'everything', label: 'Everything', path: base });
    const alias = rootSchema.parse({ id: 'alias', label: 'Alias', path: join(base, 'alias') });
    engine.cfg = { ...engine.cfg, roots: [...engine.cfg.roots, everything, alias] };
    await engine.scanAll();
    // the watcher on the folder holding the data folder sees the data folder change
    const settled: string[] = [];
    const watcher = new RootWatcher(everything, engine.ingestor, engine.stabilizer, { usePolling: false });
    await watcher.start();
    try {
      writeFile(data, 'notes.txt', 'a secret note');
      writeFile(data, 'admin-token', `${engine.token}\n`);
      writeFile(media, 'b.jpg', bytes(1000, 2));
      await waitFor(() => !!engine.catalog.fileByPath('everything', 'media/b.jpg')?.sha256, 30_000, 'the watcher to take media/b.jpg');
      // (a watcher that takes catalog.db never settles: the engine writes it all the time)
      await waitFor(() => engine.stabilizer.size === 0, 30_000, 'the watcher to settle').catch((e: Error) => settled.push(e.message));
      await engine.ingestor.drain();
    } finally {
      await watcher.close();
    }
    // the one path into the catalog, asked directly: a name that passes through a link, and a root
    // that is the data folder itself
    const dataRoot = rootSchema.parse({ id: 'appdata', label: 'App data', path: data });
    engine.cfg = { ...engine.cfg, roots: [...engine.cfg.roots, dataRoot] };
    const taken = {
      viaLink: await engine.ingestor.ingest(everything, 'alias/data/admin-token'),
      config: await engine.ingestor.ingest(dataRoot, 'config.json'),
      catalog: await engine.ingestor.ingest(dataRoot, 'catalog.db'),
    };
    expect(taken).toEqual({ viaLink: 'excluded', config: 'excluded', catalog: 'excluded' });
    await waitForStatus(engine, (s) => s.pending + s.uploading === 0 && s.failed === 0, 30_000, 'the uploads to finish').catch((e: Error) => settled.push(e.message.slice(0, 200)));

    const cataloged = (engine.catalog.db.prepare('SELECT root_id, rel_path FROM files').all() as { root_id: string; rel_path: string }[]).map((f) => `${f.root_id}/${f.rel_path}`);
    expect(cataloged.filter((k) => /\/data\//.test(k) || SECRET.test(k) || k.startsWith('appdata/'))).toEqual([]);
    const keys = await keysOn(targets);
    expect(keys.filter((k) => SECRET.test(k) || k.includes('/data/'))).toEqual([]);
    // and the bypassed folders were scanned and backed up (the test reached the scanner and the watcher)
    for (const k of ['nas:everything/media/a.jpg', 'cloud:alias/media/a.jpg', 'nas:everything/media/b.jpg']) expect(keys).toContain(k);
    expect(settled).toEqual([]);
  }, 150_000);
});

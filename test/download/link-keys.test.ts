// Keys as the operator sees them (issue #17, item 5): `triplicate link create` takes a file by its
// folder's name ("Collection photos/Gallery 2/x.jpg") as well as by the folder id
// ("photos/Gallery 2/x.jpg"); a name two folders share is a sentence that lists their ids. The
// API keeps the id form, and the CLI says who can open each link.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LinkInfo } from '../../src/shared/api';
import { KeyError, resolveKeyForm } from '../../src/shared/keys';
import type { Engine } from '../../src/main/engine/engine';
import { silenceConsole } from '../../src/main/engine/log';
import { cleanup, startEngine, tempDir, waitFor, writeFile } from '../helpers/engine';

const run = promisify(execFile);
const BIN = join(__dirname, '..', '..', 'bin', 'triplicate.mjs');
const dataDir = tempDir('trip-keys-');
const dirs = { photos: tempDir('trip-keys-photos-'), a1: tempDir('trip-keys-a1-'), a2: tempDir('trip-keys-a2-') };
let engine: Engine;

const ROOTS = [
  { id: 'photos', label: 'Collection photos' },
  { id: 'archive-1', label: 'Archive' },
  { id: 'archive-2', label: 'Archive' },
  { id: 'gallery', label: 'photos' },
];

beforeAll(async () => {
  writeFile(dirs.photos, 'Gallery 2/Object 1.jpg', 'one');
  writeFile(dirs.a1, 'letter.txt', 'a1');
  writeFile(dirs.a2, 'letter.txt', 'a2');
  engine = await startEngine(dataDir, {
    roots: [
      { id: 'photos', label: 'Collection photos', path: dirs.photos },
      { id: 'archive-1', label: 'Archive', path: dirs.a1 },
      { id: 'archive-2', label: 'Archive', path: dirs.a2 },
    ],
  });
  silenceConsole();
  await waitFor(() => !!engine.catalog.fileByPath('photos', 'Gallery 2/Object 1.jpg') && !!engine.catalog.fileByPath('archive-2', 'letter.txt'), 15_000, 'files scanned');
}, 60_000);

afterAll(async () => {
  await engine?.stop();
  cleanup(dataDir, ...Object.values(dirs));
});

const cli = async (...args: string[]) => {
  try {
    const { stdout, stderr } = await run(process.execPath, [BIN, 'link', ...args, '--url', engine.endpoints.adminUrl!, '--token', engine.token], { timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
};

describe('resolveKeyForm', () => {
  it('takes the id form and the label form, and keeps a folder key a folder key', () => {
    expect(resolveKeyForm('photos/Gallery 2/Object 1.jpg', ROOTS.slice(0, 3))).toBe('photos/Gallery 2/Object 1.jpg');
    expect(resolveKeyForm('Collection photos/Gallery 2/Object 1.jpg', ROOTS)).toBe('photos/Gallery 2/Object 1.jpg');
    expect(resolveKeyForm('Collection photos/Gallery 2/', ROOTS)).toBe('photos/Gallery 2/');
    expect(resolveKeyForm('archive-1/letter.txt', ROOTS)).toBe('archive-1/letter.txt');
  });

  it('a name two folders share is a sentence that lists the ids; an id always means its folder (the stable form scripts use)', () => {
    expect(() => resolveKeyForm('Archive/letter.txt', ROOTS)).toThrow(KeyError);
    expect(() => resolveKeyForm('Archive/letter.txt', ROOTS)).toThrow('Two folders are called "Archive" (ids archive-1, archive-2): use the id, for example archive-1/letter.txt.');
    expect(resolveKeyForm('photos/x.jpg', ROOTS)).toBe('photos/x.jpg');
    expect(resolveKeyForm('collection PHOTOS/x.jpg', ROOTS)).toBe('photos/x.jpg');
  });

  it('no folder of that name or id', () => {
    expect(() => resolveKeyForm('Nowhere/x.jpg', ROOTS)).toThrow('There is no folder called "Nowhere". The folders are: Collection photos (id photos), Archive (id archive-1), Archive (id archive-2), photos (id gallery).');
  });
});

describe('the CLI takes keys as the operator sees them', () => {
  it('link create with the folder name or the folder id: the same file, and it says who can open the link', async () => {
    const byLabel = await cli('create', 'Collection photos/Gallery 2/Object 1.jpg', '--ttl', '1h');
    expect(byLabel.code, byLabel.stderr).toBe(0);
    const a = JSON.parse(byLabel.stdout.trim()) as LinkInfo;
    expect(a.key).toBe('photos/Gallery 2/Object 1.jpg');
    expect(a.reach).toBe('this-computer');
    expect(byLabel.stderr).toContain('Only on this computer');
    expect(byLabel.stderr).toContain('Collection photos/Gallery 2/Object 1.jpg');
    const byId = await cli('create', 'photos/Gallery 2/Object 1.jpg', '--ttl', '1h');
    expect(byId.code, byId.stderr).toBe(0);
    expect((JSON.parse(byId.stdout.trim()) as LinkInfo).key).toBe('photos/Gallery 2/Object 1.jpg');
    const list = await cli('list');
    expect(list.code, list.stderr).toBe(0);
    expect(list.stderr).toMatch(/Collection photos\/Gallery 2\/Object 1\.jpg \(photos\/Gallery 2\/Object 1\.jpg\).*Only on this computer/);
  }, 120_000);

  it('a name two folders share: a sentence with their ids, exit 1, no link made', async () => {
    const before = engine.catalog.db.prepare('SELECT count(*) AS n FROM links').get() as { n: number };
    const r = await cli('create', 'Archive/letter.txt', '--ttl', '1h');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('Two folders are called "Archive" (ids archive-1, archive-2)');
    expect(engine.catalog.db.prepare('SELECT count(*) AS n FROM links').get()).toEqual(before);
    const ok = await cli('create', 'archive-2/letter.txt', '--ttl', '1h');
    expect(ok.code, ok.stderr).toBe(0);
  }, 120_000);
});

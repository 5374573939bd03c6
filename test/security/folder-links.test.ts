// Issue #16 item 4: a link opens only what is backed up. A folder link (and a file link) opens a
// file only when the catalog knows it in that root and the root's CURRENT include/exclude rules
// still take its path; its listing shows exactly that set, and anything else answers 404 like a
// missing file. Real engine, real s3rver, real files, real HTTP; the bundled ffmpeg makes a real
// MP4 and poster, which stay reachable.
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LinkInfo } from '../../src/shared/api';
import { ApiClient, ApiError } from '../../src/shared/client';
import type { ConfigInput } from '../../src/shared/config';
import type { Engine } from '../../src/main/engine/engine';
import { silenceConsole } from '../../src/main/engine/log';
import { startS3, type TestS3 } from '../helpers/s3';
import { cleanup, startEngine, tempDir, waitFor, waitForStatus, writeFile } from '../helpers/engine';
import { makeMov } from '../media/fixtures';
import { raw } from '../download/helpers';

/** Backed up: listed and served. (`.hidden` too: the scanner backs up dotfiles other than OS litter.) */
const BACKED_UP: Record<string, string> = {
  'Gallery/a.jpg': 'photo a',
  'Gallery/b.jpg': 'photo b',
  'notes/readme.txt': 'read me',
  '.hidden': 'a dotfile the rules take',
  'drafts/plan.txt': 'excluded later',
  'drafts/gone.txt': 'excluded later, only on the targets',
};
/** Left out by the root's exclude rules: never cataloged. */
const EXCLUDED: Record<string, string> = {
  'private/a.txt': 'private',
  'x.key': 'top-level key',
  'keys/x.key': 'a key in a folder',
};
/** Left out by the built-in rules (OS litter, temp files): never cataloged. */
const LITTER: Record<string, string> = {
  '.DS_Store': 'finder',
  'Gallery/._a.jpg': 'apple double',
  '~$doc.docx': 'office lock',
  'x.tmp': 'temp',
  'Gallery/c.jpg.part': 'partial download',
};

let s3: TestS3;
let engine: Engine;
let api: ApiClient;
let port: number;
let media: string;
let dataDir: string;
let rootLink: LinkInfo;
let token: string;

const path = (rel: string, tok = token) => `/files/media/${rel.split('/').map(encodeURIComponent).join('/')}?token=${encodeURIComponent(tok)}`;

/** The names a listing shows (folders end in "/"), without the "up" link. */
async function listing(rel: string): Promise<string[]> {
  const r = await raw(port, { path: path(rel) });
  expect(r.status).toBe(200);
  const names = [...r.body.toString().matchAll(/<a href="[^"]*">([^<]*)<\/a>/g)].map((m) => m[1]!.replace(/&#(\d+);/g, (_, n) => String.fromCharCode(Number(n))));
  return names.filter((n) => !n.startsWith('↑')).sort();
}

beforeAll(async () => {
  s3 = await startS3();
  media = tempDir('trip-sec-fl-media-');
  dataDir = tempDir('trip-sec-fl-data-');
  for (const [rel, content] of Object.entries({ ...BACKED_UP, ...EXCLUDED, ...LITTER })) writeFile(media, rel, content);
  mkdirSync(join(media, 'trip'));
  await makeMov(join(media, 'trip', 'clip.mov'), { seconds: 1 });
  // No watcher: a file written later stays uncataloged (what a file dropped a moment ago is).
  engine = await startEngine(
    dataDir,
    {
      roots: [{ id: 'media', label: 'Media', path: media, exclude: ['private/**', '*.key'] }],
      targets: [s3.target('nas', { label: 'NAS', priority: 1 })],
      server: { downloadHost: '127.0.0.1' },
      media: { preset: 'ultrafast', crf: 30 },
    } as ConfigInput,
    { watch: false },
  );
  silenceConsole();
  const n = Object.keys(BACKED_UP).length + 3; // + clip.mov, clip.mp4, clip.poster.jpg
  await waitForStatus(engine, (s) => s.total_files >= n && s.safe_files >= n && s.pending === 0 && s.uploading === 0, 120_000, `${n} files synced`);
  api = new ApiClient({ baseUrl: engine.endpoints.adminUrl!, token: engine.token });
  port = Number(new URL(engine.endpoints.downloadUrl!).port);
  rootLink = await api.call('createLink', { body: { key: 'media/', ttl_seconds: 3600 } });
  token = new URL(rootLink.url).searchParams.get('token')!;
  rmSync(join(media, 'drafts', 'gone.txt')); // from now on only the target has it
  writeFileSync(join(media, 'late.jpg'), 'on disk, not cataloged');
}, 240_000);

afterAll(async () => {
  await engine?.stop();
  await s3?.dispose();
  cleanup(media, dataDir);
});

describe('a folder link opens only what is backed up', () => {
  it('serves the backed-up files, the MP4 and poster made from a video, and a file only on the target', async () => {
    for (const [rel, content] of Object.entries(BACKED_UP)) {
      const r = await raw(port, { path: path(rel) });
      expect(r.status, rel).toBe(200);
      expect(r.body.toString(), rel).toBe(content);
    }
    for (const rel of ['trip/clip.mov', 'trip/clip.mp4', 'trip/clip.poster.jpg']) {
      const r = await raw(port, { path: path(rel) });
      expect(r.status, rel).toBe(200);
      expect(r.body.length, rel).toBeGreaterThan(0);
    }
  });

  it('lists exactly the backed-up files', async () => {
    expect(await listing('')).toEqual(['.hidden', 'Gallery/', 'drafts/', 'notes/', 'trip/']);
    expect(await listing('Gallery/')).toEqual(['a.jpg', 'b.jpg']);
    expect(await listing('trip/')).toEqual(['clip.mov', 'clip.mp4', 'clip.poster.jpg']);
    expect(await listing('private/')).toEqual([]);
    expect(await listing('keys/')).toEqual([]);
  });

  it('answers 404 like a missing file for excluded, temporary and uncataloged files', async () => {
    const missing = await raw(port, { path: path('no/such/file.jpg') });
    expect(missing.status).toBe(404);
    const failures: string[] = [];
    for (const rel of [...Object.keys(EXCLUDED), ...Object.keys(LITTER), 'late.jpg']) {
      for (const method of ['GET', 'HEAD']) {
        const r = await raw(port, { method, path: path(rel) });
        const same = r.status === 404 && (method === 'HEAD' || r.body.equals(missing.body));
        if (!same) failures.push(`${method} ${rel}: ${r.status} ${method === 'GET' ? r.body.toString().slice(0, 60) : ''}`);
      }
    }
    expect(failures).toEqual([]);
  });

  it('a rule added later: the files it excludes are no longer listed nor served, by any link', async () => {
    const fileLink = await api.call('createLink', { body: { key: 'media/drafts/plan.txt', ttl_seconds: 3600 } });
    const fileToken = new URL(fileLink.url).searchParams.get('token')!;
    expect((await raw(port, { path: path('drafts/plan.txt', fileToken) })).status).toBe(200);
    await api.call('updateRoot', { params: { id: 'media' }, body: { exclude: ['private/**', '*.key', 'drafts/**'] } });
    await waitFor(() => engine.cfg.roots[0]!.exclude.includes('drafts/**'), 10_000, 'the new rule to apply');
    // A folder whose rules change is scanned again: late.jpg, on the disk all along, is cataloged
    // now. The console's test below needs a file dropped a moment ago: later.jpg.
    await waitFor(() => !!engine.catalog.fileByPath('media', 'late.jpg')?.sha256, 30_000, 'the scan after the rule change');
    writeFileSync(join(media, 'later.jpg'), 'on disk, not cataloged');
    // the catalog still has the rows (their backups stay restorable), but links do not open them
    expect(engine.catalog.fileByPath('media', 'drafts/plan.txt')).toBeDefined();
    const missing = await raw(port, { path: path('no/such/file.txt') });
    for (const [rel, tok] of [
      ['drafts/plan.txt', token],
      ['drafts/gone.txt', token],
      ['drafts/plan.txt', fileToken],
    ] as const) {
      const r = await raw(port, { path: path(rel, tok) });
      expect(`${rel}: ${r.status} ${r.body.toString()}`).toBe(`${rel}: 404 ${missing.body.toString()}`);
    }
    expect(await listing('')).toEqual(['.hidden', 'Gallery/', 'late.jpg', 'notes/', 'trip/']);
    expect(await listing('drafts/')).toEqual([]);
    // and no new link can be made to it: the operator is told why
    let err: unknown;
    try {
      await api.call('createLink', { body: { key: 'media/drafts/plan.txt', ttl_seconds: 3600 } });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).message).toMatch(/include\/exclude rules/);
  });

  it("the console's download opens cataloged files only (those it lists, excluded later or not)", async () => {
    // The rule change above rescanned the folder (no watcher: a config change scans again), which
    // catalogs late.jpg: once that scan is done, a file written now stays uncataloged.
    await waitForStatus(engine, (s) => !s.scanning, 60_000, 'the rescan after the rule change');
    writeFileSync(join(media, 'later.jpg'), 'on disk, not cataloged');
    const admin = (rel: string) => fetch(`${engine.endpoints.adminUrl}/api/admin/download?key=${encodeURIComponent(`media/${rel}`)}&access_token=${engine.token}`);
    const ok = await admin('Gallery/a.jpg');
    expect(ok.status).toBe(200);
    expect(await ok.text()).toBe('photo a');
    for (const rel of ['later.jpg', 'private/a.txt', 'x.key', '.DS_Store', 'x.tmp']) {
      const r = await admin(rel);
      expect(`${rel}: ${r.status}`).toBe(`${rel}: 404`);
      await r.arrayBuffer();
    }
    // a file a later rule left out is still in the catalog and on the console's pages: its backup opens
    const later = await admin('drafts/plan.txt');
    expect(later.status).toBe(200);
    expect(await later.text()).toBe('excluded later');
  });
});

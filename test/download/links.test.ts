// Signed links through the admin API and the CLI: create, list, revoke, rotate the secret,
// expiry, use counting, where links point.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LinkInfo } from '../../src/shared/api';
import { ApiError } from '../../src/shared/client';
import { newLinkId, parseScope, parseTtl } from '../../src/main/engine/http/links';
import { randomToken } from '../../src/main/engine/util';
import { raw, setupSharing, type Setup } from './helpers';

const run = promisify(execFile);
const BIN = join(__dirname, '..', '..', 'bin', 'triplicate.mjs');

let t: Setup;

beforeAll(async () => {
  t = await setupSharing({ 'a.txt': 'file a\n', 'photos/b.jpg': 'file b\n', 'photos/2024/c.jpg': 'file c\n' }, { targets: 1 });
}, 120_000);

afterAll(async () => {
  await t?.dispose();
});

async function status(l: LinkInfo | string, path?: string): Promise<{ status: number; body: string }> {
  const u = new URL(typeof l === 'string' ? l : l.url);
  const r = await raw(t.port, { path: (path ?? u.pathname) + u.search });
  return { status: r.status, body: r.body.toString() };
}

async function apiError(p: Promise<unknown>): Promise<ApiError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ApiError) return e;
    throw e;
  }
  throw new Error('expected the call to fail');
}

describe('links through the admin API', () => {
  it('creates a link that opens the file, on the LAN address, and lists it', async () => {
    const l = await t.link('media/a.txt', 3600, { note: 'for the insurer' });
    expect(l.key).toBe('media/a.txt');
    expect(l.url.startsWith(`${t.engine.endpoints.downloadUrl}/files/media/a.txt?token=`)).toBe(true);
    expect(l.expires_at - l.created_at).toBe(3600_000);
    expect(l.note).toBe('for the insurer');
    expect(await status(l)).toEqual({ status: 200, body: 'file a\n' });
    const list = await t.api.call('listLinks', {});
    const mine = list.find((x) => x.id === l.id)!;
    expect(mine.url).toBe(l.url); // the same token again (HS256 is deterministic)
    expect(mine.downloads).toBe(1);
  });

  it('counts downloads, not every range request of a video player', async () => {
    const l = await t.link('media/photos/b.jpg');
    const u = new URL(l.url);
    await raw(t.port, { path: u.pathname + u.search });
    await raw(t.port, { path: u.pathname + u.search, headers: { range: 'bytes=0-1' } });
    await raw(t.port, { path: u.pathname + u.search, headers: { range: 'bytes=2-3' } });
    await raw(t.port, { method: 'HEAD', path: u.pathname + u.search });
    const row = (await t.api.call('listLinks', {})).find((x) => x.id === l.id)!;
    expect(row.downloads).toBe(2);
    const db = t.engine.catalog.db.prepare<[string], { downloads: number; last_used_at: number | null }>('SELECT downloads, last_used_at FROM links WHERE id = ?').get(l.id)!;
    expect(db.downloads).toBe(2);
    expect(db.last_used_at).toBeGreaterThan(Date.now() - 60_000);
  });

  it('a folder link opens everything under the folder and nothing beside it', async () => {
    const l = await t.link('media/photos/');
    expect(l.url).toContain('/files/media/photos/?token=');
    const q = new URL(l.url).search;
    expect((await status(l, '/files/media/photos/b.jpg')).status).toBe(200);
    expect((await status(l, '/files/media/photos/2024/c.jpg')).body).toBe('file c\n');
    expect((await status(l, '/files/media/a.txt')).status).toBe(403);
    const listing = await raw(t.port, { path: `/files/media/photos/${q}` });
    expect(listing.status).toBe(200);
    expect(listing.body.toString()).toContain('2024/');
    expect(listing.body.toString()).toContain(`/files/media/photos/b.jpg${q.replace(/&/g, '&#38;')}`);
  });

  it('revoking turns the link off at once (403 with a sentence) and shows in the list', async () => {
    const l = await t.link('media/a.txt');
    expect((await status(l)).status).toBe(200);
    const r = await t.api.call('revokeLink', { params: { id: l.id } });
    expect(r.revoked_at).toBeGreaterThan(0);
    const after = await status(l);
    expect(after.status).toBe(403);
    expect(JSON.parse(after.body)).toEqual({ code: 'link_revoked', error: expect.stringMatching(/turned off by the person who shared it/) });
    expect((await t.api.call('listLinks', {})).find((x) => x.id === l.id)!.revoked_at).toBe(r.revoked_at);
    expect((await apiError(t.api.call('revokeLink', { params: { id: 'nope' } }))).status).toBe(404);
  });

  it('an expired link says so; list hides it unless asked', async () => {
    // Expiry has whole-second precision (JWT exp): a 3 s link works for 2 to 3 s.
    const l = await t.link('media/a.txt', 3);
    expect((await status(l)).status).toBe(200);
    await new Promise((r) => setTimeout(r, 4_100));
    const after = await status(l);
    expect(after.status).toBe(401);
    expect(JSON.parse(after.body).code).toBe('link_expired');
    expect(JSON.parse(after.body).error).toMatch(/^This download link expired on .* UTC\. Ask the sender for a new link\.$/);
    expect((await t.api.call('listLinks', {})).some((x) => x.id === l.id)).toBe(false);
    expect((await t.api.call('listLinks', { query: { include_expired: true } })).some((x) => x.id === l.id)).toBe(true);
  });

  it('refuses bad requests with sentences', async () => {
    const e1 = await apiError(t.link('media/../etc/passwd'));
    expect(e1.status).toBe(400);
    expect(e1.message).toMatch(/is not a file or folder of Triplicate/);
    expect((await apiError(t.link('nosuch/a.txt'))).status).toBe(404);
    const e3 = await apiError(t.link('media/not-there.jpg'));
    expect(e3.status).toBe(404);
    expect(e3.message).toMatch(/does not know the file/);
    expect((await apiError(t.link('media/a.txt', 0))).status).toBe(400);
    expect((await apiError(t.link('media/a.txt', 400 * 86400))).status).toBe(400);
    expect((await apiError(t.api.call('createLink', { body: { key: 'media/a.txt', ttl_seconds: 60, disposition: 'x' as never } }))).status).toBe(400);
  });

  it('server.publicBaseUrl is for local-network links only: a link for this computer stays on loopback and says so (reach.test.ts has the rest)', async () => {
    await t.engine.applyConfig({ ...t.engine.cfg, server: { ...t.engine.cfg.server, publicBaseUrl: 'https://files.example.org/' } });
    try {
      const l = await t.link('media/a.txt');
      expect(l.url.startsWith(`${t.engine.endpoints.downloadUrl}/files/media/a.txt?token=`)).toBe(true);
      expect(l.reach).toBe('this-computer');
    } finally {
      await t.engine.applyConfig({ ...t.engine.cfg, server: { ...t.engine.cfg.server, publicBaseUrl: undefined } });
    }
  });

  it('rotating the secret revokes every link; new links work', async () => {
    const a = await t.link('media/a.txt');
    const b = await t.link('media/photos/');
    const active = (await t.api.call('listLinks', {})).filter((x) => !x.revoked_at).length;
    const r = await t.api.call('rotateLinkSecret', {});
    expect(r.revoked).toBeGreaterThanOrEqual(active);
    for (const l of [a, b]) expect((await status(l)).status).toBe(401); // the old signature no longer verifies
    expect((await t.api.call('listLinks', {})).every((x) => x.revoked_at)).toBe(true);
    const c = await t.link('media/a.txt');
    expect((await status(c)).status).toBe(200);
    // the secret survives a restart of the link service (kv), and it is 32 random bytes
    expect(Buffer.from(t.engine.catalog.kvGet('links.secret')!, 'base64url').length).toBe(32);
  });
});

describe('links through the CLI', () => {
  const cli = async (...args: string[]) => {
    try {
      const { stdout, stderr } = await run(process.execPath, [BIN, 'link', ...args, '--url', t.engine.endpoints.adminUrl!, '--token', t.engine.token], { timeout: 60_000 });
      return { code: 0, stdout, stderr };
    } catch (e) {
      const x = e as { code: number; stdout: string; stderr: string };
      return { code: x.code, stdout: x.stdout, stderr: x.stderr };
    }
  };

  it('create, list, revoke', async () => {
    const c = await cli('create', 'media/photos/b.jpg', '--ttl', '1d', '--download');
    expect(c.code, c.stderr).toBe(0);
    const link = JSON.parse(c.stdout.trim()) as LinkInfo;
    expect(link.expires_at - link.created_at).toBe(86_400_000);
    expect(c.stderr).toContain(link.url);
    const r = await raw(t.port, { path: new URL(link.url).pathname + new URL(link.url).search });
    expect(r.status).toBe(200);
    expect(r.headers['content-disposition']).toMatch(/^attachment;/);
    const l = await cli('list');
    expect(l.code, l.stderr).toBe(0);
    const ids = l.stdout.trim().split('\n').map((x) => (JSON.parse(x) as LinkInfo).id);
    expect(ids).toContain(link.id);
    const v = await cli('revoke', link.id);
    expect(v.code, v.stderr).toBe(0);
    expect(v.stderr).toMatch(/is turned off/);
    expect((await raw(t.port, { path: new URL(link.url).pathname + new URL(link.url).search })).status).toBe(403);
  }, 120_000);

  it('explains mistakes', async () => {
    const noTtl = await cli('create', 'media/a.txt');
    expect(noTtl.code).toBe(1);
    expect(noTtl.stderr).toMatch(/how long the link should work/);
    const badTtl = await cli('create', 'media/a.txt', '--ttl', 'soon');
    expect(badTtl.code).toBe(1);
    expect(badTtl.stderr).toMatch(/"soon" is not a duration/);
    const unknown = await cli('create', 'media/nope.txt', '--ttl', '1h');
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/does not know the file/);
  }, 120_000);
});

describe('link helpers', () => {
  it('link ids and admin tokens never start with "-" or "_" (the CLI would take "revoke -x…" or "--token -x…" for an option; 1 random value in 32 did)', () => {
    const ids = new Set(Array.from({ length: 4000 }, () => newLinkId()));
    expect(ids.size).toBe(4000);
    for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9][A-Za-z0-9_-]{15}$/);
    for (let i = 0; i < 4000; i++) expect(randomToken(32)).toMatch(/^[A-Za-z0-9][A-Za-z0-9_-]{42}$/);
  });

  it('parseTtl', () => {
    expect(parseTtl('90')).toBe(90);
    expect(parseTtl('30m')).toBe(1800);
    expect(parseTtl('12h')).toBe(43_200);
    expect(parseTtl('1d')).toBe(86_400);
    expect(parseTtl('2w')).toBe(1_209_600);
    expect(parseTtl('1.5h')).toBe(5400);
    expect(() => parseTtl('tomorrow')).toThrow(/not a duration/);
  });

  it('parseScope', () => {
    expect(parseScope('media/')).toEqual({ scope: 'media/', prefix: true, rootId: 'media', relPath: '' });
    expect(parseScope('media/a/b/')).toMatchObject({ scope: 'media/a/b/', prefix: true });
    expect(parseScope('media/a/b.jpg')).toMatchObject({ scope: 'media/a/b.jpg', prefix: false });
    for (const bad of ['', '/', 'media', '../x', 'media/../x', 'media/a/../', 'media//', 'Media/x', 'media/./a']) expect(() => parseScope(bad), bad).toThrow();
  });
});

// The download server's fast path (a token seen before, a small file in memory, answered without
// waiting) must answer exactly like the slow one: every spelling of the query, revocation at once,
// and an access-log line for every request, all on disk once the server stops.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { raw, setupSharing, type Setup } from './helpers';

let t: Setup;
let disposed = false;

beforeAll(async () => {
  t = await setupSharing({ 'a.txt': 'file a\n', 'dir/b.txt': 'file b\n' }, { targets: 1 });
}, 120_000);

afterAll(async () => {
  if (!disposed) await t?.dispose();
});

describe('download fast path', () => {
  it('every spelling of the token in the query gives the same answer as the first request', async () => {
    const l = await t.link('media/', 3600);
    const token = new URL(l.url).searchParams.get('token')!;
    const get = async (query: string, headers: Record<string, string> = {}) => {
      const r = await raw(t.port, { path: `/files/media/a.txt${query}`, headers });
      return { status: r.status, body: r.body.toString(), disposition: String(r.headers['content-disposition'] ?? '') };
    };
    const first = await get(`?token=${token}`); // checks the signature
    expect(first).toEqual({ status: 200, body: 'file a\n', disposition: expect.stringMatching(/^inline;/) });
    expect(await get(`?token=${token}`)).toEqual(first); // from the cache
    // percent-encoded characters decode to the same token (URLSearchParams semantics)
    expect(await get(`?token=${token.replace(/\./g, '%2E').replace(/^e/, '%65')}`)).toEqual(first);
    expect((await get(`?download=1&token=${token}`)).disposition).toMatch(/^attachment;/);
    expect((await get(`?token=${token}&download=1`)).disposition).toMatch(/^attachment;/);
    expect((await get(`?token=${token}&token=nonsense`)).status).toBe(200); // the first one counts
    expect((await get(`?token=nonsense&token=${token}`)).status).toBe(401);
    expect((await get(`?token=${token.slice(0, -2)}`)).status).toBe(401);
    expect((await get(`?token=`)).status).toBe(401);
    expect(await get('', { authorization: `Bearer ${token}` })).toEqual(first);
    expect((await get('?token=', { authorization: `Bearer ${token}` })).status).toBe(401); // an empty ?token= is still the token asked about
    // the same file through another spelling of its path, then a path outside the link
    expect((await raw(t.port, { path: `/files/media/%61.txt?token=${token}` })).body.toString()).toBe('file a\n');
    expect((await raw(t.port, { path: `/files/media/dir/b.txt?token=${token}` })).body.toString()).toBe('file b\n');
    const one = await t.link('media/a.txt', 3600);
    const oneToken = new URL(one.url).searchParams.get('token')!;
    expect((await raw(t.port, { path: `/files/media/a.txt?token=${oneToken}` })).status).toBe(200);
    expect((await raw(t.port, { path: `/files/media/dir/b.txt?token=${oneToken}` })).status).toBe(403);
    // revoked: refused at once, although the token and the file are both in memory
    await t.api.call('revokeLink', { params: { id: l.id } });
    expect((await get(`?token=${token}`)).status).toBe(403);
  });

  it('a line per request in the access log, without tokens, all written when the server stops', async () => {
    const l = await t.link('media/dir/b.txt', 3600);
    const path = t.pathOf(l);
    const before = t.accessLog().length;
    const n = 40;
    for (let i = 0; i < n; i++) expect((await raw(t.port, { path })).status).toBe(200);
    await t.engine.stop();
    disposed = true;
    const lines = readFileSync(join(t.dataDir, 'logs', 'download-access.jsonl'), 'utf8').split('\n').filter(Boolean);
    expect(lines.length - before).toBeGreaterThanOrEqual(n);
    const mine = lines.map((x) => JSON.parse(x) as Record<string, unknown>).filter((e) => e.path === '/files/media/dir/b.txt' && e.link === l.id);
    expect(mine.length).toBe(n);
    expect(mine.every((e) => e.status === 200 && e.complete === true && e.source === 'local' && e.bytes === 7)).toBe(true);
    expect(lines.join('\n')).not.toContain(new URL(l.url).searchParams.get('token')!);
    await t.dispose();
  });
});

// Issue 16, item 5: link expiry and secrets at rest. The link's row is the authority on its expiry
// (a token re-signed with a later `exp` opens nothing once the row has expired); the data dir is
// 0700 and every file Triplicate keeps in it 0600 whatever the umask; the webhook address, whose
// path or query is often its secret, is masked in the API and in the diagnostics zip.
import Database from 'better-sqlite3';
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import { ApiClient } from '../../src/shared/client';
import { startEngine, waitFor, waitForStatus, writeFile } from '../helpers/engine';
import { useTeardown } from '../helpers/teardown';

const POSIX = process.platform !== 'win32';
const WEBHOOK = 'https://ops:hunter2@hooks.example.org/services/T01/B02/SECRETPATH?key=QUERYKEY';

const td = useTeardown();
let umask: number | undefined;
afterEach(() => {
  if (umask !== undefined) process.umask(umask);
  umask = undefined;
});

async function setup(prepare?: (dataDir: string) => void) {
  const base = td.dir('trip-sec-rest-');
  const media = join(base, 'media');
  writeFile(media, 'a.jpg', 'a photo');
  const dataDir = join(base, 'data');
  mkdirSync(dataDir, { recursive: true, mode: 0o755 });
  prepare?.(dataDir);
  const engine = td.add(await startEngine(dataDir, { roots: [{ id: 'media', label: 'Media', path: media }] }));
  await waitForStatus(engine, (s) => s.total_files === 1, 30_000, 'the photo cataloged');
  const api = new ApiClient({ baseUrl: engine.endpoints.adminUrl!, token: engine.token });
  return { engine, api, dataDir, download: engine.endpoints.downloadUrl! };
}

describe('link expiry', () => {
  it("follows the link's row: an expired link re-signed with the catalog's key opens nothing", async () => {
    const { api, dataDir, download } = await setup();
    const link = await api.call('createLink', { body: { key: 'media/a.jpg', ttl_seconds: 2 } });
    const u = new URL(link.url);
    expect((await fetch(`${download}${u.pathname}${u.search}`)).status).toBe(200);
    await waitFor(() => Date.now() > link.expires_at + 500, 10_000, 'the link to expire');
    expect((await fetch(`${download}${u.pathname}${u.search}`)).status).toBe(401);
    // Someone with the catalog (a backup of the data dir, a careless copy) signs the same link anew.
    const db = new Database(join(dataDir, 'catalog.db'), { readonly: true, fileMustExist: true });
    const secret = db.prepare<[], { value: string }>("SELECT value FROM kv WHERE key = 'links.secret'").get()!.value;
    db.close();
    const now = Math.floor(Date.now() / 1000);
    const forged = await new SignJWT({})
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setSubject('media/a.jpg')
      .setJti(link.id)
      .setIssuedAt(now)
      .setNotBefore(now - 60)
      .setExpirationTime(now + 3600)
      .sign(Buffer.from(secret, 'base64url'));
    const r = await fetch(`${download}${u.pathname}?token=${forged}`);
    expect(r.status).toBe(401);
    expect(((await r.json()) as { code: string }).code).toBe('link_expired');
  });
});

describe.skipIf(!POSIX)('the data dir at rest', () => {
  it('is 0700 with every file 0600, whatever the umask, and tightens what an older version left open', async () => {
    umask = process.umask(0o022);
    const { engine, api, dataDir, download } = await setup((d) => {
      // as an older version left them: readable by everyone
      mkdirSync(join(d, 'logs'), { mode: 0o755 });
      writeFileSync(join(d, 'logs', 'engine.log'), 'old line\n', { mode: 0o644 });
      chmodSync(join(d, 'logs', 'engine.log'), 0o644);
    });
    // make the logs and the catalog's WAL exist
    const link = await api.call('createLink', { body: { key: 'media/a.jpg', ttl_seconds: 60 } });
    const u = new URL(link.url);
    expect((await fetch(`${download}${u.pathname}${u.search}`)).status).toBe(200);
    await fetch(`${engine.endpoints.adminUrl}/api/admin/media-sync/status`, { headers: { authorization: `Bearer ${engine.token}` } });
    await waitFor(() => readdirSync(join(dataDir, 'logs')).includes('download-access.jsonl'), 10_000, 'the download log');
    const want = ['config.json', 'admin-token', 'catalog.db', 'catalog.db-wal', 'catalog.db-shm', 'engine.lock', 'logs/engine.log', 'logs/admin-access.jsonl', 'logs/download-access.jsonl'];
    const seen = new Set<string>();
    const walk = (dir: string, rel: string) => {
      for (const d of readdirSync(dir, { withFileTypes: true })) {
        const r = rel ? `${rel}/${d.name}` : d.name;
        const mode = statSync(join(dir, d.name)).mode & 0o777;
        if (d.isDirectory()) {
          expect(mode.toString(8), r).toBe('700');
          walk(join(dir, d.name), r);
        } else {
          seen.add(r);
          expect(mode.toString(8), r).toBe('600');
        }
      }
    };
    expect((statSync(dataDir).mode & 0o777).toString(8)).toBe('700');
    walk(dataDir, '');
    for (const f of want) expect(seen, f).toContain(f);
  });
});

describe('the webhook address', () => {
  it('is masked in the API and the diagnostics zip, and a masked value sent back keeps the stored one', async () => {
    const { engine, api } = await setup();
    await api.call('updateSettings', { body: { notifications: { webhookUrl: WEBHOOK } } });
    expect(engine.cfg.notifications.webhookUrl).toBe(WEBHOOK);
    const shown = (await api.call('getConfig')).notifications.webhookUrl!;
    for (const secret of ['hunter2', 'SECRETPATH', 'QUERYKEY', 'T01/B02']) expect(shown).not.toContain(secret);
    expect(shown).toContain('hooks.example.org'); // the operator still sees where messages go
    // a form that sends the shown value back unchanged keeps the real address
    await api.call('updateSettings', { body: { notifications: { webhookUrl: shown } } });
    expect(engine.cfg.notifications.webhookUrl).toBe(WEBHOOK);
    // the diagnostics zip
    const zip = Buffer.from(await (await fetch(`${engine.endpoints.adminUrl}/api/admin/diagnostics`, { headers: { authorization: `Bearer ${engine.token}` } })).arrayBuffer());
    const dir = td.dir('trip-sec-zip-');
    writeFileSync(join(dir, 'd.zip'), zip);
    const unzip = spawnSync('unzip', ['-p', join(dir, 'd.zip')], { encoding: 'latin1', maxBuffer: 64 * 1024 * 1024 });
    if (unzip.error) throw new Error(`unzip is needed for this test: ${unzip.error.message}`);
    expect(unzip.stdout).toContain('"siteName"'); // the config is in it
    expect(unzip.stdout).toContain('hooks.example.org');
    for (const secret of ['hunter2', 'SECRETPATH', 'QUERYKEY', engine.token]) expect(unzip.stdout).not.toContain(secret);
  });
});

// Who can open a link (issue #17, item 1): the operator chooses this computer only, the local
// network, or the internet through the tunnel; the download server is bound again without a
// restart of the engine, every link says who can open it, and a link that cannot work is never
// handed out. 127.0.0.2 stands for "another address of this computer": it reaches a server bound
// to 0.0.0.0 but not one bound to 127.0.0.1, and it never leaves the machine.
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LINK_REACH_WORDS, type LinkInfo, type SharingStatus } from '../../src/shared/api';
import { ApiClient, ApiError } from '../../src/shared/client';
import type { Engine } from '../../src/main/engine/engine';
import { silenceConsole } from '../../src/main/engine/log';
import { cleanup, startEngine, tempDir, waitFor, writeFile } from '../helpers/engine';

const FAKE = join(__dirname, '..', 'fixtures', 'fake-cloudflared.mjs');
const dataDir = tempDir('trip-reach-');
const media = tempDir('trip-reach-media-');
let engine: Engine;
let api: ApiClient;
let port: number;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

/** GET a link's path and query from one address of this computer: the status, or the connection error. */
async function fetchVia(host: string, l: LinkInfo): Promise<number | string> {
  const u = new URL(l.url);
  try {
    const r = await fetch(`http://${host}:${port}${u.pathname}${u.search}`, { signal: AbortSignal.timeout(10_000) });
    await r.arrayBuffer();
    return r.status;
  } catch (e) {
    return String((e as { cause?: { code?: string } }).cause?.code ?? e);
  }
}

async function apiError(p: Promise<unknown>): Promise<ApiError> {
  const e = await p.then(
    () => null,
    (x: unknown) => x,
  );
  if (!(e instanceof ApiError)) throw new Error(`expected the call to fail with an ApiError, got ${String(e)}`);
  return e;
}

const sharing = () => api.call('sharingStatus', {}) as Promise<SharingStatus>;
const link = (key = 'media/a.txt') => api.call('createLink', { body: { key, ttl_seconds: 3600 } });

beforeAll(async () => {
  port = await freePort();
  writeFile(media, 'a.txt', 'file a\n');
  engine = await startEngine(
    dataDir,
    { roots: [{ id: 'media', label: 'Media', path: media }], server: { downloadHost: '127.0.0.1', downloadPort: port }, tunnel: { mode: 'off', cloudflaredPath: join(dataDir, 'no-cloudflared-here') } },
    { downloadPort: undefined },
  );
  silenceConsole();
  api = new ApiClient({ baseUrl: engine.endpoints.adminUrl!, token: engine.token });
  await waitFor(() => !!engine.catalog.fileByPath('media', 'a.txt'), 15_000, 'a.txt scanned');
}, 60_000);

afterAll(async () => {
  await engine?.stop();
  cleanup(dataDir, media);
});

describe('who can open a link', () => {
  it('by default a link works only on this computer, and says so', async () => {
    const s = await sharing();
    expect(s.reach).toBe('this-computer');
    expect(s.listening).toBe(`127.0.0.1:${port}`);
    const l = await link();
    expect(l.reach).toBe('this-computer');
    expect(new URL(l.url).hostname).toBe('127.0.0.1');
    expect(LINK_REACH_WORDS[l.reach]).toBe('Only on this computer');
    expect(await fetchVia('127.0.0.1', l)).toBe(200);
    expect(await fetchVia('127.0.0.2', l)).toBe('ECONNREFUSED'); // another address of this computer does not reach it
  });

  it('"local network" listens beyond loopback at once, without a restart; every link (old ones too) says who can open it', async () => {
    const before = await link();
    const adminUrl = engine.endpoints.adminUrl;
    const s = await api.call('setLinkReach', { body: { reach: 'local-network' } });
    expect(s.reach).toBe('local-network');
    expect(s.listening).toBe(`0.0.0.0:${port}`);
    expect(engine.cfg.server.downloadHost).toBe('0.0.0.0');
    expect(engine.endpoints.adminUrl).toBe(adminUrl); // the same engine, still answering
    const l = await link();
    expect(l.reach).toBe('local-network');
    expect(LINK_REACH_WORDS[l.reach]).toBe('Anyone on the local network with the link');
    expect(new URL(l.url).hostname).not.toBe('127.0.0.1');
    expect(await fetchVia('127.0.0.2', l)).toBe(200);
    expect(await fetchVia('127.0.0.1', l)).toBe(200);
    const listed = (await api.call('listLinks', {})).find((x) => x.id === before.id)!;
    expect(listed.reach).toBe('local-network');
    expect(new URL(listed.url).hostname).toBe(new URL(l.url).hostname);
  });

  it('"local network" links use server.publicBaseUrl when it is set', async () => {
    await engine.applyConfig({ ...engine.cfg, server: { ...engine.cfg.server, publicBaseUrl: 'http://backup.museum.lan:8766' } });
    try {
      const l = await link();
      expect(l.url.startsWith('http://backup.museum.lan:8766/files/media/a.txt?token=')).toBe(true);
      expect(l.reach).toBe('local-network');
    } finally {
      await engine.applyConfig({ ...engine.cfg, server: { ...engine.cfg.server, publicBaseUrl: undefined } });
    }
  });

  it('back to "this computer": loopback only again', async () => {
    const s = await api.call('setLinkReach', { body: { reach: 'this-computer' } });
    expect(s.reach).toBe('this-computer');
    expect(engine.cfg.server.downloadHost).toBe('127.0.0.1');
    const l = await link();
    expect(await fetchVia('127.0.0.1', l)).toBe(200);
    expect(await fetchVia('127.0.0.2', l)).toBe('ECONNREFUSED');
  });

  it('a port taken on the other addresses: refused with a sentence, nothing changes, links still work', async () => {
    const blocker: Server = createServer();
    await new Promise<void>((r) => blocker.listen(port, '127.0.0.2', () => r()));
    try {
      const l = await link();
      const e = await apiError(api.call('setLinkReach', { body: { reach: 'local-network' } }));
      expect(e.status).toBe(409);
      expect(e.message).toMatch(new RegExp(`^Links cannot be opened on the local network: port ${port} is already used by another program on this computer\\.`));
      expect(engine.cfg.server.downloadHost).toBe('127.0.0.1');
      expect((await sharing()).reach).toBe('this-computer');
      expect(await fetchVia('127.0.0.1', l)).toBe(200);
    } finally {
      await new Promise<void>((r) => blocker.close(() => r()));
    }
  });

  it('refuses an unknown choice with a sentence', async () => {
    const e = await apiError(api.call('setLinkReach', { body: { reach: 'everyone' as never } }));
    expect(e.status).toBe(400);
    expect(e.message).toMatch(/Choose who can open links: this computer only, the local network, or the internet/);
  });

  it('"internet" without a tunnel that is up: no link is handed out, the listed ones say why', async () => {
    const old = await link();
    const s = await api.call('setLinkReach', { body: { reach: 'internet', tunnel: { mode: 'quick' } } });
    expect(s.reach).toBe('internet');
    expect(engine.cfg.tunnel.mode).toBe('quick');
    expect(engine.cfg.server.downloadHost).toBe('127.0.0.1'); // the tunnel reaches it on loopback
    await waitFor(async () => (await api.call('tunnelStatus', {})).state === 'missing', 15_000, 'the tunnel missing its program');
    const st = await sharing();
    expect(st.problem).toMatch(/tunnel/i);
    const e = await apiError(link());
    expect(e.status).toBe(503);
    expect(e.message).toMatch(/^No link was made. The tunnel to the internet is not up, so a link would not open\./);
    const listed = (await api.call('listLinks', {})).find((x) => x.id === old.id)!;
    expect(listed.reach).toBe('internet');
    expect(listed.url).toBe('');
    expect(listed.unavailable).toMatch(/^This link cannot be opened now\. The tunnel to the internet is not up/);
  });

  it('"internet" with the tunnel up: links use its public address and say anyone can open them', async () => {
    await engine.applyConfig({ ...engine.cfg, tunnel: { ...engine.cfg.tunnel, cloudflaredPath: FAKE } }, { programPaths: true });
    await waitFor(async () => (await api.call('tunnelStatus', {})).state === 'running', 20_000, 'the quick tunnel running');
    const pub = (await api.call('tunnelStatus', {})).public_url!;
    const l = await link();
    expect(l.reach).toBe('internet');
    expect(LINK_REACH_WORDS[l.reach]).toBe('Anyone on the internet with the link');
    expect(l.url.startsWith(`${pub}/files/media/a.txt?token=`)).toBe(true);
    expect((await sharing()).link_base).toBe(pub);
    // and choosing this computer again turns the tunnel off
    const s = await api.call('setLinkReach', { body: { reach: 'this-computer' } });
    expect(s.reach).toBe('this-computer');
    expect(engine.cfg.tunnel.mode).toBe('off');
    await waitFor(async () => (await api.call('tunnelStatus', {})).state === 'stopped', 15_000, 'the tunnel stopped');
  }, 60_000);
});

// The cloudflared supervisor, driven through the admin API of a real engine. cloudflared itself
// cannot be installed here: test/fixtures/fake-cloudflared.mjs stands in for it, printing what
// cloudflared prints (the quick-tunnel banner, "Registered tunnel connection") and crashing on request.
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EngineEvent, TunnelStatus } from '../../src/shared/api';
import { ApiClient, ApiError } from '../../src/shared/client';
import type { Engine } from '../../src/main/engine/engine';
import { silenceConsole } from '../../src/main/engine/log';
import { findCloudflared, installHint, normalizeHostname } from '../../src/main/engine/tunnel/supervisor';
import type { TunnelSupervisor } from '../../src/main/engine/tunnel/supervisor';
import { cleanup, startEngine, tempDir, waitFor } from '../helpers/engine';

const FAKE = join(__dirname, '..', 'fixtures', 'fake-cloudflared.mjs');

let engine: Engine;
let api: ApiClient;
let dataDir: string;
let starts: string;
const events: TunnelStatus[] = [];

interface Start {
  argv: string[];
  token_env: string | null;
  pid: number;
}
const startsSoFar = (): (Start & { at: number })[] => {
  try {
    return readFileSync(starts, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Start & { at: number });
  } catch {
    return [];
  }
};

const status = () => api.call('tunnelStatus', {});
async function waitState(pred: (s: TunnelStatus) => boolean, what: string, ms = 15_000): Promise<TunnelStatus> {
  let last: TunnelStatus | undefined;
  await waitFor(async () => pred((last = await status())), ms, `${what} (last: ${JSON.stringify(last && { ...last, last_lines: last.last_lines.slice(-3) })})`);
  return last!;
}

beforeAll(async () => {
  dataDir = tempDir('trip-tunnel-');
  starts = join(dataDir, 'fake-starts.jsonl');
  process.env.FAKE_CLOUDFLARED_LOG = starts;
  engine = await startEngine(dataDir, { tunnel: { mode: 'off', cloudflaredPath: FAKE }, server: { downloadHost: '127.0.0.1' } });
  silenceConsole();
  engine.bus.on((e: EngineEvent) => {
    if (e.type === 'tunnel') events.push(e.tunnel);
  });
  api = new ApiClient({ baseUrl: engine.endpoints.adminUrl!, token: engine.token });
}, 60_000);

afterAll(async () => {
  await engine?.stop();
  cleanup(dataDir);
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('tunnel supervisor', () => {
  it('is stopped while the mode is off', async () => {
    expect(await status()).toEqual({ mode: 'off', state: 'stopped', last_lines: [] });
  });

  it('quick tunnel: the trycloudflare.com address is parsed from the output, and links use it', async () => {
    const s0 = await api.call('setTunnel', { body: { mode: 'quick' } });
    expect(['starting', 'running']).toContain(s0.state);
    const s = await waitState((x) => x.state === 'running', 'quick tunnel running');
    expect(s.public_url).toMatch(/^https:\/\/[a-z]+(-[a-z]+){3}\.trycloudflare\.com$/);
    expect(s.message).toMatch(/changes whenever the tunnel restarts/);
    expect(s.last_lines.some((l) => l.includes('Your quick Tunnel has been created'))).toBe(true);
    const [first] = startsSoFar();
    const port = new URL(engine.endpoints.downloadUrl!).port;
    expect(first!.argv).toEqual(['tunnel', '--no-autoupdate', '--url', `http://127.0.0.1:${port}`]);
    expect(events.some((e) => e.state === 'running' && e.public_url === s.public_url)).toBe(true);
    // links now point at the tunnel
    const cfg = engine.cfg;
    const media = tempDir('trip-tunnel-media-');
    writeFileSync(join(media, 'a.txt'), 'a');
    await engine.applyConfig({ ...cfg, roots: [{ id: 'media', label: 'M', path: media, include: [], exclude: [], enabled: true, replaceOriginalAfterTranscode: false }] });
    await waitFor(() => !!engine.catalog.fileByPath('media', 'a.txt'), 15_000, 'a.txt scanned');
    const link = await api.call('createLink', { body: { key: 'media/a.txt', ttl_seconds: 60 } });
    expect(link.url.startsWith(`${s.public_url}/files/media/a.txt?token=`)).toBe(true);
    cleanup(media);
  });

  it('restarts cloudflared after a crash, with growing waits, and gets a new address', async () => {
    const before = await status();
    const pid = engine.service<TunnelSupervisor>('tunnel')!.pid()!;
    expect(alive(pid)).toBe(true);
    const n0 = startsSoFar().length;
    process.kill(pid, 'SIGKILL');
    const r = await waitState((x) => x.state === 'restarting', 'restarting after SIGKILL', 5_000);
    expect(r.message).toMatch(/was stopped by SIGKILL; Triplicate starts it again in 1 s/);
    expect(r.public_url).toBeUndefined();
    // the next two starts crash at once: waits of 2 s and 5 s follow the first 1 s
    process.env.FAKE_CLOUDFLARED_CRASH_RUNS = String(n0 + 2);
    const up = await waitState((x) => x.state === 'running', 'running again', 20_000);
    delete process.env.FAKE_CLOUDFLARED_CRASH_RUNS;
    expect(up.public_url).not.toBe(before.public_url);
    const all = startsSoFar();
    expect(all.length).toBe(n0 + 3);
    expect(all[n0 + 1]!.at - all[n0]!.at).toBeGreaterThanOrEqual(1_900);
    expect(all[n0 + 2]!.at - all[n0 + 1]!.at).toBeGreaterThanOrEqual(4_900);
    expect(engine.service<TunnelSupervisor>('tunnel')!.restarts).toBeGreaterThanOrEqual(3);
    expect(events.filter((e) => e.state === 'restarting').length).toBeGreaterThanOrEqual(3);
    const msgs = events.filter((e) => e.state === 'restarting').map((e) => e.message ?? '');
    expect(msgs.some((m) => /again in 2 s\. Its last message: .*crash requested by the test/.test(m))).toBe(true);
    expect(msgs.some((m) => /again in 5 s/.test(m))).toBe(true);
  }, 30_000);

  it('a quick tunnel that cannot reach trycloudflare.com is not mistaken for running', async () => {
    process.env.FAKE_CLOUDFLARED_QUICK_FAIL = '1';
    try {
      await api.call('setTunnel', { body: { mode: 'off' } });
      await api.call('setTunnel', { body: { mode: 'quick' } }); // a fresh start: the backoff starts over
      const s = await waitState((x) => x.state === 'restarting' && /api\.trycloudflare\.com/.test(x.message ?? ''), 'the quick tunnel failing', 20_000);
      expect(s.public_url).toBeUndefined();
    } finally {
      delete process.env.FAKE_CLOUDFLARED_QUICK_FAIL;
    }
  }, 30_000);

  it('named tunnel: the token goes through the environment, never the command line or the log; public URL from the hostname', async () => {
    const e = await api.call('setTunnel', { body: { mode: 'named' } }).catch((x: ApiError) => x);
    expect(e).toBeInstanceOf(ApiError);
    expect((e as ApiError).message).toMatch(/needs its token/);
    const n0 = startsSoFar().length;
    const SECRET = 'eyJhIjoiNWFiNGU5Z-secret-tunnel-token';
    await api.call('setTunnel', { body: { mode: 'named', token: SECRET, hostname: 'files.example.org' } });
    const s = await waitState((x) => x.mode === 'named' && x.state === 'running', 'named tunnel running');
    expect(s.public_url).toBe('https://files.example.org');
    const started = startsSoFar().slice(n0);
    expect(started.at(-1)!.argv).toEqual(['tunnel', '--no-autoupdate', 'run']);
    expect(started.at(-1)!.token_env).toBe(SECRET);
    expect(JSON.stringify(s)).not.toContain(SECRET);
    expect(s.last_lines.some((l) => /Registered tunnel connection connIndex=3/.test(l))).toBe(true);
    // the config API shows it masked, and it is kept when the form sends the mask back
    const cfg = await api.call('getConfig', {});
    expect(cfg.tunnel.token).not.toContain('secret');
    await api.call('setTunnel', { body: { mode: 'named', token: cfg.tunnel.token, hostname: 'https://files.example.org/' } });
    expect(engine.cfg.tunnel.token).toBe(SECRET);
    expect(readFileSync(join(dataDir, 'logs', 'engine.log'), 'utf8')).not.toContain(SECRET);
  }, 30_000);

  it('a bad token: restarting, with cloudflared\'s own words in the message', async () => {
    await api.call('setTunnel', { body: { mode: 'named', token: 'bad-token' } });
    const s = await waitState((x) => x.state === 'restarting', 'restarting with a bad token');
    expect(s.message).toMatch(/Provided Tunnel token is not valid/);
  });

  it('off stops cloudflared; engine.stop() leaves no process behind', async () => {
    await api.call('setTunnel', { body: { mode: 'quick' } });
    await waitState((x) => x.state === 'running', 'quick running');
    const pid = engine.service<TunnelSupervisor>('tunnel')!.pid()!;
    const off = await api.call('setTunnel', { body: { mode: 'off' } });
    expect(off.state).toBe('stopped');
    await waitFor(() => !alive(pid), 5_000, 'cloudflared to exit');
    await api.call('setTunnel', { body: { mode: 'quick' } });
    await waitState((x) => x.state === 'running', 'quick running');
    const pid2 = engine.service<TunnelSupervisor>('tunnel')!.pid()!;
    await engine.stop();
    expect(alive(pid2)).toBe(false);
    engine = await startEngine(dataDir); // afterAll stops it
    silenceConsole();
  });

  it('missing binary: state "missing" with install steps for each OS', async () => {
    await engine.applyConfig({ ...engine.cfg, tunnel: { ...engine.cfg.tunnel, mode: 'quick', cloudflaredPath: join(dataDir, 'nope', 'cloudflared') } }, { programPaths: true });
    api = new ApiClient({ baseUrl: engine.endpoints.adminUrl!, token: engine.token });
    const s = await waitState((x) => x.state === 'missing', 'missing');
    expect(s.message).toContain(`was not found at ${join(dataDir, 'nope', 'cloudflared')}`);
    expect(s.message).toContain('winget install --id Cloudflare.cloudflared');
    expect(s.message).toContain('brew install cloudflared');
    expect(s.message).toContain('cloudflared-linux-amd64.deb');
    expect(s.message).toContain('https://github.com/cloudflare/cloudflared/releases/latest');
  });
});

describe('finding cloudflared', () => {
  it('on the PATH, .exe on Windows, executables only', () => {
    const dir = tempDir('trip-cfd-');
    try {
      const bin = join(dir, 'bin');
      mkdirSync(bin);
      expect(findCloudflared(undefined, { PATH: bin }, 'linux')).toBe(null);
      writeFileSync(join(bin, 'cloudflared'), '#!/bin/sh\n');
      chmodSync(join(bin, 'cloudflared'), 0o644);
      expect(findCloudflared(undefined, { PATH: bin }, 'linux')).toBe(null); // not executable
      chmodSync(join(bin, 'cloudflared'), 0o755);
      expect(findCloudflared(undefined, { PATH: bin }, 'linux')).toBe(join(bin, 'cloudflared'));
      writeFileSync(join(bin, 'cloudflared.exe'), 'MZ');
      expect(findCloudflared(undefined, { Path: bin }, 'win32')).toBe(join(bin, 'cloudflared.exe'));
      expect(findCloudflared(join(bin, 'cloudflared'), {}, 'win32')).toBe(join(bin, 'cloudflared'));
      expect(findCloudflared(join(dir, 'missing'), { PATH: bin }, 'linux')).toBe(null); // a configured path is not second-guessed
    } finally {
      cleanup(dir);
    }
  });

  it('install steps lead with the current OS', () => {
    expect(installHint('win32')).toMatch(/^on Windows, open a terminal and run: winget install --id Cloudflare\.cloudflared/);
    expect(installHint('darwin')).toMatch(/^on macOS, run: brew install cloudflared/);
    expect(installHint('linux')).toMatch(/^on Debian or Ubuntu/);
    expect(installHint('freebsd')).toMatch(/^on Debian or Ubuntu/);
  });

  it('normalizes the public hostname', () => {
    expect(normalizeHostname('files.example.org')).toBe('https://files.example.org');
    expect(normalizeHostname('https://files.example.org/')).toBe('https://files.example.org');
    expect(normalizeHostname(' ')).toBeUndefined();
  });
});

// Issue 16, item 2: no web page can drive the console. A page the operator opens can send requests
// to the admin port (CORS, CSRF) or rename itself to it (DNS rebinding: its own name resolving to
// 127.0.0.1); neither may read an answer, sign in, or change a setting. Program paths are never
// set over HTTP, a guesser cannot lock the operator out, and the ready line does not carry the token.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, expect, it } from 'vitest';
import { hashPassword } from '../../src/main/engine/http/admin';
import type { Engine } from '../../src/main/engine/engine';
import { startEngine, writeConfig, writeFile } from '../helpers/engine';
import { useTeardown } from '../helpers/teardown';

const BIN = join(import.meta.dirname, '..', '..', 'bin', 'triplicate.mjs');
const PASSWORD = 'correct horse battery';

const td = useTeardown();

async function setup(): Promise<{ engine: Engine; port: number; origin: string }> {
  const base = td.dir('trip-sec-admin-');
  const media = join(base, 'media');
  writeFile(media, 'a.jpg', 'photo');
  const engine = td.add(
    await startEngine(join(base, 'data'), {
      roots: [{ id: 'media', label: 'Media', path: media }],
      server: { adminPasswordHash: hashPassword(PASSWORD) },
    }),
  );
  const origin = engine.endpoints.adminUrl!;
  return { engine, port: Number(new URL(origin).port), origin };
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One request with exactly these headers (fetch would set Host and Origin itself). */
function send(port: number, method: string, path: string, headers: Record<string, string>, body?: string, localAddress = '127.0.0.1'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers: { host: `127.0.0.1:${port}`, ...headers }, localAddress, setHost: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('the admin port against web pages', () => {
  it('gives no page of another origin the right to read its answers', async () => {
    const { engine, port } = await setup();
    const evil = { origin: 'https://evil.example' };
    const health = await send(port, 'GET', '/api/health', evil);
    expect(health.status).toBe(200);
    expect(health.headers['access-control-allow-origin']).toBeUndefined();
    const status = await send(port, 'GET', '/api/admin/media-sync/status', { ...evil, authorization: `Bearer ${engine.token}` });
    expect(status.headers['access-control-allow-origin']).toBeUndefined();
    // the preflight a page needs before it may send JSON, or a token header
    const pre = await send(port, 'OPTIONS', '/api/login', { ...evil, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' });
    expect(pre.headers['access-control-allow-origin']).toBeUndefined();
    expect(pre.headers['access-control-allow-headers']).toBeUndefined();
  });

  it('signs in only with a JSON body, and never for a page of another origin', async () => {
    const { engine, port, origin } = await setup();
    const body = JSON.stringify({ password: PASSWORD });
    // A form or text/plain body needs no preflight: a page could send it blind.
    for (const type of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
      const r = await send(port, 'POST', '/api/login', { 'content-type': type }, body);
      expect(r.status, type).toBe(415);
      expect(r.body).not.toContain(engine.token);
      expect(JSON.parse(r.body).error).toMatch(/JSON/);
    }
    const noType = await send(port, 'POST', '/api/login', {}, body);
    expect(noType.status).toBe(415);
    const foreign = await send(port, 'POST', '/api/login', { 'content-type': 'application/json', origin: 'https://evil.example' }, body);
    expect(foreign.status).toBe(403);
    expect(foreign.body).not.toContain(engine.token);
    expect(JSON.parse(foreign.body).error).toMatch(/another web site|evil\.example/);
    // the console itself (same origin) and a script without a browser (no Origin) still sign in
    const own = await send(port, 'POST', '/api/login', { 'content-type': 'application/json', origin }, body);
    expect(own.status).toBe(200);
    expect(JSON.parse(own.body).token).toBe(engine.token);
    const script = await send(port, 'POST', '/api/login', { 'content-type': 'application/json; charset=utf-8' }, body);
    expect(script.status).toBe(200);
  });

  it('refuses state changes from a page of another origin even with the token', async () => {
    const { engine, port } = await setup();
    const r = await send(port, 'POST', '/api/admin/pause', { 'content-type': 'application/json', origin: 'https://evil.example', authorization: `Bearer ${engine.token}` }, '{}');
    expect(r.status).toBe(403);
    expect(engine.paused).toBe(false);
  });

  it('answers 421 to a Host it does not serve (DNS rebinding), on the API and the console page', async () => {
    const { engine, port } = await setup();
    const auth = { authorization: `Bearer ${engine.token}` };
    for (const host of [`evil.example:${port}`, 'evil.example', `127.0.0.1.evil.example:${port}`]) {
      const api = await send(port, 'GET', '/api/admin/media-sync/status', { ...auth, host });
      expect(api.status, host).toBe(421);
      expect(JSON.parse(api.body).error).toMatch(/address/);
      const page = await send(port, 'GET', '/', { host });
      expect(page.status, host).toBe(421);
      const login = await send(port, 'POST', '/api/login', { host, 'content-type': 'application/json' }, JSON.stringify({ password: PASSWORD }));
      expect(login.status, host).toBe(421);
      expect(login.body).not.toContain(engine.token);
    }
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, `LOCALHOST:${port}`]) {
      const ok = await send(port, 'GET', '/api/admin/media-sync/status', { ...auth, host });
      expect(ok.status, host).toBe(200);
    }
  });

  it('never takes a program path over HTTP', async () => {
    const { engine, port } = await setup();
    const before = readFileSync(engine.configPath, 'utf8');
    const h = { 'content-type': 'application/json', authorization: `Bearer ${engine.token}` };
    for (const media of [{ ffprobePath: '/tmp/x.sh' }, { ffmpegPath: '/tmp/x.sh' }, { crf: 20, ffmpegPath: '/tmp/x.sh' }]) {
      const r = await send(port, 'PATCH', '/api/admin/settings', h, JSON.stringify({ media }));
      expect(r.status, JSON.stringify(media)).toBe(403);
      expect(JSON.parse(r.body).error).toMatch(/config\.json/);
    }
    const t = await send(port, 'POST', '/api/admin/tunnel', h, JSON.stringify({ mode: 'off', cloudflaredPath: '/tmp/x.sh' }));
    expect(t.status).toBe(403);
    expect(engine.cfg.media.ffprobePath).toBeUndefined();
    expect(engine.cfg.media.ffmpegPath).toBeUndefined();
    expect(engine.cfg.tunnel.cloudflaredPath).toBeUndefined();
    expect(readFileSync(engine.configPath, 'utf8')).toBe(before);
    // the same request without the program path is fine
    const ok = await send(port, 'PATCH', '/api/admin/settings', h, JSON.stringify({ media: { crf: 20 } }));
    expect(ok.status).toBe(200);
    expect(engine.cfg.media.crf).toBe(20);
  });

  it('locks out a password guesser, not the operator', async () => {
    const { engine, port } = await setup();
    const h = { 'content-type': 'application/json' };
    let locked = false;
    for (let i = 0; i < 15 && !locked; i++) {
      const r = await send(port, 'POST', '/api/login', h, JSON.stringify({ password: `guess ${i}` }), '127.0.0.2');
      expect([401, 429]).toContain(r.status);
      locked = r.status === 429;
    }
    expect(locked).toBe(true);
    // the guesser stays locked out, even with the right password…
    expect((await send(port, 'POST', '/api/login', h, JSON.stringify({ password: PASSWORD }), '127.0.0.2')).status).toBe(429);
    // …while the operator, at another address, signs in
    const op = await send(port, 'POST', '/api/login', h, JSON.stringify({ password: PASSWORD }), '127.0.0.3');
    expect(op.status).toBe(200);
    expect(JSON.parse(op.body).token).toBe(engine.token);
  });
});

describe('the ready line', () => {
  it('does not print the admin token (stdout goes to the journal); it names the token file', async () => {
    const base = td.dir('trip-sec-ready-');
    const dataDir = join(base, 'data');
    writeConfig(dataDir, {});
    const child = spawn(process.execPath, [BIN, 'serve', '--data-dir', dataDir, '--no-scan', '--no-watch'], { stdio: ['ignore', 'pipe', 'pipe'] });
    td.add(child);
    let out = '';
    let err = '';
    child.stderr!.on('data', (d) => (err += d));
    const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
      createInterface({ input: child.stdout! }).on('line', (l) => {
        out += `${l}\n`;
        const j = JSON.parse(l) as Record<string, unknown>;
        if (j.event === 'ready') resolve(j);
      });
      child.once('exit', (code) => reject(new Error(`serve exited ${code}: ${err}`)));
    });
    const token = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
    expect(token.length).toBeGreaterThanOrEqual(32);
    expect(ready.token).toBeUndefined();
    expect(ready.tokenFile).toBe(join(dataDir, 'admin-token'));
    expect(out + err).not.toContain(token);
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    expect(out + err).not.toContain(token);
  });
});

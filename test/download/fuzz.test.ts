// More than a thousand generated bad requests against the real download server: path traversal
// in every spelling, symlinks out of the folder, forged / expired / not-yet-valid / revoked /
// out-of-scope tokens (alg none, other algorithms, wrong key, tampered claims), malformed Range
// headers, huge headers and URLs, odd methods and garbage. Each gets the right 4xx, no byte of a
// file it may not read, and the server keeps serving, with no file descriptor or socket left open.
import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SignJWT, base64url } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DownloadServer } from '../../src/main/engine/http/download/server';
import { bytes, cleanup, sha256, tempDir, waitFor } from '../helpers/engine';
import { raw, setupSharing, type RawResponse, type Setup } from './helpers';

const PRIVATE = `PRIVATE-${randomBytes(8).toString('hex')}`;
const OUTSIDE = `OUTSIDE-${randomBytes(8).toString('hex')}`;
const OK = bytes(50_000, 11);
const A = Buffer.from('in scope: a.txt\n');
const MARKERS = [PRIVATE, OUTSIDE, 'root:x:0:0'];

let t: Setup;
let outside: string;
let T = ''; // prefix link media/public/
let F = ''; // file link media/public/a.txt
const bad: Record<string, string> = {};

function tokenOf(url: string): string {
  return new URL(url).searchParams.get('token')!;
}

beforeAll(async () => {
  t = await setupSharing(
    { 'public/ok.jpg': OK, 'public/a.txt': A, 'private/secret.txt': PRIVATE, 'public2/secret.txt': PRIVATE, 'publicity.txt': PRIVATE },
    { targets: 1 },
  );
  outside = tempDir('trip-outside-');
  writeFileSync(join(outside, 'secret.txt'), OUTSIDE);
  mkdirSync(join(outside, 'dir'));
  writeFileSync(join(outside, 'dir', 'secret.txt'), OUTSIDE);
  // symlinks inside the shared folder that lead out of it
  symlinkSync(join(outside, 'secret.txt'), join(t.media, 'public', 'escape.txt'));
  symlinkSync(join(outside, 'dir'), join(t.media, 'public', 'linkdir'));
  symlinkSync('/etc/passwd', join(t.media, 'public', 'passwd'));

  T = tokenOf((await t.link('media/public/')).url);
  F = tokenOf((await t.link('media/public/a.txt')).url);
  const secret = new Uint8Array(Buffer.from(t.engine.catalog.kvGet('links.secret')!, 'base64url'));
  const now = Math.floor(Date.now() / 1000);
  const row = await t.link('media/public/', 7200);
  const revoked = await t.link('media/public/', 7200);
  await t.api.call('revokeLink', { params: { id: revoked.id } });
  bad.revoked = tokenOf(revoked.url);
  const sign = (claims: Record<string, unknown>, key: Uint8Array = secret, alg = 'HS256') => new SignJWT(claims).setProtectedHeader({ alg, typ: 'JWT' }).sign(key);
  const good = { sub: 'media/public/', jti: row.id, iat: now, nbf: now, exp: now + 3600 };
  bad.expired = await sign({ ...good, iat: now - 7200, nbf: now - 7200, exp: now - 60 });
  bad.notYet = await sign({ ...good, nbf: now + 3600, exp: now + 7200 });
  bad.wrongKey = await sign(good, new Uint8Array(randomBytes(32)));
  bad.hs512 = await sign(good, secret, 'HS512');
  bad.hs384 = await sign(good, secret, 'HS384');
  bad.unknownJti = await sign({ ...good, jti: 'no-such-link' });
  bad.subMismatch = await sign({ ...good, sub: 'media/' }); // real jti, wider scope than its row
  bad.noExp = await sign({ sub: good.sub, jti: good.jti, nbf: now });
  bad.subNumber = await sign({ ...good, sub: 42 });
  const enc = (o: unknown) => base64url.encode(JSON.stringify(o));
  bad.algNone = `${enc({ alg: 'none', typ: 'JWT' })}.${enc(good)}.`;
  bad.algNoneNoDot = `${enc({ alg: 'none', typ: 'JWT' })}.${enc(good)}`;
  bad.algNoneUpper = `${enc({ alg: 'NONE', typ: 'JWT' })}.${enc(good)}.`;
  const [h, , s] = T.split('.');
  bad.tampered = `${h}.${enc({ ...good, sub: 'media/' })}.${s}`;
  bad.rs256Header = `${enc({ alg: 'RS256', typ: 'JWT' })}.${T.split('.')[1]}.${s}`;
  bad.truncated = T.slice(0, -5);
  bad.garbage = 'not-a-token';
  bad.dots = '...';
  bad.long = 'a'.repeat(5000);
  bad.unicode = 'tökén.ünï.cødé';
  bad.empty = '';
}, 120_000);

afterAll(async () => {
  await t?.dispose();
  cleanup(outside);
});

function openFds(): number {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return -1;
  }
}

function handles(): number {
  return (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles().length;
}

/** A seeded PRNG so a failure can be replayed. */
function rng(seed: number) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 2 ** 32;
  };
}

interface Case {
  name: string;
  request: string | Buffer | { method?: string; path: string; headers?: Record<string, string> };
  /** Allowed statuses. */
  expect: number[];
  /** For allowed 200/206: the bytes the body must be part of. */
  content?: Buffer;
}

const TRAVERSALS = [
  'media/public/../private/secret.txt',
  'media/public/%2e%2e/private/secret.txt',
  'media/public/%2E%2E/private/secret.txt',
  'media/public/.%2e/private/secret.txt',
  'media/public/%2e./private/secret.txt',
  'media/public/..%2fprivate%2fsecret.txt',
  'media/public%2f..%2fprivate%2fsecret.txt',
  'media/public/%252e%252e/private/secret.txt',
  'media/public/%252e%252e%252fprivate%252fsecret.txt',
  'media/public/%25252e%25252e/private/secret.txt',
  'media/public/..%5cprivate%5csecret.txt',
  'media/public/..\\private\\secret.txt',
  'media\\public\\..\\private\\secret.txt',
  'media/public/%5c..%5cprivate/secret.txt',
  'media/public/%00../private/secret.txt',
  'media/public/a.txt%00.jpg',
  'media/public/a.txt%00',
  'media/public/./../private/secret.txt',
  'media/public/.%2f..%2fprivate/secret.txt',
  'media/public//../private/secret.txt',
  'media//public/../private/secret.txt',
  '/media/public/../private/secret.txt',
  '//etc/passwd',
  '/etc/passwd',
  '..%2f..%2f..%2fetc%2fpasswd',
  '%2e%2e/%2e%2e/%2e%2e/etc/passwd',
  'media/public/../../../../../../etc/passwd',
  'media/public/%c0%ae%c0%ae/private/secret.txt',
  'media/public/%e0%80%ae%e0%80%ae/private/secret.txt',
  'media/public/..%c0%afprivate%c0%afsecret.txt',
  'media/public/%uff0e%uff0e/private/secret.txt',
  'media/public/%EF%BC%8E%EF%BC%8E/private/secret.txt',
  'media/C:/Windows/win.ini',
  'C:%5cWindows%5cwin.ini',
  'media/public/escape.txt',
  'media/public/linkdir/secret.txt',
  'media/public/passwd',
  'media/public/linkdir/../../private/secret.txt',
  'media/%2e%2e/outside/secret.txt',
  'MEDIA/public/ok.jpg',
  'media/public/../public/ok.jpg',
  'media/public/ok.jpg/..',
  'media/public/ok.jpg/.',
  'media/public/ok.jpg%2f',
  'media/public/a.txt;/../../private/secret.txt',
  'media/public/%0d%0aSet-Cookie:x=1',
  'media/public/%09a.txt',
  'media/private/secret.txt',
  'media/public2/secret.txt',
  'media/publicity.txt',
  'media/',
  'media/private/',
  'media/public/../',
  'nosuchroot/public/ok.jpg',
  '',
];

const RANGES = [
  'bytes=abc',
  'bytes=5-1',
  'bytes=999999999-',
  'bytes=-0',
  'items=0-1',
  'bytes=0-1,',
  'bytes=,',
  'bytes=--1',
  'bytes=1--2',
  'bytes=0-1-2',
  'bytes= 0 - 1 ',
  'bytes=0x10-0x20',
  'bytes=-',
  'bytes=1e3-2e3',
  'bytes=18446744073709551616-',
  'bytes=0-18446744073709551616',
  'bytes=-18446744073709551616',
  `bytes=${Array.from({ length: 200 }, (_, i) => `${i}-${i}`).join(',')}`,
  `bytes=${Array.from({ length: 64 }, () => '0-49999').join(',')}`,
  'bytes=0-0,0-0,0-0',
  'BYTES=0-9',
  'bytes=9-0,0-9',
  'bytes=49999-',
  'bytes=50000-',
  'bytes=-50001',
  'bytes=0-,-1',
  'bytes=\u00ff-',
  '',
  ' ',
  'bytes',
  'bytes=' + '9'.repeat(3000),
];

const METHODS = ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE', 'PROPFIND', 'MKCOL', 'LOCK', 'COPY', 'MOVE', 'PURGE', 'SEARCH'];

function buildCases(): Case[] {
  const r = rng(20240601);
  const pick = <X>(a: readonly X[]) => a[Math.floor(r() * a.length)]!;
  const cases: Case[] = [];
  const q = (tok: string, extra = '') => `?token=${encodeURIComponent(tok)}${extra}`;

  // 1. traversal and scope escapes with a good token, in every placement and method
  for (const p of TRAVERSALS) {
    for (const method of ['GET', 'HEAD']) {
      for (const placement of ['query', 'header', 'query+download', 'query-twice']) {
        const headers: Record<string, string> = {};
        let path = `/files/${p}`;
        if (placement === 'header') headers.authorization = `Bearer ${T}`;
        else if (placement === 'query+download') path += q(T, '&download=1');
        else if (placement === 'query-twice') path += `${q(T)}&token=${encodeURIComponent(F)}`;
        else path += q(T);
        cases.push({ name: `traversal ${placement} ${method} ${p}`, request: { method, path, headers }, expect: [400, 403, 404] });
      }
    }
  }
  // 2. bad tokens on paths the good token opens
  const inScope: [string, Buffer][] = [
    ['media/public/ok.jpg', OK],
    ['media/public/a.txt', A],
  ];
  for (const [name, tok] of Object.entries(bad)) {
    const want = name === 'revoked' ? [403] : name === 'long' ? [401, 414] : [401];
    for (const [p] of inScope) {
      for (const method of ['GET', 'HEAD']) {
        cases.push({ name: `token ${name} query ${method} ${p}`, request: { method, path: `/files/${p}${q(tok)}` }, expect: want });
        cases.push({ name: `token ${name} header ${method} ${p}`, request: { method, path: `/files/${p}`, headers: { authorization: `Bearer ${tok}` } }, expect: name === 'empty' ? [401] : want });
        cases.push({ name: `token ${name} query with range ${p}`, request: { method, path: `/files/${p}${q(tok)}`, headers: { range: 'bytes=0-9' } }, expect: want });
      }
    }
    cases.push({ name: `token ${name} folder listing`, request: { path: `/files/media/public/${q(tok)}` }, expect: want });
  }
  for (const p of ['media/public/ok.jpg', 'media/public/a.txt']) {
    cases.push({ name: `no token ${p}`, request: { path: `/files/${p}` }, expect: [401] });
    for (const auth of ['Basic dXNlcjpwYXNz', 'Bearer', 'Bearer  ', 'bearer x.y.z', `Token ${T}`, `Bearer ${T}x`]) {
      cases.push({ name: `auth header ${auth.slice(0, 12)} ${p}`, request: { path: `/files/${p}`, headers: { authorization: auth } }, expect: [401] });
    }
  }
  // the single-file token opens that file only
  for (const p of ['media/public/ok.jpg', 'media/private/secret.txt', 'media/public/', 'media/']) {
    cases.push({ name: `file token escape ${p}`, request: { path: `/files/${p}${q(F)}` }, expect: [403] });
  }
  // 3. malformed ranges with a good token: ignored (200), refused (416) or answered exactly (206)
  for (const [p, content] of inScope) {
    for (const range of RANGES) {
      for (const ifRange of [undefined, '"nope"', 'not a date']) {
        const headers: Record<string, string> = { range };
        if (ifRange) headers['if-range'] = ifRange;
        cases.push({ name: `range ${JSON.stringify(range).slice(0, 40)} if-range ${ifRange} ${p}`, request: { path: `/files/${p}${q(T)}`, headers }, expect: [200, 206, 416], content });
      }
    }
  }
  // 4. huge headers and URLs
  for (let i = 0; i < 12; i++) {
    const n = 17_000 + Math.floor(r() * 40_000);
    cases.push({ name: `huge header ${n}`, request: { path: `/files/media/public/a.txt${q(T)}`, headers: { 'x-filler': 'x'.repeat(n) } }, expect: [431] });
    cases.push({ name: `many headers ${i}`, request: { path: `/files/media/public/a.txt${q(T)}`, headers: Object.fromEntries(Array.from({ length: 900 }, (_, k) => [`x-h${k}`, 'y'.repeat(20)])) }, expect: [431] });
    const u = 4_200 + Math.floor(r() * 10_000);
    cases.push({ name: `long url ${u}`, request: { path: `/files/media/public/${'a'.repeat(u)}${q(T)}` }, expect: [414] });
    cases.push({ name: `very long url ${u}`, request: { path: `/files/media/public/${'b'.repeat(u + 20_000)}${q(T)}` }, expect: [414, 431] });
    cases.push({ name: `long cookie ${i}`, request: { path: `/files/media/public/a.txt${q(T)}`, headers: { cookie: 'c='.repeat(9_000) } }, expect: [431] });
  }
  // 5. methods other than GET and HEAD
  for (const m of METHODS) {
    for (const p of ['/files/media/public/a.txt' + q(T), '/files/media/private/secret.txt' + q(T), '/health', '/health/deep', '/', '/files/../../etc/passwd']) {
      cases.push({ name: `method ${m} ${p.slice(0, 40)}`, request: { method: m, path: p }, expect: [405] });
    }
  }
  for (const up of ['websocket', 'h2c', 'x']) {
    cases.push({ name: `upgrade ${up}`, request: { path: `/files/media/public/a.txt${q(T)}`, headers: { upgrade: up, connection: 'upgrade' } }, expect: [405] });
  }
  cases.push({ name: 'CONNECT', request: 'CONNECT 127.0.0.1:22 HTTP/1.1\r\nhost: 127.0.0.1:22\r\n\r\n', expect: [405] });
  for (const m of ['FOO', 'GETS', 'get', 'G\u0000T']) {
    cases.push({ name: `method ${JSON.stringify(m)}`, request: `${m} /files/media/public/a.txt${q(T)} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n`, expect: [400, 405] });
  }
  // 6. malformed request lines and framing
  const garbage = [
    'GET /files/media/public/a.txt HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n0\r\n\r\n',
    'GET /files/media/public/../private/secret.txt\u0000 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n',
    'GET  HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n',
    'GET http://evil.example/files/media/private/secret.txt HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n',
    'GET * HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n',
    'GET /files/media/private/secret.txt HTTP/9.9\r\nhost: x\r\nconnection: close\r\n\r\n',
    'GET /files/media/private/secret.txt\r\n\r\n',
    '\u0016\u0003\u0001\u0002\u0000\u0001\u0000\u0001\u00fc\u0003\u0003',
    'GET /files/media/public/a.txt HTTP/1.1\r\nhost: x\r\nbad header line\r\nconnection: close\r\n\r\n',
    'GET /files/media/public/a.txt HTTP/1.1\r\nhost: x\r\nx: a\rb\r\nconnection: close\r\n\r\n',
  ];
  for (const g of garbage) cases.push({ name: `garbage ${JSON.stringify(g).slice(0, 50)}`, request: g, expect: [400, 401, 404, 405, 505] });
  // 7. random path segments built from dangerous characters
  const alphabet = ['.', '..', '%2e', '%2E', '%2f', '%2F', '%5c', '\\', '%00', '%25', '%252e', '%c0%ae', '/', '//', 'a', 'ok.jpg', 'public', 'private', 'media', 'secret.txt', '%20', '~', ';', '%3b', '?', '%3f', '#'];
  for (let i = 0; i < 300; i++) {
    const n = 1 + Math.floor(r() * 7);
    let p = pick(['media/', 'media/public/', '', 'media/public/linkdir/']);
    for (let k = 0; k < n; k++) p += pick(alphabet);
    cases.push({ name: `random ${i} ${p}`, request: { path: `/files/${p}${p.includes('?') ? '&' : '?'}token=${encodeURIComponent(T)}` }, expect: [200, 400, 401, 403, 404], content: OK });
  }
  return cases;
}

function check(c: Case, res: RawResponse, problems: string[]): void {
  const text = res.body.toString('latin1');
  for (const m of MARKERS) if (text.includes(m)) problems.push(`${c.name}: the body contains "${m}"`);
  if (!c.expect.includes(res.status)) problems.push(`${c.name}: status ${res.status}, expected ${c.expect.join('/')} (${text.slice(0, 160)})`);
  if ((res.status === 200 || res.status === 206) && c.content) {
    if (res.status === 200 && !res.headers['content-type']?.startsWith('text/html') && !res.body.equals(c.content) && res.body.length > 0) {
      problems.push(`${c.name}: a 200 with bytes that are not the in-scope file`);
    }
    if (res.status === 206 && !res.headers['content-type']?.startsWith('multipart/')) {
      const m = /bytes (\d+)-(\d+)\/(\d+)/.exec(res.headers['content-range'] ?? '');
      if (!m || !res.body.equals(c.content.subarray(Number(m[1]), Number(m[2]) + 1))) problems.push(`${c.name}: a 206 whose bytes do not match its Content-Range`);
    }
  }
  if (res.status >= 500) problems.push(`${c.name}: server error ${res.status}`);
}

describe('fuzz: bad requests', () => {
  it('the folder listing of a folder link shows only that folder', async () => {
    const r = await raw(t.port, { path: `/files/media/public/?token=${encodeURIComponent(T)}` });
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('text/html; charset=utf-8');
    const html = r.body.toString();
    expect(html).toContain('ok.jpg');
    expect(html).toContain('a.txt');
    expect(html).not.toContain('secret');
    expect(html).not.toContain('publicity');
    const f = await raw(t.port, { path: `/files/media/public/ok.jpg?token=${encodeURIComponent(T)}` });
    expect(sha256(f.body)).toBe(sha256(OK));
  });

  it('answers 1,000+ generated bad requests with the right 4xx, leaks nothing and keeps serving', async () => {
    const cases = buildCases();
    expect(cases.length).toBeGreaterThanOrEqual(1000);
    // warm up lazily created things (backend pool, log stream) before counting
    await raw(t.port, { path: `/files/media/public/ok.jpg?token=${encodeURIComponent(T)}` });
    await new Promise((r) => setTimeout(r, 300));
    const fds0 = openFds();
    const handles0 = handles();
    const problems: string[] = [];
    const statuses = new Map<number, number>();
    let next = 0;
    const worker = async () => {
      while (next < cases.length) {
        const c = cases[next++]!;
        let res: RawResponse;
        try {
          res = await raw(t.port, c.request, 20_000);
        } catch (e) {
          problems.push(`${c.name}: no answer (${(e as Error).message})`);
          continue;
        }
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        check(c, res, problems);
      }
    };
    await Promise.all(Array.from({ length: 12 }, worker));
    expect(problems.slice(0, 30)).toEqual([]);
    // still serving, byte-exact
    const ok = await raw(t.port, { path: `/files/media/public/ok.jpg?token=${encodeURIComponent(T)}` });
    expect(ok.status).toBe(200);
    expect(sha256(ok.body)).toBe(sha256(OK));
    expect((await raw(t.port, { path: '/health' })).status).toBe(200);
    // nothing left open: file descriptors and handles back to where they were
    const downloads = t.engine.service<DownloadServer>('download')!;
    await waitFor(() => downloads.activeDownloads === 0 && openFds() <= fds0 + 2 && handles() <= handles0 + 2, 10_000, `fds ${openFds()} <= ${fds0 + 2} and handles ${handles()} <= ${handles0 + 2}`);
    const counts = Object.fromEntries([...statuses.entries()].sort((a, b) => a[0] - b[0]));
    expect(Object.keys(counts).map(Number).every((s) => s < 500)).toBe(true);
    console.log(`fuzz: ${cases.length} requests, statuses ${JSON.stringify(counts)}, fds ${fds0} -> ${openFds()}, handles ${handles0} -> ${handles()}`);
  }, 240_000);
});

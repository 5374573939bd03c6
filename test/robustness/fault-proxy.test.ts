// The fault proxy itself: each mode does what the harness relies on, against a plain HTTP server.
import { createServer, request, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { FaultProxy } from './fault-proxy';

let upstream: Server | undefined;
let proxy: FaultProxy | undefined;
let received = 0;

afterEach(async () => {
  await proxy?.stop();
  proxy = undefined;
  if (upstream) {
    upstream.closeAllConnections();
    await new Promise<void>((r) => upstream!.close(() => r()));
  }
  upstream = undefined;
  received = 0;
});

/** An upstream that answers every request with "ok <bytes of its body>". */
async function start(): Promise<FaultProxy> {
  upstream = createServer((req, res) => {
    let n = 0;
    req.on('data', (c: Buffer) => {
      n += c.length;
      received += c.length;
    });
    req.on('end', () => res.end(`ok ${n}`));
    req.on('error', () => undefined);
  });
  await new Promise<void>((r) => upstream!.listen(0, '127.0.0.1', () => r()));
  proxy = new FaultProxy((upstream.address() as AddressInfo).port);
  await proxy.start();
  return proxy;
}

function call(port: number, opts: { method?: string; path?: string; body?: Buffer; timeoutMs?: number } = {}): Promise<{ status: number; body: string } | { error: string }> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, method: opts.method ?? 'GET', path: opts.path ?? '/', agent: false, headers: opts.body ? { 'content-length': opts.body.length } : {} }, (res) => {
      let body = '';
      res.on('data', (c) => (body += String(c)));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', (e) => resolve({ error: (e as NodeJS.ErrnoException).code ?? e.message }));
    });
    req.on('error', (e) => resolve({ error: (e as NodeJS.ErrnoException).code ?? e.message }));
    if (opts.timeoutMs) req.setTimeout(opts.timeoutMs, () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    req.end(opts.body);
  });
}

describe('fault proxy', () => {
  it('passes requests through', async () => {
    const p = await start();
    expect(await call(p.port, { method: 'PUT', body: Buffer.alloc(5000) })).toEqual({ status: 200, body: 'ok 5000' });
  });

  it('refuse: connections are refused, and open ones are reset; pass brings it back on the same port', async () => {
    const p = await start();
    const open = connect(p.port, '127.0.0.1');
    await new Promise((r) => open.once('connect', r));
    const closed = new Promise<string>((r) => open.once('error', (e) => r((e as NodeJS.ErrnoException).code ?? '')).once('close', () => r('closed')));
    await p.setMode({ kind: 'refuse' });
    expect(['ECONNRESET', 'closed']).toContain(await closed);
    expect(await call(p.port)).toEqual({ error: 'ECONNREFUSED' });
    await p.setMode({ kind: 'pass' });
    expect(await call(p.port)).toEqual({ status: 200, body: 'ok 0' });
  });

  it('blackhole: no answer while it lasts; the answer arrives once the link is back', async () => {
    const p = await start();
    await p.setMode({ kind: 'blackhole' });
    expect(await call(p.port, { timeoutMs: 400 })).toEqual({ error: 'TIMEOUT' });
    const late = call(p.port, { method: 'PUT', body: Buffer.alloc(1000) });
    await new Promise((r) => setTimeout(r, 300));
    await p.setMode({ kind: 'pass' });
    expect(await late).toEqual({ status: 200, body: 'ok 1000' });
  });

  it('reset: the connection is cut after the given number of request bytes', async () => {
    const p = await start();
    await p.setMode({ kind: 'reset', afterBytes: 20_000 });
    const r = await call(p.port, { method: 'PUT', body: Buffer.alloc(200_000) });
    expect(r).toHaveProperty('error');
    expect(received).toBeLessThanOrEqual(20_000);
    expect(p.stats.resets).toBeGreaterThanOrEqual(1);
  });

  it('trickle: 100 KB at 50 KB/s takes about two seconds', async () => {
    const p = await start();
    await p.setMode({ kind: 'trickle', bytesPerSecond: 50_000 });
    const t0 = Date.now();
    expect(await call(p.port, { method: 'PUT', body: Buffer.alloc(100_000) })).toEqual({ status: 200, body: 'ok 100000' });
    const s = (Date.now() - t0) / 1000;
    expect(s).toBeGreaterThan(1.6);
    expect(s).toBeLessThan(15);
  });

  it('http5xx: every second request is answered 503 by the proxy, with an S3 error body; the others go through', async () => {
    const p = await start();
    await p.setMode({ kind: 'http5xx', status: 503, every: 2 });
    const out = [];
    for (let i = 0; i < 4; i++) out.push(await call(p.port, { method: 'PUT', body: Buffer.alloc(3000) }));
    expect(out.map((o) => ('status' in o ? o.status : o.error))).toEqual([200, 503, 200, 503]);
    expect((out[1] as { body: string }).body).toMatch(/<Code>SlowDown<\/Code>/);
    expect(received).toBe(6000); // the refused bodies never reached the server
    expect(p.stats.injected5xx).toBe(2);
  });

  it('resetMultipartOnce: the first try of a part upload is cut in the middle, the next one passes', async () => {
    const p = await start();
    p.resetMultipartOnce(100_000);
    const path = '/bucket/video.mp4?partNumber=1&uploadId=abc';
    const first = await call(p.port, { method: 'PUT', path, body: Buffer.alloc(300_000) });
    expect(first).toHaveProperty('error');
    expect(await call(p.port, { method: 'PUT', path, body: Buffer.alloc(300_000) })).toEqual({ status: 200, body: 'ok 300000' });
    expect(await call(p.port, { method: 'PUT', path: '/bucket/other.jpg', body: Buffer.alloc(300_000) })).toEqual({ status: 200, body: 'ok 300000' });
    expect(p.stats.multipartResets).toBe(1);
  });
});

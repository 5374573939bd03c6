// The benchmarks' WAN model (bench/lib/wan-proxy.mjs) on loopback: a round trip costs the link's
// RTT (a new connection one more, the handshake), the rate is the link's and shared by every
// connection, bytes arrive whole and in order, and plain HTTP to a real s3rver goes through.
// Timings are asserted as lower bounds (a loaded machine only makes them longer) and on the
// proxy's own counters and link times.
import { createHash } from 'node:crypto';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import { linkOf, startWanProxy, startWanProxyProcess, type WanProxy } from '../../bench/lib/wan-proxy.mjs';
import { startS3 } from '../helpers/s3';
import { useTeardown } from '../helpers/teardown';

const td = useTeardown();

function listen(server: Server): Promise<number> {
  return new Promise((r) => server.listen(0, '127.0.0.1', () => r((server.address() as { port: number }).port)));
}

/** Answers every line "x" with "x!". */
async function echoServer(): Promise<number> {
  const s = createServer((c) => {
    let buf = '';
    c.on('data', (d) => {
      buf += d.toString();
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        c.write(`${buf.slice(0, i)}!\n`);
        buf = buf.slice(i + 1);
      }
    });
    c.on('error', () => {});
  });
  td.add(() => new Promise((r) => s.close(r)));
  return listen(s);
}

/** Reads everything a connection sends; at its end answers the sha256 of it and closes. */
async function sinkServer(): Promise<number> {
  const s = createServer({ allowHalfOpen: true }, (c) => {
    const h = createHash('sha256');
    c.on('data', (d) => h.update(d));
    c.on('end', () => c.end(h.digest('hex')));
    c.on('error', () => {});
  });
  td.add(() => new Promise((r) => s.close(r)));
  return listen(s);
}

async function proxy(opts: Parameters<typeof startWanProxy>[0]): Promise<WanProxy> {
  const p = await startWanProxy(opts);
  td.add(() => p.close());
  return p;
}

function lineReader(sock: Socket): () => Promise<string> {
  let buf = '';
  const waiters: ((l: string) => void)[] = [];
  sock.on('data', (d) => {
    buf += d.toString();
    for (let i = buf.indexOf('\n'); i >= 0 && waiters.length; i = buf.indexOf('\n')) {
      waiters.shift()!(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  });
  return () => new Promise((r) => waiters.push(r));
}

describe('WAN proxy', () => {
  it('a request and its answer take one RTT on an open connection, two on a new one (the handshake)', async () => {
    const p = await proxy({ upstreamPort: await echoServer(), link: 'cloud' });
    const rtt = linkOf('cloud').rttMs;
    const t0 = performance.now();
    const sock = connect({ port: p.port, host: '127.0.0.1', noDelay: true });
    td.add(async () => sock.destroy());
    const next = lineReader(sock);
    sock.write('a\n');
    expect(await next()).toBe('a!');
    const first = performance.now() - t0;
    const times: number[] = [];
    for (const x of ['b', 'c', 'd']) {
      const t = performance.now();
      sock.write(`${x}\n`);
      expect(await next()).toBe(`${x}!`);
      times.push(performance.now() - t);
    }
    expect(first).toBeGreaterThanOrEqual(2 * rtt - 1);
    for (const t of times) expect(t).toBeGreaterThanOrEqual(rtt - 1);
    const s = p.stats();
    expect(s.connections).toBe(1);
    expect(s.up.bytes).toBe(8);
    expect(s.down.bytes).toBe(12);
  });

  it('answers every one of many connections opened at once (each held for its handshake)', async () => {
    const p = await proxy({ upstreamPort: await echoServer(), link: 'cloud' });
    const n = 32;
    const answered = await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const sock = connect({ port: p.port, host: '127.0.0.1', noDelay: true });
        td.add(async () => sock.destroy());
        const next = lineReader(sock);
        sock.write(`${i}\n`);
        // bounded: a connection the proxy forgot stays silent
        return Promise.race([next(), new Promise<string>((r) => setTimeout(() => r('(no answer in 20 s)'), 20_000))]);
      }),
    );
    expect(answered).toEqual(Array.from({ length: n }, (_, i) => `${i}!`));
    expect(p.stats().connections).toBe(n);
  });

  it('keeps to the link rate, one bucket shared by every connection, bytes whole and in order', async () => {
    const rate = 4e6;
    const p = await proxy({ upstreamPort: await sinkServer(), link: { rttMs: 10, upBytesPerSecond: rate, downBytesPerSecond: 10 * rate } });
    const size = 2 * 1024 * 1024;
    const payloads = [1, 2].map((seed) => {
      const b = Buffer.alloc(size);
      for (let i = 0; i < size; i += 4) b.writeUInt32LE((i * 2654435761 + seed) >>> 0, i);
      return b;
    });
    const t0 = performance.now();
    const answers = await Promise.all(
      payloads.map(
        (b) =>
          new Promise<string>((resolve, reject) => {
            const sock = connect({ port: p.port, host: '127.0.0.1', allowHalfOpen: true });
            let got = '';
            sock.on('data', (d) => (got += d));
            sock.on('end', () => resolve(got));
            sock.on('error', reject);
            sock.end(b);
          }),
      ),
    );
    const elapsedS = (performance.now() - t0) / 1000;
    expect(answers).toEqual(payloads.map((b) => createHash('sha256').update(b).digest('hex')));
    const up = p.stats().up;
    expect(up.bytes).toBe(2 * size);
    // shared: both connections together took at least their bytes' time at the one rate
    expect(elapsedS).toBeGreaterThanOrEqual((2 * size) / rate - 0.01);
    // the rate the proxy applied: never above the bucket's, and the link was kept busy
    const spanMs = up.lastEndMs! - up.firstStartMs!;
    expect(up.bytes / (spanMs / 1000)).toBeLessThanOrEqual(rate * 1.001);
    expect(up.busyMs / spanMs).toBeGreaterThan(0.5);
    expect(up.maxQueueMs).toBeLessThanOrEqual(10 + 5);
  });

  it('carries HTTP to a real s3rver: a PUT and a GET of 1 MiB, whole, over kept-alive connections', async () => {
    const s3 = td.add(await startS3({ buckets: ['wan'] }));
    const p = await proxy({ upstreamPort: s3.port, link: 'dsl' });
    const body = Buffer.alloc(1024 * 1024, 7);
    const url = `${p.endpoint}/wan/one.bin`;
    const t0 = performance.now();
    const put = await fetch(url, { method: 'PUT', body });
    expect(put.status).toBe(200);
    await put.arrayBuffer();
    const putMs = performance.now() - t0;
    const t1 = performance.now();
    const get = await fetch(url);
    const got = Buffer.from(await get.arrayBuffer());
    const getMs = performance.now() - t1;
    expect(got.equals(body)).toBe(true);
    const { rttMs, upBytesPerSecond, downBytesPerSecond } = linkOf('dsl');
    expect(putMs).toBeGreaterThanOrEqual(2 * rttMs + (body.length / upBytesPerSecond) * 1000 - 1);
    expect(getMs).toBeGreaterThanOrEqual(rttMs + (body.length / downBytesPerSecond) * 1000 - 1);
    const s = p.stats();
    expect(s.up.bytes).toBeGreaterThan(body.length);
    expect(s.down.bytes).toBeGreaterThan(body.length);
  });

  it('runs in a process of its own, its counters read over IPC', async () => {
    const p = await startWanProxyProcess(await echoServer(), 'lan');
    td.add(() => p.stop());
    const sock = connect({ port: p.port, host: '127.0.0.1' });
    td.add(async () => sock.destroy());
    const next = lineReader(sock);
    sock.write('x\n');
    expect(await next()).toBe('x!');
    const s = await p.stats();
    expect(s.connections).toBe(1);
    expect(s.up.bytes).toBe(2);
    expect(s.down.bytes).toBe(3);
  });
});

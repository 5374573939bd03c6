// Issue #16 item 6: one link, or one client, cannot take every download slot. With
// maxConcurrentDownloads 8, a client holds at most 2 (429 beyond), a link at most 4 (503 beyond),
// the console's downloads are outside that pool, and a reader that takes less than the minimum
// rate is dropped so its slot comes back. Behind the tunnel the client is CF-Connecting-IP, trusted
// only from a loopback peer. Real engine, real s3rver, a real 32 MiB file that does not fit in the
// socket buffers (so a paused reader really holds its slot), real sockets from several addresses.
import { connect, type Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { DownloadServer } from '../../src/main/engine/http/download/server';
import { bytes, sha256, waitFor } from '../helpers/engine';
import { raw, setupSharing, type Setup } from '../download/helpers';

const MAX = 8;
const SIZE = 32 * 1024 * 1024;
const BIG = bytes(SIZE, 7);

let t: Setup;
let downloads: DownloadServer;
/** Two links to the big file, one to a small one. */
let big1: string;
let big2: string;
let small: string;
const open: Socket[] = [];

/** A non-loopback address of this machine (the server listens on every address in this file). */
const lan = Object.values(networkInterfaces())
  .flat()
  .find((i) => i && i.family === 'IPv4' && !i.internal)?.address;

interface Answer {
  status: number;
  head: string;
  sock: Socket;
  /** Read the rest of the answer (the server closes: connection: close). */
  rest(): Promise<Buffer>;
}

/**
 * GET `path` and stop reading once the headers are in: a 200 of the big file then holds its slot.
 * `from`: the local address to connect from; `to`: the server address; `cf`: a CF-Connecting-IP header.
 */
function get(path: string, o: { from?: string; to?: string; cf?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const sock = connect({ port: t.port, host: o.to ?? '127.0.0.1', localAddress: o.from });
    open.push(sock);
    let buf = Buffer.alloc(0);
    let answered = false;
    const chunks: Buffer[] = [];
    let closed = false;
    const waiters: (() => void)[] = [];
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no answer to ${path.slice(0, 40)} within 20 s`));
    }, 20_000);
    sock.on('error', (e) => !answered && reject(e));
    sock.on('close', () => {
      closed = true;
      for (const w of waiters) w();
    });
    sock.on('data', (d) => {
      if (answered) return void chunks.push(d);
      buf = Buffer.concat([buf, d]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      answered = true;
      clearTimeout(timer);
      sock.pause();
      chunks.push(buf.subarray(end + 4));
      const head = buf.subarray(0, end).toString('latin1');
      resolve({
        status: Number(head.split(' ')[1]),
        head,
        sock,
        rest: () =>
          new Promise<Buffer>((r) => {
            const done = () => r(Buffer.concat(chunks));
            if (closed) return done();
            waiters.push(done);
            sock.resume();
          }),
      });
    });
    const headers: Record<string, string> = { host: 'downloads.example', connection: 'close', ...(o.cf ? { 'cf-connecting-ip': o.cf } : {}) };
    sock.write(`GET ${path} HTTP/1.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}`).join('\r\n')}\r\n\r\n`);
  });
}

/** The JSON error of a refused answer, with its Retry-After. */
async function refusal(a: Answer): Promise<{ status: number; code: string; error: string; retryAfter: string | undefined }> {
  const body = JSON.parse((await a.rest()).toString()) as { code: string; error: string };
  return { status: a.status, code: body.code, error: body.error, retryAfter: /\r\nretry-after: *(\S+)/i.exec(a.head)?.[1] };
}

beforeAll(async () => {
  t = await setupSharing({ 'Videos/big.bin': BIG, 'small.jpg': 'small photo' }, { targets: 1, server: { maxConcurrentDownloads: MAX, downloadHost: '0.0.0.0' } });
  downloads = t.engine.service<DownloadServer>('download')!;
  big1 = t.pathOf(await t.link('media/Videos/big.bin'));
  big2 = t.pathOf(await t.link('media/Videos/big.bin'));
  small = t.pathOf(await t.link('media/small.jpg'));
}, 180_000);

afterEach(async () => {
  for (const s of open.splice(0)) s.destroy();
  await waitFor(() => downloads.activeDownloads === 0, 15_000, `every download to end (active ${downloads?.activeDownloads})`);
  // held readers are not dropped for slowness while a test sets them up
  downloads.setMinRate?.(1, 600_000);
});

afterAll(async () => {
  await t?.dispose();
});

describe('download slots', () => {
  it('one client with many slow readers on one link gets its share; another client still gets its file', async () => {
    downloads.setMinRate?.(1, 600_000);
    const mine = [];
    for (let i = 0; i < MAX; i++) mine.push(await get(big1, { cf: '198.51.100.1' }));
    // another client, on the same link: from a second loopback address (no header)
    expect((await get(big1, { from: '127.0.0.2' })).status).toBe(200);
    const other = await get(small, { from: '127.0.0.2' });
    expect(other.status).toBe(200);
    expect((await other.rest()).toString()).toBe('small photo');
    expect(mine.map((a) => a.status)).toEqual([200, 200, 429, 429, 429, 429, 429, 429]);
    const r = await refusal(mine[2]!);
    expect(r.code).toBe('too_many_downloads');
    expect(r.retryAfter).toMatch(/^\d+$/);
    expect(r.error).toMatch(/at once.*try again/i);
  });

  it('a leaked link used by many clients takes half the slots; a second link still works', async () => {
    const onLink1 = [];
    for (let c = 1; c <= 4; c++) for (let i = 0; i < 2; i++) onLink1.push(await get(big1, { cf: `198.51.100.${c}` }));
    const second = await get(big2, { cf: '198.51.100.5' });
    expect(second.status).toBe(200);
    expect(onLink1.map((a) => a.status)).toEqual([200, 200, 200, 200, 503, 503, 503, 503]);
    const r = await refusal(onLink1[4]!);
    expect(r.code).toBe('link_busy');
    expect(r.retryAfter).toMatch(/^\d+$/);
    expect(r.error).toMatch(/this link/i);
  });

  it("the console's downloads do not count against the public pool", async () => {
    for (let c = 1; c <= 2; c++) for (let i = 0; i < 2; i++) expect((await get(big1, { cf: `198.51.100.${c}` })).status).toBe(200);
    for (let c = 3; c <= 4; c++) for (let i = 0; i < 2; i++) expect((await get(big2, { cf: `198.51.100.${c}` })).status).toBe(200);
    const full = await refusal(await get(small, { cf: '198.51.100.9' }));
    expect(full).toMatchObject({ status: 503, code: 'busy', retryAfter: '5' });
    const admin = await fetch(`${t.engine.endpoints.adminUrl}/api/admin/download?key=${encodeURIComponent('media/Videos/big.bin')}&access_token=${t.engine.token}`);
    expect(admin.status).toBe(200);
    expect(sha256(Buffer.from(await admin.arrayBuffer()))).toBe(sha256(BIG));
  });

  it('a reader below the minimum rate is dropped and its slot comes back; a normal reader is not', async () => {
    downloads.setMinRate(8 * 1024, 1_000);
    const stalled = [];
    for (let c = 1; c <= 2; c++) for (let i = 0; i < 2; i++) stalled.push(await get(big1, { cf: `198.51.100.${c}` }));
    expect(stalled.map((a) => a.status)).toEqual([200, 200, 200, 200]);
    expect(downloads.activeDownloads).toBe(4);
    // the idle timeout is 60 s: only the rate floor can end them this soon
    await waitFor(() => downloads.activeDownloads === 0, 20_000, `the stalled readers to be dropped (active ${downloads.activeDownloads})`);
    for (const a of stalled) expect((await a.rest()).length).toBeLessThan(SIZE);
    await waitFor(() => t.accessLog().filter((e) => e.error === 'too_slow' && e.complete === false).length >= 4, 5_000, 'four "too_slow" lines in the access log');
    // the link opens again, and a reader that reads is served in full with the same short window
    const whole = await raw(t.port, { path: big1, headers: { 'cf-connecting-ip': '198.51.100.1' } }, 60_000);
    expect(whole.status).toBe(200);
    expect(sha256(whole.body)).toBe(sha256(BIG));
  }, 60_000);

  it('CF-Connecting-IP names the client only when the peer is loopback (cloudflared on this box)', async () => {
    const { clientAddress } = await import('../../src/main/engine/http/slots');
    expect(clientAddress('127.0.0.1', '203.0.113.5')).toBe('203.0.113.5');
    expect(clientAddress('::1', '203.0.113.5')).toBe('203.0.113.5');
    expect(clientAddress('::ffff:127.0.0.1', '203.0.113.5')).toBe('203.0.113.5');
    expect(clientAddress('127.0.0.1', undefined)).toBe('127.0.0.1');
    // from the LAN the header is anyone's to write: the peer is the client
    expect(clientAddress('192.168.1.20', '203.0.113.5')).toBe('192.168.1.20');
    expect(clientAddress('::ffff:192.168.1.20', '203.0.113.5')).toBe('192.168.1.20');
    expect(clientAddress('fd00::20', '203.0.113.5')).toBe(clientAddress('fd00::21', undefined));
    // not an address: ignored
    expect(clientAddress('127.0.0.1', 'evil, 203.0.113.5')).toBe('127.0.0.1');
    // IPv6: one client per /64 (a host can pick any address in its /64)
    expect(clientAddress('127.0.0.1', '2001:db8:1:2::1')).toBe(clientAddress('127.0.0.1', '2001:db8:1:2:ffff::9'));
    expect(clientAddress('127.0.0.1', '2001:db8:1:2::1')).not.toBe(clientAddress('127.0.0.1', '2001:db8:1:3::1'));
  });

  it.skipIf(!lan)('a forged CF-Connecting-IP from a LAN address does not make new clients', async () => {
    const answers = [];
    for (let i = 0; i < 3; i++) answers.push(await get(big1, { to: lan, from: lan, cf: `203.0.113.${i + 1}` }));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 429]);
    // while a loopback peer's header is trusted: other clients still get in
    expect((await get(big1, { cf: '203.0.113.50' })).status).toBe(200);
    // and the access log names the visitor behind the tunnel, never a forged one
    const done = await get(small, { cf: '203.0.113.50' });
    expect(done.status).toBe(200);
    await done.rest();
    await waitFor(() => t.accessLog().some((e) => e.client === '203.0.113.50'), 10_000, 'the visitor in the access log');
    expect(t.accessLog().filter((e) => typeof e.client === 'string' && String(e.client).startsWith('203.0.113.') && e.client !== '203.0.113.50')).toEqual([]);
  });
});

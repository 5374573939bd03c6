// A download read to its last byte hands its keep-alive socket back: a restore of thousands of files
// must not open a new connection per file (wrapBody used to destroy the finished response).
import net from 'node:net';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { createBackend } from '../../src/main/engine/backends';
import { startS3, type TestS3 } from '../helpers/s3';

let s3: TestS3 | undefined;
afterEach(async () => {
  await s3?.dispose();
});

describe('downloads and keep-alive', () => {
  it('20 GETs read to the end reuse one connection', async () => {
    s3 = await startS3();
    const b = createBackend(s3.target('t'), { retry: false });
    const body = Buffer.alloc(300_000, 7);
    await b.put('k', { size: body.length, open: () => Readable.from([body]) }, { sha256: 'a'.repeat(64), mtimeMs: 1 });
    let connects = 0;
    const orig = net.Socket.prototype.connect;
    net.Socket.prototype.connect = function (this: net.Socket, ...args: unknown[]) {
      connects++;
      return (orig as (...a: unknown[]) => net.Socket).apply(this, args);
    } as typeof orig;
    try {
      for (let i = 0; i < 20; i++) {
        const r = await b.get('k');
        let n = 0;
        for await (const c of r.body) n += (c as Buffer).length;
        expect(n).toBe(body.length);
        r.body.destroy(); // what a caller does when it is done (the restore writer does)
      }
      // a ranged read that stops early still frees its socket for good
      const part = await b.get('k', { range: { start: 0, end: 9 } });
      let m = 0;
      for await (const c of part.body) m += (c as Buffer).length;
      expect(m).toBe(10);
    } finally {
      net.Socket.prototype.connect = orig;
      b.close?.();
    }
    expect(connects).toBeLessThanOrEqual(2);
  });
});

// The answer deadline that downloads put over a target's shared backend: a server that takes the
// connection and never answers is given up after the deadline (a 'timeout', so the download moves
// on to the next copy), while a GET whose headers came in time streams for as long as it takes,
// and the caller can still cut it. Real s3rver, real sockets.
import { createServer as createTcpServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withAnswerDeadline } from '../../src/main/engine/backends/deadline';
import { S3Backend } from '../../src/main/engine/backends/s3';
import { StorageError } from '../../src/main/engine/backends/types';
import { FaultProxy } from '../robustness/fault-proxy';
import { startS3, type TestS3 } from '../helpers/s3';
import { bufferBody, randomData, sha256 } from './helpers';

let s3: TestS3;
beforeAll(async () => {
  s3 = await startS3({ buckets: ['nas'] });
});
afterAll(async () => {
  await s3?.dispose();
});

async function failure(p: Promise<unknown>): Promise<StorageError | string> {
  try {
    await p;
    return 'ok';
  } catch (e) {
    return e instanceof StorageError ? e : String(e);
  }
}

describe('withAnswerDeadline', () => {
  it('a server that never answers: a timeout after the deadline, not after the backend’s own 60 s', async () => {
    // takes every connection, says nothing
    const sockets = new Set<Socket>();
    const silent = createTcpServer((s) => sockets.add(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as AddressInfo).port;
    const inner = new S3Backend(s3.target('nas', { label: 'NAS', endpoint: `http://127.0.0.1:${port}` }));
    const b = withAnswerDeadline(inner, 300);
    try {
      for (const call of [() => b.head('media/a.jpg'), () => b.get('media/a.jpg')]) {
        const e = await failure(call());
        expect(e).toBeInstanceOf(StorageError);
        expect((e as StorageError).kind).toBe('timeout');
        expect((e as StorageError).message).toMatch(/did not answer within 0\.3 s/);
      }
    } finally {
      inner.close();
      for (const s of sockets) s.destroy();
      silent.close();
    }
  });

  it('a GET whose headers came in time streams past the deadline; the caller can still stop it', async () => {
    const direct = new S3Backend(s3.target('nas'));
    const data = randomData(150_000);
    await direct.put('media/slow.bin', bufferBody(data), { sha256: sha256(data), mtimeMs: 1 });
    // 50 KB/s both ways: the headers come at once, the body takes about 3 s
    const proxy = new FaultProxy(s3.port);
    await proxy.start();
    await proxy.setMode({ kind: 'trickle', bytesPerSecond: 50_000 });
    const inner = new S3Backend({ ...s3.target('nas'), endpoint: proxy.endpoint });
    const b = withAnswerDeadline(inner, 300);
    try {
      const got = await b.get('media/slow.bin');
      const chunks: Buffer[] = [];
      for await (const c of got.body) chunks.push(c as Buffer);
      expect(sha256(Buffer.concat(chunks))).toBe(sha256(data));
      // the caller's signal still reaches a body that is streaming
      const ac = new AbortController();
      const again = await b.get('media/slow.bin', { signal: ac.signal });
      const read = (async () => {
        for await (const _ of again.body) ac.abort();
      })();
      expect(await failure(read)).not.toBe('ok');
    } finally {
      inner.close();
      direct.close();
      await proxy.stop();
    }
  });
});

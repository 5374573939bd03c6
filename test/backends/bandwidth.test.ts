// Bandwidth schedule (local time) and the shared throttle, measured on real streams; paced reads
// on a real s3rver behind a counting proxy (what the link carries).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { hasLimit, rateAt, REQUEST_OVERHEAD, scheduleThrottle, Throttle, throttleStream, withBandwidth } from '../../src/main/engine/backends/bandwidth';
import { FolderBackend } from '../../src/main/engine/backends/folder';
import { createBackend } from '../../src/main/engine/backends';
import type { GetOptions, StorageBackend } from '../../src/main/engine/backends/types';
import type { BandwidthConfig } from '../../src/shared/config';
import { FaultProxy } from '../robustness/fault-proxy';
import { startS3 } from '../helpers/s3';
import { bufferBody, folderTarget, randomData, readAll, sha256, tempDir } from './helpers';

const MB = 1_000_000;
// Local-time dates: 2024-01-15 is a Monday.
const at = (day: number, h: number, m = 0) => new Date(2024, 0, 15 + day, h, m);
const MON = 0, TUE = 1, FRI = 4, SAT = 5, SUN = 6;

const office: BandwidthConfig = {
  defaultBytesPerSecond: 0,
  schedule: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], start: '08:00', end: '18:00', bytesPerSecond: 2 * MB }],
};

describe('rateAt: weekly schedule in local time', () => {
  it('weekdays 08:00-18:00 are limited to 2 MB/s, the rest unlimited', () => {
    expect(rateAt(at(MON, 7, 59), office)).toBe(0);
    expect(rateAt(at(MON, 8, 0), office)).toBe(2 * MB);
    expect(rateAt(at(MON, 12, 30), office)).toBe(2 * MB);
    expect(rateAt(at(MON, 17, 59), office)).toBe(2 * MB);
    expect(rateAt(at(MON, 18, 0), office)).toBe(0); // end is exclusive
    expect(rateAt(at(FRI, 9, 0), office)).toBe(2 * MB);
    expect(rateAt(at(SAT, 9, 0), office)).toBe(0);
    expect(rateAt(at(SUN, 12, 0), office)).toBe(0);
  });

  it('the default applies outside every window', () => {
    const cfg: BandwidthConfig = { ...office, defaultBytesPerSecond: 10 * MB };
    expect(rateAt(at(SAT, 9, 0), cfg)).toBe(10 * MB);
    expect(rateAt(at(TUE, 19, 0), cfg)).toBe(10 * MB);
    expect(rateAt(at(TUE, 10, 0), cfg)).toBe(2 * MB);
  });

  it('a weekend window limits whole days', () => {
    const cfg: BandwidthConfig = {
      defaultBytesPerSecond: 0,
      schedule: [{ days: ['sat', 'sun'], start: '00:00', end: '00:00', bytesPerSecond: 500_000 }],
    };
    expect(rateAt(at(SAT, 0, 0), cfg)).toBe(500_000);
    expect(rateAt(at(SAT, 23, 59), cfg)).toBe(500_000);
    expect(rateAt(at(SUN, 12, 0), cfg)).toBe(500_000);
    expect(rateAt(at(SUN + 1, 0, 0), cfg)).toBe(0); // the next Monday
    expect(rateAt(at(FRI, 23, 59), cfg)).toBe(0);
  });

  it('a window whose end is before its start wraps past midnight into the next day', () => {
    const cfg: BandwidthConfig = {
      defaultBytesPerSecond: 0,
      schedule: [{ days: ['fri'], start: '22:00', end: '06:00', bytesPerSecond: 1 * MB }],
    };
    expect(rateAt(at(FRI, 21, 59), cfg)).toBe(0);
    expect(rateAt(at(FRI, 22, 0), cfg)).toBe(1 * MB);
    expect(rateAt(at(FRI, 23, 59), cfg)).toBe(1 * MB);
    expect(rateAt(at(SAT, 0, 0), cfg)).toBe(1 * MB); // the tail belongs to Friday's window
    expect(rateAt(at(SAT, 5, 59), cfg)).toBe(1 * MB);
    expect(rateAt(at(SAT, 6, 0), cfg)).toBe(0);
    expect(rateAt(at(FRI, 3, 0), cfg)).toBe(0); // Thursday night is not in the window
    expect(rateAt(at(SAT, 22, 30), cfg)).toBe(0);
  });

  it('the first matching window wins when windows overlap', () => {
    const cfg: BandwidthConfig = {
      defaultBytesPerSecond: 5 * MB,
      schedule: [
        { days: ['wed'], start: '12:00', end: '13:00', bytesPerSecond: 0 }, // lunch: unlimited
        { days: ['mon', 'tue', 'wed', 'thu', 'fri'], start: '08:00', end: '18:00', bytesPerSecond: 2 * MB },
      ],
    };
    const WED = 2;
    expect(rateAt(at(WED, 12, 30), cfg)).toBe(0);
    expect(rateAt(at(WED, 13, 0), cfg)).toBe(2 * MB);
    expect(rateAt(at(WED, 20, 0), cfg)).toBe(5 * MB);
  });

  it('no config or no limits means unlimited and no throttle', () => {
    expect(rateAt(at(MON, 9), undefined)).toBe(0);
    expect(hasLimit(undefined)).toBe(false);
    expect(hasLimit({ defaultBytesPerSecond: 0, schedule: [] })).toBe(false);
    expect(hasLimit(office)).toBe(true);
  });

  it('a schedule throttle follows the clock (re-read every recheckMs)', () => {
    let now = at(MON, 17, 59);
    let mono = 0;
    const rates: number[] = [];
    const t = scheduleThrottle(office, { clock: () => now, now: () => mono, recheckMs: 60_000, onRate: (r) => rates.push(r) });
    expect(t.rate()).toBe(2 * MB);
    now = at(MON, 18, 0);
    mono += 59_999;
    expect(t.rate()).toBe(2 * MB); // not re-read yet
    mono += 1;
    expect(t.rate()).toBe(0); // within a minute of the change
    expect(rates).toEqual([2 * MB, 0]);
  });
});

describe('Throttle', () => {
  it('reserve() paces bytes on one shared timeline, with a small burst', () => {
    let mono = 1000;
    const t = new Throttle(() => 1000, { now: () => mono, burstMs: 100 });
    expect(t.reserve(100)).toBe(0); // 100 ms of data fits in the burst
    expect(t.reserve(100)).toBe(100); // the next 100 ms waits 100 ms
    expect(t.reserve(100)).toBe(200); // a second caller queues behind, not beside
    mono += 1000;
    expect(t.reserve(100)).toBe(0); // idle time is not banked beyond the burst
    const unlimited = new Throttle(() => 0, { now: () => mono });
    expect(unlimited.reserve(10 * MB)).toBe(0);
  });

  const timed = async (fn: () => Promise<void>) => {
    const t0 = performance.now();
    await fn();
    return (performance.now() - t0) / 1000;
  };

  it('one stream achieves the configured rate within tolerance', async () => {
    const rate = 1_000_000;
    const data = randomData(1_200_000);
    const t = new Throttle(() => rate, { burstMs: 50 });
    let got = 0;
    const secs = await timed(() =>
      pipeline(
        Readable.from([data.subarray(0, 600_000), data.subarray(600_000)]),
        throttleStream(t),
        new Writable({
          write(c: Buffer, _e, cb) {
            got += c.length;
            cb();
          },
        }),
      ),
    );
    expect(got).toBe(data.length);
    const achieved = data.length / secs;
    expect(achieved).toBeLessThan(rate * 1.15);
    expect(achieved).toBeGreaterThan(rate * 0.8);
  });

  it('parallel uploads of one target share the limit (folder target, real files)', async () => {
    const dir = tempDir('bw');
    try {
      const rate = 1_000_000;
      const t = new Throttle(() => rate, { burstMs: 50 });
      const backend = withBandwidth(new FolderBackend(folderTarget(dir.path), { fsync: false }), t);
      const files = Array.from({ length: 4 }, () => randomData(300_000));
      const secs = await timed(async () => {
        await Promise.all(files.map((f, i) => backend.put(`bw/${i}.bin`, bufferBody(f), { sha256: sha256(f), mtimeMs: 1 })));
      });
      const total = files.reduce((n, f) => n + f.length, 0);
      const achieved = total / secs;
      // 4 x 300 kB at a shared 1 MB/s: about 1.2 s, not 0.3 s.
      expect(achieved).toBeLessThan(rate * 1.15);
      expect(achieved).toBeGreaterThan(rate * 0.7);
      for (const [i, f] of files.entries()) expect((await backend.head(`bw/${i}.bin`))?.sha256).toBe(sha256(f));
    } finally {
      dir.dispose();
    }
  });

  it('createBackend throttles a target with a schedule, and not one without', async () => {
    const dir = tempDir('bw2');
    try {
      const limited = createBackend(
        folderTarget(dir.path, { bandwidth: { defaultBytesPerSecond: 500_000, schedule: [] } }),
        { folder: { fsync: false }, retry: false },
      );
      const free = createBackend(folderTarget(dir.path), { folder: { fsync: false }, retry: false });
      const data = randomData(400_000);
      const slow = await timed(async () => void (await limited.put('a.bin', bufferBody(data), { sha256: sha256(data), mtimeMs: 1 })));
      const fast = await timed(async () => void (await free.put('b.bin', bufferBody(data), { sha256: sha256(data), mtimeMs: 1 })));
      expect(slow).toBeGreaterThan(0.6); // 400 kB at 500 kB/s, minus the burst
      expect(fast).toBeLessThan(0.3);
      expect((await readAll((await limited.get('a.bin')).body)).equals(data)).toBe(true);
    } finally {
      dir.dispose();
    }
  });

  it('a body of at most one piece goes whole, its bytes and request paid before it is sent; a bigger one is streamed', async () => {
    const RATE = 10 * MB; // a piece is 50 ms of it: 500 KB
    const mono = 1000;
    const t = new Throttle(() => RATE, { now: () => mono, burstMs: 0 });
    const seen: { whole: boolean; bytes: number }[] = [];
    const inner = {
      put: async (key: string, body: import('../../src/main/engine/backends/types').BodySource) => {
        const bytes = body.whole ? (await body.whole()).length : (await readAll(body.open())).length;
        seen.push({ whole: !!body.whole, bytes });
        return { key, size: body.size, sha256: '', mtimeMs: 1 };
      },
    } as unknown as StorageBackend;
    const backend = withBandwidth(inner, t);
    const small = randomData(100_000);
    await backend.put('small.jpg', { ...bufferBody(small), whole: async () => small }, { sha256: sha256(small), mtimeMs: 1 });
    // paid: the shared timeline moved by the body and its request, no more, no less
    expect(t.reserve(0)).toBeCloseTo(((small.length + REQUEST_OVERHEAD) * 1000) / RATE, 6);
    const big = randomData(600_000);
    await backend.put('big.jpg', { ...bufferBody(big), whole: async () => big }, { sha256: sha256(big), mtimeMs: 1 });
    expect(seen).toEqual([
      { whole: true, bytes: small.length },
      { whole: false, bytes: big.length },
    ]);
  });

  it('an abort stops a throttled upload promptly', async () => {
    const dir = tempDir('bw3');
    try {
      const t = new Throttle(() => 100_000);
      const backend = withBandwidth(new FolderBackend(folderTarget(dir.path), { fsync: false }), t);
      const data = randomData(1_000_000); // 10 s at this rate
      const ctl = new AbortController();
      setTimeout(() => ctl.abort(), 200);
      const t0 = performance.now();
      await expect(backend.put('slow.bin', bufferBody(data), { sha256: sha256(data), mtimeMs: 1, signal: ctl.signal })).rejects.toMatchObject({ kind: 'aborted' });
      expect(performance.now() - t0).toBeLessThan(1500);
      expect(await backend.head('slow.bin')).toBeNull();
    } finally {
      dir.dispose();
    }
  });
});


/** A throttle whose clock runs a second ahead at each look: its pacing never waits (these tests count requests, not time). */
function racingThrottle(rate: number): Throttle {
  let mono = 0;
  return new Throttle(() => rate, { now: () => (mono += 1000) });
}

/** The backend with every get() (and its range) recorded. */
function recordingGets(b: StorageBackend): { backend: StorageBackend; ranges: string[] } {
  const ranges: string[] = [];
  const backend: StorageBackend = {
    ...b,
    get: (key: string, opts?: GetOptions) => {
      ranges.push(opts?.range ? `${opts.range.start}-${opts.range.end ?? ''}` : 'all');
      return b.get(key, opts);
    },
  };
  return { backend, ranges };
}

describe('paced reads', () => {
  const KiB = 1024;
  const PIECE = 128 * KiB; // an eighth of a second of 1 MiB/s is the smallest piece

  it('ask for one piece of the limit at a time and return exactly the bytes asked for', async () => {
    const dir = tempDir('bw-read');
    try {
      const folder = new FolderBackend(folderTarget(dir.path), { fsync: false });
      const data = randomData(PIECE * 3 + 1000);
      await folder.put('r/big.bin', bufferBody(data), { sha256: sha256(data), mtimeMs: 1 });
      await folder.put('r/empty.bin', bufferBody(Buffer.alloc(0)), { sha256: sha256(Buffer.alloc(0)), mtimeMs: 1 });
      const { backend, ranges } = recordingGets(folder);
      const paced = withBandwidth(backend, racingThrottle(1024 * KiB), { gets: true });

      const whole = await paced.get('r/big.bin');
      expect(whole.contentLength).toBe(data.length);
      expect((await readAll(whole.body)).equals(data)).toBe(true);
      expect(ranges.splice(0)).toEqual([`0-${PIECE - 1}`, `${PIECE}-${2 * PIECE - 1}`, `${2 * PIECE}-${3 * PIECE - 1}`, `${3 * PIECE}-${data.length - 1}`]);

      const part = await paced.get('r/big.bin', { range: { start: PIECE - 10, end: PIECE + 9 } });
      expect(part.contentLength).toBe(20);
      expect((await readAll(part.body)).equals(data.subarray(PIECE - 10, PIECE + 10))).toBe(true);
      expect(ranges.splice(0)).toEqual([`${PIECE - 10}-${PIECE + 9}`]);

      const tail = await paced.get('r/big.bin', { range: { start: 2 * PIECE + 5 } });
      expect((await readAll(tail.body)).equals(data.subarray(2 * PIECE + 5))).toBe(true);
      expect(ranges.splice(0)).toEqual([`${2 * PIECE + 5}-${3 * PIECE + 4}`, `${3 * PIECE + 5}-${data.length - 1}`]);

      const empty = await paced.get('r/empty.bin');
      expect(empty.contentLength).toBe(0);
      expect((await readAll(empty.body)).length).toBe(0);
    } finally {
      dir.dispose();
    }
  });

  it('an object replaced half-way through a read fails it with a sentence, never mixes two contents', async () => {
    const dir = tempDir('bw-read2');
    try {
      const folder = new FolderBackend(folderTarget(dir.path), { fsync: false });
      const data = randomData(PIECE * 2);
      await folder.put('r/film.bin', bufferBody(data), { sha256: sha256(data), mtimeMs: 1 });
      const paced = withBandwidth(folder, racingThrottle(1024 * KiB), { gets: true });
      const got = await paced.get('r/film.bin');
      // replaced (another size) after its first piece was asked for
      writeFileSync(join(dir.path, 'r', 'film.bin'), randomData(PIECE * 3));
      await expect(readAll(got.body)).rejects.toMatchObject({ kind: 'integrity', message: expect.stringMatching(/changed while it was being read/) });
    } finally {
      dir.dispose();
    }
  });

  it('the link carries no more than the piece paid for while the reader waits (s3rver behind a counting proxy)', async () => {
    const s3 = await startS3({ buckets: ['bw'] });
    const proxy = new FaultProxy(s3.port);
    await proxy.start();
    try {
      const target = { ...s3.target('bw'), endpoint: proxy.endpoint, bandwidth: { defaultBytesPerSecond: 1024 * KiB, schedule: [] } };
      const backend = createBackend(target, { retry: false, bandwidth: { gets: true } });
      const plain = createBackend({ ...s3.target('bw'), endpoint: proxy.endpoint }, { retry: false });
      const data = randomData(8 * 1024 * KiB);
      await plain.put('film.bin', bufferBody(data), { sha256: sha256(data), mtimeMs: 1 });
      const before = proxy.stats.bytesDown;
      const got = await backend.get('film.bin');
      // the reader takes one chunk, then waits
      const it = got.body[Symbol.asyncIterator]();
      const firstChunk = (await it.next()).value as Buffer;
      // until the link is quiet (bounded: a minute of looks)
      let last = -1;
      for (let still = 0, i = 0; still < 5 && i < 600; i++) {
        await new Promise((r) => setTimeout(r, 100));
        const now = proxy.stats.bytesDown;
        still = now === last ? still + 1 : 0;
        last = now;
      }
      // one piece (and its answer's headers) came, not the 8 MiB the server would send unasked
      expect(last - before).toBeGreaterThan(0);
      expect(last - before).toBeLessThanOrEqual(PIECE + REQUEST_OVERHEAD);
      // and the rest follows, piece by piece, as it is read
      const rest: Buffer[] = [firstChunk];
      for (let r = await it.next(); !r.done; r = await it.next()) rest.push(r.value as Buffer);
      expect(sha256(Buffer.concat(rest))).toBe(sha256(data));
      backend.close?.();
      plain.close?.();
    } finally {
      await proxy.stop();
      await s3.dispose();
    }
  }, 60_000);
});

describe('Throttle.refund', () => {
  it('gives back the slot of bytes reserved and not sent', () => {
    const mono = 0;
    const t = new Throttle(() => 1000, { now: () => mono, burstMs: 0 });
    expect(t.reserve(500)).toBe(500);
    t.refund(400);
    expect(t.reserve(100)).toBe(200);
  });
});

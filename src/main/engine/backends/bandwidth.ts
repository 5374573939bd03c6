// Bandwidth limits: one throttle per target, shared by all of its parallel uploads and reads,
// following a weekly schedule in local time ("2 MB/s on weekdays 08:00-18:00, unlimited otherwise").
//
// The throttle is a GCRA-style token bucket: every piece of data reserves its slot on one shared
// timeline (`tat`, the theoretical arrival time), so 4 uploads at once share the limit fairly in
// the order they ask, and a short burst (burstMs worth of bytes) may go out unthrottled.
//
// Uploads are paced as they are written: nothing leaves before its slot. Reads cannot be paced as
// they are read: the server sends as fast as the link allows until the TCP buffers between it and
// the reader are full, megabytes ahead of a slow reader (10 MB on one connection, measured here),
// and the site's link carries them at its full rate. So a read asks for one piece of the object
// at a time (a Range of an eighth of a second of the limit), each paid on the timeline before it
// is asked for: the link never carries bytes that were not paid for.
import { pipeline, Readable, Transform, type TransformCallback } from 'node:stream';
import type { BandwidthConfig, Weekday } from '../../../shared/config';
import { isRetryable } from './retry';
import { sleep } from './streams';
import { isStorageError, optionalCalls, StorageError, type BodySource, type GetOptions, type GetResult, type ListOptions, type ObjectInfo, type PutOptions, type StorageBackend } from './types';

/**
 * Bytes a request and its answer carry besides a body (request line, signed headers, answer
 * headers), paid with each upload and each piece read so that the link's total stays within the limit.
 */
export const REQUEST_OVERHEAD = 1024;
/** About what one key of a listing costs in its XML answer: listings are paid as their keys come. */
const LISTED_KEY_BYTES = 300;
/**
 * Pieces of a paced read: an eighth of a second of the limit, within these bounds. Each reader
 * holds one piece on the shared timeline: 8 readers put a second of the limit ahead of everyone
 * else's next turn (a visitor's download, an upload). A single reader asks for the next piece once
 * it has read the last: on a link 100 ms away it still reads at 1.25x the limit, more at the minimum.
 */
const MIN_READ_PIECE = 128 * 1024;
const MAX_READ_PIECE = 8 * 1024 * 1024;
/** Tries of one piece of a paced read that fails for a passing reason (the read as a whole was tried already). */
const PIECE_TRIES = 3;

const DAY_BY_INDEX: Weekday[] = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

function minutesOf(hhmm: string): number {
  const [h, m] = hhmm.split(':');
  return Number(h) * 60 + Number(m);
}

/**
 * Bytes per second allowed at `date` (local time); 0 means unlimited.
 * A window starts on each of its days at `start` and runs to `end`; an `end` at or before `start`
 * runs past midnight into the next day (22:00-06:00), and `start` == `end` means 24 hours.
 * When windows overlap, the first one in the list wins; outside every window the default applies.
 */
export function rateAt(date: Date, cfg: BandwidthConfig | undefined): number {
  if (!cfg) return 0;
  const day = date.getDay();
  const today = DAY_BY_INDEX[day]!;
  const yesterday = DAY_BY_INDEX[(day + 6) % 7]!;
  const m = date.getHours() * 60 + date.getMinutes();
  for (const w of cfg.schedule ?? []) {
    const s = minutesOf(w.start);
    const e = minutesOf(w.end);
    const duration = e > s ? e - s : e + 1440 - s; // e == s: 1440, a whole day
    if (w.days.includes(today) && m >= s && m - s < duration) return w.bytesPerSecond;
    // The tail of a window that began yesterday and runs past midnight.
    if (w.days.includes(yesterday) && m + 1440 - s < duration) return w.bytesPerSecond;
  }
  return cfg.defaultBytesPerSecond ?? 0;
}

/** True when the config limits anything at all (otherwise no throttle is needed). */
export function hasLimit(cfg: BandwidthConfig | undefined): boolean {
  return !!cfg && (cfg.defaultBytesPerSecond > 0 || (cfg.schedule ?? []).some((w) => w.bytesPerSecond > 0));
}

export interface ThrottleOptions {
  /** Bytes allowed to go out at once after an idle spell, in ms of the rate. Default 100. */
  burstMs?: number;
  /** How often the rate function is asked again, ms. Default 1000 (the schedule needs <= 60 s). */
  recheckMs?: number;
  /** Told when the effective rate changes (0 = unlimited). */
  onRate?: (bytesPerSecond: number) => void;
  /** Monotonic clock in ms; tests may replace it. */
  now?: () => number;
}

export class Throttle {
  private tat = 0;
  private current = -1;
  private checkedAt = -Infinity;
  private readonly burstMs: number;
  private readonly recheckMs: number;
  private readonly now: () => number;

  constructor(
    private readonly rateFn: () => number,
    private readonly opts: ThrottleOptions = {},
  ) {
    this.burstMs = opts.burstMs ?? 100;
    this.recheckMs = opts.recheckMs ?? 1000;
    this.now = opts.now ?? (() => performance.now());
  }

  /** Current limit in bytes per second; 0 = unlimited. */
  rate(): number {
    const now = this.now();
    if (now - this.checkedAt >= this.recheckMs) {
      this.checkedAt = now;
      const r = Math.max(0, this.rateFn());
      if (r !== this.current) {
        this.current = r;
        this.opts.onRate?.(r);
      }
    }
    return this.current;
  }

  /** Reserve `n` bytes on the shared timeline; returns how long to wait before sending them. */
  reserve(n: number): number {
    const rate = this.rate();
    const now = this.now();
    if (rate <= 0) {
      this.tat = now;
      return 0;
    }
    this.tat = Math.max(this.tat, now) + (n * 1000) / rate;
    return Math.max(0, this.tat - now - this.burstMs);
  }

  /** Give back `n` bytes reserved and not sent (a read that was shorter than paid for). */
  refund(n: number): void {
    const rate = this.current;
    if (n > 0 && rate > 0) this.tat -= (n * 1000) / rate;
  }

  /** Size of one throttled piece: about 50 ms of data, at least 1 KiB. */
  pieceSize(): number {
    const rate = this.rate();
    return rate > 0 ? Math.max(1024, Math.floor(rate / 20)) : Infinity;
  }

  /** Size of one piece of a paced read (see the top of this file); Infinity when unlimited. */
  readPiece(): number {
    const rate = this.rate();
    return rate > 0 ? Math.min(MAX_READ_PIECE, Math.max(MIN_READ_PIECE, Math.floor(rate / 8))) : Infinity;
  }

  /** Reserve `n` bytes and wait for their slot. */
  async pay(n: number, signal?: AbortSignal): Promise<void> {
    const wait = this.reserve(n);
    if (wait >= 1) await sleep(wait, signal);
  }
}

/** A throttle that follows a weekly schedule, re-read every `recheckMs` (default 1 s). */
export function scheduleThrottle(cfg: BandwidthConfig, opts: ThrottleOptions & { clock?: () => Date } = {}): Throttle {
  const clock = opts.clock ?? (() => new Date());
  return new Throttle(() => rateAt(clock(), cfg), opts);
}

/** A Transform that lets bytes through no faster than the throttle allows. */
export function throttleStream(throttle: Throttle, signal?: AbortSignal): Transform {
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      const run = async () => {
        let off = 0;
        // Bounded: every pass moves `off` forward by at least one byte.
        while (off < chunk.length) {
          const piece = chunk.subarray(off, off + Math.min(chunk.length - off, throttle.pieceSize()));
          await throttle.pay(piece.length, signal);
          this.push(piece);
          off += piece.length;
        }
      };
      run().then(() => cb(), (e: Error) => cb(e));
    },
  });
}

function throttled(src: Readable, throttle: Throttle, signal?: AbortSignal): Readable {
  const t = throttleStream(throttle, signal);
  // pipeline forwards a source error (a failed local read) to the consumer and vice versa.
  pipeline(src, t, () => {});
  return t;
}

export interface BandwidthWrapOptions {
  /** Throttle downloads too (restores over a thin line). Default false: only uploads. */
  gets?: boolean;
}

/** Wrap a backend so that every upload body (and optionally every read) goes through `throttle`. */
export function withBandwidth(backend: StorageBackend, throttle: Throttle, opts: BandwidthWrapOptions = {}): StorageBackend {
  const wrapped: StorageBackend = {
    id: backend.id,
    kind: backend.kind,
    description: backend.description,
    prefix: backend.prefix,
    put(key: string, body: BodySource, putOpts: PutOptions) {
      const slow: BodySource = {
        size: body.size,
        open: () => {
          // each try (a retry opens the body again) pays for its request too
          throttle.reserve(REQUEST_OVERHEAD);
          return throttled(body.open(), throttle, putOpts.signal);
        },
      };
      // A body no bigger than one throttled piece goes whole, paid before it is sent.
      const { whole } = body;
      if (whole && body.size <= throttle.pieceSize()) {
        slow.whole = async () => {
          const buf = await whole();
          await throttle.pay(buf.length + REQUEST_OVERHEAD, putOpts.signal);
          return buf;
        };
      }
      return backend.put(key, slow, putOpts);
    },
    get: (key: string, getOpts?: GetOptions) => (opts.gets ? pacedGet(backend, throttle, key, getOpts) : backend.get(key, getOpts)),
    head: (key, signal) => backend.head(key, signal),
    list: (prefix, listOpts) => (opts.gets ? pacedList(backend, throttle, prefix, listOpts) : backend.list(prefix, listOpts)),
    delete: (key, signal) => backend.delete(key, signal),
    copy: (src, dst, signal) => backend.copy(src, dst, signal),
    close: () => backend.close?.(),
  };
  return Object.assign(wrapped, optionalCalls(backend));
}

/**
 * A read of `key` (or of its range) asked for one piece at a time, each paid before it is asked
 * for (see the top of this file). The pieces must come from one object: another ETag or size
 * half-way (the object was replaced) fails the read.
 */
async function pacedGet(backend: StorageBackend, throttle: Throttle, key: string, opts: GetOptions = {}): Promise<GetResult> {
  const piece = throttle.readPiece();
  if (!Number.isFinite(piece)) {
    // Unlimited now: one request, paced as it is read in case a limit begins meanwhile.
    const res = await backend.get(key, opts);
    return { ...res, body: throttled(res.body, throttle, opts.signal) };
  }
  const { signal } = opts;
  const start = opts.range?.start ?? 0;
  const last = opts.range?.end;
  const firstEnd = last === undefined ? start + piece - 1 : Math.min(last, start + piece - 1);
  const asked = firstEnd - start + 1;
  await throttle.pay(asked + REQUEST_OVERHEAD, signal);
  let first: GetResult;
  try {
    first = await backend.get(key, { signal, range: { start, end: firstEnd } });
  } catch (e) {
    throttle.refund(asked);
    // An empty object has no byte 0 to ask for: read it whole (there is nothing to pace).
    if (!opts.range && isStorageError(e) && e.kind === 'invalid') return backend.get(key, opts);
    throw e;
  }
  throttle.refund(asked - first.contentLength);
  const end = Math.min(last ?? first.totalSize - 1, first.totalSize - 1);
  const contentLength = end - start + 1;
  if (start + first.contentLength > end) return first;
  const same = (r: GetResult) => r.totalSize === first.totalSize && r.info.etag === first.info.etag && r.info.lastModified === first.info.lastModified;
  let current: Readable = first.body;
  async function* pieces(): AsyncGenerator<Buffer> {
    yield* first.body;
    // Bounded: each pass moves `at` forward by at least one byte (or fails).
    for (let at = start + first.contentLength; at <= end; ) {
      const to = Math.min(end, at + throttle.readPiece() - 1);
      await throttle.pay(to - at + 1 + REQUEST_OVERHEAD, signal);
      const next = await getPiece(backend, key, at, to, signal);
      current = next.body;
      if (!same(next) || next.contentLength <= 0) {
        throw new StorageError(
          'integrity',
          `"${key}" on ${backend.description} changed while it was being read. Triplicate reads it again.`,
          `paced read at ${at}: size ${next.totalSize}, ETag ${next.info.etag} after ${first.totalSize}, ${first.info.etag}`,
        );
      }
      yield* next.body;
      at += next.contentLength;
    }
  }
  const body = Readable.from(pieces(), { objectMode: false });
  // a body dropped before it was read to the end lets go of the piece's connection
  body.once('close', () => current.destroy());
  return { body, contentLength, totalSize: first.totalSize, info: first.info };
}

/** One piece of a paced read, tried again a moment later when it fails for a passing reason. */
async function getPiece(backend: StorageBackend, key: string, start: number, end: number, signal: AbortSignal | undefined): Promise<GetResult> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await backend.get(key, { signal, range: { start, end } });
    } catch (e) {
      if (attempt >= PIECE_TRIES || signal?.aborted || !isRetryable(e)) throw e;
      await sleep(250 * attempt, signal);
    }
  }
}

/** A listing whose answers are paid for as their keys come (after the fact: their size is not known before). */
async function* pacedList(backend: StorageBackend, throttle: Throttle, prefix: string, opts?: ListOptions): AsyncGenerator<ObjectInfo> {
  let n = 0;
  for await (const o of backend.list(prefix, opts)) {
    yield o;
    if (++n % 100 === 0) await throttle.pay(100 * LISTED_KEY_BYTES, opts?.signal);
  }
}

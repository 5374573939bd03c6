// Bandwidth limits: one throttle per target, shared by all of its parallel uploads, following a
// weekly schedule in local time ("2 MB/s on weekdays 08:00-18:00, unlimited otherwise").
//
// The throttle is a GCRA-style token bucket: every piece of data reserves its slot on one shared
// timeline (`tat`, the theoretical arrival time), so 4 uploads at once share the limit fairly in
// the order they ask, and a short burst (burstMs worth of bytes) may go out unthrottled.
import { pipeline, Transform, type Readable, type TransformCallback } from 'node:stream';
import type { BandwidthConfig, Weekday } from '../../../shared/config';
import { sleep } from './streams';
import { optionalCalls, type BodySource, type GetOptions, type GetResult, type PutOptions, type StorageBackend } from './types';

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

  /** Size of one throttled piece: about 50 ms of data, at least 1 KiB. */
  pieceSize(): number {
    const rate = this.rate();
    return rate > 0 ? Math.max(1024, Math.floor(rate / 20)) : Infinity;
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
          const wait = throttle.reserve(piece.length);
          if (wait >= 1) await sleep(wait, signal);
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

/** Wrap a backend so that every upload body (and optionally download) goes through `throttle`. */
export function withBandwidth(backend: StorageBackend, throttle: Throttle, opts: BandwidthWrapOptions = {}): StorageBackend {
  const wrapped: StorageBackend = {
    id: backend.id,
    kind: backend.kind,
    description: backend.description,
    prefix: backend.prefix,
    put(key: string, body: BodySource, putOpts: PutOptions) {
      const slow: BodySource = { size: body.size, open: () => throttled(body.open(), throttle, putOpts.signal) };
      return backend.put(key, slow, putOpts);
    },
    async get(key: string, getOpts?: GetOptions): Promise<GetResult> {
      const res = await backend.get(key, getOpts);
      return opts.gets ? { ...res, body: throttled(res.body, throttle, getOpts?.signal) } : res;
    },
    head: (key, signal) => backend.head(key, signal),
    list: (prefix, listOpts) => backend.list(prefix, listOpts),
    delete: (key, signal) => backend.delete(key, signal),
    copy: (src, dst, signal) => backend.copy(src, dst, signal),
    close: () => backend.close?.(),
  };
  return Object.assign(wrapped, optionalCalls(backend));
}

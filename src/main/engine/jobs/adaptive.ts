// How many transfers a lane keeps in flight, found the way TCP finds its window (AIMD).
//
// - Slow start: from the start level, the level doubles after each measured epoch while the
//   throughput grows with it (a far link: each file waits a round trip, so twice the files in
//   flight carry about twice the bytes).
// - Once a doubling buys little (the link, the server or this computer is the limit), the level
//   goes back to where it was (as fast, with fewer in flight: less memory, shorter queues) and
//   holds; every few epochs it probes one step up (additive increase) and keeps the step only
//   when the throughput grew with it.
// - Halved (multiplicative decrease) when the server asks to slow down (503 SlowDown, 429), fails
//   with a 5xx or times out, and when the throughput at a level that was measured before fell by
//   half in two epochs in a row: by Little's law (in flight = throughput x time per transfer) each
//   transfer then takes twice as long, so a queue has built up on the way. One such epoch alone is
//   a stall all transfers in flight shared (a pause of the server, this computer or its disk; on a
//   WAN bench, epochs at a steady 32 measured 41-98 MB/s), which a halving would not cure. At most
//   one halving per transfer time: the transfers still in flight from before it carry no news.
// - Never above the ceiling (the operator's cap, or the provider's), never below 1.
//
// An epoch measures one level: only transfers begun at that level with the level's number in
// flight count, and it ends once as many of them as the level (at least MIN_SAMPLES) have ended.
// Its throughput, by Little's law, is the level times the work of one transfer per unit of its
// time: level x (their work / their time). Work is bytes plus FILE_COST per file, so that small
// files (where the round trips are the cost) and big ones weigh alike. Measured so, transfers that
// end together (a batch) give the same answer as a steady stream. An epoch in which the lane did
// not keep its level busy (a queue running dry) decides nothing.
//
// Pure: fed with transfers and signals, on a clock the caller may replace (tests).

/** Work counted for one file besides its bytes: about what a round trip of a far link could have carried. */
export const FILE_COST = 64 * 1024;
/** Fewest transfers an epoch measures. */
const MIN_SAMPLES = 4;
/** A doubling is kept when the throughput grew by at least this share of the growth it could have bought. */
const START_GAIN = 0.25;
/** A probe (one step up) is kept when the throughput grew by at least half of what the step could buy, and 5 %. */
const PROBE_GAIN = 0.5;
const PROBE_MIN = 0.05;
/** The throughput at a level fell below this share of its earlier measurement: transfers take twice as long; halve. */
const SLOWER = 0.5;
/**
 * Epochs in a row whose throughput fell below SLOWER before it halves: one is a stall that every
 * transfer in flight shares (a pause of the server, of this computer, of the disk), not a queue.
 */
const SLOW_EPOCHS = 2;
/** Epochs held before probing one step up. */
const HOLD_EPOCHS = 3;
/** Time per transfer assumed before any has ended, ms (the pause between two halvings). */
const FIRST_TRANSFER_MS = 1000;

export interface AdaptiveOptions {
  /** Level to start at (clamped to the ceiling). */
  start: number;
  /** Highest level ever chosen. */
  ceiling: number;
  /** Monotonic clock, ms. */
  now?: () => number;
  /** Told each time the level changes, with why. */
  onChange?: (level: number, why: AdaptiveReason) => void;
}

export type AdaptiveReason = 'faster' | 'probe' | 'no-gain' | 'slow-down' | 'slower' | 'ceiling';

/** One transfer begun with begin(): end it exactly once (later calls are ignored). */
export interface Transfer {
  /** It went through, carrying `bytes` (0 for a file found already there). */
  done(bytes: number): void;
  /** It did not go through (the reason is told apart, through congested(), when it is the server's). */
  failed(): void;
}

type Phase = 'start' | 'hold' | 'probe';

export class AdaptiveConcurrency {
  private lvl: number;
  private cap: number;
  private phase: Phase = 'start';
  private inflight = 0;
  /** The epoch: its number, the transfers of it that ended, and when. */
  private epoch = 0;
  private ended = 0;
  private idleEnds = 0;
  private work = 0;
  private time = 0;
  /** The last full epoch's level and throughput (work per second). */
  private prev: { level: number; rate: number } | undefined;
  private held = 0;
  /** Full epochs in a row measured below SLOWER of the reference. */
  private slowEpochs = 0;
  private lastCutAt = -Infinity;
  /** Smoothed time per transfer, ms. */
  private transferMs: number | undefined;
  private readonly now: () => number;

  constructor(private readonly opts: AdaptiveOptions) {
    this.cap = Math.max(1, Math.floor(opts.ceiling));
    this.lvl = Math.min(this.cap, Math.max(1, Math.floor(opts.start)));
    this.now = opts.now ?? (() => performance.now());
  }

  /** Transfers to keep in flight now. */
  get level(): number {
    return this.lvl;
  }

  get ceiling(): number {
    return this.cap;
  }

  /** Transfers begun and not yet ended. */
  get active(): number {
    return this.inflight;
  }

  /** The cap changed (a setting): the level stays at or below it, and may grow up to it. */
  setCeiling(ceiling: number): void {
    const cap = Math.max(1, Math.floor(ceiling));
    if (cap === this.cap) return;
    this.cap = cap;
    if (this.lvl > cap) this.set(cap, 'ceiling');
  }

  begin(): Transfer {
    const epoch = this.epoch;
    const at = this.now();
    const load = ++this.inflight;
    let open = true;
    const end = (bytes: number | null) => {
      if (!open) return;
      open = false;
      this.inflight--;
      if (bytes === null) return;
      const ms = this.now() - at;
      this.transferMs = this.transferMs === undefined ? ms : this.transferMs * 0.8 + ms * 0.2;
      if (epoch === this.epoch) this.count(bytes, ms, load);
    };
    return { done: (bytes) => end(Math.max(0, bytes)), failed: () => end(null) };
  }

  /** The server asked to slow down, failed with a 5xx, or did not answer in time: halve (once per transfer time). */
  congested(): void {
    const t = this.now();
    if (t - this.lastCutAt < (this.transferMs ?? FIRST_TRANSFER_MS)) return;
    this.cut(t, 'slow-down');
  }

  /** One transfer of this epoch ended: `ms` after it began, with `load` in flight (it included) then. */
  private count(bytes: number, ms: number, load: number): void {
    const need = Math.max(MIN_SAMPLES, this.lvl);
    if (load < this.lvl) {
      // begun below the level (workers starting, a queue running dry): not a sample of it
      if (++this.idleEnds >= 2 * need) this.decide(0, false);
      return;
    }
    this.ended++;
    this.work += bytes + FILE_COST;
    this.time += ms;
    if (this.ended >= need) this.decide((this.lvl * this.work * 1000) / Math.max(1, this.time), true);
  }

  private decide(rate: number, full: boolean): void {
    const p = this.prev;
    if (!full) {
      // The queue, not the level, set this throughput: nothing to learn, and no baseline to keep.
      this.prev = undefined;
      return this.newEpoch();
    }
    const L = this.lvl;
    this.prev = { level: L, rate };
    if (p && p.level >= L && rate < p.rate * SLOWER) {
      if (++this.slowEpochs >= SLOW_EPOCHS) return this.cut(this.now(), 'slower');
      // One slow epoch is a stall that every transfer in flight shared; the reference stays.
      this.prev = p;
      return this.newEpoch();
    }
    this.slowEpochs = 0;
    const stepped = p !== undefined && p.level < L;
    const gain = stepped ? rate / p.rate : 1;
    const could = stepped ? L / p.level - 1 : 0;
    if (this.phase === 'start') {
      if (!stepped || gain >= 1 + could * START_GAIN) return this.grow();
      return this.back(p, 'no-gain');
    }
    if (this.phase === 'probe') {
      if (stepped && gain >= 1 + Math.max(PROBE_MIN, could * PROBE_GAIN)) return this.probe();
      return stepped ? this.back(p, 'no-gain') : this.hold();
    }
    if (++this.held >= HOLD_EPOCHS) return this.probe();
    this.newEpoch();
  }

  /** Slow start: double, up to the ceiling. */
  private grow(): void {
    if (this.lvl >= this.cap) return this.hold();
    this.set(Math.min(this.cap, this.lvl * 2), 'faster');
  }

  /** Additive increase: one step (an eighth of the level, at least 1) up, up to the ceiling. */
  private probe(): void {
    if (this.lvl >= this.cap) return this.hold();
    this.phase = 'probe';
    this.set(Math.min(this.cap, this.lvl + Math.max(1, Math.floor(this.lvl / 8))), 'probe');
  }

  private hold(): void {
    this.phase = 'hold';
    this.held = 0;
    this.newEpoch();
  }

  /** The last step bought nothing: back to the level before it, and hold there. */
  private back(p: { level: number; rate: number }, why: AdaptiveReason): void {
    this.phase = 'hold';
    this.held = 0;
    this.set(p.level, why);
    this.prev = p;
  }

  private cut(t: number, why: AdaptiveReason): void {
    this.lastCutAt = t;
    this.phase = 'hold';
    this.held = 0;
    this.prev = undefined;
    this.set(Math.max(1, Math.floor(this.lvl / 2)), why);
  }

  private set(level: number, why: AdaptiveReason): void {
    const changed = level !== this.lvl;
    this.slowEpochs = 0;
    this.lvl = level;
    this.newEpoch();
    if (changed) this.opts.onChange?.(level, why);
  }

  private newEpoch(): void {
    this.epoch++;
    this.ended = 0;
    this.idleEnds = 0;
    this.work = 0;
    this.time = 0;
  }
}

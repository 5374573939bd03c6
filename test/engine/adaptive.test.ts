// The upload lanes' choice of how many files to send at once (jobs/adaptive.ts), fed with
// synthetic transfers on a clock of its own: a small model of a link (each file waits a round trip,
// and the files in flight share the link's rate) decides when each transfer ends.
import { describe, expect, it } from 'vitest';
import { AdaptiveConcurrency, type Transfer } from '../../src/main/engine/jobs/adaptive';

const KB = 1000;

interface Model {
  /** Time one transfer takes when `inflight` transfers share the link (it included), ms. */
  durationMs(inflight: number): number;
  /** The server refuses a transfer begun with this many in flight (503 SlowDown). */
  refuses?(inflight: number): boolean;
  /** Most files queued at once (a lane whose queue runs dry); default: as many as asked for. */
  queued?: number;
}

/**
 * A far link: a file takes a round trip and its own time on the link, or, once the files in flight
 * keep the link busy, its share of it.
 */
function link(rttMs: number, bytesPerSecond: number, fileBytes: number): Model['durationMs'] {
  const onLink = (fileBytes * 1000) / bytesPerSecond;
  return (inflight) => Math.max(rttMs + onLink, inflight * onLink);
}

/** Send `files` files of `fileBytes` through the controller; the level after each end. */
function run(a: AdaptiveConcurrency, clock: { t: number }, model: Model, files: number, fileBytes = 200 * KB): number[] {
  const flying: { at: number; tr: Transfer; refused: boolean }[] = [];
  const levels: number[] = [];
  let started = 0;
  const fill = () => {
    while (flying.length < Math.min(a.level, model.queued ?? Infinity) && started < files) {
      const tr = a.begin();
      started++;
      const refused = model.refuses?.(a.active) ?? false;
      flying.push({ at: clock.t + (refused ? model.durationMs(1) : model.durationMs(a.active)), tr, refused });
    }
  };
  fill();
  // Bounded: each pass ends one transfer, and at most `files` are ever begun.
  for (let i = 0; i < files && flying.length; i++) {
    flying.sort((x, y) => x.at - y.at);
    const e = flying.shift()!;
    clock.t = e.at;
    if (e.refused) {
      a.congested();
      e.tr.failed();
      started--; // sent again later, as the lane's retry would
    } else e.tr.done(fileBytes);
    levels.push(a.level);
    fill();
  }
  return levels;
}

function controller(start: number, ceiling: number) {
  const clock = { t: 0 };
  const changes: string[] = [];
  const a = new AdaptiveConcurrency({ start, ceiling, now: () => clock.t, onChange: (l, why) => changes.push(`${l} ${why}`) });
  return { a, clock, changes };
}

describe('adaptive concurrency', () => {
  it('on a far link where each file waits a round trip, doubles from the start up to the ceiling', () => {
    const { a, clock, changes } = controller(4, 32);
    // 60 ms away, a link far wider than 32 photos at once can fill
    run(a, clock, { durationMs: link(60, 1e9, 200 * KB) }, 2000);
    expect(a.level).toBe(32);
    expect(changes.slice(0, 3)).toEqual(['8 faster', '16 faster', '32 faster']);
  });

  it('never goes above the ceiling (the operator cap)', () => {
    const { a, clock } = controller(4, 6);
    const levels = run(a, clock, { durationMs: link(60, 1e9, 200 * KB) }, 1000);
    expect(Math.max(...levels)).toBe(6);
    expect(a.level).toBe(6);
  });

  it('settles where the link is full, with no more files in flight than fill it', () => {
    const { a, clock } = controller(4, 32);
    // 25 MB/s, 60 ms: about 8.5 photos of 200 KB in flight fill it
    const levels = run(a, clock, { durationMs: link(60, 25e6, 200 * KB) }, 3000);
    expect(Math.max(...levels)).toBeLessThanOrEqual(16);
    expect(levels.slice(-1000).every((l) => l >= 8 && l <= 10)).toBe(true);
  });

  it('a queue that runs dry decides nothing: the level stays where it was', () => {
    const { a, clock, changes } = controller(4, 32);
    run(a, clock, { durationMs: link(60, 1e9, 200 * KB), queued: 2 }, 500);
    expect(changes).toEqual([]);
    expect(a.level).toBe(4);
  });

  it('halves when the server asks to slow down, once per transfer time, never below 1', () => {
    const { a, clock, changes } = controller(4, 32);
    run(a, clock, { durationMs: link(60, 1e9, 200 * KB) }, 2000);
    expect(a.level).toBe(32);
    // a burst of 503s from the transfers in flight: one halving
    for (let i = 0; i < 20; i++) a.congested();
    expect(a.level).toBe(16);
    clock.t += 10; // less than a transfer's time (about 60 ms here)
    a.congested();
    expect(a.level).toBe(16);
    // bounded: 32 halvings at most
    for (let i = 0; i < 32; i++) {
      clock.t += 1000;
      a.congested();
    }
    expect(a.level).toBe(1);
    expect(changes.filter((c) => c.endsWith('slow-down')).length).toBe(5);
  });

  it('under a server that refuses more than 10 at once, stays around 10 and comes back down each time it refuses', () => {
    const { a, clock, changes } = controller(4, 32);
    const levels = run(a, clock, { durationMs: link(60, 1e9, 200 * KB), refuses: (n) => n > 10 }, 6000);
    const late = levels.slice(-3000);
    expect(Math.max(...late)).toBeLessThanOrEqual(12);
    expect(Math.min(...late)).toBeGreaterThanOrEqual(2);
    expect(changes.filter((c) => c.endsWith('slow-down')).length).toBeGreaterThan(2);
    // it keeps probing upwards between the refusals (additive increase)
    expect(changes.filter((c) => c.endsWith('probe')).length).toBeGreaterThan(2);
  });

  it('halves when transfers at the same level take twice as long (a queue built up on the way)', () => {
    const { a, clock, changes } = controller(8, 8);
    run(a, clock, { durationMs: () => 100 }, 200);
    expect(a.level).toBe(8);
    run(a, clock, { durationMs: () => 300 }, 100);
    // (then it probes back up: here more files in flight still carry more)
    expect(changes[0]).toBe('4 slower');
  });

  it('one slow epoch (a stall every transfer in flight shares) does not halve; two in a row do', () => {
    const { a, clock, changes } = controller(8, 8);
    // 100 ms per file, but a pause of the server holds 8 files (an epoch at 8) for 250 ms
    let begun = 0;
    const levels = run(a, clock, { durationMs: () => (++begun > 200 && begun <= 208 ? 250 : 100) }, 400);
    expect(levels.every((l) => l === 8)).toBe(true);
    expect(changes).toEqual([]);
    // every file slower for good: halved after the second slow epoch
    run(a, clock, { durationMs: () => 300 }, 100);
    expect(changes[0]).toBe('4 slower');
  });

  it('a step up that buys nothing goes back to the level before it', () => {
    const { a, clock, changes } = controller(16, 64);
    // the link is full with fewer than 16: the doubling to 32 buys nothing and goes back; so does
    // each probe one step up (16 -> 18)
    run(a, clock, { durationMs: link(1, 25e6, 200 * KB) }, 3000);
    expect(changes.slice(0, 4)).toEqual(['32 faster', '16 no-gain', '18 probe', '16 no-gain']);
    expect(a.level).toBe(16);
  });

  it('a lower cap brings the level down at once; a higher one lets it grow again', () => {
    const { a, clock, changes } = controller(4, 32);
    run(a, clock, { durationMs: link(60, 1e9, 200 * KB) }, 2000);
    expect(a.level).toBe(32);
    a.setCeiling(10);
    expect(a.level).toBe(10);
    expect(changes.at(-1)).toBe('10 ceiling');
    a.setCeiling(20);
    run(a, clock, { durationMs: link(60, 1e9, 200 * KB) }, 2000);
    expect(a.level).toBe(20);
  });

  it('a transfer ended twice counts once, and a failed one carries no throughput', () => {
    const { a } = controller(4, 32);
    const t = a.begin();
    expect(a.active).toBe(1);
    t.done(100);
    t.done(100);
    t.failed();
    expect(a.active).toBe(0);
    const f = a.begin();
    f.failed();
    expect(a.active).toBe(0);
  });
});

// The engine thread's load as the upload lanes read it (jobs/loop-load.ts): a window in which the
// event loop ran callbacks all the time is busy, one in which it waited is not. No clock is
// replaced: the loop really is kept busy (a spin between timers) or idle (a timer alone).
import { performance } from 'node:perf_hooks';
import { afterEach, describe, expect, it } from 'vitest';
import { LoopLoad } from '../../src/main/engine/jobs/loop-load';

const idle = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
/** Keep the loop busy for about `ms`: spins of 20 ms with the timers (the load's among them) run between them. */
async function busyFor(ms: number): Promise<void> {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    const end = performance.now() + 20;
    while (performance.now() < end);
    await new Promise<void>((r) => setImmediate(r));
  }
}

let load: LoopLoad | undefined;
afterEach(() => load?.stop());

describe('engine thread load', () => {
  it('is busy after a window spent in callbacks, and not after one spent waiting', async () => {
    load = new LoopLoad();
    expect(load.busy()).toBe(false); // nothing measured yet: asking starts the measuring
    await busyFor(700);
    expect(load.busy()).toBe(true);
    await idle(700);
    expect(load.busy()).toBe(false);
    await busyFor(700);
    expect(load.busy()).toBe(true);
    load.stop();
    expect(load.busy()).toBe(false);
  });

  it('stops measuring when nobody asks, and starts again, not busy, at the next question', async () => {
    load = new LoopLoad();
    load.busy();
    await busyFor(700);
    // busy while asked; then nobody asks for over 2 s (the thread kept busy all along)
    expect(load.busy()).toBe(true);
    await busyFor(2700);
    // the timer stopped: what the last windows measured is not taken for now
    expect(load.busy()).toBe(false);
    await busyFor(700);
    expect(load.busy()).toBe(true);
  });
});

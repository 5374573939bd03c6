// Whether the engine's one thread has been busy nearly all the time lately: the event loop's
// utilization (the share of time it ran callbacks rather than waited for I/O), measured every
// window by an unref'd timer that runs only while someone asks (it stops after IDLE_MS unasked).
// Busy from a window at LOOP_BUSY on, until one falls below LOOP_FREE: a saturated thread's windows
// scatter around the threshold, and an answer that flipped with each would let the lane that gives
// way back in every second.
import { performance, type EventLoopUtilization } from 'node:perf_hooks';

/** Utilization from which the thread counts as saturated: it no longer keeps up with more work. */
export const LOOP_BUSY = 0.9;
/** Utilization below which a saturated thread counts as free again. */
export const LOOP_FREE = 0.75;
/** The window measured, ms. */
const WINDOW_MS = 250;
/** Unasked this long, the timer stops (and the answer is "not busy" until it measured again). */
const IDLE_MS = 2000;

export class LoopLoad {
  private last: EventLoopUtilization | undefined;
  private saturated = false;
  private timer: NodeJS.Timeout | undefined;
  private askedAt = 0;

  /** The thread is saturated. The first question after a quiet spell starts measuring: not busy until a window says so. */
  busy(): boolean {
    this.askedAt = performance.now();
    if (!this.timer) {
      this.last = performance.eventLoopUtilization();
      this.timer = setInterval(() => this.measure(), WINDOW_MS);
      this.timer.unref?.();
    }
    return this.saturated;
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.saturated = false;
  }

  private measure(): void {
    const cur = performance.eventLoopUtilization();
    const u = performance.eventLoopUtilization(cur, this.last).utilization;
    this.saturated = u >= (this.saturated ? LOOP_FREE : LOOP_BUSY);
    this.last = cur;
    if (performance.now() - this.askedAt > IDLE_MS) this.stop();
  }
}

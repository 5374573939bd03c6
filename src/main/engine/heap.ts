// Garbage-collector tuning for the long-running engine process.
//
// A full sync of 100,000 files keeps only 30-45 MB of live objects, but V8's default policy lets
// the old generation grow to several times that before it collects (every upload allocates
// request, hash and SQLite row objects that die young but survive one scavenge). Measured on a
// 100k-file sync (bench/scale.mjs): peak RSS 305-357 MB with the defaults, 220-230 MB with the
// old generation allowed to grow only 30 % past the live size per cycle, at the same upload rate.
// --optimize-for-size got lower (158 MB) but cost 28 % of the throughput, and a hard
// --max-old-space-size cap turns a large listing into an out-of-memory crash; neither is used.
//
// The flag is set at runtime (v8.setFlagsFromString) so it applies to `triplicate serve`, the
// systemd unit and the Electron main process alike, without NODE_OPTIONS. An operator who passes
// their own heap flags (NODE_OPTIONS or node arguments) keeps them.
import { setFlagsFromString } from 'node:v8';

export const HEAP_GROWING_PERCENT = 30;

/**
 * While a restore runs. A download allocates a fresh 64 KiB buffer per socket read (186 MB restored
 * = ~3,000 of them), which keeps the young generation at its full size; when the old generation's
 * headroom (live size x growing factor) is smaller than that, V8 starts the next incremental
 * marking right after each full collection. Measured on bench/restore.mjs's set (186 MB, 204 files,
 * one 2-core box): ~20 full collections per restore with V8's own policy or 30 %, ~3 with 300 %,
 * and half the CPU time of the process (user 0.8 -> 0.4 s). Live objects do not grow during a
 * restore, so the cost is headroom (a heap of ~25 MB may reach ~100 MB) until it ends.
 */
export const RESTORE_HEAP_GROWING_PERCENT = 300;

/** The growing percent outside boosts: ours (tuneHeap) or 0 (V8's own policy). */
let basePercent = 0;
let boosts = 0;
let current = 0;

function setGrowingPercent(p: number): void {
  setFlagsFromString(`--heap-growing-percent=${p}`);
  current = p;
}

/** The growing percent this module set last (0: V8's own policy). Tests, diagnostics. */
export function heapGrowingPercent(): number {
  return current;
}

function operatorHeapFlags(env: NodeJS.ProcessEnv, execArgv: readonly string[]): boolean {
  const given = `${env.NODE_OPTIONS ?? ''} ${execArgv.join(' ')}`;
  return /--heap-growing-percent|--optimize-for-size|--max-old-space-size/.test(given) || env.TRIPLICATE_DEFAULT_GC === '1';
}

export function tuneHeap(env: NodeJS.ProcessEnv = process.env, execArgv: readonly string[] = process.execArgv): boolean {
  if (operatorHeapFlags(env, execArgv)) return false;
  basePercent = HEAP_GROWING_PERCENT;
  if (!boosts) setGrowingPercent(HEAP_GROWING_PERCENT);
  return true;
}

/**
 * Let the old generation grow RESTORE_HEAP_GROWING_PERCENT past the live size until the returned
 * function is called (nested boosts count; the last one ends puts back tuneHeap's value or V8's own
 * policy). Nothing when the operator passed heap flags. Returns whether the boost applies.
 */
export function boostHeapGrowth(env: NodeJS.ProcessEnv = process.env, execArgv: readonly string[] = process.execArgv): { applied: boolean; end: () => void } {
  if (operatorHeapFlags(env, execArgv)) return { applied: false, end: () => undefined };
  if (boosts++ === 0) setGrowingPercent(RESTORE_HEAP_GROWING_PERCENT);
  let ended = false;
  return {
    applied: true,
    end: () => {
      if (ended) return;
      ended = true;
      if (--boosts === 0) setGrowingPercent(basePercent);
    },
  };
}

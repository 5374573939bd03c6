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

/**
 * While the download server streams a file from a target (the local copy is gone): the same 64 KiB
 * buffer per socket read as a restore. bench/serve.mjs's S3 fallback of a 100 MB file, 4 clients:
 * with 30 % the engine spent 570-660 ms of each 5 s round in GC pauses and used 0.63-0.67 s of CPU
 * per 100 MB (210-220 MB/s, 0.59x a signed SDK GET); with 300 %, ~200 ms, 0.11-0.15 s per 100 MB
 * and 450-500 MB/s (0.99x).
 */
export const PROXY_HEAP_GROWING_PERCENT = RESTORE_HEAP_GROWING_PERCENT;

/**
 * While uploads run. Each upload's request, signing and stream objects live through a few young
 * collections and are promoted, so with 30 % headroom V8 ran a full collection every few files: in
 * bench/sync.mjs's set the engine's CPU was 2.0-2.1 s with 30 %, 1.7-1.8 s with 100 %. Less than a
 * restore's, because a sync of 100,000 files holds a bigger live heap (the RSS goal is < 300 MB).
 */
export const UPLOAD_HEAP_GROWING_PERCENT = 100;

/** The growing percent outside boosts: ours (tuneHeap) or 0 (V8's own policy). */
let basePercent = 0;
/** The percents of the boosts in force; the biggest applies. */
const boosts: number[] = [];
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

/**
 * Keep freed buffer memory in the process instead of handing it back to the kernel at once.
 *
 * Every socket read allocates a 64 KiB buffer (malloc), freed when the collector finds it dead.
 * glibc gives the free memory at the top of its heap back to the kernel (trim) as soon as it
 * exceeds 128 KiB, so in a process that streams, each batch of buffers freed by a collection is
 * returned and the next batch is mapped afresh: a page fault per 4 KiB. Measured with
 * bench/serve.mjs (the S3 fallback of a 100 MB file, 4 clients) on a 2-core VM where faults are
 * dear: 190,000 page faults per 5 s round and 0.58 s of CPU per 100 MB (62 % of it in the
 * kernel, 190 MB/s) until glibc's own heuristics caught up after 10-15 s of streaming; with this,
 * 11,000 faults and 0.12 s per 100 MB (500-570 MB/s) from the first round on. With a 32 MiB trim
 * threshold, a collection that freed more than that at the top of the heap still trimmed: with
 * the CPUs pinned (BENCH_PIN=1, engine and clients on one core, so collections come later and
 * free more) 2 of 5 rounds had the storm again (158,000-180,000 faults, 280 MB/s); with 64 MiB,
 * none in 5 (10,000-14,000).
 *
 * glibc raises its thresholds itself once a block it had mapped separately (>= 128 KiB) is freed:
 * the mapping threshold becomes that block's size and the trim threshold twice that (for blocks
 * up to 32 MiB). So one buffer just under 32 MiB, never touched (no page of it is mapped in) and
 * dropped at start, sets them to 32 and 64 MiB for the life of the process, as the environment
 * variables MALLOC_MMAP_THRESHOLD_ and MALLOC_TRIM_THRESHOLD_ would (which only work when set
 * before the process starts). Cost: up to 64 MiB of freed memory may stay with the process.
 * Other allocators (macOS, Windows, the Electron main process) ignore it: one short-lived
 * allocation.
 */
export function tuneMalloc(): void {
  if (mallocTuned) return;
  mallocTuned = true;
  Buffer.allocUnsafeSlow(MALLOC_WARM_BLOCK); // dropped at once: freed by the next collection
}

/**
 * The size of tuneMalloc's block: just under glibc's 32 MiB cap for the adjustment (its mapped
 * chunk, with header and page rounding, must not exceed the cap, or nothing is adjusted).
 */
const MALLOC_WARM_BLOCK = 32 * 1024 * 1024 - 64 * 1024;
let mallocTuned = false;

/**
 * The engine's GC policy (HEAP_GROWING_PERCENT), unless the operator passed heap flags of their
 * own; and tuneMalloc (always). Returns whether the GC policy was set.
 */
export function tuneHeap(env: NodeJS.ProcessEnv = process.env, execArgv: readonly string[] = process.execArgv): boolean {
  tuneMalloc();
  if (operatorHeapFlags(env, execArgv)) return false;
  basePercent = HEAP_GROWING_PERCENT;
  if (!boosts.length) setGrowingPercent(HEAP_GROWING_PERCENT);
  return true;
}

/**
 * Let the old generation grow `percent` (default RESTORE_HEAP_GROWING_PERCENT) past the live size
 * until the returned function is called. Boosts nest: the biggest one in force applies, and when
 * the last ends tuneHeap's value (or V8's own policy) is back. Nothing when the operator passed
 * heap flags. Returns whether the boost applies.
 */
export function boostHeapGrowth(
  env: NodeJS.ProcessEnv = process.env,
  execArgv: readonly string[] = process.execArgv,
  percent: number = RESTORE_HEAP_GROWING_PERCENT,
): { applied: boolean; end: () => void } {
  if (operatorHeapFlags(env, execArgv)) return { applied: false, end: () => undefined };
  boosts.push(percent);
  const apply = () => {
    const want = boosts.length ? Math.max(...boosts) : basePercent;
    if (want !== current) setGrowingPercent(want);
  };
  apply();
  let ended = false;
  return {
    applied: true,
    end: () => {
      if (ended) return;
      ended = true;
      boosts.splice(boosts.indexOf(percent), 1);
      apply();
    },
  };
}

/**
 * A boost held while jobs of one kind run (restores, uploads): on with the first job, off once
 * none has run for `lingerMs` (a worker's next job follows at once, so the boost does not flap
 * between jobs), or at release().
 */
export class BoostWhileBusy {
  private active = 0;
  private boost: { end: () => void } | null = null;
  private timer: NodeJS.Timeout | null = null;
  constructor(
    private readonly percent: number,
    private readonly lingerMs = 2000,
  ) {}

  started(): void {
    this.active++;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.boost ??= boostHeapGrowth(undefined, undefined, this.percent);
  }

  ended(): void {
    if (--this.active > 0 || !this.boost || this.timer) return;
    this.timer = setTimeout(() => this.release(), this.lingerMs);
    this.timer.unref?.();
  }

  /** End the boost now (stopping). */
  release(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.boost?.end();
    this.boost = null;
  }
}

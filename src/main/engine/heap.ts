// The engine's GC policy, set once as the process starts (main.ts, before the rest of the engine
// is loaded) and never changed after: the old generation may grow only HEAP_GROWING_PERCENT past
// the live size per cycle instead of V8's several times, which keeps a big sync's peak RSS down at
// no cost in throughput or CPU. An operator who passes heap flags of their own (node arguments,
// NODE_OPTIONS) or TRIPLICATE_DEFAULT_GC=1 keeps V8's policy or theirs.
// Set here rather than on each launcher's command line: `triplicate`, the systemd unit and the
// desktop app's utility process all start in main.ts, and NODE_OPTIONS takes no V8 flags.
import { setFlagsFromString } from 'node:v8';

export const HEAP_GROWING_PERCENT = 30;

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
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  return true;
}


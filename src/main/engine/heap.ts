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

export function tuneHeap(env: NodeJS.ProcessEnv = process.env, execArgv: readonly string[] = process.execArgv): boolean {
  const given = `${env.NODE_OPTIONS ?? ''} ${execArgv.join(' ')}`;
  if (/--heap-growing-percent|--optimize-for-size|--max-old-space-size/.test(given)) return false;
  if (env.TRIPLICATE_DEFAULT_GC === '1') return false;
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  return true;
}

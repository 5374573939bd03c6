// After `npm install`:
// 1. Native modules stay built for Node (the engine, the CLI and the tests run under plain Node);
//    `npm run dist` rebuilds them for Electron.
// 2. The ffmpeg/ffprobe binaries shipped in npm packages must be runnable by every user, not just
//    the one who installed them: @ffprobe-installer/linux-x64 ships `ffprobe` as 0744, so a
//    headless engine running as its own user (build/linux/triplicate.service) could not probe
//    videos. Add the execute bits that the read bits already grant.
import { chmodSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

for (const pkg of ['@ffmpeg-installer/ffmpeg', '@ffprobe-installer/ffprobe']) {
  let path;
  try {
    path = require(pkg).path;
  } catch {
    continue; // this platform has no binary package: the engine says so when it needs one
  }
  if (!path) continue;
  try {
    const mode = statSync(path).mode & 0o777;
    const wanted = mode | ((mode & 0o444) >> 2); // r -> x for user, group and others
    if (wanted !== mode) {
      chmodSync(path, wanted);
      console.log(`[triplicate] postinstall: ${pkg}'s binary made runnable by every user (${mode.toString(8)} -> ${wanted.toString(8)})`);
    }
  } catch (e) {
    console.warn(`[triplicate] postinstall: could not check ${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
}
console.log('[triplicate] postinstall: native modules are built for Node; `npm run dist` rebuilds them for Electron.');

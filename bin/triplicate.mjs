#!/usr/bin/env node
// The Triplicate command line: runs the compiled engine, out/engine/triplicate.mjs, which
// `npm run build` makes (the same engine the service and the desktop app run).
import { existsSync } from 'node:fs';

const engine = new URL('../out/engine/triplicate.mjs', import.meta.url);
if (!existsSync(engine)) {
  process.stderr.write(`triplicate: the engine is not built yet. Run \`npm run build\` in ${new URL('..', import.meta.url).pathname} first.\n`);
  process.exit(1);
}
await import(engine.href);

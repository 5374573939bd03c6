#!/usr/bin/env node
// The Triplicate command line. Runs the TypeScript engine directly through tsx (no build step);
// the desktop app bundles the same engine with electron-vite.
import { register } from 'tsx/esm/api';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

register();
// Keep the engine's heap close to its live size (see src/main/engine/heap.ts for the measurements).
(await import('../src/main/engine/heap.ts')).tuneHeap();
const { main } = await import('../src/main/engine/cli.ts');
const code = await main(process.argv.slice(2));
process.exitCode = code;
// Timers of closed servers are unref'd; anything left would keep a finished command alive.
if (process.argv[2] !== 'serve' && process.argv[2] !== 'demo') setTimeout(() => process.exit(code), 200).unref();
else process.exit(code);

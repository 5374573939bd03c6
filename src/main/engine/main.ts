// The `triplicate` process: what bin/triplicate.mjs runs, compiled into out/engine/triplicate.mjs
// by `npm run build` (the same engine the service and the desktop app run).
import { main } from './cli';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const command = process.argv[2];
const code = await main(process.argv.slice(2));
process.exitCode = code;
// Timers of closed servers are unref'd; anything left would keep a finished command alive.
if (command !== 'serve' && command !== 'demo') setTimeout(() => process.exit(code), 200).unref();
else process.exit(code);

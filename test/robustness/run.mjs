#!/usr/bin/env node
// The robustness harness: what Triplicate survives, with figures.
//
//   node test/robustness/run.mjs --short        CI (npm test): a few minutes
//   node test/robustness/run.mjs --full         npm run test:robustness: 50+ SIGKILLs, minutes-long
//                                               outages, a 5 GiB file, 20,000-file scale figures
//   options: --seed N (replay a run), --only crash,faults,inputs,scale, --keep (keep temp dirs)
//
// Suites: crash loop (crash.ts), network faults through a TCP fault proxy (faults.ts,
// fault-proxy.ts), bad input (inputs.ts), scale (scale.ts, full mode). Each prints its checks;
// the last line is `robustness: N passed, M failed`, and with TRIPLICATE_RESULT_FILE set the result
// {passed, failed, figures, ...} is written there as JSON. Exit code 1 when anything failed.
import { register } from 'tsx/esm/api';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
register();
// the engine children run the compiled engine (bin/triplicate.mjs), as users do
(await import('../../scripts/ensure-built.mjs')).ensureBuilt(['engine']);
const { main } = await import('./main.ts');
const code = await main(process.argv.slice(2));
process.exit(code);

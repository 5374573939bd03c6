#!/usr/bin/env node
// End-to-end tests of the operator's UI: real Chromium (playwright-core, /usr/bin/chromium) against
// `triplicate serve` with real s3rver targets. Runs every test/e2e/*.spec.mjs in order.
// Prints `e2e: N passed, M failed` last; exits non-zero on any failure. Screenshots of each page go
// to docs/screenshots/. A test whose engine route does not exist yet is reported as skipped, with
// the route named, and does not count as passed.
//
//   node scripts/e2e.mjs [--build] [--headed] [--only <substring>]
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { register } from 'tsx/esm/api';

register(); // the specs use the TypeScript helpers (s3rver harness, typed API client)

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const root = join(import.meta.dirname, '..');
const args = process.argv.slice(2);
const only = args.includes('--only') ? args[args.indexOf('--only') + 1] : undefined;

export class Skip extends Error {
  constructor(reason) {
    super(reason);
    this.name = 'Skip';
  }
}

const results = [];

async function main() {
  let failedSetup = null;
  try {
    const { ensureWebBuilt } = await import('../test/e2e/lib.mjs');
    ensureWebBuilt(root, args.includes('--build'));
  } catch (e) {
    failedSetup = e;
  }
  const specs = readdirSync(join(root, 'test', 'e2e'))
    .filter((f) => f.endsWith('.spec.mjs'))
    .sort();
  if (failedSetup) {
    results.push({ name: 'build the web console', status: 'failed', error: failedSetup });
  } else {
    for (const spec of specs) {
      console.log(`\n${spec}`);
      const mod = await import(pathToFileURL(join(root, 'test', 'e2e', spec)).href);
      const t = {
        headed: args.includes('--headed'),
        root,
        Skip,
        async test(name, fn, opts = {}) {
          if (only && !name.includes(only) && !opts.always) return;
          const started = Date.now();
          const timeout = opts.timeout ?? 120_000;
          let timer;
          try {
            await Promise.race([fn(), new Promise((_, rej) => (timer = setTimeout(() => rej(new Error(`timed out after ${timeout / 1000} s`)), timeout)))]);
            results.push({ name, status: 'passed' });
            console.log(`  ✓ ${name} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
          } catch (e) {
            if (e instanceof Skip || e?.name === 'Skip') {
              results.push({ name, status: 'skipped', reason: e.message });
              console.log(`  - ${name}: skipped: ${e.message}`);
            } else {
              results.push({ name, status: 'failed', error: e });
              console.log(`  ✕ ${name}\n      ${String(e?.stack ?? e).split('\n').slice(0, 6).join('\n      ')}`);
            }
          } finally {
            clearTimeout(timer);
          }
        },
      };
      try {
        await mod.default(t);
      } catch (e) {
        results.push({ name: `${spec} (setup or teardown)`, status: 'failed', error: e });
        console.log(`  ✕ ${spec}: ${String(e?.stack ?? e).split('\n').slice(0, 8).join('\n      ')}`);
      }
    }
  }
  const passed = results.filter((r) => r.status === 'passed').length;
  const failed = results.filter((r) => r.status === 'failed').length;
  const skipped = results.filter((r) => r.status === 'skipped');
  if (process.env.TRIPLICATE_RESULT_FILE) writeFileSync(process.env.TRIPLICATE_RESULT_FILE, JSON.stringify({ passed, failed, skipped: skipped.length }));
  console.log('');
  for (const s of skipped) console.log(`e2e: skipped "${s.name}": ${s.reason}`);
  console.log(`e2e: ${passed} passed, ${failed} failed`);
  process.exit(failed > 0 ? 1 : 0);
}

await main();

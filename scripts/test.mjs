#!/usr/bin/env node
// `npm test`: every suite, one summary line at the end: `tests: N passed, M failed`.
//   1. vitest: unit + integration (real s3rver, real ffmpeg)
//   2. e2e: the operator's UI in real Chromium against `triplicate serve` (scripts/e2e.mjs)
//   3. robustness short mode (test/robustness/run.mjs --short), when present
// Each suite's own output streams through; counts are read from machine-readable reports.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const root = join(import.meta.dirname, '..');
mkdirSync(join(root, '.tmp'), { recursive: true });
const only = process.argv.slice(2);
const want = (name) => only.length === 0 || only.includes(name);

let passed = 0;
let failed = 0;
const lines = [];

function run(cmd, args, env = {}) {
  return spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } }).status ?? 1;
}

if (want('unit')) {
  const report = join(root, '.tmp', 'vitest-report.json');
  rmSync(report, { force: true });
  const code = run(process.execPath, [join(root, 'node_modules/vitest/vitest.mjs'), 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`]);
  if (existsSync(report)) {
    const r = JSON.parse(readFileSync(report, 'utf8'));
    passed += r.numPassedTests;
    failed += r.numFailedTests + (r.numRuntimeErrorTestSuites ?? 0) + (r.numFailedTestSuites && !r.numFailedTests ? r.numFailedTestSuites : 0);
    lines.push(`vitest: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests} skipped (suites failed: ${r.numFailedTestSuites})`);
  } else {
    failed += 1;
    lines.push(`vitest: no report (exit ${code})`);
  }
  if (code !== 0 && failed === 0) failed += 1;
}

function suite(name, script, args) {
  if (!want(name) || !existsSync(join(root, script))) return;
  const out = join(root, '.tmp', `${name}-result.json`);
  rmSync(out, { force: true });
  const code = run(process.execPath, [join(root, script), ...args], { TRIPLICATE_RESULT_FILE: out });
  if (existsSync(out)) {
    const r = JSON.parse(readFileSync(out, 'utf8'));
    passed += r.passed;
    failed += r.failed;
    lines.push(`${name}: ${r.passed} passed, ${r.failed} failed`);
    if (code !== 0 && r.failed === 0) {
      failed += 1;
      lines.push(`${name}: exited ${code}`);
    }
  } else {
    failed += 1;
    lines.push(`${name}: no result (exit ${code})`);
  }
}

suite('e2e', 'scripts/e2e.mjs', []);
suite('robustness', 'test/robustness/run.mjs', ['--short']);

console.log('');
for (const l of lines) console.log(`  ${l}`);
console.log(`tests: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);

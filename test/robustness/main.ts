// The robustness harness's driver (run.mjs loads it through tsx). See run.mjs for the usage.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { crashLoop } from './crash';
import { networkFaults } from './faults';
import { badInputs } from './inputs';
import { Report, type SuiteContext } from './lib';
import { scaleSuite } from './scale';

const SUITES: Record<string, { run: (ctx: SuiteContext) => Promise<void>; modes: ('short' | 'full')[] }> = {
  crash: { run: crashLoop, modes: ['short', 'full'] },
  faults: { run: networkFaults, modes: ['short', 'full'] },
  inputs: { run: badInputs, modes: ['short', 'full'] },
  scale: { run: scaleSuite, modes: ['full'] },
};

export async function main(argv: string[]): Promise<number> {
  const mode: 'short' | 'full' = argv.includes('--full') ? 'full' : 'short';
  const seedArg = argv.indexOf('--seed');
  const seed = seedArg >= 0 ? Number(argv[seedArg + 1]) : Number(process.env.TRIPLICATE_ROBUSTNESS_SEED ?? Date.now() % 100_000);
  const onlyArg = argv.indexOf('--only');
  const only = onlyArg >= 0 ? argv[onlyArg + 1]!.split(',') : null;
  const keep = argv.includes('--keep');
  const report = new Report();
  const t0 = Date.now();
  report.log(`robustness (${mode} mode, seed ${seed}; rerun the same case with --seed ${seed})`);
  const timings: Record<string, number> = {};
  for (const [name, s] of Object.entries(SUITES)) {
    if (only ? !only.includes(name) : !s.modes.includes(mode)) continue;
    const t = Date.now();
    try {
      await s.run({ mode, seed, report, keep });
    } catch (e) {
      report.check(name, `${name} suite ran to the end`, false, (e as Error).stack?.slice(0, 2000));
    }
    timings[name] = Math.round((Date.now() - t) / 1000);
  }
  const seconds = Math.round((Date.now() - t0) / 1000);

  report.log('\n== figures');
  for (const [suite, figs] of Object.entries(report.figures)) {
    for (const [k, v] of Object.entries(figs)) report.log(`  ${suite}.${k}: ${typeof v === 'object' ? JSON.stringify(v) : String(v)}`);
  }
  report.log(`  seconds: ${JSON.stringify(timings)} (${seconds} s in all)`);
  const failed = report.checks.filter((c) => !c.ok);
  if (failed.length) {
    report.log('\n== failed');
    for (const c of failed) report.log(`  ${c.suite}: ${c.name}${c.detail ? `: ${c.detail}` : ''}`);
  }
  const out = process.env.TRIPLICATE_RESULT_FILE;
  if (out) {
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, JSON.stringify({ passed: report.passed, failed: report.failed, mode, seed, seconds, figures: report.figures, checks: report.checks }, null, 2));
  }
  report.log(`\nrobustness: ${report.passed} passed, ${report.failed} failed`);
  return report.failed ? 1 : 0;
}

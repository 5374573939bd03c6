// `triplicate restore | verify | prune`. With an engine running for the data dir they go through its
// admin API; without one they open the data dir themselves (no uploads, no servers), which is how
// disaster recovery works on a new machine: an empty data dir, the same config, and
//   triplicate restore --all --from nas --data-dir DIR
// rebuilds the catalog from the target's listing + metadata and restores everything.
// JSON lines on stdout; sentences for people on stderr.
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { PruneReport, RestoreProgress, RestoreRequest, VerifyReport } from '../../../shared/api';
import { formatBytes } from '../../../shared/format';
import { findEngine, localDataDir, type Command } from '../cli-data-dir';
import type { Engine } from '../engine';
import type { RestoreService } from './service';

export const RESTORE_USAGE = `Usage:
  triplicate restore [--missing] [--prefix ROOT/FOLDER/] [--key KEY]... [--q TEXT] [--at TIME] [--to DIR] [--from TARGET] [--overwrite]
      bring back what is missing from local disk (default), or a selection; --at 2024-05-03T18:00 restores it as it was then
  triplicate restore --all --from TARGET [--to DIR]
      disaster recovery: rebuild the catalog from TARGET's listing (works with an empty data dir) and restore every file
  triplicate verify [--full] [--target TARGET]     check every copy now (HEAD), re-read a sample (--full: everything)
  triplicate prune [--dry-run] [--target TARGET]   apply the retention policies now
Options: --data-dir DIR (default $TRIPLICATE_DATA_DIR or ~/.triplicate), --config FILE.
With the engine running, these ask it through its admin API; without it they work on the data dir directly,
which needs its config.json and catalog (restore --all starts from a data dir with only the config).
`;

const out = (obj: unknown) => process.stdout.write(`${JSON.stringify(obj)}\n`);
const say = (text: string) => process.stderr.write(`${text}\n`);
const common = { 'data-dir': { type: 'string' }, config: { type: 'string' }, url: { type: 'string' }, token: { type: 'string' } } as const;

function parseTime(s: string): number {
  if (/^\d+$/.test(s)) return Number(s);
  const t = Date.parse(s);
  if (!Number.isFinite(t)) throw new Error(`"${s}" is not a time; use for example 2024-05-03T18:00 or 2024-05-03.`);
  return t;
}

function progressLine(p: RestoreProgress): string {
  const eta = p.eta_seconds !== undefined ? `, about ${p.eta_seconds} s left` : '';
  return `  ${p.files_done}/${p.files_total} files, ${formatBytes(p.bytes_done)} of ${formatBytes(p.bytes_total)} (${formatBytes(p.rate_bps)}/s${eta})`;
}

/** Works on the data folder itself (no engine runs for it); refused unless it has a config and, but for a recovery, a catalog. */
async function withLocalEngine<T>(v: { 'data-dir'?: string; config?: string }, fn: (engine: Engine, svc: RestoreService) => Promise<T>, opts: { recovery?: boolean } = {}): Promise<T> {
  const { dir } = localDataDir(v, opts);
  const [{ createEngine }, { silenceConsole }] = await Promise.all([import('../engine'), import('../log')]);
  const engine = createEngine({ dataDir: dir, configFile: v.config, watch: false, scanOnStart: false, logToConsole: false });
  silenceConsole();
  const svc = engine.service<RestoreService>('restore')!;
  try {
    return await fn(engine, svc);
  } finally {
    await svc.stop();
    await engine.stop();
  }
}

async function finish(p: RestoreProgress, seconds: number): Promise<number> {
  out({ event: 'restore-done', ...p, seconds });
  say(`${p.message ?? p.state} (${seconds.toFixed(1)} s)`);
  return p.state === 'done' && p.files_failed === 0 ? 0 : 2;
}

export const restoreCommand: Command = {
  name: 'restore',
  async run(argv: string[]): Promise<number> {
    const { values } = parseArgs({
      args: argv,
      options: {
        ...common,
        all: { type: 'boolean' },
        missing: { type: 'boolean' },
        from: { type: 'string' },
        to: { type: 'string' },
        prefix: { type: 'string' },
        key: { type: 'string', multiple: true },
        q: { type: 'string' },
        at: { type: 'string' },
        overwrite: { type: 'boolean' },
        help: { type: 'boolean' },
      },
      strict: true,
    });
    if (values.help) {
      process.stdout.write(RESTORE_USAGE);
      return 0;
    }
    const at = values.at ? parseTime(values.at) : undefined;
    const to = values.to ? resolve(values.to) : undefined;
    const selection = !!(values.prefix || values.key?.length || values.q);
    const req: RestoreRequest = { keys: values.key, prefix: values.prefix, q: values.q, to, at, from: values.from, overwrite: values.overwrite };
    const t0 = Date.now();

    const api = await findEngine(values, { recovery: values.all });
    if (api) {
      if (values.all) {
        say('The engine is running for this data folder: its catalog is already there. Use "triplicate restore" (what is missing) or stop the engine for a disaster recovery.');
        return 1;
      }
      let p = selection || at || to ? await api.call('restoreFiles', { body: req }) : await api.call('restoreMissing', { body: { from: values.from } });
      say(`Restoring ${p.what ?? 'files'} (${formatBytes(p.bytes_total)}) through the running engine…`);
      let last = 0;
      for (let i = 0; i < 10_000_000 && (p.state === 'running' || p.state === 'planning'); i++) {
        await new Promise((r) => setTimeout(r, 500));
        const s = await api.call('restoreStatus');
        p = s.recent.find((x) => x.id === p.id) ?? p;
        if (Date.now() - last > 2000) {
          last = Date.now();
          out({ event: 'restore-progress', ...p });
          say(progressLine(p));
        }
      }
      return finish(p, (Date.now() - t0) / 1000);
    }

    return withLocalEngine(values, async (engine, svc) => {
      const targets = engine.enabledTargets();
      if (!targets.length) throw new Error(`The config of ${engine.dataDir} has no destination to restore from. Put the same config.json there (or use --config FILE).`);
      if (values.all) {
        const from = values.from ?? targets[0]!.id;
        say(`Reading the list of files on ${engine.targetLabel(from)}…`);
        const rb = await svc.rebuild(from, (r) => say(`  ${r.files} files found (${formatBytes(r.bytes)})…`));
        out({ event: 'rebuild', ...rb });
        say(`Found ${rb.files} files (${formatBytes(rb.bytes)}) and ${rb.versions} previous versions on ${engine.targetLabel(from)} in ${rb.seconds.toFixed(1)} s.${rb.skipped.length ? ` ${rb.skipped.length} objects were skipped (not files Triplicate wrote; see the JSON output).` : ''}`);
        const missingRoots = [...new Set(engine.catalog.db.prepare('SELECT DISTINCT root_id FROM files').all().map((r) => (r as { root_id: string }).root_id))].filter((id) => !engine.cfg.roots.some((r) => r.id === id && r.enabled));
        if (missingRoots.length && !to) say(`Files of ${missingRoots.map((r) => `"${r}"`).join(', ')} have no folder in the config: add the folder (same id) or use --to DIR to restore them elsewhere.`);
      }
      // No scan needed: restore-missing checks the disk itself, and a file already in place with the
      // same content is recognised by its hash (a disk that partly survived is not copied again).
      engine.catalog.resetRunningJobs();
      svc.startWorkers(false);
      let p: RestoreProgress;
      if (values.all) p = to ? svc.restoreFiles({ ...req, all: true }) : await svc.restoreMissing({ from: values.from });
      else p = selection || at || to ? svc.restoreFiles(req) : await svc.restoreMissing({ from: values.from });
      say(`Restoring ${p.what ?? 'files'} (${formatBytes(p.bytes_total)})…${p.message ? ` ${p.message}` : ''}`);
      const done = await svc.waitFor(p.id, {
        onProgress: (x) => {
          out({ event: 'restore-progress', ...x });
          say(progressLine(x));
        },
      });
      return finish(done, (Date.now() - t0) / 1000);
    }, { recovery: values.all });
  },
};

function printVerify(r: VerifyReport): number {
  out({ event: 'verify', ...r });
  for (const t of r.targets) for (const p of t.problems) say(`  ${p.problem}`);
  say(r.summary);
  return r.ok ? 0 : 2;
}

export const verifyCommand: Command = {
  name: 'verify',
  async run(argv: string[]): Promise<number> {
    const { values } = parseArgs({ args: argv, options: { ...common, full: { type: 'boolean' }, target: { type: 'string' } }, strict: true });
    const api = await findEngine(values);
    if (api) return printVerify(await api.call('verifyNow', { body: { full: values.full === true, target: values.target } }));
    return withLocalEngine(values, async (_engine, svc) => printVerify(await svc.verifyNow({ full: values.full === true, target: values.target })));
  },
};

function printPrune(r: PruneReport): number {
  out({ event: 'prune', ...r });
  if (!r.targets.length) {
    say('Nothing was pruned: no destination is set up (or none is enabled). Add one under Destinations, then run it again.');
    return 2;
  }
  say(r.summary);
  return r.targets.some((t) => t.error) ? 2 : 0;
}

export const pruneCommand: Command = {
  name: 'prune',
  async run(argv: string[]): Promise<number> {
    const { values } = parseArgs({ args: argv, options: { ...common, 'dry-run': { type: 'boolean' }, target: { type: 'string' } }, strict: true });
    const api = await findEngine(values);
    if (api) return printPrune(await api.call('pruneNow', { body: { dry_run: values['dry-run'] === true, target: values.target } }));
    return withLocalEngine(values, async (_engine, svc) => printPrune(await svc.pruneNow({ dryRun: values['dry-run'] === true, target: values.target })));
  },
};

export const restoreCommands: Command[] = [restoreCommand, verifyCommand, pruneCommand];

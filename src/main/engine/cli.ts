// `triplicate serve | demo | status | link | restore | verify | password`
// The engine's command line. Machine-readable output is JSON lines on stdout; messages for people
// go to stderr.
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ApiError } from '../../shared/client';
import { formatBytes } from '../../shared/format';
import { CliRefusal, dataDirOf, openDataDir, requireEngine, type Command } from './cli-data-dir';
import { ConfigError, defaultConfigPath } from './config/config';
import { moveSecretsToStore, type SecretStore } from './config/secrets';
import { ParentLink } from './parent-link';
import { linkCommand } from './http/link-cli';
import { restoreCommands } from './restore/cli';
import { serveEngine } from './serve';
import { EngineLockedError, errorText } from './util';

export const USAGE = `Triplicate: 3-2-1 backup of photos and videos (local folder, NAS, cloud).

Usage:
  triplicate serve  --data-dir DIR [--config FILE] [--admin-port N] [--dry-run] [--no-watch]
                    [--secrets-from-parent]   (the desktop app: its password store keeps the keys)
  triplicate demo   [--data-dir DIR] [--admin-port N]      two embedded S3 servers + sample media
  triplicate status [--data-dir DIR]                        the status JSON of the running engine
  triplicate password --data-dir DIR                        set the web-console password (reads stdin)
  triplicate link create <key> --ttl 1d | list | revoke <id>   signed download links (see: triplicate link)
  triplicate restore [--prefix P | --key K | --q TEXT] [--at TIME] [--to DIR]   bring back missing files (see: triplicate restore --help)
  triplicate restore --all --from TARGET                    disaster recovery into an empty data dir (same config)
  triplicate verify [--full]                                check every copy now; prune [--dry-run]: apply retention now

The data dir holds config.json, the catalog, logs and the admin token.
Default data dir: $TRIPLICATE_DATA_DIR, else ~/.triplicate. Only serve and demo make a new one.

Exit codes: 0 done; 1 the command line is wrong (or an unexpected error); 2 a problem was found (a
damaged copy, a file not restored, nothing to check) or the config is not valid; 3 no data dir or
no running engine to work with (nothing was changed).
`;


/** Commands added by feature modules (link, restore, verify). */
export const extraCommands: Command[] = [];
extraCommands.push(linkCommand);
extraCommands.push(...restoreCommands);

function out(obj: unknown): void {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

function say(text: string): void {
  process.stderr.write(`${text}\n`);
}

async function cmdServe(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      'data-dir': { type: 'string' },
      config: { type: 'string' },
      'admin-port': { type: 'string' },
      'admin-host': { type: 'string' },
      'download-port': { type: 'string' },
      'dry-run': { type: 'boolean' },
      'no-watch': { type: 'boolean' },
      'no-scan': { type: 'boolean' },
      verbose: { type: 'boolean' },
      'secrets-from-parent': { type: 'boolean' },
    },
    strict: true,
  });
  const dataDir = dataDirOf(values);
  const port = (v: string | undefined) => (v === undefined ? undefined : Number(v));
  const parent = ParentLink.connect();
  let secrets: SecretStore | undefined;
  if (values['secrets-from-parent']) {
    if (!parent) throw new CliRefusal('--secrets-from-parent is for the Triplicate desktop app, which starts the engine itself. Leave it out: config.json then keeps the keys.', 1);
    secrets = await parent.receiveSecrets();
    const moved = await moveSecretsToStore(values.config ? resolve(values.config) : defaultConfigPath(dataDir), secrets);
    if (moved) say(`triplicate: ${moved === 1 ? '1 key moved' : `${moved} keys moved`} from config.json to the system password store.`);
  }
  // Loaded here, not at the top: the other commands answer without loading the engine.
  const { createEngine } = await import('./engine');
  const engine = createEngine({
    secrets,
    dataDir,
    configFile: values.config,
    adminPort: port(values['admin-port']),
    adminHost: values['admin-host'],
    downloadPort: port(values['download-port']),
    watch: !values['no-watch'] && !values['dry-run'],
    scanOnStart: !values['no-scan'],
    logToConsole: values.verbose ?? false,
  });
  if (values['dry-run']) {
    try {
      const reports = await engine.scanAll({ dryRun: true });
      for (const r of reports) out({ event: 'dry-run', ...r });
      const files = reports.reduce((a, r) => a + (r.would_upload?.length ?? 0), 0);
      const bytes = reports.reduce((a, r) => a + r.bytes_to_upload, 0);
      out({ event: 'dry-run-summary', files, bytes });
      say(`Dry run: ${files} files would be copied (${formatBytes(bytes)} in all, counting each destination). Nothing was uploaded.`);
    } finally {
      await engine.stop();
    }
    return 0;
  }
  return serveEngine(engine, {}, parent);
}

async function cmdStatus(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { 'data-dir': { type: 'string' }, url: { type: 'string' }, token: { type: 'string' } }, strict: true });
  const client = await requireEngine(values);
  const status = await client.call('status');
  out(status);
  say(status.summary);
  return status.health === 'failing' ? 2 : 0;
}

async function cmdPassword(argv: string[]): Promise<number> {
  const { values } = parseArgs({ args: argv, options: { 'data-dir': { type: 'string' } }, strict: true });
  // before reading stdin: a wrong folder is said at once, and no config is written into it
  const { configFile } = openDataDir(values);
  const chunks: Buffer[] = [];
  for await (const c of process.stdin as AsyncIterable<Buffer>) chunks.push(c);
  const password = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
  if (password.length < 8) {
    say('The console password needs at least 8 characters. Pipe it in: echo "…" | triplicate password --data-dir DIR');
    return 1;
  }
  const { loadConfig, saveConfig } = await import('./config/config');
  const { hashPassword } = await import('./http/admin');
  const cfg = loadConfig(configFile);
  saveConfig(configFile, { ...cfg, server: { ...cfg.server, adminPasswordHash: hashPassword(password) } });
  say('The web-console password is set. Restart the engine to use it.');
  return 0;
}

export async function main(argv = process.argv.slice(2)): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case 'serve':
        return await cmdServe(rest);
      case 'status':
        return await cmdStatus(rest);
      case 'demo': {
        const { cmdDemo } = await import('./demo');
        return await cmdDemo(rest);
      }
      case 'password':
        return await cmdPassword(rest);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(USAGE);
        return cmd ? 0 : 1;
      default: {
        const extra = extraCommands.find((c) => c.name === cmd);
        if (extra) return await extra.run(rest);
        say(`Unknown command "${cmd}".\n\n${USAGE}`);
        return 1;
      }
    }
  } catch (e) {
    if (e instanceof CliRefusal) {
      say(e.message);
      out({ event: 'error', error: e.message });
      return e.exitCode;
    }
    if (e instanceof ConfigError || e instanceof EngineLockedError) {
      say(`triplicate: ${e.message}`);
      out({ event: 'error', error: e.message });
      return 2;
    }
    if (e instanceof ApiError) {
      say(`triplicate: ${e.message}${e.body.detail ? ` (${e.body.detail})` : ''}`);
      return 2;
    }
    if (e instanceof Error && 'code' in e && (e as { code?: string }).code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      say(`triplicate: ${e.message}\n\n${USAGE}`);
      return 1;
    }
    say(`triplicate: ${errorText(e)}`);
    out({ event: 'error', error: errorText(e) });
    return 1;
  }
}

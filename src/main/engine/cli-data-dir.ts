// How every command but serve and demo finds its data folder and the engine running on it. None of
// them creates anything: a mistyped --data-dir must not leave a new, empty data folder (catalog,
// token) behind that a cron job then checks forever and calls healthy. Each refusal is one sentence
// with the next step, and exit code 3.
import { readFileSync, statSync, type Stats } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { ApiClient } from '../../shared/client';
import { isAlive } from './util';

/** A subcommand of `triplicate` (link, restore, verify, prune). */
export interface Command {
  name: string;
  run(argv: string[]): Promise<number>;
}

/** A command that cannot go on; nothing was changed. */
export class CliRefusal extends Error {
  constructor(
    message: string,
    readonly exitCode = 3,
  ) {
    super(message);
    this.name = 'CliRefusal';
  }
}

export interface DataDirOptions {
  'data-dir'?: string;
  config?: string;
  url?: string;
  token?: string;
}

export function dataDirOf(v: { 'data-dir'?: string }): string {
  return resolve(v['data-dir'] ?? process.env.TRIPLICATE_DATA_DIR ?? join(homedir(), '.triplicate'));
}

/** A path as it can be pasted into a shell. */
function arg(p: string): string {
  return /^[\w@%+=:,./-]+$/.test(p) ? p : `'${p.replaceAll("'", "'\\''")}'`;
}

const serveHint = (dir: string) => `triplicate serve --data-dir ${arg(dir)}`;

function notRunning(dir: string, why = ''): CliRefusal {
  return new CliRefusal(`The Triplicate engine is not running for ${dir}${why}. Start it with: ${serveHint(dir)}`);
}

function denied(what: string): CliRefusal {
  return new CliRefusal(`Triplicate may not read ${what} (permission denied): run it as the user the service runs as, or with sudo.`);
}

/**
 * stat, or null when nothing is there. A data folder this user may not look into (the service's
 * own, 0700) is a refusal, not a "no": stat only fails that way on the folders of the path.
 */
function look(path: string, dir: string): Stats | null {
  try {
    return statSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    if (code === 'EACCES' || code === 'EPERM') throw denied(dir);
    throw e;
  }
}

export interface DataDir {
  dir: string;
  /** config.json of the folder, or --config */
  configFile: string;
  hasConfig: boolean;
  hasCatalog: boolean;
}

/** The data folder of a command: it must exist and hold a config or a catalog (what the engine writes). */
export function openDataDir(v: DataDirOptions, opts: { recovery?: boolean } = {}): DataDir {
  const dir = dataDirOf(v);
  const setUp = opts.recovery ? 'for a disaster recovery, create it and put the same config.json in it.' : `start Triplicate once with: ${serveHint(dir)}`;
  const st = look(dir, dir);
  if (!st) throw new CliRefusal(`The data folder ${dir} does not exist. Check --data-dir (default: $TRIPLICATE_DATA_DIR, else ~/.triplicate), or ${setUp}`);
  if (!st.isDirectory()) throw new CliRefusal(`${dir} is a file, not a Triplicate data folder. Check --data-dir.`);
  const configFile = v.config ? resolve(v.config) : join(dir, 'config.json');
  const hasConfig = look(configFile, v.config ? configFile : dir) !== null;
  if (v.config && !hasConfig) throw new CliRefusal(`The config file ${configFile} does not exist. Check --config.`);
  const hasCatalog = look(join(dir, 'catalog.db'), dir) !== null;
  if (!hasConfig && !hasCatalog) throw new CliRefusal(`${dir} is not a Triplicate data folder: it has no config.json. Check --data-dir, or ${setUp}`);
  return { dir, configFile, hasConfig, hasCatalog };
}

/**
 * For the commands that work on the folder itself when no engine runs (restore, verify, prune):
 * they need its config, and a catalog unless they rebuild it (`restore --all`).
 */
export function localDataDir(v: DataDirOptions, opts: { recovery?: boolean } = {}): DataDir {
  const d = openDataDir(v, opts);
  if (!d.hasConfig) throw notRunning(d.dir, ', and without the engine this command needs a config.json in that folder (or --config FILE)');
  if (!d.hasCatalog && !opts.recovery) throw notRunning(d.dir, ', and the folder has no catalog yet: nothing has been backed up from it');
  return d;
}

/** The admin URL from engine.json, or null when no engine runs (none written, or left by a crash). */
function runningUrl(dir: string): string | null {
  const path = join(dir, 'engine.json');
  if (!look(path, dir)) return null;
  try {
    const info = JSON.parse(readFileSync(path, 'utf8')) as { adminUrl?: unknown; pid?: number };
    if (typeof info.adminUrl !== 'string' || (info.pid && !isAlive(info.pid))) return null;
    return info.adminUrl;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EACCES') throw denied(path);
    return null;
  }
}

function readToken(dir: string): string {
  const path = join(dir, 'admin-token');
  try {
    return readFileSync(path, 'utf8').trim();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EACCES' || code === 'EPERM') throw denied(path);
    if (code === 'ENOENT') throw new CliRefusal(`There is no admin token in ${dir} (admin-token). Check --data-dir, or give the token with --token.`);
    throw e;
  }
}

async function answers(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { method: 'HEAD', signal: AbortSignal.timeout(10_000) });
    await res.body?.cancel();
    return true;
  } catch {
    return false;
  }
}

/**
 * A client for the engine running for the data folder (or at --url), or null when none runs. An
 * engine.json whose engine does not answer is a refusal, not a null: the callers that fall back to
 * working on the folder themselves must not do so next to an engine that may still be there.
 */
export async function findEngine(v: DataDirOptions, opts: { recovery?: boolean } = {}): Promise<ApiClient | null> {
  let url = v.url;
  let dir: string | undefined;
  if (!url) {
    dir = openDataDir(v, opts).dir;
    url = runningUrl(dir) ?? undefined;
    if (!url) return null;
  }
  if (!(await answers(url))) {
    if (dir) throw notRunning(dir, ` (nothing answers at ${url})`);
    throw new CliRefusal(`Nothing answers at ${url}. Check --url, or start the engine with: triplicate serve`);
  }
  return new ApiClient({ baseUrl: url, token: v.token ?? readToken(dir ?? dataDirOf(v)) });
}

/** The running engine, or a refusal that says how to start it. */
export async function requireEngine(v: DataDirOptions): Promise<ApiClient> {
  const api = await findEngine(v);
  if (!api) throw notRunning(dataDirOf(v));
  return api;
}

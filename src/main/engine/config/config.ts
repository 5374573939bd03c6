// Load, validate, migrate and save the config file (`<data dir>/config.json`, mode 0600).
// Errors name the file, the field and what to do; secrets never reach a log or an error message.
import { createHash } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import JSON5 from 'json5';
import { CONFIG_VERSION, configSchema, describeIssues, type Config, type ConfigInput } from '../../../shared/config';

export class ConfigError extends Error {
  constructor(
    message: string,
    public readonly fields: string[] = [],
  ) {
    super(message);
    this.name = 'ConfigError';
  }
}

/**
 * Settings that name a program the engine runs. They are set in config.json on the server or by the
 * desktop shell, never over HTTP: whoever holds the console's token must not be able to make the
 * engine run a program of their choosing.
 */
const PROGRAM_PATHS = [
  ['media', 'ffmpegPath'],
  ['media', 'ffprobePath'],
  ['tunnel', 'cloudflaredPath'],
] as const;

/** A change the console may not make (a program path): the admin API answers 403. */
export class ForbiddenSettingError extends ConfigError {}

export function programPathError(names: string[]): ForbiddenSettingError {
  return new ForbiddenSettingError(
    `${names.join(' and ')} can be set only in config.json on the server itself (or in the desktop app), not from the web console: they name a program Triplicate runs. Nothing was changed.`,
    names,
  );
}

/**
 * The program paths that a change would set to a new program (`media.ffmpegPath`, …). Clearing one
 * is not among them: it goes back to the program that comes with Triplicate.
 */
export function programPathChanges(prev: Config, next: Config): string[] {
  return PROGRAM_PATHS.filter(([section, key]) => {
    const to = (next[section] as Record<string, unknown>)[key];
    return !!to && to !== (prev[section] as Record<string, unknown>)[key];
  }).map(([section, key]) => `${section}.${key}`);
}

/**
 * config.json changed on disk since Triplicate last read or wrote it (a hand edit): a save from the
 * app is refused rather than written over it.
 */
export class ConfigChangedError extends ConfigError {}

/**
 * When a config is checked: read at start (fix it, start again), read again while running (fix the
 * file, save it again) or saved from the app (fix the change, try again).
 */
export type ConfigReadWhen = 'start' | 'reload' | 'save';

function fixAndRetry(when: ConfigReadWhen): string {
  if (when === 'start') return 'start Triplicate again';
  if (when === 'reload') return 'save the file again; until then Triplicate keeps the settings it had';
  return 'try again';
}

/** "<source> has 2 problems: - a - b. Fix them and ..." */
export function problemsError(source: string, fields: string[], when: ConfigReadWhen = 'start'): ConfigError {
  return new ConfigError(`${source} has ${fields.length === 1 ? 'a problem' : `${fields.length} problems`}:\n  - ${fields.join('\n  - ')}\nFix ${fields.length === 1 ? 'it' : 'them'} and ${fixAndRetry(when)} (the file was not changed).`, fields);
}

export function defaultConfigPath(dataDir: string): string {
  return join(dataDir, 'config.json');
}

/** Validate an object as a config; throws ConfigError naming each bad field. */
export function parseConfig(input: unknown, source = 'the config', when: ConfigReadWhen = 'start'): Config {
  const res = configSchema.safeParse(migrateConfig(input));
  if (!res.success) throw problemsError(source, describeIssues(res.error.issues), when);
  return res.data;
}

/** Bring an older config shape up to date, one version at a time. */
export function migrateConfig(input: unknown): unknown {
  if (!input || typeof input !== 'object' || Array.isArray(input)) return input;
  let o = input as Record<string, unknown>;
  if (typeof o.version === 'number' && o.version > CONFIG_VERSION) {
    throw new ConfigError(`The config is version ${o.version}, written by a newer Triplicate. Install the newer version, or restore an older config.json.`);
  }
  if (o.version === 1) {
    o = { ...o, version: 2, targets: Array.isArray(o.targets) ? o.targets.map((t) => withoutOld(t, 4)) : o.targets };
    if (o.restore !== undefined) o.restore = withoutOld(o.restore, 6);
  }
  return o;
}

/**
 * Version 2: `targets[].concurrency` and `restore.concurrency` became the most files at once (the
 * upload lane and the restore workers choose below them). Version 1 wrote their fixed defaults,
 * 4 and 6, into every config, where they would now pin the number: such a value goes, and the
 * ceiling applies. Any other value was chosen by someone and stays, as the cap.
 */
function withoutOld(section: unknown, oldDefault: number): unknown {
  if (!section || typeof section !== 'object' || (section as { concurrency?: unknown }).concurrency !== oldDefault) return section;
  const { concurrency: _old, ...rest } = section as Record<string, unknown>;
  return rest;
}

/** The config file as it is on disk: its text, a hash of it and when it was written; null when there is none. */
export interface ConfigFile {
  text: string;
  hash: string;
  mtimeMs: number;
}

export function hashText(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export function readConfigFile(path: string): ConfigFile | null {
  let text: string;
  let mtimeMs: number;
  try {
    mtimeMs = statSync(path).mtimeMs;
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new ConfigError(`Triplicate cannot read its config file ${path} (${(e as NodeJS.ErrnoException).code ?? 'error'}). Check that the file exists and that this user may read it.`);
  }
  return { text, hash: hashText(text), mtimeMs };
}

/** Validate the text of a config file. */
export function parseConfigText(text: string, path: string, when: ConfigReadWhen = 'start'): Config {
  let json: unknown;
  try {
    // JSON5 accepts what people write by hand (comments, trailing commas) and says where it stopped.
    json = JSON5.parse(text);
  } catch (e) {
    const err = e as Error & { lineNumber?: number; columnNumber?: number };
    const where = err.lineNumber ? ` near line ${err.lineNumber}, column ${err.columnNumber ?? 1}` : '';
    const what = err.message.replace(/^JSON5: /, '').replace(/ at \d+:\d+$/, '').replace(/\\(.)/g, '$1');
    const aside = when === 'start' ? ' (or move it aside to start with an empty config)' : '';
    throw new ConfigError(`The config file ${path} is not valid JSON${where} (${what}). Fix the file${aside} and ${fixAndRetry(when)}.`);
  }
  return parseConfig(json, `The config file ${path}`, when);
}

/** Read and validate the config; a missing file gives the default (empty) config. */
export function loadConfig(path: string): Config {
  const file = readConfigFile(path);
  return file ? parseConfigText(file.text, path) : configSchema.parse({});
}

/** Write atomically with mode 0600 (it holds credentials); returns what was written and its hash. */
export function writeConfigFile(path: string, cfg: ConfigInput | Config): { cfg: Config; hash: string } {
  const valid = parseConfig(cfg);
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  const text = `${JSON.stringify(valid, null, 2)}\n`;
  writeFileSync(tmp, text, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
  return { cfg: valid, hash: hashText(text) };
}

/** Write atomically with mode 0600 (it holds credentials). */
export function saveConfig(path: string, cfg: ConfigInput | Config): Config {
  return writeConfigFile(path, cfg).cfg;
}

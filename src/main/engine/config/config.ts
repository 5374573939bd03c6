// Load, validate, migrate and save the config file (`<data dir>/config.json`, mode 0600).
// Errors name the file, the field and what to do; secrets never reach a log or an error message.
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import JSON5 from 'json5';
import { configSchema, describeIssues, type Config, type ConfigInput } from '../../../shared/config';

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

export function defaultConfigPath(dataDir: string): string {
  return join(dataDir, 'config.json');
}

/** Validate an object as a config; throws ConfigError naming each bad field. */
export function parseConfig(input: unknown, source = 'the config'): Config {
  const res = configSchema.safeParse(migrateConfig(input));
  if (!res.success) {
    const fields = describeIssues(res.error.issues);
    throw new ConfigError(`${source} has ${fields.length === 1 ? 'a problem' : `${fields.length} problems`}:\n  - ${fields.join('\n  - ')}\nFix ${fields.length === 1 ? 'it' : 'them'} and start Triplicate again (the file was not changed).`, fields);
  }
  return res.data;
}

/** Bring an older config shape up to date. Version 1 is the first; later versions add steps here. */
export function migrateConfig(input: unknown): unknown {
  if (input && typeof input === 'object' && !Array.isArray(input)) {
    const o = input as Record<string, unknown>;
    if (typeof o.version === 'number' && o.version > 1) {
      throw new ConfigError(`The config is version ${o.version}, written by a newer Triplicate. Install the newer version, or restore an older config.json.`);
    }
  }
  return input;
}

/** Read and validate the config; a missing file gives the default (empty) config. */
export function loadConfig(path: string): Config {
  if (!existsSync(path)) return configSchema.parse({});
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`Triplicate cannot read its config file ${path} (${(e as NodeJS.ErrnoException).code ?? 'error'}). Check that the file exists and that this user may read it.`);
  }
  let json: unknown;
  try {
    // JSON5 accepts what people write by hand (comments, trailing commas) and says where it stopped.
    json = JSON5.parse(text);
  } catch (e) {
    const err = e as Error & { lineNumber?: number; columnNumber?: number };
    const where = err.lineNumber ? ` near line ${err.lineNumber}, column ${err.columnNumber ?? 1}` : '';
    const what = err.message.replace(/^JSON5: /, '').replace(/ at \d+:\d+$/, '').replace(/\\(.)/g, '$1');
    throw new ConfigError(`The config file ${path} is not valid JSON${where} (${what}). Fix the file (or move it aside to start with an empty config) and start Triplicate again.`);
  }
  return parseConfig(json, `The config file ${path}`);
}

/** Write atomically with mode 0600 (it holds credentials). */
export function saveConfig(path: string, cfg: ConfigInput | Config): Config {
  const valid = parseConfig(cfg);
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, `${JSON.stringify(valid, null, 2)}\n`, { mode: 0o600 });
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
  return valid;
}

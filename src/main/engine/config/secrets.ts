// Secrets kept outside config.json. The desktop app keeps the S3 keys and the tunnel token in the
// system's password store and hands them to its engine process at start (./parent-link.ts); the
// engine then writes config.json with a placeholder in their place and gives every change back to
// the store. Without a store (`triplicate serve`, a service) config.json (0600) holds them, as before.
import type { Config } from '../../../shared/config';
import { isKeptElsewhere, KEPT_BY_DESKTOP_APP, sameSecrets, type ConfigSecrets } from '../../../shared/secrets';
import { log } from '../log';
import { ConfigError, parseConfigText, readConfigFile, writeConfigFile } from './config';

export interface SecretStore {
  /** The secrets kept now. */
  current(): ConfigSecrets;
  /** Keep these instead (all of them); resolves once they are kept, rejects with a ConfigError otherwise. */
  save(secrets: ConfigSecrets): Promise<void>;
}

/** The secrets a config holds in plain text (placeholders are not secrets). */
export function secretsOf(cfg: Config): ConfigSecrets {
  const out: ConfigSecrets = { targets: {} };
  for (const t of cfg.targets) {
    if (t.kind !== 's3') continue;
    const { accessKeyId, secretAccessKey } = t.credentials;
    if (!isKeptElsewhere(accessKeyId) && !isKeptElsewhere(secretAccessKey)) out.targets[t.id] = { accessKeyId, secretAccessKey };
  }
  const token = cfg.tunnel.token;
  if (token && !isKeptElsewhere(token)) out.tunnelToken = token;
  return out;
}

function hasSecrets(s: ConfigSecrets): boolean {
  return Object.keys(s.targets).length > 0 || s.tunnelToken !== undefined;
}

/** The config as config.json holds it when a store keeps the secrets: a placeholder for each. */
export function stripSecrets(cfg: Config): Config {
  return {
    ...cfg,
    tunnel: cfg.tunnel.token ? { ...cfg.tunnel, token: KEPT_BY_DESKTOP_APP } : cfg.tunnel,
    targets: cfg.targets.map((t) => (t.kind === 's3' ? { ...t, credentials: { accessKeyId: KEPT_BY_DESKTOP_APP, secretAccessKey: KEPT_BY_DESKTOP_APP } } : t)),
  };
}

/**
 * A config read from the file, with each placeholder replaced by the kept secret. A value written
 * in the file itself wins (a key typed into config.json by hand); it moves to the store at the next
 * save. A placeholder with nothing kept for it stays, and the destination's test says the key is wrong.
 */
export function withKeptSecrets(cfg: Config, store: SecretStore | undefined): Config {
  if (!store) return cfg;
  const kept = store.current();
  const pick = (v: string, k: string | undefined) => (isKeptElsewhere(v) && k ? k : v);
  const out: Config = {
    ...cfg,
    tunnel: cfg.tunnel.token ? { ...cfg.tunnel, token: pick(cfg.tunnel.token, kept.tunnelToken) } : cfg.tunnel,
    targets: cfg.targets.map((t) => {
      if (t.kind !== 's3') return t;
      const k = kept.targets[t.id];
      return { ...t, credentials: { accessKeyId: pick(t.credentials.accessKeyId, k?.accessKeyId), secretAccessKey: pick(t.credentials.secretAccessKey, k?.secretAccessKey) } };
    }),
  };
  const missing = missingSecrets(out);
  if (missing.length) log.warn(`the password store of the Triplicate app holds nothing for ${missing.join(', ')}: enter them again in the app`);
  return out;
}

/** Names of the secrets a config in use still lacks (placeholders the store had nothing for). */
export function missingSecrets(cfg: Config): string[] {
  const out = cfg.targets
    .filter((t) => t.kind === 's3' && (isKeptElsewhere(t.credentials.accessKeyId) || isKeptElsewhere(t.credentials.secretAccessKey)))
    .map((t) => `the keys of "${t.label}"`);
  if (isKeptElsewhere(cfg.tunnel.token)) out.push('the tunnel token');
  return out;
}

/**
 * Save a config: with a store, the secrets go to the store first (a refusal leaves config.json as
 * it was) and the file gets placeholders; without one, the file holds everything. Returns the
 * config in use (with its secrets) and the hash of what the file now holds.
 */
export async function writeConfigKeepingSecrets(path: string, cfg: Config, store: SecretStore | undefined): Promise<{ cfg: Config; hash: string }> {
  if (!store) return writeConfigFile(path, cfg);
  const secrets = secretsOf(cfg);
  if (!sameSecrets(secrets, store.current())) await store.save(secrets);
  const { hash } = writeConfigFile(path, stripSecrets(cfg));
  return { cfg, hash };
}

/**
 * Once, before the engine loads its config: secrets written in config.json in plain text (a config
 * from before the store, or a hand edit) move to the store and the file is written without them.
 * An unreadable or invalid file is left for the engine to report. Returns how many moved.
 */
export async function moveSecretsToStore(path: string, store: SecretStore): Promise<number> {
  const file = readConfigFile(path);
  if (!file) return 0;
  let cfg: Config;
  try {
    cfg = parseConfigText(file.text, path);
  } catch (e) {
    if (e instanceof ConfigError) return 0;
    throw e;
  }
  const plain = secretsOf(cfg);
  if (!hasSecrets(plain)) return 0;
  await store.save(secretsOf(withKeptSecrets(cfg, store)));
  writeConfigFile(path, stripSecrets(cfg));
  return Object.keys(plain.targets).length + (plain.tunnelToken ? 1 : 0);
}


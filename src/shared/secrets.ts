// The secrets of a config (the S3 keys of each destination, the tunnel token) when the desktop
// app keeps them in the system's password store (Electron safeStorage) instead of config.json,
// and the messages the app and its engine process exchange about them. Pure TypeScript: the
// engine and the desktop shell both import it.

export interface S3Keys {
  accessKeyId: string;
  secretAccessKey: string;
}

export interface ConfigSecrets {
  /** By destination id. */
  targets: Record<string, S3Keys>;
  tunnelToken?: string;
}

/**
 * What config.json holds instead of a secret the desktop app keeps. It names where the value is,
 * for whoever opens the file; it is never sent to a server as a key.
 */
export const KEPT_BY_DESKTOP_APP = '(kept in the system password store by the Triplicate desktop app)';

export function isKeptElsewhere(v: string | undefined): boolean {
  return v === KEPT_BY_DESKTOP_APP;
}

/** Desktop app -> engine process. */
export type ShellMessage =
  | { type: 'secrets'; secrets: ConfigSecrets }
  | { type: 'secrets-kept'; id: number }
  | { type: 'secrets-not-kept'; id: number; error: string }
  | { type: 'stop' };

/** Engine process -> desktop app: keep these (all of them: they replace what was kept). */
export type EngineMessage = { type: 'secrets'; id: number; secrets: ConfigSecrets };

const str = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= 16_384;

/** Check the shape of secrets that came over a channel or out of a file; null when malformed. */
export function parseConfigSecrets(raw: unknown): ConfigSecrets | null {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return null;
  const r = raw as Record<string, unknown>;
  const targets: Record<string, S3Keys> = {};
  const t = r.targets;
  if (t !== undefined) {
    if (!t || typeof t !== 'object' || Array.isArray(t)) return null;
    for (const [id, keys] of Object.entries(t as Record<string, unknown>)) {
      const k = keys as Record<string, unknown> | null;
      if (!k || typeof k !== 'object' || !str(k.accessKeyId) || !str(k.secretAccessKey)) return null;
      targets[id] = { accessKeyId: k.accessKeyId, secretAccessKey: k.secretAccessKey };
    }
  }
  if (r.tunnelToken !== undefined && !str(r.tunnelToken)) return null;
  return r.tunnelToken === undefined ? { targets } : { targets, tunnelToken: r.tunnelToken as string };
}

export function sameSecrets(a: ConfigSecrets, b: ConfigSecrets): boolean {
  const ids = (s: ConfigSecrets) => Object.keys(s.targets).sort();
  if (a.tunnelToken !== b.tunnelToken || ids(a).join('\n') !== ids(b).join('\n')) return false;
  return ids(a).every((id) => a.targets[id]?.accessKeyId === b.targets[id]?.accessKeyId && a.targets[id]?.secretAccessKey === b.targets[id]?.secretAccessKey);
}

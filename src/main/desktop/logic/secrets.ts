// The engine's secrets as the desktop app keeps them (<userData>/engine-secrets.json): one blob
// encrypted with safeStorage, the system's password store (Keychain, DPAPI, libsecret/kwallet).
// Pure: safeStorage is handed in (it needs Electron; the tests hand in a stand-in with real crypto).
import { parseConfigSecrets, type ConfigSecrets, type ShellMessage } from '../../../shared/secrets';

/** The part of Electron's safeStorage used here. */
export interface SafeStorageLike {
  isEncryptionAvailable(): boolean;
  encryptString(plain: string): Buffer;
  decryptString(encrypted: Buffer): string;
}

export class SecretsFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SecretsFileError';
  }
}

/** The file's text for these secrets; throws when nothing can encrypt them. */
export function sealSecrets(secrets: ConfigSecrets, safe: SafeStorageLike): string {
  if (!safe.isEncryptionAvailable()) throw new SecretsFileError('The system password store is not available.');
  const blob = safe.encryptString(JSON.stringify(secrets)).toString('base64');
  return `${JSON.stringify({ version: 1, encrypted: blob }, null, 2)}\n`;
}

/** The secrets in the file's text; throws SecretsFileError when it cannot be read or decrypted. */
export function openSecrets(text: string, safe: SafeStorageLike): ConfigSecrets {
  let j: { version?: unknown; encrypted?: unknown };
  try {
    j = JSON.parse(text) as typeof j;
  } catch {
    throw new SecretsFileError('The file of kept keys is damaged.');
  }
  if (j?.version !== 1 || typeof j.encrypted !== 'string') throw new SecretsFileError('The file of kept keys is damaged or from a newer Triplicate.');
  let plain: string;
  try {
    plain = safe.decryptString(Buffer.from(j.encrypted, 'base64'));
  } catch (e) {
    throw new SecretsFileError(`The system password store could not decrypt the kept keys (${e instanceof Error ? e.message : String(e)}).`);
  }
  let secrets: ConfigSecrets | null = null;
  try {
    secrets = parseConfigSecrets(JSON.parse(plain));
  } catch {}
  if (!secrets) throw new SecretsFileError('The kept keys decrypted to something unexpected.');
  return secrets;
}

/**
 * The answer to a message from the engine process: a change of its secrets is kept (`keep`
 * encrypts and writes them) or refused with a sentence the console shows. Anything else: null.
 */
export function answerEngineMessage(raw: unknown, keep: (s: ConfigSecrets) => void): ShellMessage | null {
  const m = raw as { type?: unknown; id?: unknown; secrets?: unknown } | null;
  if (!m || typeof m !== 'object' || m.type !== 'secrets' || typeof m.id !== 'number') return null;
  const secrets = parseConfigSecrets(m.secrets);
  if (!secrets) return { type: 'secrets-not-kept', id: m.id, error: 'The keys were not in the expected form.' };
  try {
    keep(secrets);
    return { type: 'secrets-kept', id: m.id };
  } catch (e) {
    const why = e instanceof SecretsFileError ? e.message : `They could not be written (${e instanceof Error ? e.message : String(e)}).`;
    return { type: 'secrets-not-kept', id: m.id, error: why };
  }
}

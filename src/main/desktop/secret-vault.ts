// The file of the engine's secrets kept by the desktop app (<userData>/engine-secrets.json, 0600,
// encrypted with safeStorage). No electron import: index.ts hands safeStorage in, tests a stand-in.
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import type { ConfigSecrets } from '../../shared/secrets';
import { openSecrets, sealSecrets, SecretsFileError, type SafeStorageLike } from './logic/secrets';

export class SecretVault {
  constructor(
    readonly file: string,
    private readonly safe: SafeStorageLike,
  ) {}

  exists(): boolean {
    return existsSync(this.file);
  }

  /** What is kept (nothing yet: no keys). Throws SecretsFileError when the file cannot be used. */
  load(): ConfigSecrets {
    let text: string;
    try {
      text = readFileSync(this.file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { targets: {} };
      throw new SecretsFileError(`The file of kept keys ${this.file} cannot be read (${(e as NodeJS.ErrnoException).code ?? 'error'}).`);
    }
    return openSecrets(text, this.safe);
  }

  /**
   * What is kept; when the file cannot be used it is moved aside (so the next save does not write
   * over keys a repaired password store might still open) and `problem` says what happened.
   */
  loadOrSetAside(now = new Date()): { secrets: ConfigSecrets; problem?: string } {
    try {
      return { secrets: this.load() };
    } catch (e) {
      const aside = `${this.file}.unreadable-${now.toISOString().replace(/[:.]/g, '-')}`;
      try {
        renameSync(this.file, aside);
      } catch {}
      const why = e instanceof Error ? e.message : String(e);
      return {
        secrets: { targets: {} },
        problem: `Triplicate could not read the destination keys it keeps in the system password store: ${why} Enter the keys again on the Destinations page (and the tunnel token on the Sharing page, if you use one). The old file is kept as ${aside}.`,
      };
    }
  }

  /** Encrypt and write (atomically, 0600); throws when the password store cannot encrypt. */
  save(secrets: ConfigSecrets): void {
    const text = sealSecrets(secrets, this.safe);
    mkdirSync(dirname(this.file), { recursive: true });
    const tmp = `${this.file}.tmp-${process.pid}`;
    writeFileSync(tmp, text, { mode: 0o600 });
    chmodSync(tmp, 0o600);
    renameSync(tmp, this.file);
  }
}

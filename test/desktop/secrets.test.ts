// The engine's secrets as the desktop app keeps them: one blob encrypted with safeStorage in
// <userData>/engine-secrets.json (0600). safeStorage needs Electron and a password store, neither
// of which runs here: a stand-in with real AES-GCM is handed in (fixtures.ts).
import { readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { answerEngineMessage, openSecrets, sealSecrets, SecretsFileError } from '../../src/main/desktop/logic/secrets';
import { SecretVault } from '../../src/main/desktop/secret-vault';
import type { ConfigSecrets } from '../../src/shared/secrets';
import { cleanup, tempDir } from '../helpers/engine';
import { fakeSafeStorage } from './fixtures';

const SECRETS: ConfigSecrets = { targets: { cloud: { accessKeyId: 'AKIAEXAMPLE0001', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG' } }, tunnelToken: 'eyJhIjoiZXhhbXBsZSJ9' };

let dirs: string[] = [];
afterEach(() => {
  cleanup(...dirs);
  dirs = [];
});

describe('the kept secrets file', () => {
  it('holds the secrets only encrypted, and opens with the same password store', () => {
    const safe = fakeSafeStorage();
    const text = sealSecrets(SECRETS, safe);
    for (const v of ['AKIAEXAMPLE0001', 'wJalrXUtnFEMI', 'eyJhIjoiZXhhbXBsZSJ9', 'cloud']) expect(text).not.toContain(v);
    expect(openSecrets(text, safe)).toEqual(SECRETS);
  });

  it('says so when another password store (or a damaged file) cannot open it', () => {
    const text = sealSecrets(SECRETS, fakeSafeStorage());
    expect(() => openSecrets(text, fakeSafeStorage())).toThrow(SecretsFileError);
    expect(() => openSecrets(text, fakeSafeStorage())).toThrow(/could not decrypt the kept keys/);
    expect(() => openSecrets('{"version":1', fakeSafeStorage())).toThrow(/damaged/);
    expect(() => openSecrets('{"version":2,"encrypted":"x"}', fakeSafeStorage())).toThrow(/newer Triplicate/);
  });

  it('refuses to write when no password store can encrypt', () => {
    expect(() => sealSecrets(SECRETS, fakeSafeStorage({ available: false }))).toThrow(/not available/);
  });

  it('is written 0600 and read back by the vault; nothing kept yet is no keys', () => {
    const dir = tempDir('trip-vault-');
    dirs.push(dir);
    const vault = new SecretVault(join(dir, 'engine-secrets.json'), fakeSafeStorage());
    expect(vault.load()).toEqual({ targets: {} });
    vault.save(SECRETS);
    expect(vault.load()).toEqual(SECRETS);
    if (process.platform !== 'win32') expect(statSync(vault.file).mode & 0o777).toBe(0o600);
    expect(readFileSync(vault.file, 'utf8')).not.toContain('AKIAEXAMPLE0001');
  });

  it('moves a file it cannot open aside, so the next save does not write over it, and says what to do', () => {
    const dir = tempDir('trip-vault-');
    dirs.push(dir);
    const file = join(dir, 'engine-secrets.json');
    new SecretVault(file, fakeSafeStorage()).save(SECRETS);
    const before = readFileSync(file, 'utf8');
    const vault = new SecretVault(file, fakeSafeStorage()); // the password store changed
    const r = vault.loadOrSetAside(new Date('2025-03-04T05:06:07Z'));
    expect(r.secrets).toEqual({ targets: {} });
    expect(r.problem).toMatch(/could not read the destination keys.*Enter the keys again on the Destinations page/s);
    expect(vault.exists()).toBe(false);
    const aside = readdirSync(dir).filter((f) => f.includes('.unreadable-'));
    expect(aside).toEqual(['engine-secrets.json.unreadable-2025-03-04T05-06-07-000Z']);
    expect(readFileSync(join(dir, aside[0]!), 'utf8')).toBe(before);
  });
});

describe('answering the engine', () => {
  it('keeps a change the engine sends and says so', () => {
    const kept: ConfigSecrets[] = [];
    expect(answerEngineMessage({ type: 'secrets', id: 7, secrets: SECRETS }, (s) => kept.push(s))).toEqual({ type: 'secrets-kept', id: 7 });
    expect(kept).toEqual([SECRETS]);
  });

  it('refuses a change it cannot keep, with the reason the console shows', () => {
    const vaultDir = tempDir('trip-vault-');
    dirs.push(vaultDir);
    const vault = new SecretVault(join(vaultDir, 'engine-secrets.json'), fakeSafeStorage({ available: false }));
    expect(answerEngineMessage({ type: 'secrets', id: 8, secrets: SECRETS }, (s) => vault.save(s))).toEqual({
      type: 'secrets-not-kept',
      id: 8,
      error: 'The system password store is not available.',
    });
    expect(answerEngineMessage({ type: 'secrets', id: 9, secrets: { targets: { x: { accessKeyId: '' } } } }, () => undefined)).toMatchObject({ type: 'secrets-not-kept', id: 9 });
    // not a message about secrets: no answer
    expect(answerEngineMessage({ type: 'hello' }, () => undefined)).toBeNull();
    expect(answerEngineMessage('junk', () => undefined)).toBeNull();
  });

  it('writes nothing when a change is malformed', () => {
    const dir = tempDir('trip-vault-');
    dirs.push(dir);
    const file = join(dir, 'engine-secrets.json');
    writeFileSync(file, 'unchanged');
    const vault = new SecretVault(file, fakeSafeStorage());
    answerEngineMessage({ type: 'secrets', id: 1, secrets: { targets: 'nope' } }, (s) => vault.save(s));
    expect(readFileSync(file, 'utf8')).toBe('unchanged');
  });
});

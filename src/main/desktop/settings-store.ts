// The desktop settings file (<userData>/desktop-settings.json). The webhook address is encrypted
// with safeStorage (the system's password store: Keychain, DPAPI, libsecret/kwallet).
import { app, safeStorage } from 'electron';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { DesktopSettingsPatch, DesktopSettingsView } from '../../preload/bridge';
import { applyDesktopPatch, DEFAULT_DESKTOP_SETTINGS, parseDesktopSettings, viewOf, type DesktopSettings } from './logic/settings';
import { log } from './log';

export class DesktopSettingsStore {
  private settings: DesktopSettings;
  private readonly file: string;

  constructor(dir = app.getPath('userData')) {
    this.file = join(dir, 'desktop-settings.json');
    try {
      this.settings = parseDesktopSettings(JSON.parse(readFileSync(this.file, 'utf8')));
    } catch {
      this.settings = structuredClone(DEFAULT_DESKTOP_SETTINGS);
    }
  }

  get value(): DesktopSettings {
    return this.settings;
  }

  /** Secrets are "protected" only with a real password store (not Linux's basic_text fallback). */
  secretsProtected(): boolean {
    if (!safeStorage.isEncryptionAvailable()) return false;
    if (process.platform === 'linux') return safeStorage.getSelectedStorageBackend() !== 'basic_text';
    return true;
  }

  view(autoStartSupported: boolean): DesktopSettingsView {
    return viewOf(this.settings, { autoStartSupported, secretsProtected: this.secretsProtected() });
  }

  patch(p: DesktopSettingsPatch): DesktopSettings {
    this.settings = applyDesktopPatch(this.settings, p, (plain) => this.protect(plain));
    this.save();
    return this.settings;
  }

  webhookUrl(): string | null {
    const w = this.settings.webhook;
    if (!w) return null;
    try {
      return this.unprotect(w.secret);
    } catch (e) {
      log.warn('the webhook address could not be decrypted (password store changed?)', e instanceof Error ? e.message : e);
      return null;
    }
  }

  private protect(plain: string): string {
    if (safeStorage.isEncryptionAvailable()) return 'enc:' + safeStorage.encryptString(plain).toString('base64');
    return 'plain:' + Buffer.from(plain, 'utf8').toString('base64');
  }

  private unprotect(secret: string): string {
    if (secret.startsWith('enc:')) return safeStorage.decryptString(Buffer.from(secret.slice(4), 'base64'));
    if (secret.startsWith('plain:')) return Buffer.from(secret.slice(6), 'base64').toString('utf8');
    throw new Error('unknown secret format');
  }

  private save(): void {
    mkdirSync(dirname(this.file), { recursive: true });
    const tmp = `${this.file}.tmp`;
    writeFileSync(tmp, JSON.stringify(this.settings, null, 2), { mode: 0o600 });
    renameSync(tmp, this.file);
  }
}

// Start at login: the login-item API on macOS and Windows, an XDG autostart entry on Linux.
import { app } from 'electron';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { linuxAutostartEntry } from './logic/settings';
import { log } from './log';

export const HIDDEN_ARG = '--hidden';

export function autoStartSupported(): boolean {
  // In development the "app" is the Electron binary with a path argument: never register that.
  return app.isPackaged && ['darwin', 'win32', 'linux'].includes(process.platform);
}

export function applyAutoStart(enabled: boolean): void {
  if (!autoStartSupported()) return;
  try {
    if (process.platform === 'linux') {
      const dir = join(process.env.XDG_CONFIG_HOME || join(homedir(), '.config'), 'autostart');
      const file = join(dir, 'triplicate.desktop');
      if (enabled) {
        mkdirSync(dir, { recursive: true });
        writeFileSync(file, linuxAutostartEntry(process.env.APPIMAGE || process.execPath));
      } else rmSync(file, { force: true });
      return;
    }
    app.setLoginItemSettings({ openAtLogin: enabled, args: [HIDDEN_ARG] });
  } catch (e) {
    log.warn('could not change the login item', e);
  }
}

/** Started by the login item: stay in the tray. */
export function startedHidden(): boolean {
  if (process.argv.includes(HIDDEN_ARG)) return true;
  if (process.platform === 'darwin') {
    try {
      return app.getLoginItemSettings().wasOpenedAtLogin === true;
    } catch {
      return false;
    }
  }
  return false;
}

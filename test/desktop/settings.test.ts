import { describe, expect, it } from 'vitest';
import { applyDesktopPatch, DEFAULT_DESKTOP_SETTINGS, linuxAutostartEntry, parseDesktopSettings, SettingsError, viewOf } from '../../src/main/desktop/logic/settings';

const protect = (s: string) => `P(${s})`;

describe('desktop settings', () => {
  it('falls back to defaults field by field for a damaged file', () => {
    expect(parseDesktopSettings(null)).toEqual(DEFAULT_DESKTOP_SETTINGS);
    expect(parseDesktopSettings('junk')).toEqual(DEFAULT_DESKTOP_SETTINGS);
    const s = parseDesktopSettings({ autoStart: false, notifications: { desktop: 'yes', quietHours: { start: '25:00', end: '07:00' } }, webhook: { kind: 'bogus', secret: 'x' } });
    expect(s.autoStart).toBe(false);
    expect(s.notifications).toEqual({ desktop: true });
    expect(s.webhook).toBeUndefined();
  });

  it('stores the webhook only in protected form and shows just its host', () => {
    const s = applyDesktopPatch(DEFAULT_DESKTOP_SETTINGS, { webhook: { url: ' https://hooks.slack.com/services/T/B/XYZZY ' } }, protect);
    expect(s.webhook).toEqual({ kind: 'slack', secret: 'P(https://hooks.slack.com/services/T/B/XYZZY)', host: 'hooks.slack.com' });
    const v = viewOf(s, { autoStartSupported: true, secretsProtected: true });
    expect(JSON.stringify(v)).not.toContain('XYZZY');
    expect(v.webhook).toEqual({ configured: true, kind: 'slack', host: 'hooks.slack.com' });
    expect(applyDesktopPatch(s, { webhook: null }, protect).webhook).toBeUndefined();
    // the original is not modified
    expect(DEFAULT_DESKTOP_SETTINGS.webhook).toBeUndefined();
  });

  it('rejects bad input with a sentence', () => {
    expect(() => applyDesktopPatch(DEFAULT_DESKTOP_SETTINGS, { webhook: { url: 'nope' } }, protect)).toThrow(SettingsError);
    expect(() => applyDesktopPatch(DEFAULT_DESKTOP_SETTINGS, { notifications: { quietHours: { start: '7', end: '9' } } }, protect)).toThrow(/24-hour/);
    expect(() => applyDesktopPatch(DEFAULT_DESKTOP_SETTINGS, { notifications: { quietHours: { start: '07:00', end: '07:00' } } }, protect)).toThrow(/differ/);
  });

  it('sets and clears quiet hours', () => {
    const s = applyDesktopPatch(DEFAULT_DESKTOP_SETTINGS, { notifications: { quietHours: { start: '22:00', end: '07:00' }, desktop: false } }, protect);
    expect(s.notifications).toEqual({ desktop: false, quietHours: { start: '22:00', end: '07:00' } });
    expect(applyDesktopPatch(s, { notifications: { quietHours: null } }, protect).notifications).toEqual({ desktop: false });
  });

  it('writes an XDG autostart entry that starts hidden, quoting odd paths', () => {
    expect(linuxAutostartEntry('/opt/Triplicate/triplicate')).toContain('Exec=/opt/Triplicate/triplicate --hidden');
    expect(linuxAutostartEntry('/home/a b/Triplicate.AppImage')).toContain('Exec="/home/a b/Triplicate.AppImage" --hidden');
    expect(linuxAutostartEntry('/x/$HOME"q')).toContain('Exec="/x/\\$HOME\\"q" --hidden');
  });
});

// Settings of the desktop app itself (not the engine's config): auto-start, desktop notifications,
// quiet hours and the webhook. Pure parsing and patching; the shell stores the file and encrypts
// the webhook address with safeStorage (it can hold a secret token, e.g. a Slack hook).
import type { DesktopSettingsPatch, DesktopSettingsView, WebhookKindName } from '../../../preload/bridge';
import { describeWebhook, detectWebhookKind, validateWebhookUrl, WEBHOOK_KINDS } from '../../../shared/webhook';

export interface DesktopSettings {
  version: 1;
  autoStart: boolean;
  notifications: { desktop: boolean; quietHours?: { start: string; end: string } };
  /** `secret`: the address, encrypted by the caller's `protect` (base64). */
  webhook?: { kind: WebhookKindName; secret: string; host: string };
}

export const DEFAULT_DESKTOP_SETTINGS: DesktopSettings = {
  version: 1,
  autoStart: true,
  notifications: { desktop: true },
};

const HHMM = /^([01]\d|2[0-3]):[0-5]\d$/;

/** Read whatever is in the file; anything malformed falls back to the default for that field. */
export function parseDesktopSettings(raw: unknown): DesktopSettings {
  const out: DesktopSettings = structuredClone(DEFAULT_DESKTOP_SETTINGS);
  if (!raw || typeof raw !== 'object') return out;
  const r = raw as Record<string, unknown>;
  if (typeof r.autoStart === 'boolean') out.autoStart = r.autoStart;
  const n = r.notifications as Record<string, unknown> | undefined;
  if (n && typeof n === 'object') {
    if (typeof n.desktop === 'boolean') out.notifications.desktop = n.desktop;
    const q = n.quietHours as Record<string, unknown> | undefined;
    if (q && typeof q.start === 'string' && typeof q.end === 'string' && HHMM.test(q.start) && HHMM.test(q.end)) {
      out.notifications.quietHours = { start: q.start, end: q.end };
    }
  }
  const w = r.webhook as Record<string, unknown> | undefined;
  if (w && typeof w.secret === 'string' && w.secret && typeof w.kind === 'string' && (WEBHOOK_KINDS as readonly string[]).includes(w.kind)) {
    out.webhook = { kind: w.kind as WebhookKindName, secret: w.secret, host: typeof w.host === 'string' ? w.host : '' };
  }
  return out;
}

export class SettingsError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SettingsError';
  }
}

/** Apply a patch from the settings page; throws SettingsError with a sentence for bad input. */
export function applyDesktopPatch(s: DesktopSettings, patch: DesktopSettingsPatch, protect: (plain: string) => string): DesktopSettings {
  const out: DesktopSettings = structuredClone(s);
  if (patch.autoStart !== undefined) out.autoStart = Boolean(patch.autoStart);
  if (patch.notifications) {
    if (patch.notifications.desktop !== undefined) out.notifications.desktop = Boolean(patch.notifications.desktop);
    if (patch.notifications.quietHours === null) delete out.notifications.quietHours;
    else if (patch.notifications.quietHours) {
      const { start, end } = patch.notifications.quietHours;
      if (!HHMM.test(start) || !HHMM.test(end)) throw new SettingsError('Quiet hours use 24-hour times such as 22:00 and 07:00.');
      if (start === end) throw new SettingsError('Quiet hours need a start and an end that differ.');
      out.notifications.quietHours = { start, end };
    }
  }
  if (patch.webhook === null) delete out.webhook;
  else if (patch.webhook) {
    const url = patch.webhook.url.trim();
    const problem = validateWebhookUrl(url);
    if (problem) throw new SettingsError(problem);
    const kind = patch.webhook.kind ?? detectWebhookKind(url);
    if (!(WEBHOOK_KINDS as readonly string[]).includes(kind)) throw new SettingsError('Choose ntfy, Slack, Healthchecks or JSON.');
    out.webhook = { kind, secret: protect(url), host: describeWebhook(url) };
  }
  return out;
}

export function viewOf(s: DesktopSettings, extra: { autoStartSupported: boolean; secretsProtected: boolean }): DesktopSettingsView {
  return {
    autoStart: s.autoStart,
    autoStartSupported: extra.autoStartSupported,
    notifications: { desktop: s.notifications.desktop, quietHours: s.notifications.quietHours },
    webhook: s.webhook ? { configured: true, kind: s.webhook.kind, host: s.webhook.host } : { configured: false },
    secretsProtected: extra.secretsProtected,
  };
}

/**
 * Linux has no login-item API in Electron: an XDG autostart entry does the same
 * (~/.config/autostart/triplicate.desktop). `exec` is the AppImage path or the installed binary.
 */
export function linuxAutostartEntry(exec: string, name = 'Triplicate'): string {
  const quoted = /[\s"'\\$`]/.test(exec) ? `"${exec.replace(/(["\\$`])/g, '\\$1')}"` : exec;
  return [
    '[Desktop Entry]',
    'Type=Application',
    `Name=${name}`,
    'Comment=Keeps three copies of your photos and videos',
    `Exec=${quoted} --hidden`,
    'Terminal=false',
    'X-GNOME-Autostart-enabled=true',
    '',
  ].join('\n');
}

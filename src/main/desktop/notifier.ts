// Native notifications and the webhook, driven by src/shared/notify.ts.
import { Notification } from 'electron';
import type { EngineEvent, SyncStatus } from '../../shared/api';
import { NotificationRules, type Notice } from '../../shared/notify';
import { heartbeatRequest, webhookRequest, type WebhookRequest } from '../../shared/webhook';
import type { DesktopSettingsStore } from './settings-store';
import { log } from './log';

const HEARTBEAT_MS = 10 * 60_000;

export class Notifier {
  private rules: NotificationRules;
  private rulesKey = '';
  private heartbeat: NodeJS.Timeout | null = null;
  private lastStatus: SyncStatus | null = null;

  constructor(
    private readonly settings: DesktopSettingsStore,
    private readonly onClick: (page: Notice['page']) => void,
    private readonly iconPath?: string,
  ) {
    this.rules = this.makeRules();
    this.heartbeat = setInterval(() => void this.sendHeartbeat(), HEARTBEAT_MS);
    this.heartbeat.unref();
  }

  private makeRules(): NotificationRules {
    const q = this.settings.value.notifications.quietHours;
    this.rulesKey = JSON.stringify(q ?? null);
    return new NotificationRules({ quietHours: q });
  }

  /** Settings changed: keep the de-duplication memory unless the quiet hours changed. */
  settingsChanged(): void {
    if (JSON.stringify(this.settings.value.notifications.quietHours ?? null) !== this.rulesKey) this.rules = this.makeRules();
  }

  onStatus(s: SyncStatus): void {
    this.lastStatus = s;
    for (const n of this.rules.onStatus(s, Date.now())) this.deliver(n);
  }

  onEvent(ev: EngineEvent): void {
    for (const n of this.rules.onEvent(ev, Date.now())) this.deliver(n);
  }

  private deliver(n: Notice): void {
    log.info(`notice ${n.kind}: ${n.title}`);
    if (this.settings.value.notifications.desktop && Notification.isSupported()) {
      const note = new Notification({ title: n.title, body: n.body, silent: n.silent, icon: this.iconPath, urgency: n.severity === 'error' ? 'critical' : 'normal' });
      note.on('click', () => this.onClick(n.page));
      note.show();
    }
    const url = this.settings.webhookUrl();
    const kind = this.settings.value.webhook?.kind;
    if (url && kind) void this.send(webhookRequest(n, url, kind));
  }

  async test(): Promise<{ ok: boolean; message: string }> {
    const url = this.settings.webhookUrl();
    const kind = this.settings.value.webhook?.kind;
    if (!url || !kind) return { ok: false, message: 'No webhook is set up yet. Paste its address first.' };
    const req = webhookRequest(
      { key: 'test', kind: 'restore-done', severity: 'info', title: 'Test message from Triplicate', body: 'If you can read this, notifications reach you.', at: Date.now(), silent: true, page: 'settings' },
      url,
      kind,
    );
    return this.send(req);
  }

  private async sendHeartbeat(): Promise<void> {
    const url = this.settings.webhookUrl();
    if (!url || this.settings.value.webhook?.kind !== 'healthchecks' || !this.lastStatus) return;
    const s = this.lastStatus;
    await this.send(heartbeatRequest(url, s.health === 'green' || s.health === 'syncing', s.summary));
  }

  private async send(req: WebhookRequest): Promise<{ ok: boolean; message: string }> {
    const host = new URL(req.url).host;
    try {
      const res = await fetch(req.url, { method: req.method, headers: req.headers, body: req.body, signal: AbortSignal.timeout(15_000) });
      if (!res.ok) {
        log.warn(`webhook to ${host} answered ${res.status}`);
        return { ok: false, message: `${host} answered ${res.status}. Check the address in Settings.` };
      }
      return { ok: true, message: `Sent to ${host}.` };
    } catch (e) {
      log.warn(`webhook to ${host} failed: ${e instanceof Error ? e.message : String(e)}`);
      return { ok: false, message: `${host} could not be reached. Check the address and this computer's internet connection.` };
    }
  }

  dispose(): void {
    if (this.heartbeat) clearInterval(this.heartbeat);
  }
}

// The engine's own notifications: the webhook in `notifications.webhookUrl` (ntfy, Slack,
// Healthchecks.io or plain JSON) for a remote admin of a headless box. The rules (what is worth a
// message, de-duplication, reminders) are the same pure ones the desktop app uses for its native
// notifications: src/shared/notify.ts. A Healthchecks.io URL also gets a heartbeat every 10 minutes.
import { NotificationRules, type Notice, type NotifyOptions } from '../../shared/notify';
import { detectWebhookKind, heartbeatRequest, webhookRequest, type WebhookRequest } from '../../shared/webhook';
import type { SyncStatus } from '../../shared/api';
import type { EngineContext, EngineService } from './core/context';
import { log } from './log';
import { errorText } from './util';

const HEARTBEAT_MS = 10 * 60_000;

export class WebhookNotifier implements EngineService {
  readonly name = 'notify';
  private readonly rules: NotificationRules;
  private off: (() => void) | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** Sent notices (tests and the diagnostics read them). */
  readonly sent: { notice: Notice; ok: boolean; status?: number }[] = [];

  constructor(
    private readonly ctx: EngineContext,
    private readonly status: () => SyncStatus,
    opts: Partial<NotifyOptions> = {},
  ) {
    this.rules = new NotificationRules(opts);
  }

  start(): void {
    this.off = this.ctx.bus.on((e) => {
      if (!this.url()) return;
      const notices = e.type === 'status' ? this.rules.onStatus(e.status, Date.now()) : this.rules.onEvent(e, Date.now());
      for (const n of notices) void this.deliver(n);
    });
    this.timer = setInterval(() => void this.heartbeat(), HEARTBEAT_MS);
    this.timer.unref?.();
  }

  stop(): void {
    this.off?.();
    if (this.timer) clearInterval(this.timer);
  }

  private url(): string | undefined {
    return this.ctx.config.get().notifications.webhookUrl;
  }

  private async deliver(n: Notice): Promise<void> {
    const url = this.url();
    if (!url) return;
    const r = await this.send(webhookRequest(n, url, detectWebhookKind(url), this.ctx.config.get().siteName));
    this.sent.push({ notice: n, ...r });
    if (this.sent.length > 100) this.sent.shift();
  }

  private async heartbeat(): Promise<void> {
    const url = this.url();
    if (!url || detectWebhookKind(url) !== 'healthchecks') return;
    const s = this.status();
    await this.send(heartbeatRequest(url, s.health === 'green' || s.health === 'syncing', s.summary));
  }

  private async send(req: WebhookRequest): Promise<{ ok: boolean; status?: number }> {
    const host = new URL(req.url).host;
    try {
      const res = await fetch(req.url, { method: req.method, headers: req.headers, body: req.body, signal: AbortSignal.timeout(15_000) });
      if (!res.ok) log.warn(`webhook to ${host} answered ${res.status}`);
      return { ok: res.ok, status: res.status };
    } catch (e) {
      log.warn(`webhook to ${host} failed: ${errorText(e)}`);
      return { ok: false };
    }
  }
}

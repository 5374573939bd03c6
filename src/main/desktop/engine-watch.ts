// The main process's view of the engine: the current status and the event stream, over the same
// HTTP + SSE API the window uses. Reconnects with backoff when the engine restarts.
import type { EngineEvent, SyncStatus } from '../../shared/api';
import { STREAM_ROUTES } from '../../shared/api';
import { ApiClient } from '../../shared/client';
import type { EngineConnection } from '../../preload/bridge';
import { backoffDelay, SseParser } from './logic/sse';
import type { EngineLink } from './logic/tray';
import { log } from './log';

export interface WatchListener {
  status(s: SyncStatus | null, link: EngineLink): void;
  event(ev: EngineEvent): void;
}

export class EngineWatch {
  readonly client: ApiClient;
  private status: SyncStatus | null = null;
  private link: EngineLink = { state: 'connecting' };
  private abort: AbortController | null = null;
  private timer: NodeJS.Timeout | null = null;
  private attempt = 0;
  private stopped = false;

  constructor(
    private readonly conn: EngineConnection,
    private readonly listener: WatchListener,
  ) {
    this.client = new ApiClient({ baseUrl: conn.baseUrl, token: conn.token });
  }

  get current(): { status: SyncStatus | null; link: EngineLink } {
    return { status: this.status, link: this.link };
  }

  start(): void {
    this.stopped = false;
    void this.connect();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.abort?.abort();
  }

  /** The engine is back (restarted): reconnect now instead of after the backoff. */
  retryNow(): void {
    if (this.stopped || this.link.state === 'connected') return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.abort?.abort();
    this.attempt = 0;
    void this.connect();
  }

  /** After a command (pause, resume): refresh at once instead of waiting for the next event. */
  async refresh(): Promise<void> {
    try {
      this.setStatus(await this.client.call('status'));
    } catch {
      /* the stream's reconnect handles an engine that went away */
    }
  }

  private setStatus(s: SyncStatus | null, link: EngineLink = this.link): void {
    this.status = s;
    this.link = link;
    this.listener.status(s, link);
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const ac = new AbortController();
    this.abort = ac;
    try {
      const status = await this.client.call('status', undefined, ac.signal);
      const res = await fetch(`${this.conn.baseUrl}${STREAM_ROUTES.events}`, {
        headers: { ...this.client.headers(), accept: 'text/event-stream' },
        signal: ac.signal,
      });
      if (!res.ok || !res.body) throw new Error(`event stream answered ${res.status}`);
      this.attempt = 0;
      this.setStatus(status, { state: 'connected' });
      const parser = new SseParser((m) => {
        let ev: EngineEvent;
        try {
          ev = JSON.parse(m.data) as EngineEvent;
        } catch {
          return;
        }
        if (ev.type === 'status') this.setStatus(ev.status, { state: 'connected' });
        try {
          this.listener.event(ev);
        } catch (e) {
          log.error('event listener failed', e);
        }
      });
      const decoder = new TextDecoder();
      const reader = res.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        parser.push(decoder.decode(value, { stream: true }));
      }
      throw new Error('the event stream ended');
    } catch (e) {
      if (this.stopped || this.abort !== ac) return; // stopped, or replaced by retryNow()
      const delay = backoffDelay(this.attempt++);
      const since = this.link.state === 'lost' ? this.link.since : Date.now();
      if (this.attempt === 1 || this.attempt % 10 === 0) log.warn(`engine connection lost (${e instanceof Error ? e.message : String(e)}); retry in ${delay} ms`);
      this.setStatus(this.status, { state: 'lost', since, retryAt: Date.now() + delay });
      this.timer = setTimeout(() => void this.connect(), delay);
    }
  }
}

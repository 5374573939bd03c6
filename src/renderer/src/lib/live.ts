// The engine's event stream (SSE) with reconnect and backoff. EventSource cannot send headers, so
// the token goes in `?access_token=`. EventSource's own retry is not used: on any error we close it,
// tell the store the engine is lost, and reconnect with backoff (0.5 s doubling to 30 s).
import { STREAM_ROUTES, type EngineEvent } from '../../../shared/api';
import { urlWithToken, type Connection } from './transport';

export type StreamState = { state: 'open' } | { state: 'lost'; attempt: number; retryAt: number };

export function backoffDelay(attempt: number, random: () => number = Math.random): number {
  const base = Math.min(30_000, 500 * 2 ** Math.max(0, Math.min(attempt, 10)));
  return Math.round(base * (0.8 + 0.4 * random()));
}

type Listener = (ev: EngineEvent) => void;
const listeners = new Set<Listener>();

/** Pages that need raw events (Activity patches rows in place) subscribe here. */
export function subscribeEvents(fn: Listener): () => void {
  listeners.add(fn);
  return () => {
    listeners.delete(fn);
  };
}

export class EventStream {
  private es: EventSource | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private attempt = 0;
  private closed = false;
  /** An open() is between its catch-up request and the EventSource: do not start a second one. */
  private opening = false;

  constructor(
    private readonly conn: Connection,
    private readonly handlers: {
      /** Before the stream opens (first time and after each loss): fetch what may have been missed. Throwing counts as a failed attempt. */
      catchUp: () => Promise<void>;
      event: (ev: EngineEvent) => void;
      state: (s: StreamState) => void;
    },
  ) {}

  start(): void {
    this.closed = false;
    void this.open();
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.es?.close();
    this.es = null;
  }

  /** Reconnect now (the "Try now" button). */
  retryNow(): void {
    if (this.closed || this.opening || this.es) return;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    void this.open();
  }

  private async open(): Promise<void> {
    if (this.closed || this.opening) return;
    this.opening = true;
    try {
      await this.handlers.catchUp();
    } catch {
      this.opening = false;
      this.lost();
      return;
    }
    this.opening = false;
    if (this.closed) return;
    this.es?.close();
    const es = new EventSource(urlWithToken(this.conn, STREAM_ROUTES.events));
    this.es = es;
    es.onopen = () => {
      this.attempt = 0;
      this.handlers.state({ state: 'open' });
    };
    es.onmessage = (m: MessageEvent<string>) => {
      let ev: EngineEvent;
      try {
        ev = JSON.parse(m.data) as EngineEvent;
      } catch {
        return;
      }
      this.handlers.event(ev);
      for (const l of listeners) {
        try {
          l(ev);
        } catch (e) {
          console.error(e);
        }
      }
    };
    es.onerror = () => {
      if (this.es !== es) return;
      es.close();
      this.es = null;
      this.lost();
    };
  }

  private lost(): void {
    if (this.closed) return;
    const delay = backoffDelay(this.attempt);
    this.attempt++;
    this.handlers.state({ state: 'lost', attempt: this.attempt, retryAt: Date.now() + delay });
    this.timer = setTimeout(() => {
      this.timer = null;
      void this.open();
    }, delay);
  }
}

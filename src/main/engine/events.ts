// The engine's event bus: what the SSE stream, the tray and the tests listen to.
// `record()` also writes the operator-visible event log in the catalog.
import { EventEmitter } from 'node:events';
import type { EngineEvent, EventRecord } from '../../shared/api';
import type { Catalog } from './catalog/catalog';
import { log } from './log';

export class EventBus {
  private readonly em = new EventEmitter();
  constructor(private readonly catalog?: Catalog) {
    this.em.setMaxListeners(1000);
  }

  emit(e: EngineEvent): void {
    this.em.emit('event', e);
  }

  on(fn: (e: EngineEvent) => void): () => void {
    this.em.on('event', fn);
    return () => this.em.off('event', fn);
  }

  /** Wait for the first event matching pred (tests and the CLI use it). */
  waitFor<T extends EngineEvent>(pred: (e: EngineEvent) => e is T, timeoutMs?: number): Promise<T>;
  waitFor(pred: (e: EngineEvent) => boolean, timeoutMs?: number): Promise<EngineEvent>;
  waitFor(pred: (e: EngineEvent) => boolean, timeoutMs = 30_000): Promise<EngineEvent> {
    return new Promise((resolve, reject) => {
      const off = this.on((e) => {
        if (pred(e)) {
          clearTimeout(t);
          off();
          resolve(e);
        }
      });
      const t = setTimeout(() => {
        off();
        reject(new Error(`no matching engine event within ${timeoutMs} ms`));
      }, timeoutMs);
    });
  }

  /** Write an operator-visible event (catalog event log + log file) and broadcast it. */
  record(e: Omit<EventRecord, 'id' | 'ts'>): EventRecord {
    const rec = this.catalog ? this.catalog.addEvent(e) : { ...e, id: 0, ts: Date.now() };
    const line = `${e.kind}: ${e.message}${e.file_key ? ` [${e.file_key}]` : ''}${e.target_id ? ` (target ${e.target_id})` : ''}${e.detail ? ` — ${e.detail}` : ''}`;
    if (e.level === 'error') log.error(line);
    else if (e.level === 'warn') log.warn(line);
    else log.info(line);
    this.emit({ type: 'log', event: rec });
    return rec;
  }
}

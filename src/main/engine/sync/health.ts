// Target health: a circuit breaker per target. When a target fails for reasons of its own
// (network, credentials, bucket, 5xx), the whole target backs off (30s, 1m, 5m, 15m, 1h, then every
// hour) and its files wait without being charged attempts; the other targets go on. After the
// backoff, one upload probes; success brings the target back online and its queue drains by itself.
import type { TargetState, TargetStatus } from '../../../shared/api';
import type { Catalog, TargetStateRow } from '../catalog/catalog';
import type { EventBus } from '../events';
import type { StorageError } from '../backends/types';
import { clockTime } from '../util';

export interface HealthView {
  state: TargetState;
  reason?: string;
  detail?: string;
  offline_since?: number;
  next_try_at?: number;
}

export class TargetHealth {
  private readonly rows = new Map<string, TargetStateRow>();

  constructor(
    private readonly catalog: Catalog,
    private readonly bus: EventBus,
    private readonly backoffSeconds: () => number[],
    private readonly labelOf: (id: string) => string,
  ) {}

  private row(id: string): TargetStateRow {
    let r = this.rows.get(id);
    if (!r) {
      r = this.catalog.targetState(id) ?? { target_id: id, paused: 0, offline_since: null, failures: 0, next_try_at: null, reason: null, detail: null, updated_at: Date.now() };
      this.rows.set(id, r);
    }
    return r;
  }

  private save(r: TargetStateRow): void {
    r.updated_at = Date.now();
    this.catalog.saveTargetState(r);
  }

  view(id: string, enabled: boolean): HealthView {
    const r = this.row(id);
    if (!enabled) return { state: 'disabled' };
    const v: HealthView = { state: r.paused ? 'paused' : r.offline_since ? 'offline' : r.failures === 0 && r.updated_at ? 'online' : 'unknown' };
    if (r.offline_since) {
      v.offline_since = r.offline_since;
      v.next_try_at = r.next_try_at ?? undefined;
      v.reason = r.reason ?? undefined;
      v.detail = r.detail ?? undefined;
    }
    return v;
  }

  isPaused(id: string): boolean {
    return this.row(id).paused === 1;
  }

  /** May a worker claim a job for this target now? `probing`: an offline target lets one job through. */
  mayRun(id: string, now = Date.now()): { ok: boolean; probe: boolean; wakeAt?: number } {
    const r = this.row(id);
    if (r.paused) return { ok: false, probe: false };
    if (!r.offline_since) return { ok: true, probe: false };
    const next = r.next_try_at ?? 0;
    if (next <= now) return { ok: true, probe: true };
    return { ok: false, probe: false, wakeAt: next };
  }

  reportSuccess(id: string): void {
    const r = this.row(id);
    if (!r.offline_since && r.failures === 0) return;
    const was = r.offline_since;
    r.offline_since = null;
    r.failures = 0;
    r.next_try_at = null;
    r.reason = null;
    r.detail = null;
    this.save(r);
    if (was) {
      const mins = Math.round((Date.now() - was) / 60000);
      this.bus.record({ level: 'info', kind: 'target-online', message: `${this.labelOf(id)} is back${mins > 0 ? ` after ${mins} minute${mins === 1 ? '' : 's'}` : ''}. Waiting files are being copied now.`, target_id: id });
    }
    this.bus.emit({ type: 'target', target_id: id, state: 'online' });
  }

  /** A target-level failure: back off the whole target. Returns when to try again. */
  reportFailure(id: string, err: StorageError, now = Date.now()): number {
    const r = this.row(id);
    const steps = this.backoffSeconds();
    // While a probe is out, parallel workers report the same outage: count one step per window.
    if (r.offline_since && r.next_try_at && r.next_try_at > now) return r.next_try_at;
    r.failures += 1;
    const delay = steps[Math.min(r.failures - 1, steps.length - 1)]! * 1000;
    const first = !r.offline_since;
    r.offline_since = r.offline_since ?? now;
    r.next_try_at = now + delay;
    // The backend's sentence ends in a generic "keeps retrying"; say exactly when instead.
    const base = err.message
      .replace(/\s*Nothing to do: Triplicate waits and tries again\.\s*$/, '')
      .replace(/[;,]?\s*Triplicate (keeps retrying|tries again( later)?|waits and tries again)\.\s*$/i, '.')
      .replace(/\.\.$/, '.');
    r.reason = `${base} Triplicate tries again at ${clockTime(r.next_try_at)}.`;
    r.detail = err.detail || err.kind;
    this.save(r);
    if (first || r.failures === steps.length) {
      this.bus.record({ level: first ? 'warn' : 'error', kind: 'target-offline', message: r.reason, target_id: id, detail: r.detail });
    }
    this.bus.emit({ type: 'target', target_id: id, state: 'offline', reason: r.reason });
    return r.next_try_at;
  }

  setPaused(id: string, paused: boolean): void {
    const r = this.row(id);
    r.paused = paused ? 1 : 0;
    if (!paused) r.next_try_at = r.offline_since ? Date.now() : null;
    this.save(r);
    this.bus.record({ level: 'info', kind: paused ? 'target-paused' : 'target-resumed', message: `${this.labelOf(id)} ${paused ? 'is paused: nothing is copied to it until you resume.' : 'resumed.'}`, target_id: id });
    this.bus.emit({ type: 'target', target_id: id, state: paused ? 'paused' : r.offline_since ? 'offline' : 'online' });
  }

  /** "Retry now": forget the wait of an offline target. */
  retryNow(id: string): void {
    const r = this.row(id);
    if (r.offline_since) {
      r.next_try_at = Date.now();
      this.save(r);
    }
  }

  forget(id: string): void {
    this.rows.delete(id);
  }
}

export type { TargetStatus };

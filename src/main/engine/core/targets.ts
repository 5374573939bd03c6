// The destinations ("targets") of the config in use, and their backends: ONE backend per enabled
// target, shared by uploads, restores, downloads, verification, prune and the operator's file
// actions: one connection pool (sized for all of them) and one bandwidth budget (the target's
// weekly schedule, both directions). Callers differ only in how long they retry and wait, so each
// use is a thin wrapper (retry, a deadline) over that same backend.
//
// A target whose settings change gets a new backend; the old one is closed once the calls and
// streams in flight on it have ended. Test connection is the exception: it tries unsaved settings
// with a backend of its own.
import type { TestConnectionResult } from '../../../shared/api';
import { restoreCeiling, type Config, type TargetConfig } from '../../../shared/config';
import { createBackend } from '../backends';
import { withAnswerDeadline } from '../backends/deadline';
import { testConnection } from '../backends/probe';
import { withRetry, type RetryOptions } from '../backends/retry';
import { optionalCalls, type BodySource, type GetOptions, type GetResult, type ListOptions, type ObjectInfo, type PutOptions, type StorageBackend } from '../backends/types';
import type { Catalog } from '../catalog/catalog';
import { ConfigError } from '../config/config';
import { log } from '../log';
import type { ConfigStore } from './config-store';
import { KeyChecks } from './key-checks';

/**
 * How each use retries (RetryOptions of backends/retry.ts) and how long it waits for an answer:
 * - sync: uploads and the operator's file actions: the retry wrapper's few quick retries; longer
 *   outages are the lane's backoff (30 s .. 1 h).
 * - restore: few quick retries: a target that does not answer is better left for the next one.
 * - download: a visitor must not be held: two tries a moment apart, and a target that does not
 *   answer within 5 s (a HEAD, or a GET until its headers) is passed over for the next copy.
 * - maintenance: verification, prune, rebuild: as sync.
 */
export const USES = {
  sync: { retry: {} },
  restore: { retry: { attempts: 2, baseMs: 200, maxMs: 1000 } },
  download: { retry: { attempts: 2, baseMs: 100, maxMs: 250 }, answerMs: 5_000 },
  maintenance: { retry: {} },
} satisfies Record<string, { retry: RetryOptions; answerMs?: number }>;
export type BackendUse = keyof typeof USES;

/** The backend of one target's settings, with the calls and streams running on it. */
class Shared {
  private inflight = 0;
  private retired = false;
  private closed = false;
  private readonly views = new Map<BackendUse, StorageBackend>();

  constructor(
    readonly sig: string,
    private readonly backend: StorageBackend,
    /** Every call that failed, each try on its own (this is below the retries), with the use that made it. */
    private readonly failed: (e: unknown, use: BackendUse) => void,
  ) {}

  view(use: BackendUse): StorageBackend {
    let v = this.views.get(use);
    if (!v) {
      const u: { retry: RetryOptions; answerMs?: number } = USES[use];
      v = withRetry(this.track(use), u.retry);
      if (u.answerMs) v = withAnswerDeadline(v, u.answerMs);
      this.views.set(use, v);
    }
    return v;
  }

  /** No new work comes; close once what runs has ended. */
  retire(): void {
    this.retired = true;
    if (this.inflight === 0) this.close();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.backend.close?.();
  }

  private begin(): () => void {
    this.inflight++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      if (--this.inflight === 0 && this.retired) this.close();
    };
  }

  private async hold<T>(use: BackendUse, fn: () => Promise<T>): Promise<T> {
    const end = this.begin();
    try {
      return await fn();
    } catch (e) {
      this.failed(e, use);
      throw e;
    } finally {
      end();
    }
  }

  private async getCounted(use: BackendUse, key: string, opts?: GetOptions): Promise<GetResult> {
    const end = this.begin();
    try {
      const got = await this.backend.get(key, opts);
      got.body.once('close', end);
      // a body that breaks half-way (the server stalled, a paced read's piece refused) failed too
      got.body.once('error', (e) => this.failed(e, use));
      if (got.body.destroyed) end();
      return got;
    } catch (e) {
      end();
      this.failed(e, use);
      throw e;
    }
  }

  private async *listCounted(use: BackendUse, prefix: string, opts?: ListOptions): AsyncGenerator<ObjectInfo> {
    const end = this.begin();
    try {
      yield* this.backend.list(prefix, opts);
    } catch (e) {
      this.failed(e, use);
      throw e;
    } finally {
      end();
    }
  }

  /** The backend with its work counted (a GET until its body ends) and its failures told as `use`'s; close() is the registry's. */
  private track(use: BackendUse): StorageBackend {
    const b = this.backend;
    const hold = <T>(fn: () => Promise<T>) => this.hold(use, fn);
    const view: StorageBackend = {
      id: b.id,
      kind: b.kind,
      description: b.description,
      prefix: b.prefix,
      // a part of a multipart upload sent again is a failed try too
      put: (key: string, body: BodySource, opts: PutOptions) =>
        hold(() =>
          b.put(key, body, {
            ...opts,
            onRetry: (e) => {
              this.failed(e, use);
              opts.onRetry?.(e);
            },
          }),
        ),
      get: (key: string, opts?: GetOptions) => this.getCounted(use, key, opts),
      head: (key: string, signal?: AbortSignal): Promise<ObjectInfo | null> => hold(() => b.head(key, signal)),
      list: (prefix: string, opts?: ListOptions) => this.listCounted(use, prefix, opts),
      delete: (key, signal) => hold(() => b.delete(key, signal)),
      copy: (src, dst, signal) => hold(() => b.copy(src, dst, signal)),
      close: () => undefined,
    };
    return Object.assign(view, optionalCalls(b, (_op, _key, _signal, fn) => hold(fn)));
  }
}

/** Told of a failed call on a destination's backend, with the destination (see TargetRegistry.onFailure). */
export type FailureListener = (e: unknown, targetId: string) => void;

export class TargetRegistry {
  private readonly shared = new Map<string, Shared>();
  private readonly built = new Map<string, number>();
  private readonly failureListeners = new Map<BackendUse, Set<FailureListener>>();
  /** What the last Test connection of each destination found (its key can delete…), kept across restarts. */
  readonly checks: KeyChecks;

  constructor(
    private readonly config: ConfigStore,
    private readonly catalog: Catalog,
  ) {
    this.checks = new KeyChecks(config, catalog);
    // Registered before the services that follow the config: they find the new backends.
    config.onChange((prev, next) => this.follow(prev, next));
  }

  /** Enabled targets in priority order. */
  enabled(): TargetConfig[] {
    return this.config
      .get()
      .targets.filter((t) => t.enabled)
      .sort((a, b) => a.priority - b.priority);
  }

  /** A target of the config (enabled or not); a ConfigError when there is none with that id. */
  require(id: string): TargetConfig {
    const t = this.config.get().targets.find((x) => x.id === id);
    if (!t) throw new ConfigError(`There is no destination with the id "${id}".`);
    return t;
  }

  label(id: string): string {
    return this.config.get().targets.find((t) => t.id === id)?.label ?? id;
  }

  /**
   * The shared backend of an enabled target, as `use` retries and waits (see USES); undefined when
   * the target is switched off or unknown. Never close it: the registry does.
   */
  backend(id: string, use: BackendUse = 'sync'): StorageBackend | undefined {
    const cfg = this.config.get();
    const t = cfg.targets.find((x) => x.id === id && x.enabled);
    if (!t) return undefined;
    const sig = this.sigOf(t, cfg);
    let s = this.shared.get(id);
    if (s && s.sig !== sig) {
      // settings changed without passing through the config store's listeners (tests)
      s.retire();
      s = undefined;
    }
    if (!s) {
      s = new Shared(sig, this.open(t, cfg), (e, use) => {
        for (const fn of this.failureListeners.get(use) ?? []) fn(e, id);
      });
      this.shared.set(id, s);
      this.built.set(id, (this.built.get(id) ?? 0) + 1);
    }
    return s.view(use);
  }

  /**
   * Every failed call that `use` made on a destination's backend, each try on its own (the
   * retries hide the tries that a later one made good; a multipart upload's parts sent again and
   * a read that broke half-way included). Per use, so that a server's "slow down" slows the lane
   * that was told: an upload lane hears 'sync' (sync/uploader.ts), the restore workers 'restore';
   * a visitor's download cuts neither. Returns the unsubscribe.
   */
  onFailure(use: BackendUse, fn: FailureListener): () => void {
    let set = this.failureListeners.get(use);
    if (!set) this.failureListeners.set(use, (set = new Set()));
    set.add(fn);
    return () => {
      set.delete(fn);
    };
  }

  /** How many backends were built for a target since the engine started (one per settings in use). */
  builtFor(id: string): number {
    return this.built.get(id) ?? 0;
  }

  /**
   * Try a destination's settings, saved or not: a backend of its own, closed after (no retries: the
   * first answer counts). What it finds is kept for these settings (`checks`).
   */
  async test(t: TargetConfig, signal?: AbortSignal): Promise<TestConnectionResult> {
    const backend = createBackend(t, { retry: false });
    try {
      const r = await testConnection(backend, { signal, target: t });
      this.checks.record(t, r);
      return r;
    } finally {
      backend.close?.();
    }
  }

  /** The engine stops: every backend closes now. */
  close(): void {
    for (const s of this.shared.values()) s.close();
    this.shared.clear();
  }

  /**
   * One pool for every user of the target: its uploads (as many as the lane's ceiling may choose,
   * x parts: backends/presets.ts concurrencyCeiling, in S3Backend), plus the downloads the server
   * lets run at once and the restore workers.
   */
  private open(t: TargetConfig, cfg: Config): StorageBackend {
    // A folder destination that already holds our copies must show its marker file: an empty
    // mount point (share not mounted) is then an outage, not an empty destination to refill.
    const hasCopies = t.kind === 'folder' && this.catalog.copyCounts().some((c) => c.target_id === t.id && c.state === 'synced' && c.n > 0);
    return createBackend(t, {
      retry: false,
      bandwidth: { gets: true },
      s3: { extraSockets: cfg.server.maxConcurrentDownloads + restoreCeiling(cfg.restore) },
      folder: hasCopies ? { requireMarker: true } : {},
    });
  }

  private sigOf(t: TargetConfig, cfg: Config): string {
    return JSON.stringify([t, cfg.server.maxConcurrentDownloads, restoreCeiling(cfg.restore)]);
  }

  private follow(_prev: Config, next: Config): void {
    this.checks.follow(next);
    for (const [id, s] of this.shared) {
      const t = next.targets.find((x) => x.id === id && x.enabled);
      if (!t || this.sigOf(t, next) !== s.sig) {
        this.shared.delete(id);
        s.retire();
        log.debug?.(`destination ${id}: its backend closes once the work in flight on it ends`);
      }
    }
  }
}

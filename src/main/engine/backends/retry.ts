// Retry wrapper (restic's backend wrappers): a few quick retries of transient failures
// (network, timeout, 5xx, throttling) with full-jitter exponential backoff, around any backend.
// Longer outages are the engine's business (per-target backoff of 30 s .. 1 h): this wrapper only
// rides out blips, so its defaults stay short.
//
// Never retried: aborted, integrity, invalid, not_found, auth, no_bucket (retrying cannot help),
// and no_space, local, unknown (not transient; the engine decides).
import { isStorageError, optionalCalls, type BodySource, type GetOptions, type GetResult, type ListOptions, type ObjectInfo, type PutOptions, type StorageBackend, type StorageError } from './types';
import { sleep, throwIfAborted } from './streams';

export interface RetryOptions {
  /** Total attempts, the first included. Default 4. */
  attempts?: number;
  /** First backoff ceiling in ms; doubles per attempt. Default 500. */
  baseMs?: number;
  /** Largest backoff ceiling in ms. Default 10 000. */
  maxMs?: number;
  /** Told before each wait (for logs and the UI's "retrying..." hint). */
  onRetry?: (info: { op: string; key?: string; attempt: number; delayMs: number; error: StorageError }) => void;
  /** Source of randomness in [0, 1); tests pass a fixed one. */
  random?: () => number;
}

export function isRetryable(e: unknown): e is StorageError {
  return isStorageError(e) && e.transient;
}

/** Full jitter: a uniform wait in [0, min(max, base * 2^(attempt-1))). */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.floor(random() * ceiling);
}

export function withRetry(backend: StorageBackend, opts: RetryOptions = {}): StorageBackend {
  return new RetryBackend(backend, opts);
}

class RetryBackend implements StorageBackend {
  readonly id: string;
  readonly kind: StorageBackend['kind'];
  readonly description: string;
  readonly prefix?: string;
  readonly cleanupIncomplete?: StorageBackend['cleanupIncomplete'];
  readonly objectLock?: StorageBackend['objectLock'];
  readonly deleteVersion?: StorageBackend['deleteVersion'];
  private readonly attempts: number;
  private readonly baseMs: number;
  private readonly maxMs: number;

  constructor(
    private readonly inner: StorageBackend,
    private readonly opts: RetryOptions,
  ) {
    this.id = inner.id;
    this.kind = inner.kind;
    this.description = inner.description;
    this.prefix = inner.prefix;
    this.attempts = Math.max(1, Math.floor(opts.attempts ?? 4));
    this.baseMs = opts.baseMs ?? 500;
    this.maxMs = opts.maxMs ?? 10_000;
    Object.assign(this, optionalCalls(inner, (op, key, signal, fn) => this.run(op, key, signal, fn)));
  }

  /** Run `fn` until it succeeds, fails for good, or runs out of attempts. */
  private async run<T>(op: string, key: string | undefined, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      throwIfAborted(signal);
      try {
        return await fn();
      } catch (e) {
        if (!isRetryable(e) || attempt >= this.attempts || signal?.aborted) throw e;
        await this.pause(op, key, attempt, e, signal);
      }
    }
  }

  private async pause(op: string, key: string | undefined, attempt: number, error: StorageError, signal?: AbortSignal): Promise<void> {
    const delayMs = backoffDelay(attempt, this.baseMs, this.maxMs, this.opts.random);
    this.opts.onRetry?.({ op, key, attempt, delayMs, error });
    await sleep(delayMs, signal);
  }

  put(key: string, body: BodySource, opts: PutOptions): Promise<ObjectInfo> {
    // The inner put opens the body again on every call: each attempt sends it from the start.
    return this.run('put', key, opts.signal, () => this.inner.put(key, body, opts));
  }

  get(key: string, opts?: GetOptions): Promise<GetResult> {
    // Only opening the download is retried; a stream that breaks later reports its error.
    return this.run('get', key, opts?.signal, () => this.inner.get(key, opts));
  }

  head(key: string, signal?: AbortSignal): Promise<ObjectInfo | null> {
    return this.run('head', key, signal, () => this.inner.head(key, signal));
  }

  delete(key: string, signal?: AbortSignal): Promise<void> {
    return this.run('delete', key, signal, () => this.inner.delete(key, signal));
  }

  copy(srcKey: string, dstKey: string, signal?: AbortSignal): Promise<void> {
    return this.run('copy', srcKey, signal, () => this.inner.copy(srcKey, dstKey, signal));
  }

  /** A listing that fails mid-way resumes after the last key it handed out. */
  async *list(prefix: string, opts: ListOptions = {}): AsyncGenerator<ObjectInfo> {
    let after = opts.startAfter;
    let failures = 0;
    // Bounded: each pass either yields at least one key (finitely many) or counts a failure.
    for (;;) {
      throwIfAborted(opts.signal);
      let progressed = false;
      try {
        for await (const o of this.inner.list(prefix, { ...opts, startAfter: after })) {
          after = o.key;
          progressed = true;
          yield o;
        }
        return;
      } catch (e) {
        if (progressed) failures = 0;
        failures++;
        if (!isRetryable(e) || failures >= this.attempts || opts.signal?.aborted) throw e;
        await this.pause('list', prefix, failures, e, opts.signal);
      }
    }
  }

  close(): void {
    this.inner.close?.();
  }
}

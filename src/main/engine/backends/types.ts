// The storage backend contract. Every target (S3-compatible bucket, mounted folder) implements it;
// retry and bandwidth limits are wrappers around any backend (restic's backend wrappers); one
// conformance suite (test/backends/conformance.test.ts) runs against every implementation.
import type { Readable } from 'node:stream';

export interface ObjectInfo {
  key: string;
  size: number;
  /** Our own SHA-256 (hex) from the object metadata; undefined when the object has none. */
  sha256?: string;
  /** Source file mtime (ms) from the object metadata. */
  mtimeMs?: number;
  /** Last-Modified on the target, ms. */
  lastModified?: number;
  etag?: string;
  contentType?: string;
  /** From put(): true when the object went up in one request (its S3 ETag is the MD5 of the content). */
  singlePart?: boolean;
  /** The server's version id of what put() wrote, on a versioned bucket. */
  versionId?: string;
  /**
   * Until when (ms) the object cannot be deleted: the retention put() asked for (S3 Object Lock,
   * `immutableDays`), or the one HEAD reports.
   */
  lockedUntil?: number;
}

/** A body that can be opened more than once (retries re-open it from the start). */
export interface BodySource {
  size: number;
  open(): Readable;
  /**
   * Optional: the same bytes, read block by block into the caller's buffers. A multipart upload
   * then reads each part straight into the buffer it sends (a local file: one positional read per
   * part) instead of gluing stream chunks together into parts, which cost more CPU than sending.
   */
  openReader?(): Promise<BlockReader>;
  /**
   * Optional: the whole body as one buffer (a small file, read at once). Sent as it is: a stream
   * per small upload costs more memory and CPU than the bytes it carries. The buffer is the
   * caller's; the backend does not keep it once put() returns. A retry asks for it again.
   */
  whole?(): Promise<Buffer>;
}

/** Sequential reads of a body (see BodySource.openReader). */
export interface BlockReader {
  /** Fill `buf` with the next bytes; fewer than buf.length only at the end of the body. */
  read(buf: Buffer): Promise<number>;
  close(): Promise<void>;
}

export interface PutOptions {
  sha256: string;
  mtimeMs: number;
  contentType?: string;
  signal?: AbortSignal;
  /** Called with the cumulative bytes sent. */
  onProgress?: (sentBytes: number) => void;
  /** Write without Object Lock retention even when the target asks for it (Test connection's probe must stay deletable). */
  unlocked?: boolean;
  /**
   * A request inside this upload failed and is sent again (a part of a multipart upload, its
   * completion): the server's "slow down" is heard even when the upload goes through in the end.
   */
  onRetry?: (e: StorageError) => void;
}

export interface ByteRange {
  start: number;
  /** inclusive; undefined = to the end */
  end?: number;
}

export interface GetOptions {
  range?: ByteRange;
  signal?: AbortSignal;
}

export interface GetResult {
  body: Readable;
  /** Bytes in `body` (the range length for a range read). */
  contentLength: number;
  /** Size of the whole object. */
  totalSize: number;
  info: ObjectInfo;
}

export interface ListOptions {
  signal?: AbortSignal;
  /** Only keys after this one (resume a listing). */
  startAfter?: string;
}

/** What GetObjectLockConfiguration says about a bucket (Test connection checks it when `immutableDays` is set). */
export type ObjectLockState =
  | { state: 'on'; /** The bucket's default retention, when it has one ("COMPLIANCE 30 days"). */ defaultRetention?: string }
  | { state: 'off' }
  /** The key may not read the setting (s3:GetBucketObjectLockConfiguration). */
  | { state: 'denied'; detail: string }
  /** The server has no such request (s3rver, some S3 clones). */
  | { state: 'unsupported'; detail: string };

export interface StorageBackend {
  readonly id: string;
  readonly kind: 's3' | 'folder';
  /** Human description for messages: "the NAS (http://nas:9000, bucket media)". */
  readonly description: string;
  /**
   * The target's key prefix ("" or ending in "/"), for the connection probe. Informational only:
   * keys given to every method are full keys, prefix included.
   */
  readonly prefix?: string;
  put(key: string, body: BodySource, opts: PutOptions): Promise<ObjectInfo>;
  /** Throws StorageError kind 'not_found' when the key is absent. */
  get(key: string, opts?: GetOptions): Promise<GetResult>;
  /** null when the key is absent. */
  head(key: string, signal?: AbortSignal): Promise<ObjectInfo | null>;
  /** Every object whose key starts with prefix, in key order. */
  list(prefix: string, opts?: ListOptions): AsyncIterable<ObjectInfo>;
  /** Deleting an absent key is not an error. */
  delete(key: string, signal?: AbortSignal): Promise<void>;
  /** Server-side copy, metadata included. */
  copy(srcKey: string, dstKey: string, signal?: AbortSignal): Promise<void>;
  /** Object Lock of the bucket (S3 only). */
  objectLock?(signal?: AbortSignal): Promise<ObjectLockState>;
  /** Delete one version of an object for good (S3, versioned buckets); what a stolen key could do to every backup. */
  deleteVersion?(key: string, versionId: string, signal?: AbortSignal): Promise<void>;
  /** Abort multipart uploads this process left behind (after a crash); returns how many. */
  cleanupIncomplete?(prefix: string, olderThanMs: number, signal?: AbortSignal): Promise<number>;
  /** Release sockets and timers. */
  close?(): void;
}

/**
 * What went wrong, classified so the engine knows whether to blame one file or the whole target.
 * Target-level kinds put the target into backoff (every file waits, no attempts are charged);
 * file-level kinds charge the one copy an attempt.
 */
export type StorageErrorKind =
  | 'not_found'
  | 'auth' // wrong key or secret, clock skew, access denied: target-level
  | 'no_bucket' // bucket missing: target-level
  | 'network' // refused, reset, DNS, TLS: target-level
  | 'timeout' // target-level
  | 'server' // 5xx: target-level
  | 'throttled' // 429/503 SlowDown: target-level
  | 'no_space' // disk full on a folder target, quota: target-level
  | 'integrity' // size or sha256 did not match after upload: file-level
  | 'invalid' // the request itself is bad for this object (key too long, entity too large): file-level
  | 'refused' // a delete the server refused (a key without delete permission, an object still locked): that object only
  | 'local' // reading the local file failed: file-level
  | 'aborted' // our own AbortSignal
  | 'unknown';

const TARGET_LEVEL: ReadonlySet<StorageErrorKind> = new Set(['auth', 'no_bucket', 'network', 'timeout', 'server', 'throttled', 'no_space']);

export class StorageError extends Error {
  readonly kind: StorageErrorKind;
  /** Technical detail (SDK error name, HTTP status, errno): shown one click away, safe to log. */
  readonly detail: string;
  /** A 'refused' delete because the object is still locked (Object Lock, a bucket lock rule), not because of the key. */
  readonly locked: boolean;
  constructor(kind: StorageErrorKind, message: string, detail = '', options?: { cause?: unknown; locked?: boolean }) {
    super(message, options);
    this.name = 'StorageError';
    this.kind = kind;
    this.detail = detail;
    this.locked = options?.locked === true;
  }
  get targetLevel(): boolean {
    return TARGET_LEVEL.has(this.kind);
  }
  /**
   * The server is overloaded or asks to slow down (503 SlowDown, 429, another 5xx, no answer in
   * time): fewer requests at once help, so the upload lane halves its level (jobs/adaptive.ts).
   */
  get congestion(): boolean {
    return this.kind === 'throttled' || this.kind === 'server' || this.kind === 'timeout';
  }
  /** Worth retrying the same call right away (a wrapper does, a few times, with jitter). */
  get transient(): boolean {
    return this.kind === 'network' || this.kind === 'timeout' || this.kind === 'server' || this.kind === 'throttled';
  }
}

export function isStorageError(e: unknown): e is StorageError {
  return e instanceof StorageError;
}

/**
 * The optional calls of `inner` (cleanup, Object Lock, version delete), for a wrapper that changes
 * none of them; `wrap` may put a call through the wrapper's own logic (retries).
 */
export function optionalCalls(inner: StorageBackend, wrap: <T>(op: string, key: string | undefined, signal: AbortSignal | undefined, fn: () => Promise<T>) => Promise<T> = (_o, _k, _s, fn) => fn()): Partial<StorageBackend> {
  const out: Partial<StorageBackend> = {};
  const cleanup = inner.cleanupIncomplete?.bind(inner);
  if (cleanup) out.cleanupIncomplete = (prefix, olderThanMs, signal) => wrap('cleanup', prefix, signal, () => cleanup(prefix, olderThanMs, signal));
  const lock = inner.objectLock?.bind(inner);
  if (lock) out.objectLock = (signal) => wrap('object-lock', undefined, signal, () => lock(signal));
  const delVersion = inner.deleteVersion?.bind(inner);
  if (delVersion) out.deleteVersion = (key, versionId, signal) => wrap('delete-version', key, signal, () => delVersion(key, versionId, signal));
  return out;
}

export function abortError(): StorageError {
  return new StorageError('aborted', 'The operation was cancelled.', 'AbortError');
}

// The one way the engine gets a backend for a target: the S3 or folder backend, wrapped in a
// bandwidth throttle (when the target has a limit) and, outermost, the retry wrapper, so every
// retry re-opens the body through the throttle.
import type { TargetConfig } from '../../../shared/config';
import { hasLimit, scheduleThrottle, withBandwidth, type BandwidthWrapOptions } from './bandwidth';
import { FolderBackend, type FolderBackendOptions } from './folder';
import { withRetry, type RetryOptions } from './retry';
import { S3Backend, type S3BackendOptions } from './s3';
import type { StorageBackend } from './types';

export interface CreateBackendOptions {
  /** Retry settings, or false for none (the connection test wants the first answer). */
  retry?: RetryOptions | false;
  /** Told when the target's scheduled bandwidth limit changes (bytes/s, 0 = unlimited). */
  onRate?: (bytesPerSecond: number) => void;
  /** Throttle downloads as well as uploads. */
  bandwidth?: BandwidthWrapOptions;
  /** Local-time clock for the bandwidth schedule (tests). */
  clock?: () => Date;
  s3?: S3BackendOptions;
  folder?: FolderBackendOptions;
}

export function createBackend(target: TargetConfig, opts: CreateBackendOptions = {}): StorageBackend {
  let backend: StorageBackend = target.kind === 's3' ? new S3Backend(target, opts.s3) : new FolderBackend(target, opts.folder);
  if (hasLimit(target.bandwidth)) {
    // One throttle per backend, i.e. per target: all its parallel uploads share the limit.
    const throttle = scheduleThrottle(target.bandwidth!, { onRate: opts.onRate, clock: opts.clock });
    backend = withBandwidth(backend, throttle, opts.bandwidth);
  }
  if (opts.retry !== false) backend = withRetry(backend, opts.retry ?? {});
  return backend;
}

export { FolderBackend, type FolderBackendOptions } from './folder';
export { S3Backend, type S3BackendOptions } from './s3';
export { withRetry, backoffDelay, isRetryable, type RetryOptions } from './retry';
export { rateAt, hasLimit, Throttle, scheduleThrottle, throttleStream, withBandwidth, type ThrottleOptions } from './bandwidth';
export { PRESETS, listPresets, resolveS3Settings, partSizeFor, DEFAULT_MULTIPART_THRESHOLD, DEFAULT_PART_SIZE } from './presets';
export { testConnection, type TestConnectionOptions } from './probe';
export * from './types';

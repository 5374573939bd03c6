import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { SafeStorageLike } from '../../src/main/desktop/logic/secrets';
import type { SyncStatus, TargetStatus } from '../../src/shared/api';

export function target(over: Partial<TargetStatus> = {}): TargetStatus {
  return { synced_count: 10, synced_bytes: 1000, pending: 0, uploading: 0, failed: 0, skipped: 0, held: 0, state: 'online', label: 'NAS', rate_bps: 0, ...over };
}

export function status(over: Partial<SyncStatus> = {}): SyncStatus {
  return {
    pending: 0,
    uploading: 0,
    synced: 10,
    failed: 0,
    skipped: 0,
    held: 0,
    total_files: 10,
    total_size_bytes: 1000,
    synced_size_bytes: 1000,
    nas_synced_count: 10,
    cloud_synced_count: 10,
    copies: { pending: 0, uploading: 0, synced: 20, failed: 0, skipped: 0 },
    safe_files: 10,
    missing_local_files: 0,
    missing_safe_files: 0,
    targets: { nas: target({ label: 'NAS' }), cloud: target({ label: 'Cloud' }) },
    scanning: false,
    paused: false,
    summary: 'All 10 files are safe in 3 places',
    health: 'green',
    started_at: 0,
    now: 0,
    ...over,
  };
}

/**
 * A stand-in for Electron's safeStorage (which needs Electron and a password store): real
 * AES-256-GCM with a key of its own, so a file sealed by one cannot be opened by another.
 */
export function fakeSafeStorage(opts: { available?: boolean } = {}): SafeStorageLike {
  const key = randomBytes(32);
  return {
    isEncryptionAvailable: () => opts.available ?? true,
    encryptString(plain: string): Buffer {
      const iv = randomBytes(12);
      const c = createCipheriv('aes-256-gcm', key, iv);
      const body = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
      return Buffer.concat([iv, c.getAuthTag(), body]);
    },
    decryptString(b: Buffer): string {
      const d = createDecipheriv('aes-256-gcm', key, b.subarray(0, 12));
      d.setAuthTag(b.subarray(12, 28));
      return Buffer.concat([d.update(b.subarray(28)), d.final()]).toString('utf8');
    },
  };
}

// Per-provider quirks of S3-compatible services, in one place (docs/architecture.md:
// "S3-compatible servers are not AWS"). The UI lists `PRESETS` (route `presets`); the S3 backend
// asks `resolveS3Settings()` for the effective client settings of a target.
import type { ProviderPresetInfo } from '../../../shared/api';
import type { ProviderPreset, S3TargetConfig, TargetConfig } from '../../../shared/config';

const MiB = 1024 * 1024;

/**
 * Below this size a file goes up in one PutObject; above it, multipart.
 * 64 MiB: photos (JPEG, HEIC, RAW) and short clips (a minute of phone video, most transcoded
 * MP4s) stay a single request: one round trip and one billed "class A" operation on R2/B2
 * instead of 2 + parts, and no part assembly on the server (s3rver and MinIO copy the parts into
 * the object; in bench/sync.mjs 24 MB files in parts took ~15 % longer than single PUTs). Longer
 * videos use parallel parts, resent part by part. The AWS CLI uses 8 MiB, rclone 200 MiB; a
 * failed 64 MiB PUT costs under a minute to resend on a 10 Mbit/s uplink.
 */
export const DEFAULT_MULTIPART_THRESHOLD = 64 * MiB;
/**
 * Part size of multipart uploads. Every part but the last has exactly this size (R2 rejects
 * uneven parts). 8 MiB x 4 parts in flight bounds the memory of one upload to 32 MiB, and
 * 10,000 parts x 8 MiB allows 78 GiB before `partSizeFor()` grows the part size for a bigger file.
 */
export const DEFAULT_PART_SIZE = 8 * MiB;
/** Parts of one multipart upload in flight at once. */
export const DEFAULT_QUEUE_SIZE = 4;
/** Files an upload lane sends at once before it has measured anything (the fixed level of old). */
export const START_CONCURRENCY = 4;
/**
 * Where a preset's server is, and what follows from it: a cloud service needs many files in flight
 * to fill its link; a server on the site's own network fills it with a few, and goes first.
 */
const CLOUD = { maxConcurrency: 32, nearby: false } as const;
const NEARBY = { maxConcurrency: 8, nearby: true } as const;
export const MIN_PART_SIZE = 5 * MiB;
export const MAX_PARTS = 10_000;

export interface PresetQuirks extends ProviderPresetInfo {
  /** All parts of a multipart upload except the last must have the same size. */
  equalPartSizes: boolean;
  /** Whether an empty endpoint is allowed (AWS derives it from the region). */
  endpointOptional: boolean;
  /** One short sentence for the destination form. */
  note: string;
  objectLock: NonNullable<ProviderPresetInfo['objectLock']>;
  objectLockNote: string;
  /** The provider's recipe for a key that may write, read and list but not delete (Test connection links it). */
  keyRecipe?: { url: string; text: string };
  /**
   * Most files a destination's upload lane sends at once when the operator set no cap
   * (`targets[].concurrency`): it starts at START_CONCURRENCY and rises while the throughput does
   * (jobs/adaptive.ts). A far cloud needs many files in flight to fill its link with round trips;
   * a NAS or disk nearby fills it with a few.
   */
  maxConcurrency: number;
  /**
   * A server on the site's own network (a NAS, a disk): its uploads are limited by this computer,
   * not by a link, and go first while this computer cannot keep up with every destination.
   */
  nearby: boolean;
}

export const PRESETS: Record<ProviderPreset | 'folder', PresetQuirks> = {
  r2: {
    id: 'r2',
    label: 'Cloudflare R2',
    pathStyle: true,
    region: 'auto',
    endpointHint: 'https://<account id>.r2.cloudflarestorage.com',
    storageUsdPerGbMonth: 0.015,
    versioning: false,
    objectLock: 'bucket-rule',
    objectLockNote: 'R2 has no lock per object: add a bucket lock rule (bucket Settings → Bucket lock rules) covering this prefix for at least these days; Triplicate cannot check it.',
    keyRecipe: { url: 'https://developers.cloudflare.com/r2/buckets/bucket-locks/', text: 'R2 bucket lock rules' },
    equalPartSizes: true,
    endpointOptional: false,
    note: 'Region is always "auto". R2 has no object versioning; Triplicate keeps old versions itself.',
    ...CLOUD,
  },
  minio: {
    id: 'minio',
    label: 'MinIO',
    pathStyle: true,
    region: 'us-east-1',
    endpointHint: 'http://nas.local:9000 (the S3 API port, not the console port 9001)',
    versioning: true,
    objectLock: 'retention',
    objectLockNote: 'MinIO locks objects only in a bucket made with Object Lock on (mc mb --with-lock); an existing bucket cannot get it.',
    keyRecipe: { url: 'https://min.io/docs/minio/linux/administration/identity-access-management/policy-based-access-control.html', text: 'MinIO policies (mc admin policy)' },
    equalPartSizes: false,
    endpointOptional: false,
    note: 'Use the S3 API port (usually 9000), not the web console port.',
    ...NEARBY,
  },
  rustfs: {
    id: 'rustfs',
    label: 'RustFS',
    pathStyle: true,
    region: 'us-east-1',
    endpointHint: 'http://nas.local:9000',
    versioning: true,
    objectLock: 'retention',
    objectLockNote: 'RustFS locks objects only in a bucket created with Object Lock on (Create Bucket → Object Lock in its console).',
    keyRecipe: { url: 'https://docs.rustfs.com/administration/iam/policies', text: 'RustFS users and policies' },
    equalPartSizes: false,
    endpointOptional: false,
    note: 'Use the S3 API port (usually 9000).',
    ...NEARBY,
  },
  aws: {
    id: 'aws',
    label: 'Amazon S3',
    pathStyle: false,
    region: 'us-east-1',
    endpointHint: 'leave empty: the region chooses the endpoint',
    storageUsdPerGbMonth: 0.023,
    versioning: true,
    objectLock: 'retention',
    objectLockNote: "Turn on Object Lock in the bucket's Properties (Versioning must be on; existing buckets can get it).",
    keyRecipe: { url: 'https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_create-console.html', text: 'Create an IAM policy (AWS)' },
    equalPartSizes: false,
    endpointOptional: true,
    note: 'Pick the region the bucket was created in.',
    ...CLOUD,
  },
  b2: {
    id: 'b2',
    label: 'Backblaze B2',
    pathStyle: false,
    region: 'us-west-004',
    endpointHint: 'https://s3.<region>.backblazeb2.com, for example https://s3.us-west-004.backblazeb2.com',
    storageUsdPerGbMonth: 0.006,
    versioning: true,
    objectLock: 'retention',
    objectLockNote: "Turn on Object Lock on the bucket's page in Backblaze (Object Lock: Disabled → Enable); existing buckets can get it.",
    keyRecipe: { url: 'https://www.backblaze.com/docs/cloud-storage-application-key-capabilities', text: 'Backblaze application key capabilities' },
    equalPartSizes: false,
    endpointOptional: false,
    note: 'The region is the part after "s3." in the endpoint shown on the bucket page.',
    ...CLOUD,
  },
  wasabi: {
    id: 'wasabi',
    label: 'Wasabi',
    pathStyle: false,
    region: 'us-east-1',
    endpointHint: 'https://s3.<region>.wasabisys.com, for example https://s3.eu-central-1.wasabisys.com',
    storageUsdPerGbMonth: 0.007,
    versioning: true,
    objectLock: 'retention',
    objectLockNote: 'Wasabi turns Object Lock on only when a bucket is created (Create Bucket → Object Locking).',
    keyRecipe: { url: 'https://docs.wasabi.com/docs/policies-1', text: 'Wasabi policies' },
    equalPartSizes: false,
    endpointOptional: false,
    note: 'Wasabi bills every object for at least 90 days, deleted or not.',
    ...CLOUD,
  },
  other: {
    id: 'other',
    label: 'Other S3-compatible service',
    // Self-hosted servers (Garage, SeaweedFS, TrueNAS apps) rarely have wildcard DNS for
    // virtual-hosted buckets; path-style works nearly everywhere.
    pathStyle: true,
    region: 'us-east-1',
    endpointHint: 'https://s3.example.com',
    versioning: false,
    objectLock: 'unknown',
    objectLockNote: 'Test connection checks whether the bucket has Object Lock on.',
    keyRecipe: { url: 'https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_create-console.html', text: "S3 policies (AWS's guide; most servers take the same JSON)" },
    // Unknown provider: behave like the strictest one.
    equalPartSizes: true,
    endpointOptional: false,
    note: 'Path-style addressing is the safe default; turn it off only if the provider asks.',
    ...CLOUD,
  },
  folder: {
    id: 'folder',
    label: 'Folder (NAS share or USB disk)',
    pathStyle: false,
    region: '',
    endpointHint: '/mnt/nas/backup or D:\\Backup',
    versioning: false,
    objectLock: 'none',
    objectLockNote: 'A folder cannot lock its files; use an S3 destination for copies that cannot be deleted.',
    equalPartSizes: false,
    endpointOptional: true,
    note: 'A mounted network share or a USB disk.',
    ...NEARBY,
  },
};

/** Most files a target's upload lane sends at once: the operator's cap, else its preset's ceiling. */
export function concurrencyCeiling(target: TargetConfig): number {
  return target.concurrency ?? PRESETS[target.kind === 'folder' ? 'folder' : target.preset].maxConcurrency;
}

/** Whether a target is on the site's own network (its preset's `nearby`). */
export function isNearby(target: TargetConfig): boolean {
  return PRESETS[target.kind === 'folder' ? 'folder' : target.preset].nearby;
}

/** The preset list for the UI, in display order. */
export function listPresets(): ProviderPresetInfo[] {
  const order: (ProviderPreset | 'folder')[] = ['minio', 'rustfs', 'r2', 'aws', 'b2', 'wasabi', 'other', 'folder'];
  return order.map((id) => {
    const { id: pid, label, pathStyle, region, endpointHint, storageUsdPerGbMonth, versioning, objectLock, objectLockNote, maxConcurrency } = PRESETS[id];
    return { id: pid, label, pathStyle, region, endpointHint, storageUsdPerGbMonth, versioning, objectLock, objectLockNote, maxConcurrency };
  });
}

export interface EffectiveS3Settings {
  /** undefined: let the SDK derive it (AWS only). */
  endpoint?: string;
  region: string;
  forcePathStyle: boolean;
  bucket: string;
  multipartThreshold: number;
  /** Base part size; `partSizeFor()` grows it for huge files. */
  partSize: number;
  queueSize: number;
  equalPartSizes: boolean;
  /** `immutableDays` (0: off): every object written is locked this long. */
  lockDays: number;
  /** Whether that lock goes on each write as S3 Object Lock headers (false on R2: its bucket lock rule does it). */
  lockHeaders: boolean;
}

/** Effective client settings of a target: explicit config wins over the preset's defaults. */
export function resolveS3Settings(target: S3TargetConfig): EffectiveS3Settings {
  const preset = PRESETS[target.preset];
  // The config schema defaults region to "auto", which only R2 understands; other providers get
  // their preset's region unless the operator typed one.
  const region = target.preset === 'r2' ? 'auto' : target.region && target.region !== 'auto' ? target.region : preset.region;
  const partSize = Math.max(MIN_PART_SIZE, target.partSize ?? DEFAULT_PART_SIZE);
  return {
    endpoint: target.endpoint || undefined,
    region,
    forcePathStyle: target.pathStyle ?? preset.pathStyle,
    bucket: target.bucket,
    multipartThreshold: Math.max(MIN_PART_SIZE, target.multipartThreshold ?? DEFAULT_MULTIPART_THRESHOLD),
    partSize,
    queueSize: DEFAULT_QUEUE_SIZE,
    equalPartSizes: preset.equalPartSizes,
    lockDays: target.immutableDays ?? 0,
    lockHeaders: (target.immutableDays ?? 0) > 0 && preset.objectLock !== 'bucket-rule',
  };
}

const DAY_MS = 86_400_000;

/**
 * The retain-until date of an object written at `now` with `days` of Object Lock: whole seconds
 * (S3's ISO 8601 dates), rounded up, so that a date computed after a write is never earlier than
 * the one the write sent.
 */
export function retainUntil(now: number, days: number): number {
  return Math.ceil(now / 1000) * 1000 + days * DAY_MS;
}

/**
 * Part size for one object: the base size, grown in whole MiB so that the object fits in 10,000
 * parts. Constant for the whole upload, so every part but the last has the same size.
 */
export function partSizeFor(size: number, base: number): number {
  const needed = Math.ceil(size / MAX_PARTS);
  if (needed <= base) return base;
  return Math.ceil(needed / MiB) * MiB;
}

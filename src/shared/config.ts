// The config schema: one JSON file in the data dir (`<data dir>/config.json`).
// Pure TypeScript + zod: no Node or DOM APIs, so the UI validates forms with the same rules.
import { z } from 'zod';

export const CONFIG_VERSION = 2;

/** Ids appear in object keys and URLs: keep them boring. */
export const idSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,39}$/, 'use 1-40 lower-case letters, digits, "-" or "_", starting with a letter or digit');

export const PROVIDER_PRESETS = ['r2', 'minio', 'rustfs', 'aws', 'b2', 'wasabi', 'other'] as const;
export type ProviderPreset = (typeof PROVIDER_PRESETS)[number];

const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export type Weekday = (typeof DAYS)[number];

const hhmm = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'use 24-hour HH:MM, for example 08:00');

/** One window of a weekly bandwidth schedule, local time. `end` may be "24:00"? No: use 00:00 for midnight (wraps). */
export const bandwidthWindowSchema = z
  .object({
    days: z.array(z.enum(DAYS)).min(1, 'name at least one day'),
    start: hhmm,
    end: hhmm,
    /** bytes per second inside this window; 0 means unlimited */
    bytesPerSecond: z.number().int().nonnegative(),
  })
  .strict();
export type BandwidthWindow = z.infer<typeof bandwidthWindowSchema>;

export const bandwidthSchema = z
  .object({
    /** bytes per second outside every window; 0 means unlimited */
    defaultBytesPerSecond: z.number().int().nonnegative().default(0),
    schedule: z.array(bandwidthWindowSchema).default([]),
  })
  .strict();
export type BandwidthConfig = z.infer<typeof bandwidthSchema>;

export const s3CredentialsSchema = z
  .object({
    accessKeyId: z.string().min(1, 'the access key id is empty'),
    secretAccessKey: z.string().min(1, 'the secret access key is empty'),
  })
  .strict();

/**
 * Retention of previous contents on a target (issue 5). Every version is kept `keepAllDays`; beyond
 * that, one restore point a day (00:00 UTC) for `dailyDays` and one a week (Monday 00:00 UTC) for
 * `weeklyWeeks`. A file deleted locally stays restorable `deletedDays` after its deletion. The
 * newest copy of a file that exists locally is never pruned.
 */
export const retentionSchema = z
  .object({
    keepAllDays: z.number().min(0).max(3650).default(30),
    dailyDays: z.number().int().min(0).max(3650).default(7),
    weeklyWeeks: z.number().int().min(0).max(520).default(8),
    deletedDays: z.number().min(0).max(3650).default(90),
  })
  .strict();
export type RetentionPolicy = z.infer<typeof retentionSchema>;
export const DEFAULT_RETENTION: RetentionPolicy = { keepAllDays: 30, dailyDays: 7, weeklyWeeks: 8, deletedDays: 90 };

/**
 * A full folder path: POSIX "/…", a Windows drive "C:\…" or a share "\\server\share…". A relative
 * path would depend on the folder Triplicate happens to be started from.
 */
const ABSOLUTE_PATH = /^(\/|[A-Za-z]:[\\/]|\\\\[^\\/]+[\\/][^\\/]+)/;
const folderPath = z
  .string()
  .min(1, 'the folder path is empty')
  .regex(ABSOLUTE_PATH, 'use the full folder path, for example /srv/media/photos or D:\\Photos (a relative path, or one starting with ~, is not allowed)');

const targetBase = {
  id: idSchema,
  label: z.string().min(1).max(80),
  priority: z.number().int().min(0).max(1000).default(10),
  enabled: z.boolean().default(true),
  /**
   * Most files sent to this target at once: the operator's cap. The upload lane chooses how many
   * below it from the throughput it measures (engine jobs/adaptive.ts); absent, the provider
   * preset's ceiling (32 for a cloud service, 8 for a NAS or a folder).
   */
  concurrency: z.number().int().min(1).max(64).optional(),
  bandwidth: bandwidthSchema.optional(),
  /** Where previous contents of changed or deleted files go, under the target prefix. */
  versionsPrefix: z.string().default('.triplicate/versions/'),
  /** How long previous contents are kept on this target (absent: DEFAULT_RETENTION). */
  retention: retentionSchema.optional(),
};

/** Restore workers and the scheduled verification / prune jobs (issue 5). */
export const restoreSettingsSchema = z
  .object({
    /**
     * Most files restored at once: the operator's cap, and where a restore starts. The restore
     * workers go below it when a destination asks them to slow down (engine jobs/adaptive.ts);
     * absent, RESTORE_CEILING.
     */
    concurrency: z.number().int().min(1).max(64).optional(),
    /** Verify every target this often: HEAD every copy, re-read a sample. 0 disables. */
    verifyIntervalHours: z.number().min(0).default(24),
    /** Bytes downloaded and re-hashed per target per verification (the rolling sample). */
    verifyReadBytes: z.number().int().min(0).default(2 * 1024 * 1024 * 1024),
    /** Apply the retention policies this often. 0 disables. */
    pruneIntervalHours: z.number().min(0).default(24),
  })
  .strict();
export type RestoreSettings = z.infer<typeof restoreSettingsSchema>;

/** The longest Object Lock retention the config accepts (B2 allows 3,000 days; longer is rarely meant). */
export const MAX_IMMUTABLE_DAYS = 3650;
/**
 * Most files restored at once when the settings set no cap: a far cloud needs many in flight (64
 * fill a 60 ms, 500 Mbit/s link with 200 KB photos; 32 left 5 % of it: docs/benchmarks.md). A
 * restore starts here (an operator waits for it; the controller only goes down from the cap).
 */
export const RESTORE_CEILING = 64;

/** Most files restored at once: the operator's cap, else RESTORE_CEILING. */
export function restoreCeiling(r: RestoreSettings): number {
  return r.concurrency ?? RESTORE_CEILING;
}

export const s3TargetSchema = z
  .object({
    ...targetBase,
    kind: z.literal('s3'),
    preset: z.enum(PROVIDER_PRESETS).default('other'),
    endpoint: z
      .string()
      .url('the endpoint must be a full URL such as https://<account>.r2.cloudflarestorage.com or http://nas.local:9000')
      .optional(),
    region: z.string().min(1).default('auto'),
    bucket: z
      .string({ error: 'give the name of the bucket (the storage space inside the account; make it at the provider first)' })
      .min(1, { message: 'give the name of the bucket (the storage space inside the account; make it at the provider first)', abort: true })
      .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'bucket names are 3-63 lower-case letters, digits, dots or dashes'),
    /** Key prefix inside the bucket, "" or ending in "/". */
    prefix: z
      .string()
      .default('')
      .refine((p) => p === '' || (p.endsWith('/') && !p.startsWith('/')), 'the prefix must be empty or end with "/" (and not start with "/")'),
    pathStyle: z.boolean().optional(),
    credentials: s3CredentialsSchema,
    /** Multipart cutoff and part size in bytes (equal part sizes: R2 requires it). */
    multipartThreshold: z.number().int().min(5 * 1024 * 1024).optional(),
    partSize: z.number().int().min(5 * 1024 * 1024).optional(),
    /**
     * Copies that cannot be deleted (issue 19): every object and version is written with S3 Object
     * Lock retention (COMPLIANCE) until this many days after it was written; on R2, a bucket lock
     * rule of as many days does it (the presets' `objectLock`). 0 or absent: off.
     */
    immutableDays: z
      .number({ error: 'immutableDays must be a whole number of days (0 turns it off)' })
      .int('immutableDays must be a whole number of days (0 turns it off)')
      .min(0, 'immutableDays cannot be negative (0 turns it off)')
      .max(MAX_IMMUTABLE_DAYS, `immutableDays can be at most ${MAX_IMMUTABLE_DAYS} (10 years): a locked copy is paid for until its date`)
      .optional(),
  })
  .strict();
export type S3TargetConfig = z.infer<typeof s3TargetSchema>;

export const folderTargetSchema = z
  .object({
    ...targetBase,
    kind: z.literal('folder'),
    /** A mounted NAS share or USB disk. */
    path: folderPath,
    prefix: z.string().default(''),
  })
  .strict();
export type FolderTargetConfig = z.infer<typeof folderTargetSchema>;

export const targetSchema = z.discriminatedUnion('kind', [s3TargetSchema, folderTargetSchema]);
export type TargetConfig = z.infer<typeof targetSchema>;

export const rootSchema = z
  .object({
    id: idSchema,
    label: z.string().min(1).max(80),
    path: folderPath,
    include: z.array(z.string().min(1)).default([]),
    exclude: z.array(z.string().min(1)).default([]),
    enabled: z.boolean().default(true),
    /** Replace a video original by its MP4 once the MP4 is verified on every target. */
    replaceOriginalAfterTranscode: z.boolean().default(false),
  })
  .strict();
export type RootConfig = z.infer<typeof rootSchema>;

/**
 * The burst guard (engine sync/guard.ts): a burst of files rewritten so they no longer look like
 * what their names say, renamed to an unknown extension, or deleted, stops the folder's changes
 * from going to the destinations until the operator says what to do.
 */
export const guardSettingsSchema = z
  .object({
    enabled: z.boolean().default(true),
    /** It trips at this many suspicious files within the window... */
    burstFiles: z.number().int().min(1).default(50),
    /** ...or at this share of the folder's files when that is fewer (never under minFiles). */
    burstPercent: z.number().min(0).max(100).default(5),
    minFiles: z.number().int().min(1).default(10),
    /** Deleted files (not moved, not converted) count against this share of the folder instead (never under the files threshold). */
    deletePercent: z.number().min(0).max(100).default(25),
    windowMinutes: z.number().min(0.1).default(10),
    /** A suspicious file's upload waits this long, so a burst trips before its first files leave. */
    holdSuspiciousSeconds: z.number().min(0).default(60),
  })
  .strict();

export const syncSettingsSchema = z
  .object({
    /** A file is stable once size and mtime stop changing for this long. */
    stabilityMs: z.number().int().min(0).default(2000),
    /** Periodic rescan to catch what watchers miss (network shares). 0 disables. */
    rescanIntervalMinutes: z.number().min(0).default(60),
    /** Per-copy and per-target backoff, seconds. After the last step a copy is failed. */
    backoffSeconds: z.array(z.number().positive()).min(1).default([30, 60, 300, 900, 3600]),
    /** Job lease; a crashed worker's job comes back after this. */
    leaseSeconds: z.number().int().min(5).default(120),
    /** Use chokidar polling (for network shares that send no events). */
    usePolling: z.boolean().default(false),
    /** Hash workers. */
    hashConcurrency: z.number().int().min(1).max(16).default(2),
    guard: guardSettingsSchema.default(guardSettingsSchema.parse({})),
  })
  .strict();
export type SyncSettings = z.infer<typeof syncSettingsSchema>;
export type GuardSettings = z.infer<typeof guardSettingsSchema>;

export const mediaSettingsSchema = z
  .object({
    transcode: z.boolean().default(true),
    crf: z.number().int().min(0).max(51).default(23),
    preset: z
      .enum(['ultrafast', 'superfast', 'veryfast', 'faster', 'fast', 'medium', 'slow', 'slower', 'veryslow'])
      .default('veryfast'),
    maxHeight: z.number().int().min(144).max(4320).default(1080),
    concurrency: z.number().int().min(1).max(8).default(1),
    ffmpegPath: z.string().optional(),
    ffprobePath: z.string().optional(),
  })
  .strict();
export type MediaSettings = z.infer<typeof mediaSettingsSchema>;

export const serverSettingsSchema = z
  .object({
    adminHost: z.string().default('127.0.0.1'),
    /** 0 means any free port. */
    adminPort: z.number().int().min(0).max(65535).default(8765),
    /** Required when adminHost is not loopback (web console on the LAN): scrypt hash, set via the API. */
    adminPasswordHash: z.string().optional(),
    /**
     * Names the console also answers to, besides addresses, localhost and this computer's name
     * (a LAN name such as backup.museum.lan). Any other Host is refused (DNS rebinding).
     */
    allowedHosts: z.array(z.string().regex(/^[a-z0-9.-]+$/i, 'a host name such as backup.museum.lan (no scheme, no port)')).default([]),
    /**
     * Where the download server listens, and so who can open links (see linkReachOf): loopback
     * (the default; the Cloudflare Tunnel reaches it there) or 0.0.0.0 / a LAN address for the
     * local network. The Sharing page sets it.
     */
    downloadHost: z.string().default('127.0.0.1'),
    downloadPort: z.number().int().min(0).max(65535).default(8766),
    /** What local-network links start with instead of this computer's LAN address, e.g. http://backup.museum.lan:8766 */
    publicBaseUrl: z.string().url().optional(),
    maxConcurrentDownloads: z.number().int().min(1).max(1024).default(64),
  })
  .strict();
export type ServerSettings = z.infer<typeof serverSettingsSchema>;

/** A listen address that only this computer reaches (127.x, ::1, localhost). */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^(::ffff:)?127\.\d+\.\d+\.\d+$/.test(h);
}

/** A listen address meaning every network of this computer. */
export function isAnyAddress(host: string): boolean {
  return host === '' || host === '0.0.0.0' || host === '::' || host === '[::]';
}

/**
 * Who can open a link: it follows from where the download server listens and whether the tunnel
 * is on (server.downloadHost, tunnel.mode), never from the link itself.
 */
export type LinkReach = 'this-computer' | 'local-network' | 'internet';

/**
 * Who can open links, from the settings that decide it: the tunnel when it is on (links use its
 * public address), else the local network when the download server listens beyond loopback,
 * else this computer only.
 */
export function linkReachOf(cfg: { server: Pick<ServerSettings, 'downloadHost'>; tunnel: { mode: string } }): LinkReach {
  if (cfg.tunnel.mode !== 'off') return 'internet';
  return isLoopback(cfg.server.downloadHost) ? 'this-computer' : 'local-network';
}

export const tunnelSettingsSchema = z
  .object({
    mode: z.enum(['off', 'quick', 'named']).default('off'),
    cloudflaredPath: z.string().optional(),
    token: z.string().optional(),
    /** Public hostname of a named tunnel, e.g. https://files.example.org */
    hostname: z.string().optional(),
  })
  .strict();

export const notificationSettingsSchema = z
  .object({
    desktop: z.boolean().default(true),
    webhookUrl: z.string().url().optional(),
  })
  .strict();

export const configSchema = z
  .object({
    version: z.literal(CONFIG_VERSION).default(CONFIG_VERSION),
    siteName: z.string().max(80).default('Triplicate'),
    roots: z.array(rootSchema).default([]),
    targets: z.array(targetSchema).default([]),
    sync: syncSettingsSchema.default(syncSettingsSchema.parse({})),
    media: mediaSettingsSchema.default(mediaSettingsSchema.parse({})),
    server: serverSettingsSchema.default(serverSettingsSchema.parse({})),
    tunnel: tunnelSettingsSchema.default(tunnelSettingsSchema.parse({})),
    notifications: notificationSettingsSchema.default(notificationSettingsSchema.parse({})),
    restore: restoreSettingsSchema.default(restoreSettingsSchema.parse({})),
  })
  .strict()
  .superRefine((cfg, ctx) => {
    const seen = new Set<string>();
    cfg.roots.forEach((r, i) => {
      if (seen.has(r.id)) ctx.addIssue({ code: 'custom', path: ['roots', i, 'id'], message: `the folder id "${r.id}" is used twice` });
      seen.add(r.id);
    });
    const tseen = new Set<string>();
    cfg.targets.forEach((t, i) => {
      if (tseen.has(t.id)) ctx.addIssue({ code: 'custom', path: ['targets', i, 'id'], message: `the destination id "${t.id}" is used twice` });
      tseen.add(t.id);
      if (t.kind === 's3' && !t.endpoint && t.preset !== 'aws') {
        ctx.addIssue({ code: 'custom', path: ['targets', i, 'endpoint'], message: 'an endpoint URL is needed for every provider but AWS' });
      }
    });
  });
export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;

/** Turn zod issues into sentences that name the field: `targets[1].endpoint: ...`. */
export function describeIssues(issues: readonly { path: readonly PropertyKey[]; message: string }[]): string[] {
  return issues.map((i) => `${formatPath(i.path)}: ${i.message}`);
}

function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(the whole file)';
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out ? `.${String(p)}` : String(p);
  }
  return out;
}

export const SECRET_MASK = '••••••••';

/** A copy of the config safe to show or log: secrets replaced by a mask (last 4 chars of key ids kept). */
export function redactConfig(cfg: Config): Config {
  return {
    ...cfg,
    server: { ...cfg.server, adminPasswordHash: cfg.server.adminPasswordHash ? SECRET_MASK : undefined },
    tunnel: { ...cfg.tunnel, token: cfg.tunnel.token ? SECRET_MASK : undefined },
    notifications: { ...cfg.notifications, webhookUrl: cfg.notifications.webhookUrl ? redactUrl(cfg.notifications.webhookUrl) : undefined },
    targets: cfg.targets.map((t) => (t.kind === 's3' ? { ...t, credentials: redactCredentials(t.credentials) } : t)),
  };
}

/**
 * A URL safe to show: its scheme and host, and the mask instead of everything else. A webhook's
 * path or query is usually its secret (Slack's /services/T…/B…/…, an ntfy topic, ?key=), and a
 * user:password may precede the host.
 */
export function redactUrl(url: string): string {
  const m = /^([a-z][a-z0-9+.-]*:\/\/)(?:[^@/?#]*@)?([^/?#]*)(.*)$/i.exec(url);
  if (!m) return SECRET_MASK;
  const [, scheme, host, rest] = m;
  return rest && rest !== '/' ? `${scheme}${host}/${SECRET_MASK}` : url.includes('@') ? `${scheme}${host}/` : url;
}

export function redactCredentials(c: { accessKeyId: string; secretAccessKey: string }) {
  const tail = c.accessKeyId.length > 8 ? c.accessKeyId.slice(-4) : '';
  return { accessKeyId: tail ? `${SECRET_MASK}${tail}` : SECRET_MASK, secretAccessKey: SECRET_MASK };
}

/** True when a value coming back from a form is the mask, i.e. "keep the stored secret". `anywhere`: a masked URL. */
export function isMasked(v: string | undefined, anywhere = false): boolean {
  return v !== undefined && (anywhere ? v.includes(SECRET_MASK) : v.startsWith(SECRET_MASK));
}

// The one contract between the engine and everything that talks to it (UI, CLI, tests).
// Every route is named here with its method, path and request/response types; the server
// registers a handler for each name (a missing or duplicate one is an error at start),
// and `ApiClient` (src/shared/client.ts) calls through the same table.
// Pure TypeScript: no Node or DOM APIs.

import type { Config, TargetConfig, RootConfig, ProviderPreset, LinkReach } from './config';

// ---------------------------------------------------------------------------------------------
// Domain types

export type CopyState = 'pending' | 'uploading' | 'synced' | 'failed' | 'skipped';
export const COPY_STATES: readonly CopyState[] = ['pending', 'uploading', 'synced', 'failed', 'skipped'];

/**
 * Target health as the operator sees it.
 * - online: last request worked
 * - offline: requests fail for reasons of the target (network, auth, bucket); backing off, retries by itself
 * - paused: the operator paused it
 * - disabled: `enabled: false` in the config
 */
export type TargetState = 'online' | 'offline' | 'paused' | 'disabled' | 'unknown';

export interface TargetStatus {
  synced_count: number;
  synced_bytes: number;
  pending: number;
  uploading: number;
  failed: number;
  skipped: number;
  /** Changes for it the burst guard holds back (counted apart from pending: none of them can go). */
  held: number;
  state: TargetState;
  label: string;
  /** Plain-language reason when offline, with the next step. */
  reason?: string;
  /** Technical detail of the last error (one click away in the UI). */
  detail?: string;
  offline_since?: number;
  next_try_at?: number;
  /** Upload rate, bytes/s, averaged over a few seconds; 0 when nothing is being copied to it. */
  rate_bps: number;
  /**
   * Files being sent to it now (`now`); how many at once Triplicate chose for its link from the
   * throughput it measures (`chosen`: it rises while the throughput does, halves when the server
   * asks to slow down); the most it may choose (`max`: the destination's "at most" setting, else
   * the provider's ceiling). `after`: the nearby destination (its name) this one gives way to now,
   * sending one file at a time, because this computer cannot keep up with both (the NAS first).
   * Absent from an engine without it.
   */
  sending?: { now: number; chosen: number; max: number; after?: string };
  /**
   * What the last Test connection of these settings found (issue 19): kept across restarts, and
   * dropped when the key, the address or the bucket change (it no longer describes them). A finding
   * with a `short` line stays on the destination's card until a test says otherwise.
   */
  tested?: TargetTested;
}

export interface TargetTested {
  /** When the test ran (ms). */
  at: number;
  can_delete?: 'yes' | 'hide' | 'no';
  findings: TestFinding[];
}

/** Copies by state, over every (file, enabled destination). */
export type CopyCounts = Record<CopyState, number>;

/**
 * `GET /api/admin/media-sync/status`: the seed's fields plus per-destination detail.
 *
 * The seed's top-level counts count files: pending + uploading + synced + failed + skipped + held
 * = total_files (held: files that would be pending but the burst guard holds back). A file is synced when every enabled destination holds it (a paused or offline one
 * too: it is still one of the places); otherwise it counts under the first of FILE_STATE_ORDER
 * (src/shared/status.ts) that one of its copies has. `copies` counts the copies themselves.
 */
export interface SyncStatus {
  pending: number;
  uploading: number;
  synced: number;
  failed: number;
  skipped: number;
  held: number;
  total_files: number;
  total_size_bytes: number;
  /** Bytes of the synced files. */
  synced_size_bytes: number;
  /** `<destination id>_synced_count`, as the seed's `nas_synced_count`: copies on each destination. */
  [destination: `${string}_synced_count`]: number;
  /** Copies by state over the enabled destinations (what the destination cards add up). */
  copies: CopyCounts;
  /** Files every enabled destination holds: the same number as `synced`. */
  safe_files: number;
  missing_local_files: number;
  /** Files gone from this computer that every enabled destination holds. */
  missing_safe_files: number;
  targets: Record<string, TargetStatus>;
  scanning: boolean;
  paused: boolean;
  /** The one sentence for the overview and the tray tooltip. */
  summary: string;
  /**
   * Overall colour, decided with the sentence (summarize in src/shared/status.ts): green (nothing
   * waits, nothing failed, every file on every destination), syncing (copying, looking for files,
   * converting), behind (a destination does not answer, or files gone from this computer are only
   * on the destinations), failing (files given up, a folder cannot be read), paused.
   */
  health: 'green' | 'syncing' | 'behind' | 'failing' | 'paused';
  /** problem: why conversions wait (ffmpeg missing, conversion turned off), in words. */
  transcoding?: { active: number; queued: number; current?: TranscodeProgress; problem?: string };
  disk?: { free_bytes: number; total_bytes: number; path: string }[];
  /** Folders whose changes the burst guard holds back (ransomware?): the overview asks what to do. */
  guard?: { holds: GuardHold[] };
  started_at: number;
  now: number;
}

/**
 * A burst of suspicious changes in one folder, held back from the destinations (engine
 * sync/guard.ts) until the operator accepts the changes or puts the files back as they were at `since`.
 */
export interface GuardHold {
  id: number;
  root_id: string;
  root_label: string;
  tripped_at: number;
  /** The last moment before the burst: what "put everything back" restores. */
  since: number;
  /** Files held back now (changed, deleted, suspicious new ones). */
  files: number;
  /** Files of the folder gone from this computer: left out of "bring back" (bulk restore, its count and list) while the hold is in force. */
  missing: number;
  counts: GuardCounts;
  /** What happened and when, in one sentence. */
  summary: string;
}

export interface GuardCounts {
  /** Files rewritten so they no longer look like their names (or like noise where they did not). */
  rewritten: number;
  /** New files that do not look like their names, or look like noise. */
  suspicious_new: number;
  /** Files renamed to an extension that is no photo or video format; `extension`: the most common one. */
  renamed: number;
  extension?: string;
  /** Files deleted (not moved, not converted). */
  deleted: number;
}

export interface GuardRollbackResult {
  /** The restore that puts the held files back as they were (absent when nothing had to be restored). */
  restore?: RestoreProgress;
  /** Suspicious new files moved out of the folder, and where to. */
  quarantined: number;
  quarantine_dir?: string;
}

export interface TranscodeProgress {
  file_key: string;
  percent: number;
  eta_seconds?: number;
}

export interface CopyInfo {
  target_id: string;
  state: CopyState;
  attempts: number;
  last_error?: string;
  next_attempt_at?: number;
  synced_at?: number;
}

export interface FileRecord {
  id: number;
  key: string;
  root_id: string;
  rel_path: string;
  size: number;
  mtime_ms: number;
  sha256: string | null;
  kind: 'image' | 'video' | 'other';
  /** present: on local disk; missing: cataloged but not on disk (restorable). */
  local: 'present' | 'missing';
  derived_from?: string;
  copies: CopyInfo[];
  media?: MediaInfo;
}

export interface MediaInfo {
  duration_s?: number;
  width?: number;
  height?: number;
  video_codec?: string;
  audio_codec?: string;
  captured_at?: number;
  transcode_state?: 'none' | 'queued' | 'running' | 'done' | 'skipped' | 'failed';
  transcode_reason?: string;
  mp4_key?: string;
  poster_key?: string;
}

export interface QueueQuery {
  state?: CopyState | 'all';
  target?: string;
  root?: string;
  /** substring of the relative path */
  q?: string;
  /** only files present on / missing from local disk (the Restore page lists what is missing) */
  local?: 'present' | 'missing';
  /** 'exclude': leave out the folders the burst guard holds (the Restore page: its buttons answer for them) */
  held?: 'exclude';
  offset?: number;
  limit?: number;
}

export interface Page<T> {
  items: T[];
  total: number;
  offset: number;
  limit: number;
}

export interface TestConnectionResult {
  ok: boolean;
  /** Steps tried, in order: lock (with `immutableDays`), put, head, get, delete. */
  steps: { step: string; ok: boolean; ms: number; error?: string; /** What the step found, when it worked in an unusual way ("refused: this key cannot delete"). */ note?: string }[];
  /** Plain-language message with the next step when it failed. */
  message: string;
  /**
   * What the test found beyond "it works" (issue 19): what the key could delete, whether Object
   * Lock protects the copies. A 'warn' is shown in the warning colour, not as a failure: the
   * backup works.
   */
  findings?: TestFinding[];
  /** Whether the key could delete the test file: 'yes'; 'hide' (only a delete marker: its version stays); 'no'. */
  can_delete?: 'yes' | 'hide' | 'no';
}

export interface TestFinding {
  level: 'good' | 'warn';
  message: string;
  /** The provider's own recipe (a key that cannot delete, a bucket lock rule). */
  link?: { url: string; text: string };
  /**
   * The line the destination's card keeps showing after the test (before `link`), while the test
   * of these settings is the last one: "This key can delete the backups. Make a key that cannot:".
   */
  short?: string;
}

export interface EventRecord {
  id: number;
  ts: number;
  level: 'info' | 'warn' | 'error';
  kind: string;
  message: string;
  file_key?: string;
  target_id?: string;
  detail?: string;
}

export interface RootInfo extends RootConfig {
  files: number;
  bytes: number;
  /** Problem reading the folder, in plain language. */
  problem?: string;
}

export type TargetInfo = TargetConfig & { status?: TargetStatus };

export interface ScanReport {
  root_id: string;
  files_seen: number;
  files_new: number;
  files_changed: number;
  files_missing: number;
  bytes_to_upload: number;
  errors: { rel_path: string; error: string }[];
  /** with dry-run: what would be uploaded */
  would_upload?: { key: string; size: number; targets: string[] }[];
}

export interface ProviderPresetInfo {
  id: ProviderPreset | 'folder';
  label: string;
  pathStyle: boolean;
  region: string;
  endpointHint: string;
  /** USD per GB-month, for the cost estimate; undefined for self-hosted. */
  storageUsdPerGbMonth?: number;
  versioning: boolean;
  /**
   * Copies that cannot be deleted (`immutableDays`): 'retention' = S3 Object Lock on each object
   * (the bucket must have Object Lock on); 'bucket-rule' = the provider locks by bucket rules only
   * (R2), which Triplicate cannot set or check per object; 'unknown' = try it, Test connection tells.
   */
  objectLock?: 'retention' | 'bucket-rule' | 'unknown' | 'none';
  /** One sentence about Object Lock on this provider, for the form. */
  objectLockNote?: string;
  /** Most files sent at once to such a destination when its settings set no cap (the engine chooses up to this). */
  maxConcurrency?: number;
}

// ---------------------------------------------------------------------------------------------
// Events on the server-sent-events stream (`GET /api/events`)

export type EngineEvent =
  | { type: 'status'; status: SyncStatus }
  | { type: 'copy'; file_key: string; target_id: string; state: CopyState; error?: string }
  | { type: 'file'; file_key: string; change: 'added' | 'changed' | 'missing' | 'restored' }
  | { type: 'target'; target_id: string; state: TargetState; reason?: string }
  | { type: 'progress'; target_id: string; file_key: string; bytes: number; total: number }
  | { type: 'scan'; root_id: string; phase: 'start' | 'done'; report?: ScanReport }
  | { type: 'log'; event: EventRecord }
  | { type: 'config'; }
  | { type: 'transcode'; file_key: string; state: NonNullable<MediaInfo['transcode_state']>; percent?: number; eta_seconds?: number; reason?: string }
  | { type: 'restore'; progress: RestoreProgress }
  | { type: 'tunnel'; tunnel: TunnelStatus };

export type EngineEventType = EngineEvent['type'];

export interface RestoreProgress {
  id: string;
  state: 'planning' | 'running' | 'done' | 'cancelled' | 'failed';
  files_total: number;
  files_done: number;
  files_failed: number;
  bytes_total: number;
  bytes_done: number;
  rate_bps: number;
  eta_seconds?: number;
  message?: string;
  /** Files not restored on purpose: already there, or a different local file in the way. */
  files_skipped?: number;
  /** What was asked, in words: "12 missing files", "Photos/2024/ as it was on 3 May". */
  what?: string;
  /**
   * While it runs: its files being fetched now (`now`, a file counting until its bytes are in and
   * checked); how many at once Triplicate chose for the link from the throughput it measures
   * (`chosen`: it rises while the throughput does, halves when a destination asks to slow down);
   * the most it may choose (`max`: `restore.concurrency`, else 64).
   */
  restoring?: { now: number; chosen: number; max: number };
  created_at?: number;
  finished_at?: number;
}

/** `POST /api/admin/verify`: what one verification pass found on one target. */
export interface VerifyTargetReport {
  target_id: string;
  label: string;
  /** Copies HEADed (size + sha256 metadata compared). */
  checked: number;
  ok: number;
  missing: number;
  damaged: number;
  /** Copies downloaded and re-hashed (the rolling sample, or all with `full`). */
  files_read: number;
  bytes_read: number;
  /** Damaged or missing copies queued for upload again. */
  requeued: number;
  /** The first problems, in words. */
  problems: { key: string; problem: string }[];
  /** The target could not be checked (offline...). */
  error?: string;
}
export interface VerifyReport {
  started_at: number;
  finished_at: number;
  full: boolean;
  ok: boolean;
  summary: string;
  targets: VerifyTargetReport[];
}

/** `POST /api/admin/retention/prune`: what the retention policies removed (or would remove). */
export interface PruneReport {
  now: number;
  dry_run: boolean;
  summary: string;
  targets: {
    target_id: string;
    versions_deleted: number;
    files_expired: number;
    bytes_freed: number;
    versions_kept: number;
    versions_held?: number;
    /** Left alone because still locked (Object Lock) until `locked_until` (the latest of their dates). */
    versions_locked?: number;
    files_locked?: number;
    locked_until?: number | null;
    /** Objects the destination refused to delete (its key may not delete). */
    delete_refused?: number;
    /** The destination's sentence for the first refusal. */
    refused?: string;
    error?: string;
  }[];
}

export interface TunnelStatus {
  mode: 'off' | 'quick' | 'named';
  state: 'stopped' | 'starting' | 'running' | 'restarting' | 'missing' | 'failed';
  public_url?: string;
  message?: string;
  last_lines: string[];
}

// ---------------------------------------------------------------------------------------------
// Types of the routes the operator's app uses (issue 6) and of the features of issues 3, 4, 5
// as the UI calls them. A route the engine does not implement yet answers 404; the UI then shows
// "not available yet".

/** `PATCH /api/admin/settings`: change engine-wide settings; answers the redacted config. */
export interface SettingsPatch {
  siteName?: string;
  sync?: Partial<Config['sync']>;
  media?: Partial<Config['media']>;
  /** `webhookUrl: null` removes the webhook. */
  notifications?: { desktop?: boolean; webhookUrl?: string | null };
}

/** Electron: files and folders dropped on the window, copied by the engine into a storage root. */
export interface ImportRequest {
  root: string;
  /** Absolute paths on the engine's machine; folders are copied with their contents. */
  paths: string[];
  /** Sub-folder of the root to copy into ("" or absent: the root itself). */
  dest_dir?: string;
}
export interface ImportResult {
  copied: number;
  bytes: number;
  /** What was not copied and why, in plain words (exists with other content, unreadable, ...). */
  skipped: { path: string; reason: string }[];
}

/** Answer of the streamed upload `PUT /api/admin/upload?root=<id>&path=<rel path>[&mtime=<ms>]`. */
export interface UploadResult {
  key: string;
  size: number;
}

/** A folder listing on the engine's machine, for choosing a storage root in the web console. */
export interface DirListing {
  path: string;
  parent?: string;
  dirs: string[];
}

export interface BrowseObject {
  key: string;
  /** last path segment */
  name: string;
  size: number;
  last_modified?: number;
  sha256?: string;
  /** catalog key when the object is a cataloged file */
  file_key?: string;
}
export interface BrowseResult {
  target_id: string;
  prefix: string;
  /** immediate sub-folders, full prefixes ending in "/" */
  folders: string[];
  objects: BrowseObject[];
  next_cursor?: string;
}

export interface RestoreRequest {
  keys?: string[];
  /** a folder: `<root id>/<sub/folder/>` */
  prefix?: string;
  /** files whose key contains this text */
  q?: string;
  /** restore into this folder instead of the original place */
  to?: string;
  /** replace a different local file at the destination (default false: such files are skipped) */
  overwrite?: boolean;
  /** restore the content as it was at this time (ms); default: the newest copy */
  at?: number;
  /** read from this target only */
  from?: string;
}

export interface VersionInfo {
  id: string;
  saved_at: number;
  size: number;
  sha256: string;
  target_id: string;
  /** the file was deleted locally after this version */
  deleted: boolean;
  /** this is the current content */
  current: boolean;
}

// Who can open a link (a config notion: see linkReachOf in config.ts).
export type { LinkReach };
export const LINK_REACHES: readonly LinkReach[] = ['this-computer', 'local-network', 'internet'];
/** The words shown next to every link (console and CLI). */
export const LINK_REACH_WORDS: Record<LinkReach, string> = {
  'this-computer': 'Only on this computer',
  'local-network': 'Anyone on the local network with the link',
  internet: 'Anyone on the internet with the link',
};

/** `GET /api/admin/sharing`: who can open links now, and where they point. */
export interface SharingStatus {
  reach: LinkReach;
  /** Where the download server listens (`0.0.0.0:8766`); absent while it is off. */
  listening?: string;
  /** What every link starts with now; absent when no link would work (then `problem` says why). */
  link_base?: string;
  /** Why no link can be made now, in a sentence (the download server is off, the tunnel is not up). */
  problem?: string;
}

/** `POST /api/admin/sharing`: choose who can open links; "internet" turns the tunnel on with `tunnel`. */
export interface SetLinkReachRequest {
  reach: LinkReach;
  tunnel?: { mode: 'quick' | 'named'; token?: string; hostname?: string };
}

export interface LinkInfo {
  id: string;
  /** a file key, or a prefix ending in "/" */
  key: string;
  /** The link; "" when no link that works can be given now (`unavailable` says why). */
  url: string;
  /** Who can open it. */
  reach: LinkReach;
  unavailable?: string;
  created_at: number;
  expires_at: number;
  revoked_at?: number;
  note?: string;
  downloads?: number;
}

export interface CreateLinkRequest {
  key: string;
  ttl_seconds: number;
  disposition?: 'inline' | 'attachment';
  note?: string;
}

export interface MediaQuery {
  kind?: 'image' | 'video';
  q?: string;
  root?: string;
  sort?: 'captured' | 'mtime' | 'name';
  offset?: number;
  limit?: number;
}

// ---------------------------------------------------------------------------------------------
// Routes

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface RouteDef {
  method: HttpMethod;
  /** Path with `:param` segments. */
  path: string;
}

/** Request and response types per route name. `params` fill `:param` segments, `query` the query string, `body` the JSON body. */
export interface ApiTypes {
  status: { res: SyncStatus };
  initialSync: { body?: { root?: string }; res: { queued: number; reports: ScanReport[] } };
  retryFailed: { body?: { target?: string }; res: { requeued: number } };
  dryRun: { body?: { root?: string }; res: { reports: ScanReport[] } };

  getConfig: { res: Config };
  listRoots: { res: RootInfo[] };
  addRoot: { body: Partial<RootConfig> & { path: string; label?: string }; res: RootConfig };
  updateRoot: { params: { id: string }; body: Partial<RootConfig>; res: RootConfig };
  removeRoot: { params: { id: string }; res: { removed: true } };

  listTargets: { res: TargetInfo[] };
  addTarget: { body: Record<string, unknown>; res: TargetConfig };
  updateTarget: { params: { id: string }; body: Record<string, unknown>; res: TargetConfig };
  removeTarget: { params: { id: string }; res: { removed: true } };
  testTarget: { body: Record<string, unknown>; res: TestConnectionResult };
  testTargetById: { params: { id: string }; res: TestConnectionResult };
  pauseTarget: { params: { id: string }; res: TargetStatus };
  resumeTarget: { params: { id: string }; res: TargetStatus };
  presets: { res: ProviderPresetInfo[] };

  pauseAll: { res: { paused: true } };
  resumeAll: { res: { paused: false } };

  queue: { query: QueueQuery; res: Page<FileRecord> };
  file: { query: { key: string }; res: FileRecord };
  retryFile: { body: { key: string; target?: string }; res: { requeued: number } };
  events: { query: { after?: number; limit?: number }; res: EventRecord[] };

  // operator's app (issue 6)
  login: { body: { password: string }; res: { token: string } };
  setAdminPassword: { body: { password: string }; res: { ok: true } };
  updateSettings: { body: SettingsPatch; res: Config };
  logs: { query: { limit?: number }; res: { file: string; lines: string[] } };
  importFiles: { body: ImportRequest; res: ImportResult };
  listDirs: { query: { path?: string }; res: DirListing };

  // browse a target like a folder (issue 6)
  browseTarget: { params: { id: string }; query: { prefix?: string; cursor?: string; limit?: number }; res: BrowseResult };
  deleteObject: { params: { id: string }; body: { key: string }; res: { deleted: true } };
  copyObject: { params: { id: string }; body: { key: string; to: string }; res: { copied: true; key: string } };

  // restore and versions (issue 5)
  restoreMissing: { body?: { root?: string; prefix?: string; from?: string }; res: RestoreProgress };
  restoreFiles: { body: RestoreRequest; res: RestoreProgress };
  restoreStatus: { res: { current?: RestoreProgress; recent: RestoreProgress[] } };
  cancelRestore: { params: { id: string }; res: RestoreProgress };
  listVersions: { query: { key: string }; res: { key: string; versions: VersionInfo[] } };
  restoreVersion: { body: { key: string; version_id: string; to?: string }; res: RestoreProgress };
  /** The seed's bulk restore: an empty body restores every missing file (same as restoreMissing). */
  bulkRestore: { body?: { root?: string; prefix?: string; from?: string }; res: RestoreProgress };
  verifyNow: { body?: { full?: boolean; target?: string }; res: VerifyReport };
  pruneNow: { body?: { dry_run?: boolean; target?: string }; res: PruneReport };

  // links and tunnel (issue 3)
  createLink: { body: CreateLinkRequest; res: LinkInfo };
  listLinks: { query: { include_expired?: boolean }; res: LinkInfo[] };
  revokeLink: { params: { id: string }; res: LinkInfo };
  rotateLinkSecret: { res: { revoked: number } };
  tunnelStatus: { res: TunnelStatus };
  setTunnel: { body: { mode: TunnelStatus['mode']; token?: string; hostname?: string }; res: TunnelStatus };
  sharingStatus: { res: SharingStatus };
  setLinkReach: { body: SetLinkReachRequest; res: SharingStatus };

  // media (issue 4)
  mediaList: { query: MediaQuery; res: Page<FileRecord> };
  /** Stop converting one video (running or waiting): it is then skipped with the reason "Cancelled by the operator". */
  cancelTranscode: { body: { key: string }; res: FileRecord };

  // the burst guard (issue 19)
  /** "These changes are mine": the held files are backed up. Without `hold`, every hold. */
  guardAccept: { body?: { hold?: number }; res: { accepted: number } };
  /** "Put everything back as it was": the held files restored as at the hold's `since`. */
  guardRollback: { body?: { hold?: number }; res: GuardRollbackResult };
}

export type RouteName = keyof ApiTypes;

export const routes = {
  status: { method: 'GET', path: '/api/admin/media-sync/status' },
  initialSync: { method: 'POST', path: '/api/admin/media-sync/initial-sync' },
  retryFailed: { method: 'POST', path: '/api/admin/media-sync/retry-failed' },
  dryRun: { method: 'POST', path: '/api/admin/media-sync/dry-run' },

  getConfig: { method: 'GET', path: '/api/admin/config' },
  listRoots: { method: 'GET', path: '/api/admin/roots' },
  addRoot: { method: 'POST', path: '/api/admin/roots' },
  updateRoot: { method: 'PATCH', path: '/api/admin/roots/:id' },
  removeRoot: { method: 'DELETE', path: '/api/admin/roots/:id' },

  listTargets: { method: 'GET', path: '/api/admin/targets' },
  addTarget: { method: 'POST', path: '/api/admin/targets' },
  updateTarget: { method: 'PATCH', path: '/api/admin/targets/:id' },
  removeTarget: { method: 'DELETE', path: '/api/admin/targets/:id' },
  testTarget: { method: 'POST', path: '/api/admin/targets/test' },
  testTargetById: { method: 'POST', path: '/api/admin/targets/:id/test' },
  pauseTarget: { method: 'POST', path: '/api/admin/targets/:id/pause' },
  resumeTarget: { method: 'POST', path: '/api/admin/targets/:id/resume' },
  presets: { method: 'GET', path: '/api/admin/presets' },

  pauseAll: { method: 'POST', path: '/api/admin/pause' },
  resumeAll: { method: 'POST', path: '/api/admin/resume' },

  queue: { method: 'GET', path: '/api/admin/queue' },
  file: { method: 'GET', path: '/api/admin/file' },
  retryFile: { method: 'POST', path: '/api/admin/file/retry' },
  events: { method: 'GET', path: '/api/admin/events' },

  login: { method: 'POST', path: '/api/login' },
  setAdminPassword: { method: 'POST', path: '/api/admin/password' },
  updateSettings: { method: 'PATCH', path: '/api/admin/settings' },
  logs: { method: 'GET', path: '/api/admin/logs' },
  importFiles: { method: 'POST', path: '/api/admin/import' },
  listDirs: { method: 'GET', path: '/api/admin/fs/dirs' },

  browseTarget: { method: 'GET', path: '/api/admin/targets/:id/browse' },
  deleteObject: { method: 'POST', path: '/api/admin/targets/:id/delete-object' },
  copyObject: { method: 'POST', path: '/api/admin/targets/:id/copy-object' },

  restoreMissing: { method: 'POST', path: '/api/admin/restore/missing' },
  restoreFiles: { method: 'POST', path: '/api/admin/restore' },
  restoreStatus: { method: 'GET', path: '/api/admin/restore/status' },
  cancelRestore: { method: 'POST', path: '/api/admin/restore/:id/cancel' },
  listVersions: { method: 'GET', path: '/api/admin/versions' },
  restoreVersion: { method: 'POST', path: '/api/admin/versions/restore' },
  bulkRestore: { method: 'POST', path: '/api/admin/media-sync/restore' },
  verifyNow: { method: 'POST', path: '/api/admin/verify' },
  pruneNow: { method: 'POST', path: '/api/admin/retention/prune' },

  createLink: { method: 'POST', path: '/api/admin/links' },
  listLinks: { method: 'GET', path: '/api/admin/links' },
  revokeLink: { method: 'POST', path: '/api/admin/links/:id/revoke' },
  rotateLinkSecret: { method: 'POST', path: '/api/admin/links/rotate-secret' },
  tunnelStatus: { method: 'GET', path: '/api/admin/tunnel' },
  setTunnel: { method: 'POST', path: '/api/admin/tunnel' },
  sharingStatus: { method: 'GET', path: '/api/admin/sharing' },
  setLinkReach: { method: 'POST', path: '/api/admin/sharing' },

  mediaList: { method: 'GET', path: '/api/admin/media' },
  cancelTranscode: { method: 'POST', path: '/api/admin/media/cancel' },

  guardAccept: { method: 'POST', path: '/api/admin/guard/accept' },
  guardRollback: { method: 'POST', path: '/api/admin/guard/rollback' },
} as const satisfies { [K in RouteName]: RouteDef };

/** Not in the typed table because they are not JSON: */
export const STREAM_ROUTES = {
  /** server-sent events, `data: <EngineEvent JSON>` */
  events: '/api/events',
  /** Prometheus text format */
  metrics: '/metrics',
  health: '/api/health',
  /**
   * Streamed upload from the web console: `PUT ?root=<id>&path=<rel path>[&mtime=<ms>]`, raw body,
   * answers `UploadResult` JSON. Never overwrites a different existing file (409).
   */
  uploadFile: '/api/admin/upload',
  /** `GET ?key=<file key>`: the file through the source chain (local, then targets), Range supported. */
  download: '/api/admin/download',
  /** `GET ?key=<file key>&size=<px>`: a JPEG thumbnail (image or video poster); 404 when none. */
  thumbnail: '/api/admin/thumbnail',
  /** `GET /api/admin/targets/<id>/object?key=<object key>`: one object straight from a target. */
  targetObject: '/api/admin/targets/:id/object',
  /** `GET`: a zip of the logs and the redacted config. */
  diagnostics: '/api/admin/diagnostics',
} as const;
/**
 * GET stream routes used as <img>/<video>/<a>/EventSource URLs cannot send headers: like `/api/events`
 * they accept `?access_token=<token>` as well as `Authorization: Bearer`.
 */
export const QUERY_TOKEN_ROUTES = ['events', 'download', 'thumbnail', 'targetObject', 'diagnostics'] as const;

type Field<T, K extends string> = K extends keyof T ? NonNullable<T[K]> : undefined;
export type ParamsOf<N extends RouteName> = Field<ApiTypes[N], 'params'>;
export type QueryOf<N extends RouteName> = Field<ApiTypes[N], 'query'>;
export type BodyOf<N extends RouteName> = Field<ApiTypes[N], 'body'>;
export type ResOf<N extends RouteName> = ApiTypes[N]['res'];

/** What the server returns for every error: a sentence with the next step, plus detail. */
export interface ApiErrorBody {
  error: string;
  /** machine-readable code: bad_request, unauthorized, not_found, conflict, invalid_config, internal */
  code: string;
  detail?: string;
  /** for invalid input: the fields and what is wrong with them */
  fields?: string[];
}

/** Fill `:param` segments; throws when one is missing. */
export function buildPath(path: string, params?: Record<string, string>): string {
  return path.replace(/:([a-zA-Z_]+)/g, (_, name: string) => {
    const v = params?.[name];
    if (v === undefined) throw new Error(`missing route parameter ${name}`);
    return encodeURIComponent(v);
  });
}

/** Check the table once at start: unique names and unique (method, path). */
export function assertRouteTable(table: Record<string, RouteDef> = routes): void {
  const seen = new Map<string, string>();
  for (const [name, def] of Object.entries(table)) {
    const k = `${def.method} ${def.path}`;
    const prev = seen.get(k);
    if (prev) throw new Error(`routes "${prev}" and "${name}" both use ${k}`);
    seen.set(k, name);
  }
}

// The one contract between the engine and everything that talks to it (UI, CLI, tests).
// Every route is named here with its method, path and request/response types; the server
// registers a handler for each name (a missing or duplicate one is an error at start),
// and `ApiClient` (src/shared/client.ts) calls through the same table.
// Pure TypeScript: no Node or DOM APIs.

import type { Config, TargetConfig, RootConfig, ProviderPreset } from './config';

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
  state: TargetState;
  label: string;
  /** Plain-language reason when offline, with the next step. */
  reason?: string;
  /** Technical detail of the last error (one click away in the UI). */
  detail?: string;
  offline_since?: number;
  next_try_at?: number;
  /** Current upload rate, bytes/s, averaged over a few seconds. */
  rate_bps: number;
}

/** `GET /api/admin/media-sync/status`: the seed's fields plus per-target detail. */
export interface SyncStatus {
  /** Copy counts over every (file, enabled target). */
  pending: number;
  uploading: number;
  synced: number;
  failed: number;
  skipped: number;
  total_files: number;
  total_size_bytes: number;
  /** Bytes of files that are synced on every enabled target. */
  synced_size_bytes: number;
  /** Files with every enabled target synced. */
  safe_files: number;
  missing_local_files: number;
  targets: Record<string, TargetStatus>;
  scanning: boolean;
  paused: boolean;
  /** The one sentence for the overview and the tray tooltip. */
  summary: string;
  /** Overall colour: green (all safe), syncing, behind (a target offline), failing (files given up), paused. */
  health: 'green' | 'syncing' | 'behind' | 'failing' | 'paused';
  transcoding?: { active: number; queued: number; current?: TranscodeProgress };
  disk?: { free_bytes: number; total_bytes: number; path: string }[];
  started_at: number;
  now: number;
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
  /** Steps tried, in order: put, head, get, delete. */
  steps: { step: string; ok: boolean; ms: number; error?: string }[];
  /** Plain-language message with the next step when it failed. */
  message: string;
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
}

export interface TunnelStatus {
  mode: 'off' | 'quick' | 'named';
  state: 'stopped' | 'starting' | 'running' | 'restarting' | 'missing' | 'failed';
  public_url?: string;
  message?: string;
  last_lines: string[];
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
} as const satisfies { [K in RouteName]: RouteDef };

/** Not in the typed table because they are not JSON: */
export const STREAM_ROUTES = {
  /** server-sent events, `data: <EngineEvent JSON>` */
  events: '/api/events',
  /** Prometheus text format */
  metrics: '/metrics',
  health: '/api/health',
} as const;

type Field<T, K extends string> = T extends Record<K, infer V> ? V : undefined;
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

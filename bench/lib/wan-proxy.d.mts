// Types of wan-proxy.mjs for the tests that import it.
export interface WanLink {
  name?: string;
  rttMs: number;
  upBytesPerSecond: number;
  downBytesPerSecond: number;
}
export type WanPreset = 'lan' | 'cloud' | 'dsl' | 'far';
export const PRESETS: Record<WanPreset, WanLink>;
export function linkOf(spec: WanPreset | WanLink): Required<WanLink>;

export interface WanLinkStats {
  bytes: number;
  pieces: number;
  /** when the link started sending its first piece / finished its last (performance.now() ms) */
  firstStartMs: number | null;
  lastEndMs: number | null;
  busyMs: number;
  maxQueueMs: number;
}
export interface WanStats {
  connections: number;
  refused: number;
  open: number;
  link: Required<WanLink>;
  nowMs: number;
  up: WanLinkStats;
  down: WanLinkStats;
}
export interface WanProxy {
  port: number;
  endpoint: string;
  link: Required<WanLink>;
  stats(): WanStats;
  close(): Promise<void>;
}
export function startWanProxy(opts: {
  upstreamPort: number;
  upstreamHost?: string;
  link?: WanPreset | WanLink;
  port?: number;
  maxConnections?: number;
  queueMs?: number;
  maxWindow?: number;
}): Promise<WanProxy>;
export interface WanProxyProcess {
  port: number;
  endpoint: string;
  link: Required<WanLink>;
  pid: number;
  stats(): Promise<WanStats>;
  stop(): Promise<void>;
}
export function startWanProxyProcess(upstreamPort: number, link: WanPreset | WanLink, opts?: { maxConnections?: number; queueMs?: number; maxWindow?: number }): Promise<WanProxyProcess>;

// The real App rendered to HTML as React renders it on a server (no browser), from a store state
// set by the test: the render tests' one way in, and what they read back.
import { createElement } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';
import { afterEach } from 'vitest';
import type { SyncStatus, TargetInfo, TargetStatus } from '../../src/shared/api';
import { targetSchema } from '../../src/shared/config';
import { App } from '../../src/renderer/src/App';
import { useApp, type AppState } from '../../src/renderer/src/store';

// Server rendering reads the store's initial state (useSyncExternalStore's server snapshot).
const initial = useApp.getInitialState();
const saved = { ...initial };

/** Render the App online with `state`; the store's initial state is put back after each test. */
export function renderApp(state: Partial<AppState>): string {
  Object.assign(initial, { phase: 'online', ...state });
  return renderToStaticMarkup(createElement(App));
}

afterEach(() => {
  Object.assign(initial, saved);
});

/** The words a person reads, tags and React's text separators gone. */
export function words(html: string): string {
  return html
    .replace(/<!-- -->/g, '')
    .replace(/<[^>]+>/g, ' ')
    .replace(/&#x27;/g, "'")
    .replace(/&quot;/g, '"')
    .replace(/&amp;/g, '&')
    .replace(/\s+/g, ' ');
}

/** The NAS (order 1) and the Cloud (order 2), S3 destinations as the targets list gives them. */
export const NAS_AND_CLOUD: TargetInfo[] = [
  { id: 'nas', label: 'NAS', priority: 1, endpoint: 'http://127.0.0.1:9000' },
  { id: 'cloud', label: 'Cloud', priority: 2, endpoint: 'http://127.0.0.1:9001' },
].map((t) => targetSchema.parse({ ...t, kind: 's3', bucket: t.id, credentials: { accessKeyId: 'a', secretAccessKey: 'b' } }) as TargetInfo);

/** A destination's status: 20 files stored, online, nothing to do. */
export function targetStatus(label: string, over: Partial<TargetStatus> = {}): TargetStatus {
  return { synced_count: 20, synced_bytes: 40_000, pending: 0, uploading: 0, failed: 0, skipped: 0, held: 0, state: 'online', label, rate_bps: 0, ...over };
}

/** A status where all 20 files are safe on the NAS and the Cloud; `over` changes what a test needs. */
export function syncStatus(over: Partial<SyncStatus> = {}): SyncStatus {
  const now = Date.now();
  return {
    pending: 0, uploading: 0, synced: 20, failed: 0, skipped: 0, held: 0, total_files: 20, total_size_bytes: 40_000, synced_size_bytes: 40_000,
    copies: { pending: 0, uploading: 0, synced: 40, failed: 0, skipped: 0 },
    safe_files: 20, missing_local_files: 0, missing_safe_files: 0,
    targets: { nas: targetStatus('NAS'), cloud: targetStatus('Cloud') },
    scanning: false, paused: false, summary: 'All 20 files are safe in 3 places', health: 'green',
    started_at: now - 3_600_000, now,
    ...over,
  };
}

/** The card of one destination on the Destinations page: from its heading to the next card. */
export function card(html: string, label: string): string {
  const start = html.indexOf(`<h2>${label}</h2>`);
  const end = html.indexOf('<li ', start);
  return html.slice(start, end < 0 ? undefined : end);
}

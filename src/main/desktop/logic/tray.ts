// What the tray shows: pure functions from the engine's status to an icon, a tooltip and a menu.
// No electron import: the shell (../tray.ts) turns the model into native objects; tests run under Node.
import type { SyncStatus } from '../../../shared/api';
import { missingToOffer } from '../../../shared/status';
import type { EngineState } from './supervisor';

/** One icon per state; `offline` is "the engine does not answer", not a target being offline. */
export type TrayIconState = 'green' | 'syncing' | 'behind' | 'failing' | 'paused' | 'offline';
export const TRAY_ICON_STATES: readonly TrayIconState[] = ['green', 'syncing', 'behind', 'failing', 'paused', 'offline'];

export type EngineLink =
  | { state: 'connecting' }
  | { state: 'connected' }
  | { state: 'lost'; since: number; retryAt?: number }
  /** The engine process ended unexpectedly; the app starts it again. */
  | { state: 'restarting'; attempt: number; retryAt: number }
  /** It kept ending; the app stopped restarting it (the window says why). */
  | { state: 'failed' };

/**
 * The link the tray shows: the engine process's own state when the app runs it (`engine`; null
 * when the app connects to a service), else the event stream's.
 */
export function linkFor(stream: EngineLink, engine: EngineState | null): EngineLink {
  if (!engine) return stream;
  if (engine.state === 'starting') return { state: 'connecting' };
  if (engine.state === 'restarting') return { state: 'restarting', attempt: engine.attempt, retryAt: engine.retryAt };
  if (engine.state === 'failed') return { state: 'failed' };
  return stream;
}

export interface TrayState {
  icon: TrayIconState;
  /** Short headline: first line of the tooltip, also the disabled first menu item. */
  title: string;
  tooltip: string;
}

/** Windows cuts tray tooltips at 127 characters; macOS and Linux are more generous. */
export const TOOLTIP_MAX = 127;

export function truncate(s: string, max: number): string {
  if (s.length <= max) return s;
  return s.slice(0, Math.max(0, max - 1)).trimEnd() + '…';
}

const TITLES: Record<TrayIconState, string> = {
  green: 'Everything is backed up',
  syncing: 'Backing up',
  behind: 'A copy is behind',
  failing: 'Some files need you',
  paused: 'Backups are paused',
  offline: 'Triplicate is not running',
};

export function trayState(status: SyncStatus | null, link: EngineLink, appName = 'Triplicate'): TrayState {
  if (link.state === 'restarting') {
    return { icon: 'offline', title: 'Engine restarting…', tooltip: truncate(`${appName}: Engine restarting…\nThe backup engine stopped unexpectedly; Triplicate is starting it again.`, TOOLTIP_MAX) };
  }
  if (link.state === 'failed') {
    return { icon: 'offline', title: 'The backup engine stopped', tooltip: truncate(`${appName}: The backup engine stopped\nIt kept stopping, so backups are not running. Open Triplicate to see why.`, TOOLTIP_MAX) };
  }
  if (link.state !== 'connected' || !status) {
    const title = link.state === 'connecting' ? 'Starting…' : TITLES.offline;
    const tail = link.state === 'lost' ? 'The backup engine does not answer; reconnecting.' : 'Connecting to the backup engine.';
    return { icon: 'offline', title, tooltip: truncate(`${appName}: ${title}\n${tail}`, TOOLTIP_MAX) };
  }
  const icon = iconFor(status);
  const title = TITLES[icon];
  const summary = status.summary?.trim() || title;
  return { icon, title, tooltip: truncate(`${appName}: ${summary}`, TOOLTIP_MAX) };
}

/**
 * The engine computes `health`; this only guards against an inconsistent status
 * (paused wins, then files given up, then an offline target, then work in flight).
 */
export function iconFor(s: SyncStatus): TrayIconState {
  if (s.paused || s.health === 'paused') return 'paused';
  if (s.health === 'failing' || s.failed > 0) return 'failing';
  const anyOffline = Object.values(s.targets).some((t) => t.state === 'offline');
  if (s.health === 'behind' || anyOffline) return 'behind';
  if (s.health === 'syncing' || s.pending + s.uploading > 0 || s.scanning) return 'syncing';
  return 'green';
}

// ---------------------------------------------------------------------------------------------
// Menu model

export type TrayCommand = 'open' | 'pause' | 'resume' | 'sync-now' | 'restore-missing' | 'quit';

export type MenuItemModel =
  | { kind: 'label'; label: string }
  | { kind: 'separator' }
  | { kind: 'action'; id: TrayCommand; label: string; enabled: boolean };

export interface MenuOptions {
  /** This app runs the engine: quitting stops the backups, so the menu says so. */
  embedded?: boolean;
}

export function menuModel(status: SyncStatus | null, link: EngineLink, opts: MenuOptions = {}): MenuItemModel[] {
  const connected = link.state === 'connected' && status !== null;
  const ts = trayState(status, link);
  const items: MenuItemModel[] = [{ kind: 'label', label: ts.title }];
  if (connected && status.summary) items.push({ kind: 'label', label: truncate(status.summary, 80) });
  items.push({ kind: 'separator' });
  items.push({ kind: 'action', id: 'open', label: 'Open Triplicate', enabled: true });
  if (connected && status.paused) items.push({ kind: 'action', id: 'resume', label: 'Resume backups', enabled: true });
  else items.push({ kind: 'action', id: 'pause', label: 'Pause backups', enabled: connected });
  items.push({ kind: 'action', id: 'sync-now', label: 'Back up now', enabled: connected && !status.paused });
  // What the Restore page offers: the bulk restore leaves a held folder out (its missing files come
  // back with the Overview's "Put everything back"), so the count is the same as the page's.
  const holds = connected ? (status.guard?.holds ?? []) : [];
  const missing = connected ? missingToOffer(status) : 0;
  const others = holds.some((h) => h.missing > 0) ? ' of the other folders' : '';
  for (const h of holds) items.push({ kind: 'label', label: truncate(`${h.root_label}: holding changes, see Overview`, 80) });
  items.push({
    kind: 'action',
    id: 'restore-missing',
    label: missing > 0 ? `Bring back ${formatCount(missing)} missing ${missing === 1 ? 'file' : 'files'}${others}` : others ? 'No other files are missing' : 'No files are missing',
    enabled: missing > 0,
  });
  items.push({ kind: 'separator' });
  items.push({ kind: 'action', id: 'quit', label: opts.embedded ? 'Quit Triplicate (backups stop)' : 'Quit Triplicate', enabled: true });
  return items;
}

export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}

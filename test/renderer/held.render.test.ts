// The operator UI while the burst guard holds a folder, rendered as React renders it (server
// rendering, no browser): the Restore badge, the Restore page and the Destinations page say what is
// held and where to answer, and every number agrees with the sentence beside it.
import { describe, expect, it } from 'vitest';
import type { GuardHold, SyncStatus, TargetInfo, TargetStatus } from '../../src/shared/api';
import { targetSchema } from '../../src/shared/config';
import { guardSentence, heldFolderNote } from '../../src/shared/status';
import { formatTime } from '../../src/renderer/src/lib/format';
import type { AppState } from '../../src/renderer/src/store';
import { render as renderWith, words } from './app.render';

const NOW = Date.now();
const TRIPPED = NOW - 20 * 60_000;
const SINCE = TRIPPED - 60_000;

function target(id: string, label: string, over: Partial<TargetStatus> = {}): TargetStatus {
  return { synced_count: 20, synced_bytes: 40_000, pending: 0, uploading: 0, failed: 0, skipped: 0, held: 0, state: 'online', label, rate_bps: 0, ...over };
}

/** Media (20 files) is held after 12 photos were rewritten and 1 deleted; Other (3 files) has `otherMissing` gone. */
function heldStatus(otherMissing: number): SyncStatus {
  const counts = { rewritten: 12, suspicious_new: 0, renamed: 0, deleted: 1 };
  const at = { root_label: 'Media', tripped_at: TRIPPED, since: SINCE, counts };
  const hold: GuardHold = { id: 1, root_id: 'media', ...at, files: 13, missing: 1, summary: guardSentence(at) };
  const missing = 1 + otherMissing;
  return {
    pending: 0, uploading: 0, synced: 11, failed: 0, skipped: 0, held: 12, total_files: 23, total_size_bytes: 46_000, synced_size_bytes: 22_000,
    copies: { pending: 24, uploading: 0, synced: 22, failed: 0, skipped: 0 },
    safe_files: 11, missing_local_files: missing, missing_safe_files: missing,
    targets: { nas: target('nas', 'NAS', { held: 12 }), cloud: target('cloud', 'Cloud', { held: 12 }) },
    scanning: false, paused: false, summary: hold.summary, health: 'failing',
    guard: { holds: [hold] },
    started_at: NOW - 3_600_000, now: NOW,
  };
}

const TARGETS = [
  { id: 'nas', label: 'NAS', priority: 1, endpoint: 'http://127.0.0.1:9000' },
  { id: 'cloud', label: 'Cloud', priority: 2, endpoint: 'http://127.0.0.1:9001' },
].map((t) => targetSchema.parse({ ...t, kind: 's3', bucket: t.id, credentials: { accessKeyId: 'a', secretAccessKey: 'b' } }) as TargetInfo);

function render(state: Partial<AppState>): string {
  return renderWith({ targets: TARGETS, ...state });
}

function badge(html: string): string | undefined {
  return /<a href="#\/restore"[^>]*>.*?<span class="nav-count" aria-label="([^"]*)">(\d+)<\/span>/.exec(html)?.slice(1, 3).join(' = ');
}

describe('while the burst guard holds a folder', () => {
  it('Restore: the badge, the sentence, the button and the list count only the other folders; the held folder points to the Overview', () => {
    const status = heldStatus(2);
    const html = render({ page: 'restore', status });
    const text = words(html);
    expect(badge(html)).toBe('2 missing files to bring back = 2');
    expect(text).toContain(heldFolderNote(status.guard!.holds[0]!, formatTime));
    expect(text).toContain(`Put everything back as it was at ${formatTime(SINCE)}`);
    expect(html).toMatch(/<a class="btn btn-small" href="#\/overview">Open the Overview<\/a>/);
    expect(text).toContain('2 files of the other folders are no longer on this computer. Each comes back from the first destination that has a good copy.');
    expect(text).toContain('Bring back all 2');
    expect(text).not.toMatch(/Bring back all 3|\b3 files/);
  });

  it('Restore: nothing to offer when every missing file is in the held folder (no badge, no "no file is missing")', () => {
    const html = render({ page: 'restore', status: heldStatus(0) });
    const text = words(html);
    expect(badge(html)).toBeUndefined();
    expect(text).toContain('Its 1 missing file is not brought back from here until you answer on the Overview');
    expect(text).toContain('Nothing else is missing: every file of the other folders is on this computer.');
    expect(text).not.toContain('No file is missing');
    expect(html).toMatch(/<button type="button" class="btn btn-primary" disabled="">Bring back missing files<\/button>/);
  });

  it('Destinations: each one says how many changes it holds from which folder since when, and its state is not "Working"', () => {
    const html = render({ page: 'destinations', status: heldStatus(2) });
    const text = words(html);
    const line = `Holding 12 changes from Media since ${formatTime(TRIPPED)}. See the Overview`;
    expect(text.split(line).length - 1).toBe(2);
    expect(text.split('Holding changes back').length - 1).toBe(2);
    expect(text).not.toContain('Working');
  });

  it('with no hold, the badge counts every missing file and nothing speaks of holds', () => {
    const status: SyncStatus = { ...heldStatus(2), held: 0, guard: undefined, summary: 'x', health: 'behind', targets: { nas: target('nas', 'NAS'), cloud: target('cloud', 'Cloud') } };
    const restore = render({ page: 'restore', status });
    expect(badge(restore)).toBe('3 missing files to bring back = 3');
    expect(words(restore)).toContain('3 files are no longer on this computer. Each comes back from the first destination that has a good copy.');
    expect(words(restore)).toContain('Bring back all 3');
    const dest = words(render({ page: 'destinations', status }));
    expect(dest).not.toMatch(/Holding|held back/);
    expect(dest.split('Working').length - 1).toBe(2);
  });
});

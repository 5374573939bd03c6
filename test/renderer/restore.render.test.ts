// The Restore page while a restore runs, rendered as React renders it (server rendering, no
// browser): it says how many files the restore moves at once, with the numbers of the status
// (RestoreProgress.restoring), and says nothing of it once the restore is over.
import { describe, expect, it } from 'vitest';
import type { RestoreProgress } from '../../src/shared/api';
import { renderApp, words } from './app.render';

function progress(over: Partial<RestoreProgress>): RestoreProgress {
  return { id: 'r1', state: 'running', files_total: 40, files_done: 10, files_failed: 0, bytes_total: 40_000_000, bytes_done: 10_000_000, rate_bps: 0, ...over };
}

describe('the Restore page, files at once', () => {
  it('while a restore runs: how many files it fetches, the number chosen for the link, and the cap', () => {
    const text = words(renderApp({ page: 'restore', restore: progress({ restoring: { now: 12, chosen: 12, max: 32 } }) }));
    expect(text).toMatch(/Restoring ?: 10 of 40 files/);
    expect(text).toContain('Restoring 12 files at once, the number chosen for this link (at most 32).');
    const fewer = words(renderApp({ page: 'restore', restore: progress({ restoring: { now: 3, chosen: 6, max: 32 } }) }));
    expect(fewer).toContain('Restoring 3 files at once (up to 6 on this link, at most 32).');
    const slower = words(renderApp({ page: 'restore', restore: progress({ restoring: { now: 12, chosen: 6, max: 32 } }) }));
    expect(slower).toContain('Restoring 12 files at once, coming down to 6 for this link (at most 32).');
  });

  it('no line when no file is being fetched, nor once the restore is over', () => {
    const idle = words(renderApp({ page: 'restore', restore: progress({ restoring: { now: 0, chosen: 6, max: 32 } }) }));
    expect(idle).toMatch(/Restoring ?: 10 of 40 files/);
    expect(idle).not.toContain('at once');
    const done = words(renderApp({ page: 'restore', restore: progress({ state: 'done', files_done: 40, bytes_done: 40_000_000 }) }));
    expect(done).toMatch(/Finished ?: 40 of 40 files/);
    expect(done).not.toContain('at once');
  });
});

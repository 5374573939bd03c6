import { describe, expect, it } from 'vitest';
import { formatBytes, isQuietTime, NotificationRules } from '../../src/shared/notify';
import type { RestoreProgress } from '../../src/shared/api';
import { status, target } from './fixtures';

const MIN = 60_000;
const T0 = new Date(2025, 4, 6, 12, 0, 0).getTime(); // local noon

const offline = (over = {}) => status({ health: 'behind', targets: { nas: target({ label: 'NAS', state: 'offline', pending: 212, reason: 'The NAS did not answer' , ...over }), cloud: target({ label: 'Cloud' }) } });
const online = (over = {}) => status({ targets: { nas: target({ label: 'NAS', state: 'online', ...over }), cloud: target({ label: 'Cloud' }) } });

describe('a destination that stops answering', () => {
  it('is reported once after 15 minutes, not before', () => {
    const r = new NotificationRules();
    expect(r.onStatus(offline(), T0)).toEqual([]);
    expect(r.onStatus(offline(), T0 + 14 * MIN)).toEqual([]);
    const n = r.onStatus(offline(), T0 + 15 * MIN);
    expect(n).toHaveLength(1);
    expect(n[0]!.kind).toBe('target-offline');
    expect(n[0]!.title).toBe('NAS has not answered for 15 minutes');
    expect(n[0]!.body).toMatch(/^The NAS did not answer\. 212 files wait for it/);
    expect(n[0]!.page).toBe('destinations');
    // same outage: no repeat within the reminder period
    for (let m = 16; m < 6 * 60 + 15; m += 7) expect(r.onStatus(offline(), T0 + m * MIN)).toEqual([]);
    // reminder after 6 hours
    const again = r.onStatus(offline(), T0 + (15 + 6 * 60) * MIN);
    expect(again.map((x) => x.kind)).toEqual(['target-offline']);
    expect(again[0]!.title).toMatch(/6 hours/);
  });

  it('uses the engine\'s offline_since so a restarted app does not wait again', () => {
    const r = new NotificationRules();
    const n = r.onStatus(offline({ offline_since: T0 - 20 * MIN }), T0);
    expect(n).toHaveLength(1);
    expect(n[0]!.title).toMatch(/20 minutes/);
  });

  it('says when it answers again, only if the outage was reported', () => {
    const r = new NotificationRules();
    r.onStatus(offline(), T0);
    expect(r.onStatus(online(), T0 + 5 * MIN)).toEqual([]); // short blip: silent both ways
    r.onStatus(offline(), T0 + 10 * MIN);
    expect(r.onStatus(offline(), T0 + 25 * MIN)).toHaveLength(1);
    const back = r.onStatus(online({ pending: 3 }), T0 + 30 * MIN);
    expect(back.map((x) => x.kind)).toEqual(['target-back']);
    expect(back[0]!.body).toBe('Copying resumes: 3 files to go.');
    expect(r.onStatus(online(), T0 + 31 * MIN)).toEqual([]);
    // a new outage starts a new 15-minute clock
    r.onStatus(offline(), T0 + 40 * MIN);
    expect(r.onStatus(offline(), T0 + 54 * MIN)).toEqual([]);
    expect(r.onStatus(offline(), T0 + 55 * MIN)).toHaveLength(1);
  });

  it('ends an outage silently when the operator pauses the destination', () => {
    const r = new NotificationRules();
    r.onStatus(offline(), T0);
    r.onStatus(offline(), T0 + 20 * MIN);
    expect(r.onStatus(online({ state: 'paused' }), T0 + 21 * MIN)).toEqual([]);
    expect(r.onStatus(online(), T0 + 22 * MIN)).toEqual([]);
  });
});

describe('files given up', () => {
  it('reports the count, again only when it grew and an hour passed', () => {
    const r = new NotificationRules();
    const failing = (n: number) => status({ health: 'failing', failed: n, targets: { cloud: target({ label: 'Cloud', failed: n }) } });
    const first = r.onStatus(failing(3), T0);
    expect(first.map((x) => x.title)).toEqual(['3 files could not be copied to Cloud']);
    expect(first[0]!.page).toBe('activity');
    expect(r.onStatus(failing(3), T0 + 2 * 60 * MIN)).toEqual([]); // same count, even hours later: nothing new
    expect(r.onStatus(failing(5), T0 + 2 * 60 * MIN + 1)).toHaveLength(1); // grew, an hour since the last notice
    expect(r.onStatus(failing(9), T0 + 2 * 60 * MIN + 30 * MIN)).toEqual([]); // grew again within the hour: held
    const later = r.onStatus(failing(9), T0 + 3 * 60 * MIN + 1);
    expect(later.map((x) => x.title)).toEqual(['9 files could not be copied to Cloud']);
    // all retried and fine: the next failure is news at once
    expect(r.onStatus(status(), T0 + 3 * 60 * MIN + 2)).toEqual([]);
    expect(r.onStatus(failing(1), T0 + 3 * 60 * MIN + 3).map((x) => x.title)).toEqual(['1 file could not be copied to Cloud']);
  });
});

describe('disk nearly full', () => {
  const disk = (free: number, total = 1000 * 1024 ** 3) => status({ disk: [{ path: '/srv/photos', free_bytes: free, total_bytes: total }] });
  it('warns below 5%, reminds after the quiet period, re-arms only well above the threshold', () => {
    const r = new NotificationRules();
    expect(r.onStatus(disk(100 * 1024 ** 3), T0)).toEqual([]);
    const n = r.onStatus(disk(40 * 1024 ** 3), T0 + MIN);
    expect(n).toHaveLength(1);
    expect(n[0]!.kind).toBe('disk-low');
    expect(n[0]!.body).toMatch(/Only 42\.9 GB \(4%\) is free on \/srv\/photos/);
    expect(r.onStatus(disk(40 * 1024 ** 3), T0 + 2 * MIN)).toEqual([]);
    // hovering just above the threshold does not re-arm (no flapping)
    expect(r.onStatus(disk(55 * 1024 ** 3), T0 + 3 * MIN)).toEqual([]);
    expect(r.onStatus(disk(45 * 1024 ** 3), T0 + 4 * MIN)).toEqual([]);
    // reminder after 6 h while still low
    expect(r.onStatus(disk(45 * 1024 ** 3), T0 + MIN + 6 * 3600_000)).toHaveLength(1);
    // clearly fine, then low again: warns at once
    expect(r.onStatus(disk(200 * 1024 ** 3), T0 + 7 * 3600_000)).toEqual([]);
    expect(r.onStatus(disk(10 * 1024 ** 3), T0 + 7 * 3600_000 + 1)).toHaveLength(1);
  });
  it('warns below 2 GB on a small disk even when the ratio is fine', () => {
    const r = new NotificationRules();
    expect(r.onStatus(disk(1.5 * 1024 ** 3, 16 * 1024 ** 3), T0)).toHaveLength(1);
  });
});

describe('restores', () => {
  const progress = (over: Partial<RestoreProgress>): RestoreProgress => ({
    id: 'r1', state: 'running', files_total: 10, files_done: 0, files_failed: 0, bytes_total: 100, bytes_done: 0, rate_bps: 0, ...over,
  });
  it('notifies once when a restore finishes', () => {
    const r = new NotificationRules();
    expect(r.onEvent({ type: 'restore', progress: progress({}) }, T0)).toEqual([]);
    const done = r.onEvent({ type: 'restore', progress: progress({ state: 'done', files_done: 10, bytes_done: 2_500_000 }) }, T0);
    expect(done.map((x) => [x.kind, x.body])).toEqual([['restore-done', '10 files are back (2.5 MB).']]);
    expect(r.onEvent({ type: 'restore', progress: progress({ state: 'done', files_done: 10 }) }, T0 + 1)).toEqual([]);
  });
  it('says how many failed and where to look', () => {
    const r = new NotificationRules();
    const n = r.onEvent({ type: 'restore', progress: progress({ id: 'r2', state: 'done', files_done: 8, files_failed: 2 }) }, T0);
    expect(n[0]!.kind).toBe('restore-failed');
    expect(n[0]!.body).toMatch(/8 files are back, 2 could not be restored\. Open Restore/);
    const stopped = r.onEvent({ type: 'restore', progress: progress({ id: 'r3', state: 'failed', message: 'The destination folder is full' }) }, T0);
    expect(stopped[0]!.title).toBe('Restore stopped');
    expect(stopped[0]!.body).toMatch(/The destination folder is full\./);
  });
  it('ignores other events', () => {
    const r = new NotificationRules();
    expect(r.onEvent({ type: 'copy', file_key: 'a/b', target_id: 'nas', state: 'failed' }, T0)).toEqual([]);
  });
});

describe('quiet hours', () => {
  it('handles windows that wrap midnight', () => {
    const q = { start: '22:00', end: '07:00' };
    const at = (h: number, m = 0) => new Date(2025, 4, 6, h, m).getTime();
    expect(isQuietTime(at(23), q)).toBe(true);
    expect(isQuietTime(at(3), q)).toBe(true);
    expect(isQuietTime(at(6, 59), q)).toBe(true);
    expect(isQuietTime(at(7), q)).toBe(false);
    expect(isQuietTime(at(12), q)).toBe(false);
    expect(isQuietTime(at(21, 59), q)).toBe(false);
    expect(isQuietTime(at(13), { start: '12:00', end: '14:00' })).toBe(true);
    expect(isQuietTime(at(13), undefined)).toBe(false);
    expect(isQuietTime(at(13), { start: 'nope', end: '14:00' })).toBe(false);
  });
  it('delivers silently during quiet hours', () => {
    const r = new NotificationRules({ quietHours: { start: '22:00', end: '07:00' } });
    const night = new Date(2025, 4, 6, 23, 0).getTime();
    r.onStatus(offline(), night);
    const n = r.onStatus(offline(), night + 15 * MIN);
    expect(n[0]!.silent).toBe(true);
    const day = new NotificationRules({ quietHours: { start: '22:00', end: '07:00' } });
    day.onStatus(offline(), T0);
    expect(day.onStatus(offline(), T0 + 15 * MIN)[0]!.silent).toBe(false);
  });
});

describe('formatBytes', () => {
  it('uses decimal units people see on their disks', () => {
    expect(formatBytes(0)).toBe('0 bytes');
    expect(formatBytes(1500)).toBe('1.5 KB');
    expect(formatBytes(123_000_000_000)).toBe('123 GB');
  });
});

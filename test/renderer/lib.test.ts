// Pure helpers of the operator UI: how numbers, times, reasons and the bandwidth week read.
import { describe, expect, it } from 'vitest';
import { bytesToMbit, describeLimit, limitAt, mbitToBytes, weekGrid, windowCovers } from '../../src/renderer/src/lib/bandwidth';
import { formatBytes, formatCount, formatEta, formatRate, formatRelative, sendingSentence, slugify } from '../../src/renderer/src/lib/format';
import { plainReason } from '../../src/renderer/src/lib/reasons';
import type { BandwidthConfig } from '../../src/shared/config';

describe('format', () => {
  it('counts and sizes as people read them', () => {
    expect(formatCount(15340)).toBe('15,340');
    expect(formatCount(undefined)).toBe('–');
    expect(formatBytes(1)).toBe('1 byte');
    expect(formatBytes(999)).toBe('999 bytes');
    expect(formatBytes(3_160_000)).toBe('3.2 MB');
    expect(formatBytes(271_000_000_000)).toBe('271 GB');
    expect(formatRate(0)).toBe('');
    expect(formatRate(12_300_000)).toBe('12.3 MB/s');
  });
  it('says how many files go to a destination at once, with the numbers of the status', () => {
    expect(sendingSentence(undefined)).toBe('');
    expect(sendingSentence({ now: 0, chosen: 12, max: 32 })).toBe('');
    expect(sendingSentence({ now: 12, chosen: 12, max: 32 })).toBe('Sending 12 files at once, the number chosen for this link (at most 32).');
    expect(sendingSentence({ now: 1, chosen: 12, max: 32 })).toBe('Sending 1 file at once (up to 12 on this link, at most 32).');
    expect(sendingSentence({ now: 20, chosen: 10, max: 32 })).toBe('Sending 20 files at once, coming down to 10 for this link (at most 32).');
    expect(sendingSentence({ now: 1, chosen: 16, max: 32, after: 'NAS' })).toBe('Sending 1 file at once while NAS goes first: this computer cannot keep up with both. Then up to 16 on this link (at most 32).');
  });
  it('says how long in words', () => {
    expect(formatEta(30)).toBe('less than a minute');
    expect(formatEta(60 * 3)).toBe('about 3 minutes');
    expect(formatEta(3600 * 2)).toBe('about 2 hours');
    expect(formatEta(3600 * 5.5)).toBe('about 5.5 hours');
    expect(formatEta(86400 * 3)).toBe('about 3 days');
    expect(formatEta(undefined)).toBe('');
    const now = 1_000_000_000_000;
    expect(formatRelative(now + 5 * 60_000, now)).toBe('in 5 minutes');
    expect(formatRelative(now - 3 * 3600_000, now)).toBe('3 hours ago');
  });
  it('makes boring ids from labels', () => {
    expect(slugify('Cloudflare R2')).toBe('cloudflare-r2');
    expect(slugify('Événements 2025!')).toBe('evenements-2025');
    expect(slugify('!!!', 'folder')).toBe('folder');
    expect(slugify('x'.repeat(80)).length).toBe(40);
  });
});

describe('plain reasons', () => {
  it('turns raw error codes into a sentence with a next step', () => {
    expect(plainReason('connect ECONNREFUSED 127.0.0.1:9000')).toMatch(/did not answer.*switched on/);
    expect(plainReason('getaddrinfo ENOTFOUND nas.local')).toMatch(/address could not be found/);
    expect(plainReason('SignatureDoesNotMatch: The request signature we calculated does not match')).toMatch(/refused the key/);
    expect(plainReason('NoSuchBucket')).toMatch(/does not exist/);
    expect(plainReason('ENOSPC: no space left on device')).toMatch(/full/);
    expect(plainReason('EACCES: permission denied, open /x')).toMatch(/not allowed/);
  });
  it('keeps the engine\'s own sentences and hides stack traces', () => {
    const s = 'The NAS did not answer for 15 minutes. Check that it is switched on.';
    expect(plainReason(s)).toBe(s);
    expect(plainReason('TypeError: x is undefined\n    at foo (file.js:1:2)')).toMatch(/Something went wrong/);
    expect(plainReason('')).toBe('');
  });
});

describe('bandwidth week', () => {
  const cfg: BandwidthConfig = {
    defaultBytesPerSecond: 0,
    schedule: [
      { days: ['mon', 'tue', 'wed', 'thu', 'fri'], start: '08:00', end: '18:00', bytesPerSecond: mbitToBytes(10) },
      { days: ['fri'], start: '22:00', end: '06:00', bytesPerSecond: mbitToBytes(50) },
    ],
  };
  it('converts between what people know (Mbit/s) and the config (bytes/s)', () => {
    expect(mbitToBytes(10)).toBe(1_250_000);
    expect(bytesToMbit(1_250_000)).toBe(10);
    expect(describeLimit(0)).toBe('no limit');
    expect(describeLimit(1_250_000)).toBe('10 Mbit/s');
  });
  it('applies windows by day and hour, including one that wraps past midnight', () => {
    expect(limitAt(cfg, 'mon', 9 * 60)).toBe(1_250_000);
    expect(limitAt(cfg, 'mon', 18 * 60)).toBe(0); // end is exclusive
    expect(limitAt(cfg, 'sat', 9 * 60)).toBe(0);
    expect(limitAt(cfg, 'fri', 23 * 60)).toBe(6_250_000);
    expect(limitAt(cfg, 'sat', 3 * 60)).toBe(6_250_000); // Friday night continues into Saturday
    expect(limitAt(cfg, 'sat', 6 * 60)).toBe(0);
    expect(windowCovers(cfg.schedule[1]!, 'fri', 3 * 60)).toBe(false); // Thursday night is not in the window
    const grid = weekGrid(cfg);
    expect(grid).toHaveLength(7);
    expect(grid[0]!.filter((v) => v > 0)).toHaveLength(10);
    expect(grid[5]!.slice(0, 6).every((v) => v === 6_250_000)).toBe(true);
    expect(grid[5]![6]).toBe(0);
  });
});

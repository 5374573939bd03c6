// Retention on a simulated clock: planPrune keeps exactly what the policy says, and pruning day
// after day never loses a restore point the policy promises.
import { describe, expect, it } from 'vitest';
import { DEFAULT_RETENTION, type RetentionPolicy } from '../../src/shared/config';
import { DAY_MS, planPrune, restorePoints, type PrunableVersion, type PruneFileState } from '../../src/main/engine/restore/retention';
import { existedAt, liveAt, timeline } from '../../src/main/engine/restore/timeline';

const H = 3600_000;
// Wednesday 18 June 2025, 15:00 UTC
const NOW = Date.UTC(2025, 5, 18, 15, 0, 0);

let nextId = 1;
function v(key: string, savedAt: number, sha = `sha-${savedAt}`, reason: 'overwritten' | 'deleted' = 'overwritten', extra: Partial<PrunableVersion> = {}): PrunableVersion {
  return { id: nextId++, key, object_key: `.triplicate/versions/${key}/${savedAt}`, size: 100, saved_at: savedAt, reason, sha256: sha, ...extra };
}

const present = (currentSynced = true): PruneFileState => ({ present: true, currentSynced, firstSeen: 0 });

describe('restore points', () => {
  it('are 7 daily midnights after 30 days, then 8 Monday midnights', () => {
    const { daily, weekly } = restorePoints(NOW, DEFAULT_RETENTION);
    expect(daily).toHaveLength(7);
    expect(weekly).toHaveLength(8);
    for (const t of [...daily, ...weekly]) expect(t % DAY_MS).toBe(0);
    for (const t of weekly) expect(new Date(t).getUTCDay()).toBe(1);
    expect(NOW - daily[0]!).toBeGreaterThanOrEqual(30 * DAY_MS);
    expect(NOW - daily[0]!).toBeLessThan(31 * DAY_MS);
    expect(daily[0]! - daily[6]!).toBe(6 * DAY_MS);
    expect(NOW - weekly[0]!).toBeGreaterThan(37 * DAY_MS);
    expect(NOW - weekly[7]!).toBeLessThanOrEqual((37 + 56) * DAY_MS);
    expect(weekly[0]! - weekly[7]!).toBe(49 * DAY_MS);
  });
});

describe('planPrune', () => {
  it('keeps every version for 30 days, then the one live at each daily and weekly point, and nothing else', () => {
    // a version every 6 hours for 120 days, saved at 03:00, 09:00, 15:00 and 21:00 UTC
    const versions: PrunableVersion[] = [];
    const start = Date.UTC(2025, 1, 17, 3, 0, 0); // 121 days before NOW
    for (let t = start; t < NOW; t += 6 * H) versions.push(v('media/a.jpg', t));
    const plan = planPrune(versions, NOW, DEFAULT_RETENTION, new Map([['media/a.jpg', present()]]));

    // expected, from the calendar: every version younger than 30 days ...
    const expected = new Set(versions.filter((x) => NOW - x.saved_at < 30 * DAY_MS).map((x) => x.saved_at));
    // ... the 03:00 version of each of the 7 days whose midnight is 30..37 days ago (live at that midnight) ...
    const lastDailyMidnight = Math.floor((NOW - 30 * DAY_MS) / DAY_MS) * DAY_MS;
    for (let k = 0; k < 7; k++) expected.add(lastDailyMidnight - k * DAY_MS + 3 * H);
    // ... and of the 8 Mondays before those
    let mondays = 0;
    for (let m = lastDailyMidnight - 7 * DAY_MS; mondays < 8; m -= DAY_MS) {
      if (new Date(m).getUTCDay() === 1) {
        expected.add(m + 3 * H);
        mondays++;
      }
    }
    expect(new Set(plan.keep.map((x) => x.saved_at))).toEqual(expected);
    expect(plan.keep.length + plan.delete.length).toBe(versions.length);
    // 119 versions younger than 30 days (4 a day, the one exactly 30 days old is not) + 7 + 8
    expect(plan.keep).toHaveLength(119 + 7 + 8);
    expect(plan.expire).toEqual([]);
  });

  it('a custom policy per target', () => {
    const versions: PrunableVersion[] = [];
    for (let d = 1; d <= 40; d++) versions.push(v('media/b.jpg', NOW - d * DAY_MS + H));
    const policy: RetentionPolicy = { keepAllDays: 2, dailyDays: 3, weeklyWeeks: 0, deletedDays: 10 };
    const plan = planPrune(versions, NOW, policy, new Map([['media/b.jpg', present()]]));
    // ages < 2 days: 1 version; then the 3 midnights 2..5 days back each keep the version saved the next hour
    expect(plan.keep.map((x) => Math.round((NOW - x.saved_at) / DAY_MS))).toEqual([1, 2, 3, 4].map((d) => d));
  });

  it('expires a file deleted more than 90 days ago, keeps one deleted less long ago', () => {
    const old = [v('media/gone.jpg', NOW - 200 * DAY_MS, 's1'), v('media/gone.jpg', NOW - 91 * DAY_MS, 's2', 'deleted')];
    const recent = [v('media/recent.jpg', NOW - 100 * DAY_MS, 't1'), v('media/recent.jpg', NOW - 89 * DAY_MS, 't2', 'deleted')];
    const plan = planPrune([...old, ...recent], NOW, DEFAULT_RETENTION, new Map([
      ['media/gone.jpg', { present: false, currentSynced: true, firstSeen: 0 }],
      ['media/recent.jpg', { present: false, currentSynced: true, firstSeen: 0 }],
    ]));
    expect(plan.expire).toEqual(['media/gone.jpg']);
    expect(plan.delete.map((x) => x.key)).toEqual(['media/gone.jpg', 'media/recent.jpg']); // t1 is older than every restore point
    expect(plan.dropRows.map((x) => x.key)).toEqual(['media/gone.jpg']);
    // a deleted file that came back is never expired
    const back = [v('media/back.jpg', NOW - 95 * DAY_MS, 'u1', 'deleted', { gone_until: NOW - 94 * DAY_MS, back_sha256: 'u1' })];
    expect(planPrune(back, NOW, DEFAULT_RETENTION, new Map([['media/back.jpg', present()]])).expire).toEqual([]);
  });

  it('never prunes the newest copy of a file that exists locally while its current copy is not synced', () => {
    const versions = [v('media/c.jpg', NOW - 300 * DAY_MS, 'c1'), v('media/c.jpg', NOW - 200 * DAY_MS, 'c2')];
    expect(planPrune(versions, NOW, DEFAULT_RETENTION, new Map([['media/c.jpg', present(true)]])).keep).toEqual([]);
    const plan = planPrune(versions, NOW, DEFAULT_RETENTION, new Map([['media/c.jpg', present(false)]]));
    expect(plan.keep.map((x) => x.sha256)).toEqual(['c2']);
  });

  it('keeps the restore point of a file deleted at that time: nothing (it was gone), and of one deleted later: its content', () => {
    const { daily } = restorePoints(NOW, DEFAULT_RETENTION);
    const p = daily[3]!;
    // x: overwritten just after the point, deleted 2 days after it -> the overwritten version is live at p
    const x = [v('media/x.jpg', p + H, 'x1'), v('media/x.jpg', p + 2 * DAY_MS, 'x2', 'deleted', { gone_until: p + 3 * DAY_MS, back_sha256: 'x3' }), v('media/x.jpg', p + 3 * DAY_MS + H, 'x2')];
    const px = planPrune(x, NOW, DEFAULT_RETENTION, new Map([['media/x.jpg', present()]]));
    expect(px.keep.map((r) => r.sha256)).toContain('x1');
    // y: deleted before the point and recreated after it: the old content is not needed for that point
    const y = [v('media/y.jpg', p - 5 * DAY_MS, 'y0'), v('media/y.jpg', p - DAY_MS, 'y1', 'deleted', { gone_until: p + DAY_MS, back_sha256: 'y2' }), v('media/y.jpg', p + DAY_MS + H, 'y1')];
    const py = planPrune(y, NOW, DEFAULT_RETENTION, new Map([['media/y.jpg', { present: true, currentSynced: true, firstSeen: 0 }]]));
    // y1 was live until the deletion at p - 1 day: the daily point p - 1 day .. is inside the gap;
    // the points before (p - 2, p - 3 days) saw y1: its holder (the stale preservation) is kept
    expect(daily.filter((m) => m < p - DAY_MS && m >= p - 5 * DAY_MS).length).toBeGreaterThan(0);
    expect(py.keep.some((r) => r.sha256 === 'y1')).toBe(true);
    // and no point falls in the gap's favour: with the deletion before every point, y1 is not needed
    const z = [v('media/z.jpg', NOW - 200 * DAY_MS, 'z1', 'deleted', { gone_until: NOW - DAY_MS, back_sha256: 'z2' }), v('media/z.jpg', NOW - DAY_MS + H, 'z1')];
    const pz = planPrune(z, NOW, DEFAULT_RETENTION, new Map([['media/z.jpg', { present: true, currentSynced: true, firstSeen: 0 }]]));
    expect(pz.keep.map((r) => r.sha256)).toEqual(['z1']); // only because it is younger than 30 days
    const pz2 = planPrune(z, NOW + 40 * DAY_MS, DEFAULT_RETENTION, new Map([['media/z.jpg', { present: true, currentSynced: true, firstSeen: 0 }]]));
    expect(pz2.keep).toEqual([]);
  });
});

describe('pruning every day for 150 days', () => {
  it('never loses a promised restore point, and stays bounded', () => {
    // ground truth: a file rewritten every 5 h; the content live at any time is known
    const history: { t: number; sha: string }[] = [];
    const t0 = NOW - 150 * DAY_MS;
    for (let t = t0, i = 0; t < NOW + 150 * DAY_MS; t += 5 * H, i++) history.push({ t, sha: `c${i}` });
    const truthAt = (t: number) => {
      let cur: string | null = null;
      for (const h of history) if (h.t <= t) cur = h.sha;
      return cur;
    };
    // content i is saved as a version when content i+1 replaces it
    const all: PrunableVersion[] = history.slice(0, -1).map((h, i) => ({ id: i + 1, key: 'media/f.jpg', object_key: `k${i}`, size: 1, saved_at: history[i + 1]!.t, reason: 'overwritten' as const, sha256: h.sha }));
    const deleted = new Set<number>();
    let rows: PrunableVersion[] = [];
    let kept = 0;
    for (let day = 0; day < 150; day++) {
      const now = t0 + 60 * DAY_MS + day * DAY_MS + 7 * H;
      rows = all.filter((r) => r.saved_at <= now && !deleted.has(r.id));
      const plan = planPrune(rows, now, DEFAULT_RETENTION, new Map([['media/f.jpg', { present: true, currentSynced: true, firstSeen: t0 }]]));
      for (const r of plan.delete) deleted.add(r.id);
      rows = rows.filter((r) => !deleted.has(r.id));
      kept = rows.length;
      // every promised point is still restorable, with the content that was live then
      const { daily, weekly } = restorePoints(now, DEFAULT_RETENTION);
      const ev = timeline(rows);
      for (const p of [...daily, ...weekly]) {
        if (p < t0 || !existedAt(p, t0, rows)) continue;
        const live = liveAt(ev, p);
        expect(live.kind, `point ${new Date(p).toISOString()} on day ${day}`).toBe('version');
        if (live.kind === 'version') expect(live.row.sha256).toBe(truthAt(p));
      }
      // and every version of the last 30 days is there
      for (const h of history) {
        if (h.t > now || h.t <= now - 30 * DAY_MS) continue;
        const prev = history[history.indexOf(h) - 1];
        if (prev) expect(rows.some((r) => r.sha256 === prev.sha), `version saved ${new Date(h.t).toISOString()}`).toBe(true);
      }
    }
    // 30 days of 5-hourly versions + 7 daily + 8 weekly points at most
    expect(kept).toBeLessThanOrEqual(Math.ceil((30 * 24) / 5) + 1 + 7 + 8);
  });
});

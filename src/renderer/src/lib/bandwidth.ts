// The weekly bandwidth schedule as the settings page shows it: pure helpers.
import type { BandwidthConfig, BandwidthWindow, Weekday } from '../../../shared/config';

export const WEEKDAYS: Weekday[] = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
export const WEEKDAY_NAMES: Record<Weekday, string> = { mon: 'Mon', tue: 'Tue', wed: 'Wed', thu: 'Thu', fri: 'Fri', sat: 'Sat', sun: 'Sun' };

function minutes(hhmm: string): number {
  const [h, m] = hhmm.split(':').map(Number);
  return (h ?? 0) * 60 + (m ?? 0);
}

/** Does the window cover this minute of this day? Windows may wrap past midnight into the next day. */
export function windowCovers(w: BandwidthWindow, day: Weekday, minute: number): boolean {
  const s = minutes(w.start);
  const e = minutes(w.end);
  const di = WEEKDAYS.indexOf(day);
  const prev = WEEKDAYS[(di + 6) % 7]!;
  if (s < e) return w.days.includes(day) && minute >= s && minute < e;
  // wraps (or covers the whole day when start === end)
  if (w.days.includes(day) && minute >= s) return true;
  if (w.days.includes(prev) && minute < e) return true;
  return false;
}

/** Bytes/s in force at this day and minute (0 = no limit). The first matching window wins. */
export function limitAt(cfg: BandwidthConfig, day: Weekday, minute: number): number {
  for (const w of cfg.schedule) if (windowCovers(w, day, minute)) return w.bytesPerSecond;
  return cfg.defaultBytesPerSecond;
}

/** 7 x 24 grid of limits, at the start of each hour. */
export function weekGrid(cfg: BandwidthConfig): number[][] {
  return WEEKDAYS.map((d) => Array.from({ length: 24 }, (_, h) => limitAt(cfg, d, h * 60)));
}

/** People think in megabits per second (the internet plan); the config stores bytes per second. */
export const mbitToBytes = (mbit: number): number => Math.round((mbit * 1_000_000) / 8);
export const bytesToMbit = (b: number): number => Math.round(((b * 8) / 1_000_000) * 10) / 10;

export function describeLimit(bps: number): string {
  return bps === 0 ? 'no limit' : `${bytesToMbit(bps)} Mbit/s`;
}

// Numbers, sizes and times as people read them (decimal units, like file managers on macOS and phones).

export function formatCount(n: number | undefined | null): string {
  if (n === undefined || n === null || !Number.isFinite(n)) return '–';
  return Math.round(n).toLocaleString('en-US');
}

export function formatBytes(n: number | undefined | null): string {
  if (n === undefined || n === null || !Number.isFinite(n) || n < 0) return '–';
  const units = ['bytes', 'KB', 'MB', 'GB', 'TB', 'PB'];
  let i = 0;
  let v = n;
  while (v >= 1000 && i < units.length - 1) {
    v /= 1000;
    i++;
  }
  if (i === 0) return `${Math.round(v)} ${v === 1 ? 'byte' : 'bytes'}`;
  return `${v >= 100 ? v.toFixed(0) : v.toFixed(1)} ${units[i]}`;
}

export function formatRate(bps: number | undefined | null): string {
  if (!bps || bps <= 0 || !Number.isFinite(bps)) return '';
  return `${formatBytes(bps)}/s`;
}

/** "about 3 minutes", "less than a minute", "about 2 hours" */
export function formatEta(seconds: number | undefined | null): string {
  if (seconds === undefined || seconds === null || !Number.isFinite(seconds) || seconds < 0) return '';
  if (seconds < 60) return 'less than a minute';
  const m = Math.round(seconds / 60);
  if (m < 60) return `about ${m} ${m === 1 ? 'minute' : 'minutes'}`;
  const h = Math.round(seconds / 360) / 10;
  if (h < 48) return `about ${h % 1 === 0 ? h.toFixed(0) : h.toFixed(1)} hours`;
  return `about ${Math.round(h / 24)} days`;
}

export function formatDuration(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return '';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${String(sec).padStart(2, '0')}` : `${m}:${String(sec).padStart(2, '0')}`;
}

/** "10:42" today, "Tue 10:42" this week, "6 May 2025, 10:42" otherwise. */
export function formatTime(ts: number | undefined | null, now = Date.now()): string {
  if (!ts) return '';
  const d = new Date(ts);
  const time = d.toLocaleTimeString('en-GB', { hour: '2-digit', minute: '2-digit' });
  const today = new Date(now);
  if (d.toDateString() === today.toDateString()) return time;
  if (Math.abs(now - ts) < 6 * 86400_000) return `${d.toLocaleDateString('en-GB', { weekday: 'short' })} ${time}`;
  return `${d.toLocaleDateString('en-GB', { day: 'numeric', month: 'short', year: 'numeric' })}, ${time}`;
}

export function formatRelative(ts: number | undefined | null, now = Date.now()): string {
  if (!ts) return '';
  const s = Math.round((ts - now) / 1000);
  const abs = Math.abs(s);
  const fmt = (n: number, unit: string) => `${n} ${unit}${n === 1 ? '' : 's'}`;
  let text: string;
  if (abs < 45) text = 'a few seconds';
  else if (abs < 3600) text = fmt(Math.round(abs / 60), 'minute');
  else if (abs < 86400 * 2) text = fmt(Math.round(abs / 3600), 'hour');
  else text = fmt(Math.round(abs / 86400), 'day');
  return s >= 0 ? `in ${text}` : `${text} ago`;
}

export function plural(n: number, one: string, many: string): string {
  return n === 1 ? one : many;
}

export function fileName(path: string): string {
  const i = path.lastIndexOf('/');
  return i >= 0 ? path.slice(i + 1) : path;
}

export function dirName(path: string): string {
  const i = path.lastIndexOf('/');
  return i >= 0 ? path.slice(0, i) : '';
}

/** A safe id from a label: "Cloudflare R2" -> "cloudflare-r2". */
export function slugify(label: string, fallback = 'item'): string {
  const s = label
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40);
  return /^[a-z0-9]/.test(s) ? s : fallback;
}

/** Files moving now (`now`), the number Triplicate chose for the link (`chosen`), its cap (`max`). */
export type AtOnce = { now: number; chosen: number; max: number; after?: string };

/**
 * The line of a destination card while files go to it: how many are in flight, and the number
 * Triplicate chose for the link (it rises while the throughput does and halves when the server
 * asks to slow down), below its cap. '' when nothing is being sent.
 */
export function sendingSentence(s: AtOnce | undefined): string {
  return atOnceSentence('Sending', s);
}

/** The same line for a restore that runs ("Restoring 12 files at once, …"); '' when no file is being fetched. */
export function restoringSentence(s: AtOnce | undefined): string {
  return atOnceSentence('Restoring', s);
}

function atOnceSentence(verb: string, s: AtOnce | undefined): string {
  if (!s || s.now <= 0) return '';
  const files = `${formatCount(s.now)} ${plural(s.now, 'file', 'files')}`;
  const cap = `at most ${formatCount(s.max)}`;
  if (s.after) return `${verb} ${files} at once while ${s.after} goes first: this computer cannot keep up with both. Then up to ${formatCount(s.chosen)} on this link (${cap}).`;
  if (s.now === s.chosen) return `${verb} ${files} at once, the number chosen for this link (${cap}).`;
  if (s.now < s.chosen) return `${verb} ${files} at once (up to ${formatCount(s.chosen)} on this link, ${cap}).`;
  return `${verb} ${files} at once, coming down to ${formatCount(s.chosen)} for this link (${cap}).`;
}

// HTTP semantics of the download server, as pure functions: Range / multi-range parsing,
// conditional requests (If-None-Match, If-Modified-Since, If-Match, If-Unmodified-Since,
// If-Range), Content-Disposition with an RFC 5987 filename*, and turning the path of a download
// URL into a file key while refusing every spelling of path traversal.
import type { IncomingHttpHeaders } from 'node:http';
import { KeyError } from '../../../shared/keys';

/** An inclusive byte span. */
export interface Span {
  start: number;
  end: number;
}

/** What is being served: its size and validators. */
export interface Representation {
  size: number;
  /** Quoted entity tag, `"<sha256>"` (strong) or `W/"..."` (weak). */
  etag: string;
  /** Last modification, ms since the epoch. */
  lastModified?: number;
}

export type Plan = { status: 200 } | { status: 206; ranges: Span[] } | { status: 304 } | { status: 412 } | { status: 416 };

/** More ranges than this in one request: the Range header is ignored (the whole file is sent). */
export const MAX_RANGES = 64;

/**
 * Parse a Range header against a size (RFC 9110 §14.2). Returns null when the header must be
 * ignored (absent, another unit, malformed, too many ranges), 'unsatisfiable' when no range
 * overlaps the content, else the spans (overlapping or adjacent ones coalesced, in order).
 */
export function parseRange(header: string | undefined, size: number): Span[] | 'unsatisfiable' | null {
  if (header === undefined) return null;
  if (header.length > 4096) return null;
  const m = /^\s*bytes\s*=\s*(.*)$/i.exec(header);
  if (!m) return null;
  const parts = m[1]!.split(',').map((p) => p.trim()).filter((p) => p !== '');
  if (parts.length === 0 || parts.length > MAX_RANGES) return null;
  const spans: Span[] = [];
  for (const p of parts) {
    const r = /^(\d*)\s*-\s*(\d*)$/.exec(p);
    if (!r) return null;
    const [, a, b] = r as unknown as [string, string, string];
    if (a === '' && b === '') return null;
    if (a === '') {
      // suffix: the last b bytes
      const n = b.length > 15 ? Number.MAX_SAFE_INTEGER : Number(b);
      if (n === 0 || size === 0) continue;
      spans.push({ start: Math.max(0, size - n), end: size - 1 });
      continue;
    }
    const start = a.length > 15 ? Number.MAX_SAFE_INTEGER : Number(a);
    const last = b === '' ? undefined : b.length > 15 ? Number.MAX_SAFE_INTEGER : Number(b);
    if (last !== undefined && last < start) return null; // invalid range-spec: ignore the header
    if (start >= size) continue; // unsatisfiable on its own
    spans.push({ start, end: Math.min(last ?? size - 1, size - 1) });
  }
  if (spans.length === 0) return 'unsatisfiable';
  return coalesce(spans);
}

/** Merge overlapping or adjacent spans (a client cannot make us send one byte twice). */
function coalesce(spans: Span[]): Span[] {
  if (spans.length < 2) return spans;
  const sorted = [...spans].sort((x, y) => x.start - y.start);
  let overlaps = false;
  for (let i = 1; i < sorted.length; i++) if (sorted[i]!.start <= sorted[i - 1]!.end + 1) overlaps = true;
  if (!overlaps) return spans; // keep the client's order
  const out: Span[] = [{ ...sorted[0]! }];
  for (const s of sorted.slice(1)) {
    const last = out[out.length - 1]!;
    if (s.start <= last.end + 1) last.end = Math.max(last.end, s.end);
    else out.push({ ...s });
  }
  return out;
}

/** Entity tags of an If-None-Match / If-Match value; '*' as the string '*'. */
export function parseEtagList(value: string): string[] {
  if (value.trim() === '*') return ['*'];
  return value.match(/(?:W\/)?"[^"]*"/g) ?? [];
}

const opaque = (tag: string) => (tag.startsWith('W/') ? tag.slice(2) : tag);
const isWeak = (tag: string) => tag.startsWith('W/');

function httpDate(value: string | undefined): number | undefined {
  if (!value || value.length > 100) return undefined;
  const t = Date.parse(value);
  return Number.isFinite(t) ? t : undefined;
}

const seconds = (ms: number) => Math.floor(ms / 1000);

/**
 * Decide the answer for a GET or HEAD (RFC 9110 §13.2.2 order): 412 for a failed If-Match /
 * If-Unmodified-Since, 304 for a matching If-None-Match / If-Modified-Since, then Range
 * (GET only, guarded by If-Range): 206 or 416; else 200.
 */
export function planResponse(method: string, h: IncomingHttpHeaders, rep: Representation): Plan {
  const ifMatch = h['if-match'];
  if (ifMatch !== undefined) {
    const tags = parseEtagList(ifMatch);
    const ok = tags.includes('*') || (!isWeak(rep.etag) && tags.some((t) => !isWeak(t) && t === rep.etag));
    if (!ok) return { status: 412 };
  } else {
    const ius = httpDate(h['if-unmodified-since']);
    if (ius !== undefined && rep.lastModified !== undefined && seconds(rep.lastModified) > seconds(ius)) return { status: 412 };
  }
  const inm = h['if-none-match'];
  if (inm !== undefined) {
    const tags = parseEtagList(inm);
    if (tags.includes('*') || tags.some((t) => opaque(t) === opaque(rep.etag))) return { status: 304 };
  } else {
    const ims = httpDate(h['if-modified-since']);
    if (ims !== undefined && rep.lastModified !== undefined && seconds(rep.lastModified) <= seconds(ims)) return { status: 304 };
  }
  if (method !== 'GET' || rep.size === 0) return { status: 200 };
  const range = h.range;
  if (range === undefined) return { status: 200 };
  const ifRange = h['if-range'];
  if (ifRange !== undefined && !ifRangeMatches(String(ifRange), rep)) return { status: 200 };
  const spans = parseRange(range, rep.size);
  if (spans === null) return { status: 200 };
  if (spans === 'unsatisfiable') return { status: 416 };
  return { status: 206, ranges: spans };
}

function ifRangeMatches(value: string, rep: Representation): boolean {
  const v = value.trim();
  if (v.startsWith('"') || v.startsWith('W/')) return !isWeak(v) && !isWeak(rep.etag) && v === rep.etag;
  const d = httpDate(v);
  return d !== undefined && rep.lastModified !== undefined && seconds(d) === seconds(rep.lastModified);
}

/** A weak validator for content whose SHA-256 is not known (yet). */
export function weakEtag(size: number, mtimeMs: number): string {
  return `W/"${size.toString(16)}-${Math.trunc(mtimeMs).toString(16)}"`;
}

/** `inline; filename="ascii"; filename*=UTF-8''percent-encoded` (RFC 6266 + RFC 5987). */
export function contentDisposition(type: 'inline' | 'attachment', name: string): string {
  const fallback = name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/[^\x20-\x7e]/gu, '_')
    .replace(/["\\%;]/g, '_') || 'download';
  let encoded: string;
  try {
    encoded = encodeURIComponent(name);
  } catch {
    encoded = encodeURIComponent(name.replace(/[\ud800-\udfff]/g, '\ufffd')); // a lone surrogate (possible in Windows names)
  }
  const star = encoded.replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `${type}; filename="${fallback}"; filename*=UTF-8''${star}`;
}

/** The multipart/byteranges framing around each part and at the end (RFC 9110 §14.6). */
export function multipartFraming(boundary: string, contentType: string, ranges: Span[], size: number): { heads: string[]; tail: string; length: number } {
  const heads = ranges.map((r) => `\r\n--${boundary}\r\ncontent-type: ${contentType}\r\ncontent-range: bytes ${r.start}-${r.end}/${size}\r\n\r\n`);
  const tail = `\r\n--${boundary}--\r\n`;
  let length = Buffer.byteLength(tail);
  ranges.forEach((r, i) => (length += Buffer.byteLength(heads[i]!) + (r.end - r.start + 1)));
  return { heads, tail, length };
}

// eslint-disable-next-line no-control-regex -- refusing control characters is the point
const BAD_CHARS = /[/\\\0\x01-\x1f\x7f]/;

/**
 * Turn the part of a download URL after `/files/` into a key. Each segment is percent-decoded
 * once; a decoded segment may not be empty, "." or "..", nor contain "/", "\", NUL or control
 * characters (so `%2e%2e`, `%2f`, `%5c`, `%00` are refused), and a segment that decodes a
 * second time into any of those (double encoding such as `%252e%252e`) is refused too.
 * A trailing "/" asks for a folder (`dir: true`).
 */
export function decodeKeyPath(raw: string): { key: string; dir: boolean } {
  if (raw.length === 0) throw new KeyError('the address names no file');
  if (raw.includes('\\')) throw new KeyError('the address contains a backslash');
  const segs = raw.split('/');
  const dir = segs[segs.length - 1] === '';
  if (dir) segs.pop();
  if (segs.length === 0) throw new KeyError('the address names no file');
  const out = segs.map((seg) => {
    let d: string;
    try {
      d = decodeURIComponent(seg);
    } catch {
      throw new KeyError('the address has a malformed %-escape');
    }
    if (d === '' || d === '.' || d === '..') throw new KeyError('the address has an empty, "." or ".." part');
    if (BAD_CHARS.test(d)) throw new KeyError('the address has a "/", "\\", NUL or control character inside a name');
    if (d !== seg && /%[0-9a-f]{2}/i.test(d)) {
      let twice = d;
      try {
        twice = decodeURIComponent(d);
      } catch {
        /* a literal "%" in a name */
      }
      if (twice === '.' || twice === '..' || BAD_CHARS.test(twice)) throw new KeyError('the address is encoded twice');
    }
    return d;
  });
  return { key: out.join('/') + (dir ? '/' : ''), dir };
}

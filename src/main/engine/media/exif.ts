// The capture date of a photo from its EXIF block (as sharp's metadata() returns it): DateTimeOriginal
// (with OffsetTimeOriginal when the camera wrote one), else the IFD0 DateTime. A small, bounded TIFF
// reader: no dependency, never throws.

const TAG_EXIF_IFD = 0x8769;
const TAG_DATETIME = 0x0132;
const TAG_DATETIME_ORIGINAL = 0x9003;
const TAG_OFFSET_TIME_ORIGINAL = 0x9011;

interface Tiff {
  buf: Buffer;
  base: number;
  le: boolean;
}

function u16(t: Tiff, at: number): number | undefined {
  const p = t.base + at;
  if (p < 0 || p + 2 > t.buf.length) return undefined;
  return t.le ? t.buf.readUInt16LE(p) : t.buf.readUInt16BE(p);
}

function u32(t: Tiff, at: number): number | undefined {
  const p = t.base + at;
  if (p < 0 || p + 4 > t.buf.length) return undefined;
  return t.le ? t.buf.readUInt32LE(p) : t.buf.readUInt32BE(p);
}

/** The entries of the IFD at `offset`: tag -> (type, count, value offset field position). */
function readIfd(t: Tiff, offset: number): Map<number, { type: number; count: number; at: number }> {
  const out = new Map<number, { type: number; count: number; at: number }>();
  const n = u16(t, offset);
  if (n === undefined || n > 1000) return out;
  for (let i = 0; i < n; i++) {
    const e = offset + 2 + i * 12;
    const tag = u16(t, e);
    const type = u16(t, e + 2);
    const count = u32(t, e + 4);
    if (tag === undefined || type === undefined || count === undefined) break;
    out.set(tag, { type, count, at: e + 8 });
  }
  return out;
}

function ascii(t: Tiff, entry: { type: number; count: number; at: number } | undefined): string | undefined {
  if (!entry || entry.type !== 2 || entry.count === 0 || entry.count > 256) return undefined;
  const start = entry.count <= 4 ? entry.at : u32(t, entry.at);
  if (start === undefined) return undefined;
  const p = t.base + start;
  if (p < 0 || p + entry.count > t.buf.length) return undefined;
  return t.buf.toString('latin1', p, p + entry.count).replace(/\0.*$/s, '').trim();
}

/** "2021:05:06 07:08:09" (+ "+02:00") -> ms; local time when no offset is known. */
export function parseExifDate(s: string | undefined, offset?: string): number | undefined {
  const m = s ? /^(\d{4}):(\d{2}):(\d{2})[ T](\d{2}):(\d{2}):(\d{2})/.exec(s) : null;
  if (!m) return undefined;
  const [y, mo, d, h, mi, se] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  if (y < 1971 || y > 2200 || mo < 1 || mo > 12 || d < 1 || d > 31) return undefined;
  const o = offset ? /^([+-])(\d{2}):?(\d{2})$/.exec(offset.trim()) : null;
  if (o) {
    const sign = o[1] === '-' ? -1 : 1;
    return Date.UTC(y, mo - 1, d, h, mi, se) - sign * (Number(o[2]) * 60 + Number(o[3])) * 60_000;
  }
  const t = new Date(y, mo - 1, d, h, mi, se).getTime();
  return Number.isFinite(t) ? t : undefined;
}

/** Capture time (ms) from an EXIF block, or undefined. */
export function exifCaptureDate(exif: Buffer | undefined): number | undefined {
  if (!exif || exif.length < 14) return undefined;
  try {
    const base = exif.toString('latin1', 0, 6) === 'Exif\0\0' ? 6 : 0;
    const order = exif.toString('latin1', base, base + 2);
    if (order !== 'II' && order !== 'MM') return undefined;
    const t: Tiff = { buf: exif, base, le: order === 'II' };
    if (u16(t, 2) !== 42) return undefined;
    const ifd0Offset = u32(t, 4);
    if (ifd0Offset === undefined) return undefined;
    const ifd0 = readIfd(t, ifd0Offset);
    const exifPtr = ifd0.get(TAG_EXIF_IFD);
    if (exifPtr) {
      const off = u32(t, exifPtr.at);
      if (off !== undefined) {
        const sub = readIfd(t, off);
        const v = parseExifDate(ascii(t, sub.get(TAG_DATETIME_ORIGINAL)), ascii(t, sub.get(TAG_OFFSET_TIME_ORIGINAL)));
        if (v !== undefined) return v;
      }
    }
    return parseExifDate(ascii(t, ifd0.get(TAG_DATETIME)));
  } catch {
    return undefined;
  }
}

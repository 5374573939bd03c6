// What a file's first bytes say about it, for the burst guard (guard.ts): does the content look
// like what its name says (the magic number of its format), or like noise (encrypted bytes)?
// Pure and cheap: it reads the head the hash read anyway (sha256File's onHead).

/**
 * - ok: the head matches the extension's format, or nothing says otherwise;
 * - mismatch: a format this extension always starts with is not there (a .jpg without FF D8 FF);
 * - noise: no known format at all and the bytes are as random as encrypted data.
 */
export type Looks = 'ok' | 'mismatch' | 'noise';

/** Bytes of the head judged: enough for every magic number here and a fair entropy sample. */
export const SNIFF_BYTES = 64 * 1024;
/** Under this many bytes the entropy of even random data reads low: no noise verdict. */
const ENTROPY_MIN_BYTES = 4096;
/** Bits per byte above which a head with no known format counts as noise (random 4 KiB reads ~7.95). */
const NOISE_BITS = 7.8;

const at = (b: Buffer, off: number, sig: string | number[]): boolean => {
  const s = typeof sig === 'string' ? Buffer.from(sig, 'latin1') : Buffer.from(sig);
  return b.length >= off + s.length && b.subarray(off, off + s.length).equals(s);
};

const tiff = (b: Buffer) => at(b, 0, 'II*\0') || at(b, 0, 'MM\0*');
const isoBmff = (b: Buffer) => at(b, 4, 'ftyp');
const quicktime = (b: Buffer) => ['ftyp', 'moov', 'mdat', 'wide', 'free', 'skip', 'pnot'].some((box) => at(b, 4, box));
const mpegTs = (b: Buffer) => b[0] === 0x47 || b[4] === 0x47;
const mpegPs = (b: Buffer) => at(b, 0, [0, 0, 1, 0xba]) || at(b, 0, [0, 0, 1, 0xb3]);

/** Formats whose files always start the same way, by extension (shared/keys' media kinds). */
const BY_EXTENSION: Record<string, (b: Buffer) => boolean> = {
  jpg: (b) => at(b, 0, [0xff, 0xd8, 0xff]),
  jpeg: (b) => at(b, 0, [0xff, 0xd8, 0xff]),
  png: (b) => at(b, 0, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
  gif: (b) => at(b, 0, 'GIF8'),
  webp: (b) => at(b, 0, 'RIFF') && at(b, 8, 'WEBP'),
  bmp: (b) => at(b, 0, 'BM'),
  tif: tiff,
  tiff: tiff,
  dng: tiff,
  nef: tiff,
  arw: tiff,
  cr2: tiff,
  heic: isoBmff,
  heif: isoBmff,
  avif: isoBmff,
  mp4: isoBmff,
  m4v: isoBmff,
  '3gp': isoBmff,
  mov: quicktime,
  avi: (b) => at(b, 0, 'RIFF') && at(b, 8, 'AVI '),
  mkv: (b) => at(b, 0, [0x1a, 0x45, 0xdf, 0xa3]),
  webm: (b) => at(b, 0, [0x1a, 0x45, 0xdf, 0xa3]),
  wmv: (b) => at(b, 0, [0x30, 0x26, 0xb2, 0x75]),
  mpg: mpegPs,
  mpeg: mpegPs,
  mts: mpegTs,
  m2ts: mpegTs,
};

/** Other formats a file of any name may be (archives, documents, audio): such a head is never noise. */
const ANY_FORMAT: ((b: Buffer) => boolean)[] = [
  ...new Set(Object.values(BY_EXTENSION).filter((f) => f !== mpegTs)),
  (b) => at(b, 0, 'PK\x03\x04') || at(b, 0, 'PK\x05\x06'),
  (b) => at(b, 0, '%PDF'),
  (b) => at(b, 0, [0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c]),
  (b) => at(b, 0, [0x1f, 0x8b]),
  (b) => at(b, 0, 'BZh'),
  (b) => at(b, 0, [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]),
  (b) => at(b, 0, [0x28, 0xb5, 0x2f, 0xfd]),
  (b) => at(b, 0, 'Rar!'),
  (b) => at(b, 0, 'OggS') || at(b, 0, 'fLaC') || at(b, 0, 'ID3') || at(b, 0, 'RIFF'),
  (b) => at(b, 0, '\x7fELF') || at(b, 0, 'MZ'),
];

/** Shannon entropy of the bytes, in bits per byte (0..8). */
export function entropy(b: Buffer): number {
  if (b.length === 0) return 0;
  const counts = new Uint32Array(256);
  for (let i = 0; i < b.length; i++) counts[b[i]!]!++;
  let h = 0;
  for (let i = 0; i < 256; i++) {
    const c = counts[i]!;
    if (c === 0) continue;
    const p = c / b.length;
    h -= p * Math.log2(p);
  }
  return h;
}

/** Does the head of a file with this extension (lower case, no dot) look like its format, or like noise? */
export function sniff(ext: string, head: Buffer): Looks {
  if (head.length < 16) return 'ok'; // too short to say anything
  const own = BY_EXTENSION[ext];
  if (own) return own(head) ? 'ok' : 'mismatch';
  if (head.length < ENTROPY_MIN_BYTES || ANY_FORMAT.some((f) => f(head))) return 'ok';
  return entropy(head) >= NOISE_BITS ? 'noise' : 'ok';
}

/** Extensions whose format the guard knows (a file renamed to another one is not "renamed away"). */
export function knownFormat(ext: string): boolean {
  return ext in BY_EXTENSION;
}

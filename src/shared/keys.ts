// Key rules shared by the engine, the download server and the UI.
// A file is named by (root id, relative path). Its object key on a target is
// `<target prefix><root id>/<relative path>` with "/" separators, NFC-normalized,
// so a person can browse the bucket without Triplicate.

export class KeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeyError';
  }
}

/** Longest object key S3 accepts, in UTF-8 bytes. */
export const MAX_KEY_BYTES = 1024;

/**
 * Normalize a relative path taken from the local file system (any OS) into the catalog's form:
 * "/" separators, NFC, no leading "./" or "/", no empty, "." or ".." segments.
 * Throws KeyError for a path that escapes its root or is not representable.
 */
export function normalizeRelPath(rel: string): string {
  if (rel.includes('\0')) throw new KeyError('the path contains a NUL character');
  const parts = rel.replace(/\\/g, '/').normalize('NFC').split('/');
  const out: string[] = [];
  for (const p of parts) {
    if (p === '' || p === '.') continue;
    if (p === '..') throw new KeyError(`the path "${rel}" leaves its folder ("..")`);
    out.push(p);
  }
  if (out.length === 0) throw new KeyError('the path is empty');
  if (/^[a-zA-Z]:$/.test(out[0]!)) throw new KeyError(`the path "${rel}" is absolute`);
  return out.join('/');
}

/** Catalog key of a file: `<root id>/<relative path>`; this is also the download-server key. */
export function fileKey(rootId: string, relPath: string): string {
  return `${rootId}/${normalizeRelPath(relPath)}`;
}

/** Split `<root id>/<relative path>`; throws KeyError on anything malformed or escaping. */
export function parseFileKey(key: string): { rootId: string; relPath: string } {
  const slash = key.indexOf('/');
  if (slash <= 0) throw new KeyError(`"${key}" is not of the form <folder id>/<path>`);
  const rootId = key.slice(0, slash);
  if (!/^[a-z0-9][a-z0-9_-]{0,39}$/.test(rootId)) throw new KeyError(`"${rootId}" is not a folder id`);
  const rest = key.slice(slash + 1);
  if (rest.startsWith('/')) throw new KeyError(`the path in "${key}" is absolute`);
  const relPath = normalizeRelPath(rest);
  if (relPath !== rest.normalize('NFC')) throw new KeyError(`"${key}" is not a canonical key`);
  return { rootId, relPath };
}

/** Object key on a target. */
export function objectKey(targetPrefix: string, rootId: string, relPath: string): string {
  const key = targetPrefix + fileKey(rootId, relPath);
  if (utf8Length(key) > MAX_KEY_BYTES) {
    throw new KeyError(`the path is too long for object storage (${utf8Length(key)} bytes, the limit is ${MAX_KEY_BYTES}); shorten the folder or file name`);
  }
  return key;
}

/** Where the previous content of a file goes before it is overwritten or after it is deleted. */
export function versionKey(targetPrefix: string, versionsPrefix: string, rootId: string, relPath: string, savedAtMs: number, sha256: string): string {
  const stamp = new Date(savedAtMs).toISOString().replace(/[:]/g, '-');
  return `${targetPrefix}${versionsPrefix}${fileKey(rootId, relPath)}/${stamp}_${sha256.slice(0, 16)}`;
}

export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

export const VIDEO_EXTENSIONS = ['mov', 'avi', 'mts', 'm2ts', 'mkv', 'wmv', '3gp', 'm4v', 'mp4', 'webm', 'mpg', 'mpeg'] as const;
/** Extensions the transcoder converts to MP4 (mp4 and webm already play in browsers). */
export const TRANSCODE_EXTENSIONS = ['mov', 'avi', 'mts', 'm2ts', 'mkv', 'wmv', '3gp', 'm4v', 'mpg', 'mpeg'] as const;
export const IMAGE_EXTENSIONS = ['jpg', 'jpeg', 'png', 'gif', 'webp', 'heic', 'heif', 'tif', 'tiff', 'bmp', 'avif', 'dng', 'cr2', 'nef', 'arw'] as const;

export function extensionOf(path: string): string {
  const base = path.slice(path.lastIndexOf('/') + 1);
  const dot = base.lastIndexOf('.');
  return dot > 0 ? base.slice(dot + 1).toLowerCase() : '';
}

export type MediaKind = 'image' | 'video' | 'other';
export function mediaKindOf(path: string): MediaKind {
  const ext = extensionOf(path);
  if ((VIDEO_EXTENSIONS as readonly string[]).includes(ext)) return 'video';
  if ((IMAGE_EXTENSIONS as readonly string[]).includes(ext)) return 'image';
  return 'other';
}

export function needsTranscode(path: string): boolean {
  return (TRANSCODE_EXTENSIONS as readonly string[]).includes(extensionOf(path));
}

const MIME: Record<string, string> = {
  jpg: 'image/jpeg', jpeg: 'image/jpeg', png: 'image/png', gif: 'image/gif', webp: 'image/webp', avif: 'image/avif',
  heic: 'image/heic', heif: 'image/heif', tif: 'image/tiff', tiff: 'image/tiff', bmp: 'image/bmp', svg: 'image/svg+xml',
  mp4: 'video/mp4', m4v: 'video/x-m4v', mov: 'video/quicktime', webm: 'video/webm', mkv: 'video/x-matroska',
  avi: 'video/x-msvideo', wmv: 'video/x-ms-wmv', '3gp': 'video/3gpp', mts: 'video/mp2t', m2ts: 'video/mp2t',
  mpg: 'video/mpeg', mpeg: 'video/mpeg', mp3: 'audio/mpeg', wav: 'audio/wav', m4a: 'audio/mp4', aac: 'audio/aac',
  pdf: 'application/pdf', txt: 'text/plain; charset=utf-8', json: 'application/json', zip: 'application/zip',
};
export function contentTypeOf(path: string): string {
  return MIME[extensionOf(path)] ?? 'application/octet-stream';
}

// ---- keys as the operator sees them ------------------------------------------------------------
// Every page names a folder by its label ("Collection photos/Gallery 2/x.jpg"); the API and the
// download server use its id ("photos/Gallery 2/x.jpg"), the stable form. Labels need not be
// unique, so a label form that could mean two folders is refused with their ids.

interface FolderName {
  id: string;
  label: string;
}

const COUNT_WORDS = ['No', 'One', 'Two', 'Three', 'Four', 'Five'];

/**
 * The id form of a key given in either form: `<folder id>/<path>` as it is (an id always means its
 * folder), else `<folder label>/<path>` with the label replaced by the id (exact case first, then
 * any case). Throws KeyError with a sentence when no folder or more than one has that name.
 */
export function resolveKeyForm(key: string, roots: readonly FolderName[]): string {
  const slash = key.indexOf('/');
  if (slash <= 0) return key;
  if (roots.some((r) => r.id === key.slice(0, slash))) return key;
  const nfc = key.normalize('NFC');
  const byLabel = (same: (a: string, b: string) => boolean) => {
    const hits = roots.filter((r) => nfc.length > r.label.length && nfc[r.label.length] === '/' && same(nfc.slice(0, r.label.length), r.label.normalize('NFC')));
    const longest = Math.max(0, ...hits.map((r) => r.label.length));
    return hits.filter((r) => r.label.length === longest);
  };
  let hits = byLabel((a, b) => a === b);
  if (hits.length === 0) hits = byLabel((a, b) => a.toLowerCase() === b.toLowerCase());
  if (hits.length === 1) return `${hits[0]!.id}${nfc.slice(hits[0]!.label.length)}`;
  if (hits.length > 1) {
    const label = nfc.slice(0, hits[0]!.label.length);
    const n = COUNT_WORDS[hits.length] ?? String(hits.length);
    throw new KeyError(`${n} folders are called "${label}" (ids ${hits.map((r) => r.id).join(', ')}): use the id, for example ${hits[0]!.id}${nfc.slice(label.length)}.`);
  }
  const first = key.slice(0, slash);
  const all = roots.map((r) => `${r.label} (id ${r.id})`).join(', ');
  throw new KeyError(`There is no folder called "${first}". ${roots.length ? `The folders are: ${all}.` : 'Add a folder first.'}`);
}

/** The label form of an id-form key (`Collection photos/Gallery 2/x.jpg`); the key as it is when its folder is unknown. */
export function keyWithLabel(key: string, roots: readonly FolderName[]): string {
  const slash = key.indexOf('/');
  const root = slash > 0 ? roots.find((r) => r.id === key.slice(0, slash)) : undefined;
  return root ? `${root.label}${key.slice(slash)}` : key;
}

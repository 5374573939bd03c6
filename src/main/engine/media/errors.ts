// Errors of the media layer. Every failure the queue sees is a MediaError with:
// - `reason`: one plain sentence (or two) for the operator, shown next to the file;
// - `permanent`: true when retrying cannot help (skip the file, keep and back up the original);
// - `code`: a stable machine name for the queue and the tests;
// - `detail`: the technical part (ffmpeg's last stderr lines, errno), shown one click away.

export type MediaErrorCode =
  /** The file is empty (0 bytes). Permanent. */
  | 'empty'
  /** ffprobe cannot read it as media at all (text file renamed .mov, random bytes). Permanent. */
  | 'not-media'
  /** Readable media but no moving picture: a still image, or only cover art. Permanent. */
  | 'not-video'
  /** Only sound. Permanent. */
  | 'audio-only'
  /** Broken container, zero duration, or the decoder gave up. Permanent. */
  | 'corrupt'
  /** The file is shorter than its header says (copy cut off): the MP4 would be cut too. Permanent. */
  | 'truncated'
  /** Beyond the resolution limit (too much memory and time for a backup box). Permanent. */
  | 'too-large'
  /** An image format the thumbnailer cannot read. Permanent. */
  | 'unsupported'
  /** Every output name is taken by files that are not ours: we never overwrite them. Permanent. */
  | 'name-conflict'
  /** The output did not pass the ffprobe check for a reason other than truncation. Transient. */
  | 'verify-failed'
  /** No space left while writing the output. Transient (retry once space is freed). */
  | 'disk-full'
  /** The source vanished or cannot be opened right now. Transient (see the queue's sibling rule). */
  | 'source-missing'
  /**
   * ffmpeg/ffprobe missing or not runnable. Not the file's fault: transient, and the queue should
   * pause all media work and show the reason once instead of failing every file.
   */
  | 'ffmpeg-missing'
  /** ffmpeg failed for a reason we do not recognise. Transient (the queue's backoff limits retries). */
  | 'ffmpeg-failed'
  /** Made no progress for too long and was stopped. Transient. */
  | 'stalled'
  /** Cancelled through the AbortSignal. Transient: the job simply runs again later. */
  | 'aborted'
  /** Any other file system error (permissions, I/O). Transient. */
  | 'io';

const PERMANENT: ReadonlySet<MediaErrorCode> = new Set<MediaErrorCode>([
  'empty',
  'not-media',
  'not-video',
  'audio-only',
  'corrupt',
  'truncated',
  'too-large',
  'unsupported',
  'name-conflict',
]);

export class MediaError extends Error {
  readonly code: MediaErrorCode;
  /** Plain sentence for the operator. Same as `message`. */
  readonly reason: string;
  /** Skip the file, do not retry. The original is always untouched and still backed up. */
  readonly permanent: boolean;
  /** Technical detail (stderr tail, errno), never shown as the headline. */
  readonly detail?: string;

  constructor(code: MediaErrorCode, reason: string, opts: { detail?: string; cause?: unknown; permanent?: boolean } = {}) {
    super(reason, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'MediaError';
    this.code = code;
    this.reason = reason;
    this.permanent = opts.permanent ?? PERMANENT.has(code);
    if (opts.detail) this.detail = opts.detail;
  }

  toJSON(): { code: MediaErrorCode; reason: string; permanent: boolean; detail?: string } {
    return { code: this.code, reason: this.reason, permanent: this.permanent, ...(this.detail ? { detail: this.detail } : {}) };
  }
}

export function isMediaError(e: unknown): e is MediaError {
  return e instanceof MediaError;
}

export function isPermanentMediaError(e: unknown): boolean {
  return e instanceof MediaError && e.permanent;
}

export function abortedError(what = 'The conversion'): MediaError {
  return new MediaError('aborted', `${what} was cancelled. It runs again the next time the queue picks the file.`);
}

export function errnoOf(e: unknown): string | undefined {
  return typeof e === 'object' && e !== null && 'code' in e && typeof (e as { code: unknown }).code === 'string'
    ? (e as { code: string }).code
    : undefined;
}

const DISK_FULL_RE = /No space left on device|ENOSPC|Disk quota exceeded|EDQUOT/i;

export function looksLikeDiskFull(e: unknown, stderr = ''): boolean {
  const code = errnoOf(e);
  if (code === 'ENOSPC' || code === 'EDQUOT') return true;
  const msg = e instanceof Error ? e.message : typeof e === 'string' ? e : '';
  return DISK_FULL_RE.test(msg) || DISK_FULL_RE.test(stderr);
}

export function diskFullError(dir: string, detail?: string, cause?: unknown): MediaError {
  return new MediaError(
    'disk-full',
    `The disk holding ${dir} is full, so the converted copy could not be written. Free some space there; Triplicate tries again later. The original is untouched.`,
    { detail, cause },
  );
}

/** Map a file system error on `path` to a MediaError (disk full, missing, other I/O). */
export function fsError(e: unknown, path: string, doing: string): MediaError {
  if (e instanceof MediaError) return e;
  const code = errnoOf(e);
  const detail = e instanceof Error ? e.message : String(e);
  if (looksLikeDiskFull(e)) return diskFullError(dirnameOf(path), detail, e);
  if (code === 'ENOENT') {
    return new MediaError('source-missing', `${path} is no longer there. It may have been moved or renamed.`, { detail, cause: e });
  }
  if (code === 'EACCES' || code === 'EPERM') {
    return new MediaError('io', `Triplicate is not allowed to ${doing} ${path}. Check the folder's permissions for the account Triplicate runs as.`, { detail, cause: e });
  }
  return new MediaError('io', `Triplicate could not ${doing} ${path}. Check that the disk is connected and healthy.`, { detail, cause: e });
}

function dirnameOf(p: string): string {
  const i = Math.max(p.lastIndexOf('/'), p.lastIndexOf('\\'));
  return i > 0 ? p.slice(0, i) : p;
}

/** Last few non-empty lines of a tool's stderr, for `detail`. */
export function tail(text: string, lines = 8): string {
  return text
    .split(/\r?\n|\r/)
    .map((l) => l.trimEnd())
    .filter((l) => l.length > 0 && !/^\s*(frame|size)=/.test(l))
    .slice(-lines)
    .join('\n');
}

// Which files in a storage root are backed up: include/exclude globs (picomatch) on the relative
// path, plus system and temporary files nobody wants in a backup.
import picomatch from 'picomatch';

/** Names never backed up: OS litter, NAS metadata, partial downloads, our own temp files. */
export const BUILTIN_EXCLUDES = [
  '**/.DS_Store', '**/._*', '**/Thumbs.db', '**/desktop.ini', '**/.Spotlight-V100/**', '**/.Trashes/**', '**/.fseventsd/**',
  '**/$RECYCLE.BIN/**', '**/System Volume Information/**', '**/@eaDir/**', '**/#recycle/**', '**/.snapshot/**',
  '**/*.tmp', '**/*.temp', '**/*.crdownload', '**/*.part', '**/*.partial', '**/~$*', '**/.~lock.*',
  '**/*.part-*', '**/.triplicate/**', '**/.triplicate-*',
];

export type PathFilter = (relPath: string) => boolean;

export function makeFilter(include: string[], exclude: string[]): PathFilter {
  const opts = { dot: true, nocase: process.platform !== 'linux' };
  const inc = include.length ? picomatch(include, opts) : null;
  const exc = picomatch([...BUILTIN_EXCLUDES, ...exclude], opts);
  return (rel) => (inc === null || inc(rel)) && !exc(rel);
}

/** True when a directory can be skipped entirely (saves walking NAS metadata trees). */
export function makeDirFilter(exclude: string[]): PathFilter {
  const opts = { dot: true, nocase: process.platform !== 'linux' };
  const exc = picomatch([...BUILTIN_EXCLUDES, ...exclude].filter((g) => g.endsWith('/**')).map((g) => g.slice(0, -3)), opts);
  return (relDir) => !exc(relDir);
}

// Which files in a storage root are backed up: include/exclude globs (picomatch) on the relative
// path, plus system and temporary files nobody wants in a backup.
import picomatch from 'picomatch';

/** Names never backed up: OS litter, NAS metadata, partial downloads, our own temp files. */
/** The temp name a restore writes before the rename (under `.triplicate-*`, excluded below). */
export const RESTORE_TEMP_PREFIX = '.triplicate-restore-';

export const BUILTIN_EXCLUDES = [
  '**/.DS_Store', '**/._*', '**/Thumbs.db', '**/desktop.ini', '**/.Spotlight-V100/**', '**/.Trashes/**', '**/.fseventsd/**',
  '**/$RECYCLE.BIN/**', '**/System Volume Information/**', '**/@eaDir/**', '**/#recycle/**', '**/.snapshot/**',
  '**/*.tmp', '**/*.temp', '**/*.crdownload', '**/*.part', '**/*.partial', '**/~$*', '**/.~lock.*',
  '**/*.part-*', '**/.triplicate/**', '**/.triplicate-*',
];

export type PathFilter = (relPath: string) => boolean;

// A pattern without "/" is a file name in any folder ("*.key" takes keys/x.key too), as in
// .gitignore and rclone: what an operator writing "*.tmp" means. One with a "/" is a path from the
// folder's top ("private/**").
function anyDepth(globs: string[]): string[] {
  return globs.map((g) => (g.includes('/') ? g : `**/${g}`));
}

export function makeFilter(include: string[], exclude: string[]): PathFilter {
  const opts = { dot: true, nocase: process.platform !== 'linux' };
  const inc = include.length ? anyOf(anyDepth(include), opts) : null;
  const exc = anyOf([...BUILTIN_EXCLUDES, ...anyDepth(exclude)], opts);
  return (rel) => (inc === null || inc(rel)) && !exc(rel);
}

/**
 * A list of globs as one fast test (what picomatch(list) does one glob at a time): the scanner
 * tests every file of a 100,000-file folder. Globs of the form "** / name-glob" (no other slash) are
 * tested on the file name only, "** / literal / **" as a set of names of path segments, the rest as one
 * regular expression on the whole path.
 */
function anyOf(globs: string[], opts: { dot: boolean; nocase: boolean }): PathFilter {
  const names: string[] = [];
  const dirs = new Set<string>();
  const rest: string[] = [];
  for (const g of globs) {
    const dir = /^\*\*\/([^/*?[\]{}()!\\]+)\/\*\*$/.exec(g);
    if (dir) dirs.add(opts.nocase ? dir[1]!.toLowerCase() : dir[1]!);
    else if (g.startsWith('**/') && !g.slice(3).includes('/') && !g.slice(3).includes('**')) names.push(g.slice(3));
    else rest.push(g);
  }
  let nameRe: RegExp | null;
  let restRe: RegExp | null;
  try {
    const one = (list: string[]) => (list.length ? new RegExp(list.map((g) => picomatch.makeRe(g, opts).source).join('|'), opts.nocase ? 'i' : '') : null);
    nameRe = one(names);
    restRe = one(rest);
  } catch {
    return picomatch(globs, opts);
  }
  return (rel) => {
    const slash = rel.lastIndexOf('/');
    if (nameRe && nameRe.test(slash < 0 ? rel : rel.slice(slash + 1))) return true;
    if (dirs.size) {
      // picomatch's "**/x/**" takes in x itself too, file or folder
      for (const seg of rel.split('/')) if (dirs.has(opts.nocase ? seg.toLowerCase() : seg)) return true;
    }
    return restRe !== null && restRe.test(rel);
  };
}
/** True when a directory can be skipped entirely (saves walking NAS metadata trees). */
export function makeDirFilter(exclude: string[]): PathFilter {
  const opts = { dot: true, nocase: process.platform !== 'linux' };
  const exc = picomatch([...BUILTIN_EXCLUDES, ...exclude].filter((g) => g.endsWith('/**')).map((g) => g.slice(0, -3)), opts);
  return (relDir) => !exc(relDir);
}

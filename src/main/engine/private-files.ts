// The data dir holds secrets: the S3 keys (config.json), the admin token, the link signing key (in
// the catalog) and logs that name files and addresses. On POSIX it is 0700 and every file
// Triplicate keeps in it 0600, whatever the umask: files are created with those modes, and what an
// older version (or a copy made by hand) left open is tightened at start. Windows keeps the folder's
// ACLs (the user's profile, or ProgramData for the service).
import { chmodSync, closeSync, mkdirSync, openSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

export const PRIVATE_FILE_MODE = 0o600;
export const PRIVATE_DIR_MODE = 0o700;
const POSIX = process.platform !== 'win32';

/** Create a folder (and its parents) that only this user may enter. */
export function privateDir(path: string): void {
  mkdirSync(path, { recursive: true, mode: PRIVATE_DIR_MODE });
  if (POSIX) chmodSync(path, PRIVATE_DIR_MODE);
}

/** Create an empty file 0600 unless it exists (SQLite then gives its WAL and SHM the same mode). */
export function privateFile(path: string): void {
  closeSync(openSync(path, 'a', PRIVATE_FILE_MODE));
}

/**
 * The data dir 0700; its files and those of its sub-folders 0600, the sub-folders 0700. Files deeper
 * down (the thumbnail cache's) are made private when written; the folders around them keep others out.
 */
export function tightenDataDir(dataDir: string): void {
  privateDir(dataDir);
  if (!POSIX) return;
  const tighten = (dir: string, depth: number) => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const d of entries) {
      const p = join(dir, d.name);
      const want = d.isDirectory() ? PRIVATE_DIR_MODE : d.isFile() ? PRIVATE_FILE_MODE : null;
      if (want === null) continue;
      try {
        if ((statSync(p).mode & 0o777) !== want) chmodSync(p, want);
      } catch {}
      if (d.isDirectory() && depth > 0) tighten(p, depth - 1);
    }
  };
  tighten(dataDir, 1);
}

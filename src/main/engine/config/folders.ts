// Which folders may be backed up (roots) or receive copies (folder destinations). Triplicate's own
// data folder holds the admin access key, config.json (the destinations' keys) and catalog.db (the
// link signing key): it is never a root, inside one, or around one. Nor is the whole disk or a
// system folder. Paths are compared as real paths (links and ".." resolved), ignoring case where
// the file system does (Windows, macOS).
import { realpathSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, join, posix, win32 } from 'node:path';
import type { Config } from '../../../shared/config';

type Platform = NodeJS.Platform;

function pathOf(platform: Platform): typeof posix {
  return platform === 'win32' ? win32 : posix;
}

function foldsCase(platform: Platform): boolean {
  return platform === 'win32' || platform === 'darwin';
}

/**
 * The real path of `p`: links resolved in the part that exists (a share not mounted yet, a folder
 * not created yet keep the rest as written). Another platform's paths (rules tested on Linux) are
 * only normalized.
 */
export function realPath(p: string, platform: Platform = process.platform): string {
  const path = pathOf(platform);
  const abs = path.resolve(p);
  if (platform !== process.platform) return abs;
  const rest: string[] = [];
  let cur = abs;
  for (;;) {
    try {
      return join(realpathSync.native(cur), ...rest.reverse());
    } catch {
      const up = dirname(cur);
      if (up === cur) return abs;
      rest.push(basename(cur));
      cur = up;
    }
  }
}

/** The form paths are compared in: real, without a trailing separator, lower case where case is ignored. */
function comparable(p: string, platform: Platform): string {
  const path = pathOf(platform);
  let r = realPath(p, platform);
  const root = path.parse(r).root;
  while (r.length > root.length && (r.endsWith('/') || r.endsWith(path.sep))) r = r.slice(0, -1);
  return foldsCase(platform) ? r.toLowerCase() : r;
}

function within(p: string, dir: string, platform: Platform): boolean {
  if (p === dir) return true;
  const sep = pathOf(platform).sep;
  return p.startsWith(dir.endsWith(sep) ? dir : dir + sep);
}

/** Triplicate's own files: the data folder, and the config file (which may live elsewhere). */
export class OwnData {
  readonly dataDir: string;
  readonly configFile: string;

  constructor(dataDir: string, configFile: string) {
    this.dataDir = realPath(dataDir);
    this.configFile = realPath(configFile);
  }

  /** Is this real path one of Triplicate's own files (under the data folder, or the config file)? */
  covers(real: string, platform: Platform = process.platform): boolean {
    const c = comparable(real, platform);
    return within(c, comparable(this.dataDir, platform), platform) || c === comparable(this.configFile, platform);
  }

  /**
   * For a walk of the folder whose real path is `rootReal`: a test of relative paths ("/"
   * separators, as listed) that are Triplicate's own files, so the walk skips them.
   */
  walkFilter(rootReal: string, platform: Platform = process.platform): (rel: string) => boolean {
    const path = pathOf(platform);
    const root = comparable(rootReal, platform);
    const own = new Set<string>();
    for (const p of [this.dataDir, this.configFile]) {
      const c = comparable(p, platform);
      if (c !== root && within(c, root, platform)) own.add(path.relative(root, c).split(path.sep).join('/'));
    }
    if (own.size === 0) return () => false;
    const fold = foldsCase(platform);
    return (rel) => own.has(fold ? rel.toLowerCase() : rel);
  }
}

const POSIX_SYSTEM = ['/proc', '/sys', '/dev', '/etc', '/boot', '/bin', '/sbin', '/usr', '/lib', '/lib32', '/lib64', '/libx32', '/var/lib', '/run', '/var/run'];
const MAC_SYSTEM = ['/System', '/Library', '/private/etc', '/private/var/db', '/private/var/run', '/cores'];
/** Inside a system folder but where removable disks and shares appear (udisks, GNOME's gvfs). */
const POSIX_ALLOWED = ['/run/media', '/run/user'];
const WINDOWS_SYSTEM = /^[a-z]:\\(windows|program files|program files \(x86\)|programdata)(\\|$)/;

/** The system folder `p` (comparable form) is, lies in or contains; null when there is none. */
function systemFolder(p: string, platform: Platform): string | null {
  if (platform === 'win32') {
    const m = WINDOWS_SYSTEM.exec(p);
    return m ? `${p.slice(0, 3)}${m[1]}` : null;
  }
  const list = platform === 'darwin' ? [...POSIX_SYSTEM, ...MAC_SYSTEM].map((d) => d.toLowerCase()) : POSIX_SYSTEM;
  if (POSIX_ALLOWED.some((d) => within(p, d, platform))) return null;
  for (const d of list) if (within(p, d, platform) || within(d, p, platform)) return d;
  return null;
}

export interface FolderCheck {
  own: OwnData;
  /** A destination folder (copies go there) rather than a folder to back up. */
  destination?: boolean;
  platform?: Platform;
  home?: string;
}

/**
 * Why `path` may not be backed up (or, with `destination`, receive copies), as a sentence for the
 * operator; null when it may.
 */
export function folderRefusal(path: string, check: FolderCheck): string | null {
  const platform = check.platform ?? process.platform;
  const p = pathOf(platform);
  const what = check.destination ? `The destination folder "${path}"` : `The folder "${path}"`;
  const choose = check.destination ? 'Choose a NAS share or a USB disk for the copies' : 'Choose the folder that holds the photos and videos';
  if (!p.isAbsolute(path)) return `${what} is not a full folder path. ${choose}, with its whole path (for example /srv/media/photos or D:\\Photos).`;
  const c = comparable(path, platform);
  if (c === p.parse(c).root && !c.startsWith('\\\\')) return `${what} is the whole disk. ${choose}, for example /srv/media/photos or D:\\Photos.`;
  const data = comparable(check.own.dataDir, platform);
  const own = `Triplicate's own data folder (${check.own.dataDir}), which holds its settings, the destinations' keys and its access key`;
  if (c === data) return `${what} is ${own}. ${choose}.`;
  if (within(c, data, platform)) return `${what} is inside ${own}. ${choose}.`;
  const home = comparable(check.home ?? homedir(), platform);
  const instead = c === home ? `a folder inside it, such as ${p.join(path, 'Pictures')}` : 'a folder inside it that holds only photos and videos';
  const elsewhere = 'or move the data folder elsewhere (start Triplicate with --data-dir, or set TRIPLICATE_DATA_DIR)';
  if (within(data, c, platform)) return `${what} contains ${own}: they would be copied too. Choose ${instead}, ${elsewhere}.`;
  const cfgFile = comparable(check.own.configFile, platform);
  if (within(cfgFile, c, platform)) {
    return `${what} contains Triplicate's config file (${check.own.configFile}), which holds the destinations' keys: it would be copied too. Choose ${instead}, or keep the config file elsewhere.`;
  }
  const sys = systemFolder(c, platform);
  if (sys) return `${what} is, or contains, a system folder (${sys}), not a folder of photos and videos. ${choose}.`;
  return null;
}

/**
 * Every folder of a config that may not be used, as "field: sentence" (like the schema's problems):
 * the rules above, and folder destinations inside a backed-up folder or around one (the copies would
 * be backed up again, copies of copies).
 */
export function configFolderProblems(cfg: Config, own: OwnData, platform: Platform = process.platform): string[] {
  const out: string[] = [];
  cfg.roots.forEach((r, i) => {
    const why = folderRefusal(r.path, { own, platform });
    if (why) out.push(`roots[${i}].path: ${why}`);
  });
  cfg.targets.forEach((t, i) => {
    if (t.kind !== 'folder') return;
    const why = folderRefusal(t.path, { own, platform, destination: true }) ?? destinationOverlap(t.path, cfg, platform);
    if (why) out.push(`targets[${i}].path: ${why}`);
  });
  return out;
}

/** A folder destination inside a backed-up folder, or around one: a sentence, else null. */
export function destinationOverlap(path: string, cfg: Pick<Config, 'roots'>, platform: Platform = process.platform): string | null {
  const c = comparable(path, platform);
  for (const r of cfg.roots) {
    const rc = comparable(r.path, platform);
    if (within(c, rc, platform)) return `The destination folder "${path}" is inside the folder "${r.label}" (${r.path}) that is backed up: every copy would be backed up again. Choose a folder outside it, such as a NAS share or a USB disk.`;
    if (within(rc, c, platform)) return `The destination folder "${path}" contains the folder "${r.label}" (${r.path}) that is backed up: the copies would be mixed with the originals. Choose a folder outside it, such as a NAS share or a USB disk.`;
  }
  return null;
}

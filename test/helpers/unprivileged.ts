// Child processes that run as an unprivileged user. Root reads and writes everything, so where a
// test needs "permission denied", root runs that part as `nobody`. `nobody` may not be able to reach
// the checkout (a clone in root's home, mode 0700, with its node_modules inside): the child then runs
// from a bundle in a folder every user can read. esbuild makes one file of each entry (TypeScript
// included); the packages that load native code or binaries by path (SQLite, sharp, ffmpeg,
// ffprobe) sit beside it in node_modules, hard-linked where the file system allows (the same files
// with the same modes as installed), copied elsewhere.
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';

export const NOBODY = 'nobody';
export const asRoot = process.getuid?.() === 0;

const ROOT = join(import.meta.dirname, '..', '..');
/** The engine's process entry (what `triplicate` runs), for a bundle a child that cannot read the checkout can run. */
export const ENGINE_ENTRY = join(ROOT, 'src', 'main', 'engine', 'main.ts');

/** What the engine loads by path at run time: cannot be bundled. */
export const NATIVE_PACKAGES = ['better-sqlite3', 'sharp', '@ffmpeg-installer/ffmpeg', '@ffprobe-installer/ffprobe'];

function groupOf(user: string): string {
  const r = spawnSync('id', ['-gn', user], { encoding: 'utf8' });
  return r.stdout.trim() || 'nogroup';
}

/** The command that runs `node <args>` as `nobody` when we are root, and as ourselves otherwise. */
export function nodeAsUnprivileged(args: string[]): { cmd: string; args: string[] } {
  if (!asRoot) return { cmd: process.execPath, args };
  return { cmd: 'setpriv', args: [`--reuid=${NOBODY}`, `--regid=${groupOf(NOBODY)}`, '--clear-groups', process.execPath, ...args] };
}

let checked: string | null | undefined;
/**
 * Why a child cannot run as `nobody` here (no setpriv, a Node it may not run, a temp folder it
 * cannot reach), or null when it can, or when we are not root (then we are unprivileged ourselves).
 */
export function unprivilegedSkipReason(): string | null {
  if (!asRoot) return null;
  if (checked !== undefined) return checked;
  if (spawnSync('setpriv', ['--version']).status !== 0) return (checked = 'running as root and setpriv is not installed, so nothing can be denied to the engine');
  const probe = `require('fs').accessSync(${JSON.stringify(tmpdir())}, require('fs').constants.X_OK)`;
  const { cmd, args } = nodeAsUnprivileged(['-e', probe]);
  const r = spawnSync(cmd, args, { cwd: '/', encoding: 'utf8', timeout: 30_000 });
  checked = r.status === 0 ? null : `the user ${NOBODY} cannot run ${process.execPath} or reach ${tmpdir()}: ${(r.stderr || r.error?.message || '').trim().split('\n').pop()}`;
  return checked;
}

/** Skip a test that needs an unprivileged child where there can be none, saying why in the output. */
export function skipUnlessUnprivileged(t: { skip(note?: string): never }): void {
  const reason = unprivilegedSkipReason();
  if (!reason) return;
  console.warn(`skipped: ${reason}`); // the default reporter does not print a skipped test's note
  t.skip(reason);
}

export interface ReadableBundle {
  /** The folder (mode 0755) that holds the bundles and their node_modules. */
  dir: string;
  /** The bundled file of an entry. */
  path(name: string): string;
  dispose(): void;
}

/**
 * Bundle `entries` (name -> source file) into a fresh folder under the temp dir that every user
 * can read, with `packages` (and what they depend on) beside them.
 */
export async function readableBundle(entries: Record<string, string>, packages: string[] = NATIVE_PACKAGES): Promise<ReadableBundle> {
  const dir = mkdtempSync(join(tmpdir(), 'trip-readable-'));
  try {
    await build({
      entryPoints: entries,
      outdir: dir,
      outExtension: { '.js': '.mjs' },
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: `node${process.versions.node.split('.')[0]}`,
      external: NATIVE_PACKAGES,
      // CommonJS code inside an ES module bundle still calls require() and reads __dirname
      banner: {
        js: "import { createRequire as __trCreateRequire } from 'node:module'; import { dirname as __trDirname } from 'node:path'; import { fileURLToPath as __trPath } from 'node:url'; const require = __trCreateRequire(import.meta.url); const __filename = __trPath(import.meta.url); const __dirname = __trDirname(__filename);",
      },
      // The entries register tsx to load TypeScript: the bundle is JavaScript already. s3rver: only
      // `triplicate demo` uses it, and it would pull its own dependency tree in.
      plugins: [
        {
          name: 'stubs',
          setup(b) {
            b.onResolve({ filter: /^(tsx\/esm\/api|s3rver)$/ }, (a) => ({ path: a.path, namespace: 'stub' }));
            b.onLoad({ filter: /.*/, namespace: 'stub' }, (a) => ({
              contents: a.path === 's3rver' ? "export default class { constructor() { throw new Error('s3rver is not in this bundle'); } }" : 'export function register() {}',
              loader: 'js',
            }));
          },
        },
      ],
      logLevel: 'error',
    });
    const copied = new Set<string>();
    for (const p of packages) copyPackage(p, join(ROOT, 'node_modules'), join(dir, 'node_modules'), copied);
    // mkdtemp made the folder 0700; esbuild's files follow the umask
    chmodReadable(dir);
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    dir,
    path: (name) => join(dir, `${name}.mjs`),
    dispose: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** A package and what it depends on (dependencies, and the optional ones that are installed). */
function copyPackage(name: string, from: string, to: string, copied: Set<string>): void {
  if (copied.has(name) || !existsSync(join(from, name, 'package.json'))) return;
  copied.add(name);
  linkTree(join(from, name), join(to, name));
  const pkg = JSON.parse(readFileSync(join(from, name, 'package.json'), 'utf8')) as { dependencies?: Record<string, string>; optionalDependencies?: Record<string, string> };
  for (const dep of Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies })) {
    if (!existsSync(join(from, name, 'node_modules', dep))) copyPackage(dep, from, to, copied);
  }
}

function linkTree(src: string, dst: string): void {
  mkdirSync(dst, { recursive: true, mode: 0o755 });
  for (const e of readdirSync(src)) {
    const s = join(src, e);
    const d = join(dst, e);
    const st = lstatSync(s);
    if (st.isDirectory()) linkTree(s, d);
    else if (st.isSymbolicLink()) symlinkSync(readlinkSync(s), d);
    else {
      try {
        linkSync(s, d);
      } catch {
        copyFileSync(s, d); // another file system: a copy, with the same mode
      }
    }
  }
}

/** Folders 0755 and our bundle files 0644; the package files keep their own modes. */
function chmodReadable(dir: string): void {
  chmodSync(dir, 0o755);
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isDirectory()) {
      if (e.name === 'node_modules') chmodDirs(join(dir, e.name));
      else chmodReadable(join(dir, e.name));
    } else if (e.isFile()) chmodSync(join(dir, e.name), 0o644);
  }
}

function chmodDirs(dir: string): void {
  chmodSync(dir, 0o755);
  for (const e of readdirSync(dir, { withFileTypes: true })) if (e.isDirectory()) chmodDirs(join(dir, e.name));
}

// Finding and running ffmpeg / ffprobe.
//
// Resolution order, per tool:
//   1. the config (`media.ffmpegPath` / `media.ffprobePath`), when set;
//   2. the binaries that ship with Triplicate (@ffmpeg-installer/ffmpeg, @ffprobe-installer/ffprobe);
//   3. `ffmpeg` / `ffprobe` on the PATH.
// In a packaged Electron app the shipped binaries live in `app.asar.unpacked`, never inside
// `app.asar` (an archive the OS cannot execute from): every path goes through `unpackedAsarPath`.
// A resolved tool has run `-version` successfully once; the result is cached per configured path.
import { spawn } from 'node:child_process';
import { accessSync, constants as fsConstants, promises as fsp } from 'node:fs';
import { createRequire } from 'node:module';
import { constants as osConstants, setPriority } from 'node:os';
import { delimiter, isAbsolute, join, resolve } from 'node:path';
import type { MediaSettings } from '../../../shared/config';
import { abortedError, errnoOf, MediaError, tail } from './errors';

export type ToolName = 'ffmpeg' | 'ffprobe';
export type ToolSource = 'config' | 'bundled' | 'path';

export interface ResolvedTool {
  path: string;
  /** The word after "ffmpeg version" in `-version`, e.g. "6.1.1" or "N-47683-g0e8eb07980-static". */
  version: string;
  source: ToolSource;
}

export interface MediaTools {
  ffmpeg: ResolvedTool;
  ffprobe: ResolvedTool;
}

export type ToolPaths = Pick<MediaSettings, 'ffmpegPath' | 'ffprobePath'>;

const SETTING: Record<ToolName, string> = { ffmpeg: 'media.ffmpegPath', ffprobe: 'media.ffprobePath' };
const INSTALLER: Record<ToolName, string> = { ffmpeg: '@ffmpeg-installer/ffmpeg', ffprobe: '@ffprobe-installer/ffprobe' };
const VERSION_TIMEOUT_MS = 15_000;

/** `/x/app.asar/node_modules/...` -> `/x/app.asar.unpacked/node_modules/...` (idempotent). */
export function unpackedAsarPath(p: string): string {
  return p.replace(/([\\/])app\.asar(?![\w.-])(?=[\\/])/, '$1app.asar.unpacked');
}

/** The path the npm installer package reports, or undefined when it is not installed for this platform. */
export function bundledToolPath(name: ToolName): string | undefined {
  try {
    const req = createRequire(import.meta.url);
    const mod = req(INSTALLER[name]) as { path?: unknown };
    return typeof mod.path === 'string' && mod.path ? unpackedAsarPath(mod.path) : undefined;
  } catch {
    // The installer throws (a string, not an Error) when its platform package is missing.
    return undefined;
  }
}

/** First executable `name` on the PATH (with PATHEXT on Windows). */
export function findOnPath(name: string, envPath = process.env.PATH ?? ''): string | undefined {
  const exts = process.platform === 'win32' ? (process.env.PATHEXT ?? '.EXE;.CMD;.BAT').split(';').filter(Boolean) : [''];
  for (const dir of envPath.split(delimiter)) {
    if (!dir) continue;
    for (const ext of exts) {
      const candidate = join(dir, name + ext.toLowerCase());
      try {
        accessSync(candidate, fsConstants.X_OK);
        return candidate;
      } catch {}
    }
  }
  return undefined;
}

const cache = new Map<string, Promise<MediaTools>>();

/**
 * Find ffmpeg and ffprobe and check that both run. Throws a MediaError with code
 * 'ffmpeg-missing' and a sentence naming the path and the next step.
 * Successful results are cached per (ffmpegPath, ffprobePath) setting; failures are not,
 * so fixing the setting or reinstalling takes effect on the next call.
 */
export function resolveMediaTools(paths: ToolPaths = {}, opts: { refresh?: boolean } = {}): Promise<MediaTools> {
  const key = `${paths.ffmpegPath ?? ''}\u0000${paths.ffprobePath ?? ''}`;
  const hit = cache.get(key);
  if (hit && !opts.refresh) return hit;
  const p = Promise.all([resolveTool('ffmpeg', paths.ffmpegPath), resolveTool('ffprobe', paths.ffprobePath)]).then(
    ([ffmpeg, ffprobe]) => ({ ffmpeg, ffprobe }),
  );
  cache.set(key, p);
  p.catch(() => {
    if (cache.get(key) === p) cache.delete(key);
  });
  return p;
}

/** Forget cached resolutions (tests, or after the operator changed the setting). */
export function clearMediaToolsCache(): void {
  cache.clear();
}

async function resolveTool(name: ToolName, configured?: string): Promise<ResolvedTool> {
  if (configured && configured.trim()) {
    return checkTool(name, unpackedAsarPath(resolve(configured.trim())), 'config');
  }
  const bundled = bundledToolPath(name);
  if (bundled) return checkTool(name, bundled, 'bundled');
  const onPath = findOnPath(name);
  if (onPath) return checkTool(name, onPath, 'path');
  throw new MediaError(
    'ffmpeg-missing',
    `${name} was not found: neither the copy that ships with Triplicate nor one on the PATH. Reinstall Triplicate or set ${SETTING[name]} to the ${name} program you installed.`,
    { detail: `${INSTALLER[name]} did not resolve for ${process.platform}-${process.arch}; PATH=${process.env.PATH ?? ''}` },
  );
}

function nextStep(name: ToolName, source: ToolSource): string {
  return source === 'config'
    ? `Correct ${SETTING[name]} in config.json in the data folder, or remove it there to use the ${name} that ships with Triplicate.`
    : `Reinstall Triplicate, or set ${SETTING[name]} in config.json in the data folder to the ${name} program you installed.`;
}

async function checkTool(name: ToolName, path: string, source: ToolSource): Promise<ResolvedTool> {
  let st;
  try {
    st = await fsp.stat(path);
  } catch (e) {
    throw new MediaError('ffmpeg-missing', `${name} was not found at ${path}. ${nextStep(name, source)}`, {
      detail: e instanceof Error ? e.message : String(e),
      cause: e,
    });
  }
  if (st.isDirectory()) {
    throw new MediaError('ffmpeg-missing', `${path} is a folder, not the ${name} program. ${nextStep(name, source)}`);
  }
  let res: ToolRun;
  try {
    res = await runVersion(path);
  } catch (e) {
    const code = errnoOf(e);
    if ((code === 'EACCES' || code === 'EPERM') && source === 'bundled' && process.platform !== 'win32') {
      // The npm packages have shipped binaries without the execute bit before: fix our own copy once.
      try {
        await fsp.chmod(path, 0o755);
        res = await runVersion(path);
        return parseVersion(name, path, source, res);
      } catch {}
    }
    const why =
      code === 'EACCES' || code === 'EPERM'
        ? 'permission denied (the file is not marked as a program, or the disk is mounted "noexec")'
        : code === 'ENOEXEC' || code === 'EBADARCH' || code === 'ENOENT'
          ? 'it is not a program for this computer'
          : e instanceof MediaError
            ? e.reason
            : e instanceof Error
              ? e.message
              : String(e);
    throw new MediaError('ffmpeg-missing', `${name} at ${path} cannot be run: ${why}. ${nextStep(name, source)}`, {
      detail: e instanceof Error ? e.message : String(e),
      cause: e,
    });
  }
  return parseVersion(name, path, source, res);
}

function parseVersion(name: ToolName, path: string, source: ToolSource, res: ToolRun): ResolvedTool {
  const out = res.stdout.toString('utf8');
  const m = new RegExp(`^${name} version (\\S+)`, 'm').exec(out);
  if (res.code !== 0 || !m) {
    throw new MediaError('ffmpeg-missing', `${path} did not answer like ${name} does. ${nextStep(name, source)}`, {
      detail: `exit ${res.code ?? res.signal}; stdout: ${out.slice(0, 300)}; stderr: ${tail(res.stderr, 4)}`,
    });
  }
  return { path, version: m[1] ?? 'unknown', source };
}

function runVersion(path: string): Promise<ToolRun> {
  return runTool(path, ['-hide_banner', '-version'], { timeoutMs: VERSION_TIMEOUT_MS });
}

// ---------------------------------------------------------------------------------------------
// Running a tool

export interface ToolRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

export interface RunToolOptions {
  signal?: AbortSignal;
  /** Kill after this long (rejects with code 'stalled'). */
  timeoutMs?: number;
  /** Run at the lowest CPU priority (nice 19 / IDLE on Windows). */
  lowPriority?: boolean;
  /** Stop collecting stdout beyond this many bytes (the tool is killed). Default 64 MiB. */
  maxStdoutBytes?: number;
  /** Called with the child pid once spawned. */
  onSpawn?: (pid: number) => void;
  /** Environment for the child (default: this process's). */
  env?: NodeJS.ProcessEnv;
}

/** Keep at most this much of stderr (the tail matters). */
const STDERR_KEEP = 64 * 1024;

/**
 * Spawn a tool (no shell), collect stdout (Buffer) and the tail of stderr. Resolves with the exit
 * status whatever it is; rejects on spawn errors (errno kept on the error), abort and timeout.
 */
export function runTool(bin: string, args: readonly string[], opts: RunToolOptions = {}): Promise<ToolRun> {
  return new Promise<ToolRun>((resolvePromise, reject) => {
    if (opts.signal?.aborted) {
      reject(abortedError('The media task'));
      return;
    }
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], windowsHide: true, ...(opts.env ? { env: opts.env } : {}) });
    const max = opts.maxStdoutBytes ?? 64 * 1024 * 1024;
    const chunks: Buffer[] = [];
    let outBytes = 0;
    let stderr = '';
    let settled = false;
    let failure: ((stderrTail: string) => MediaError) | undefined;
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      opts.signal?.removeEventListener('abort', onAbort);
      fn();
    };
    const onAbort = () => {
      failure = () => abortedError('The media task');
      child.kill('SIGKILL');
    };
    const timer = opts.timeoutMs
      ? setTimeout(() => {
          failure = (detail) =>
            new MediaError('stalled', `${bin} did not finish within ${Math.round((opts.timeoutMs ?? 0) / 1000)} s and was stopped.`, { detail });
          child.kill('SIGKILL');
        }, opts.timeoutMs)
      : undefined;
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    child.on('spawn', () => {
      if (child.pid !== undefined) {
        if (opts.lowPriority) lowerPriority(child.pid);
        opts.onSpawn?.(child.pid);
      }
    });
    child.stdout.on('data', (b: Buffer) => {
      outBytes += b.length;
      if (outBytes > max) {
        failure = (detail) => new MediaError('ffmpeg-failed', `${bin} produced more output than expected and was stopped.`, { detail });
        child.kill('SIGKILL');
        return;
      }
      chunks.push(b);
    });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (s: string) => {
      stderr += s;
      if (stderr.length > STDERR_KEEP * 2) stderr = stderr.slice(-STDERR_KEEP);
    });
    child.on('error', (e) => finish(() => reject(e)));
    child.on('close', (code, signal) =>
      finish(() => {
        if (failure) reject(failure(tail(stderr)));
        else resolvePromise({ code, signal, stdout: Buffer.concat(chunks), stderr });
      }),
    );
  });
}

/**
 * The environment to run a tool with. The static Linux ffprobe shipped by @ffprobe-installer
 * (5.2.0) crashes (SIGSEGV) on every MPEG-TS file (.mts/.m2ts): its statically linked glibc
 * cannot load iconv modules when it decodes the stream's service name. Pointing GCONV_PATH at a
 * folder that does not exist makes iconv fail cleanly instead, and the probe works. Only applied
 * to binaries we ship (an operator's own ffmpeg is dynamically linked and left alone), or when
 * `force` is set (the retry after a crash).
 */
export function toolEnv(tool: Pick<ResolvedTool, 'source'>, force = false): NodeJS.ProcessEnv | undefined {
  if (process.platform !== 'linux' || (!force && tool.source !== 'bundled')) return undefined;
  return { ...process.env, GCONV_PATH: '/nonexistent/triplicate-no-gconv' };
}

/** Best effort: nice 19 on Unix, IDLE priority class on Windows. Never throws. */
export function lowerPriority(pid: number): void {
  try {
    setPriority(pid, osConstants.priority.PRIORITY_LOW);
  } catch {}
}

/**
 * How to name a local file for ffmpeg/ffprobe: absolute, with the `file:` protocol so that a name
 * containing ":" ("clip:1.mov") or starting with "-" is never read as a protocol or an option.
 */
export function ffPath(p: string): string {
  const abs = isAbsolute(p) ? p : resolve(p);
  return `file:${abs}`;
}

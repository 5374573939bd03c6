// Supervisor for Cloudflare's `cloudflared`, which makes the download server reachable from the
// internet without opening a port on the router.
//
// - quick: `cloudflared tunnel --no-autoupdate --url http://127.0.0.1:<download port>` — no account;
//   cloudflared prints a random https://<words>.trycloudflare.com address, parsed from its output.
//   The address changes every time cloudflared starts (links made before then stop working).
// - named: `cloudflared tunnel --no-autoupdate run` with the token from the Cloudflare dashboard in
//   the TUNNEL_TOKEN environment variable (the same setting as `--token`, but not visible to other
//   users in the process list). The public address is the hostname configured for the tunnel.
//
// The binary is the configured path, else `cloudflared` (`cloudflared.exe` on Windows) on the PATH
// or in the usual install places. When it is missing the state is 'missing' with install steps.
// When cloudflared exits it is restarted with backoff; the last lines of its output are kept
// (the token never: it is masked if it ever shows up) and every state change is a 'tunnel' event.
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { createInterface } from 'node:readline';
import type { TunnelStatus } from '../../../shared/api';
import { isMasked, type Config } from '../../../shared/config';
import type { EngineContext, EngineService } from '../core/context';
import { log } from '../log';
import { errorText } from '../util';
import { badRequest } from '../http/router';
import { programPathError } from '../config/config';

export interface TunnelOptions {
  /** Where cloudflared sends the traffic: the download server's local URL (known once it listens). */
  localUrl: () => string;
  /** Waits between restarts, ms; the last one repeats. Default 1 s, 2 s, 5 s, 10 s, 30 s, 60 s. */
  backoffMs?: number[];
  /** A run this long resets the backoff. Default 60 s. */
  stableMs?: number;
  /** Output lines kept. Default 50. */
  maxLines?: number;
  /** Extra environment for the child (tests drive the stand-in with it). */
  env?: Record<string, string>;
  /** Grace period between SIGTERM and SIGKILL when stopping. Default 5 s. */
  killGraceMs?: number;
}

const QUICK_URL = /https:\/\/([a-z0-9](?:[a-z0-9-]*[a-z0-9])?)\.trycloudflare\.com\b/i;
const REGISTERED = /Registered tunnel connection/i;

/** Install steps per OS, the current one first. */
export function installHint(platform: NodeJS.Platform = process.platform): string {
  const steps: Record<string, string> = {
    win32: 'on Windows, open a terminal and run: winget install --id Cloudflare.cloudflared',
    darwin: 'on macOS, run: brew install cloudflared',
    linux:
      'on Debian or Ubuntu, download cloudflared-linux-amd64.deb (or -arm64.deb) from https://github.com/cloudflare/cloudflared/releases/latest and run: sudo dpkg -i cloudflared-linux-amd64.deb',
  };
  const mine = platform in steps ? platform : 'linux';
  return [steps[mine]!, ...Object.entries(steps).filter(([k]) => k !== mine).map(([, v]) => v)].join('; ');
}

function executable(p: string, platform: NodeJS.Platform): boolean {
  try {
    if (!statSync(p).isFile()) return false;
    if (platform !== 'win32') accessSync(p, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Find cloudflared: the configured path, else the PATH, else where installers put it. */
export function findCloudflared(configured?: string, env: NodeJS.ProcessEnv = process.env, platform: NodeJS.Platform = process.platform): string | null {
  const exe = platform === 'win32' ? 'cloudflared.exe' : 'cloudflared';
  if (configured) {
    const cands = platform === 'win32' && !/\.exe$/i.test(configured) ? [configured, `${configured}.exe`] : [configured];
    return cands.find((c) => executable(c, platform)) ?? null;
  }
  const dirs = (env.PATH ?? env.Path ?? '').split(platform === 'win32' ? ';' : delimiter).filter(Boolean);
  if (platform === 'win32') {
    for (const base of [env.ProgramFiles, env['ProgramFiles(x86)']]) if (base) dirs.push(join(base, 'cloudflared'));
    if (env.LOCALAPPDATA) dirs.push(join(env.LOCALAPPDATA, 'Microsoft', 'WinGet', 'Links'));
  } else {
    dirs.push('/opt/homebrew/bin', '/usr/local/bin', '/usr/bin');
  }
  for (const d of dirs) {
    const p = join(d, exe);
    if (executable(p, platform)) return p;
  }
  return null;
}

/** "files.example.org" or "https://files.example.org/" -> "https://files.example.org". */
export function normalizeHostname(h: string | undefined): string | undefined {
  if (!h) return undefined;
  const t = h.trim().replace(/\/+$/, '');
  if (!t) return undefined;
  return /^https?:\/\//i.test(t) ? t : `https://${t}`;
}

export class TunnelSupervisor implements EngineService {
  readonly name = 'tunnel';
  private child: ChildProcess | null = null;
  private gen = 0;
  private st: TunnelStatus = { mode: 'off', state: 'stopped', last_lines: [] };
  private lines: string[] = [];
  private runningSig = '';
  private timer: NodeJS.Timeout | null = null;
  private failures = 0;
  private launchedAt = 0;
  private stopped = false;
  private offBus: (() => void) | null = null;
  private lastError = '';
  private readonly backoff: number[];
  private readonly maxLines: number;
  /** Restarts so far (tests and the status page). */
  restarts = 0;

  constructor(
    private readonly ctx: EngineContext,
    private readonly opts: TunnelOptions,
  ) {
    this.backoff = opts.backoffMs?.length ? opts.backoffMs : [1_000, 2_000, 5_000, 10_000, 30_000, 60_000];
    this.maxLines = opts.maxLines ?? 50;
  }

  async start(): Promise<void> {
    this.stopped = false;
    this.offBus = this.ctx.bus.on((e) => {
      if (e.type === 'config') void this.reconcile();
    });
    await this.reconcile();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.offBus?.();
    this.offBus = null;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.kill();
    this.runningSig = '';
  }

  status(): TunnelStatus {
    return { ...this.st, last_lines: [...this.lines] };
  }

  /** The public address while the tunnel is up. */
  publicUrl(): string | undefined {
    return this.st.state === 'running' ? this.st.public_url : undefined;
  }

  /** Process id of the running cloudflared (tests make it crash). */
  pid(): number | undefined {
    return this.child?.pid;
  }

  /** `POST /api/admin/tunnel`: save the tunnel settings and apply them. */
  async set(body: { mode?: unknown; token?: unknown; hostname?: unknown; cloudflaredPath?: unknown }): Promise<TunnelStatus> {
    const next = this.settingsFrom(body);
    await this.ctx.config.apply({ ...this.ctx.config.get(), tunnel: next });
    await this.refresh();
    return this.status();
  }

  /** The tunnel settings a request asks for, checked (400 with a sentence), not yet saved. */
  settingsFrom(body: { mode?: unknown; token?: unknown; hostname?: unknown; cloudflaredPath?: unknown }): Config['tunnel'] {
    if (body?.cloudflaredPath !== undefined && body.cloudflaredPath !== this.ctx.config.get().tunnel.cloudflaredPath) throw programPathError(['tunnel.cloudflaredPath']);
    const mode = body?.mode;
    if (mode !== 'off' && mode !== 'quick' && mode !== 'named') throw badRequest('Choose the tunnel mode: off, quick (no account) or named (your Cloudflare tunnel).', ['mode']);
    const cur = this.ctx.config.get().tunnel;
    const next: Config['tunnel'] = { ...cur, mode: mode as Config['tunnel']['mode'] };
    if (body.token !== undefined) {
      if (typeof body.token !== 'string') throw badRequest('The tunnel token is text copied from the Cloudflare dashboard.', ['token']);
      if (!isMasked(body.token)) next.token = body.token.trim() || undefined;
    }
    if (body.hostname !== undefined) {
      if (typeof body.hostname !== 'string' || (body.hostname && !/^(https?:\/\/)?[a-z0-9.-]+(:\d+)?\/?$/i.test(body.hostname.trim()))) {
        throw badRequest('The public hostname looks like files.example.org (the hostname you gave the tunnel in the Cloudflare dashboard).', ['hostname']);
      }
      next.hostname = normalizeHostname(body.hostname);
    }
    if (mode === 'named' && !next.token) {
      throw badRequest('A named tunnel needs its token: in the Cloudflare dashboard open Networks → Tunnels, choose the tunnel, and copy the token from the install command.', ['token']);
    }
    return next;
  }

  /** Bring cloudflared in line with the config and the download server's local URL now. */
  refresh(): Promise<void> {
    return this.reconcile();
  }

  // ---- the process ---------------------------------------------------------------------------

  private desired(): { sig: string; mode: TunnelStatus['mode'] } {
    const t = this.ctx.config.get().tunnel;
    let local = '';
    try {
      local = this.opts.localUrl();
    } catch {}
    return { mode: t.mode, sig: JSON.stringify([t.mode, t.token ?? '', t.hostname ?? '', t.cloudflaredPath ?? '', local]) };
  }

  private reconciling: Promise<void> = Promise.resolve();

  /** Bring the process in line with the config (start, restart with new settings, or stop); one at a time. */
  private reconcile(): Promise<void> {
    this.reconciling = this.reconciling.then(
      () => this.reconcileNow(),
      () => this.reconcileNow(),
    );
    return this.reconciling;
  }

  private async reconcileNow(): Promise<void> {
    if (this.stopped) return;
    const want = this.desired();
    if (want.sig === this.runningSig) return;
    this.runningSig = want.sig;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    await this.kill();
    this.failures = 0;
    this.lines = [];
    this.lastError = '';
    if (want.mode === 'off') {
      this.update({ mode: 'off', state: 'stopped', public_url: undefined, message: undefined });
      return;
    }
    this.launch();
  }

  private launch(): void {
    this.timer = null;
    if (this.stopped) return;
    const t = this.ctx.config.get().tunnel;
    const mode = t.mode;
    if (mode === 'off') return;
    const bin = findCloudflared(t.cloudflaredPath);
    if (!bin) {
      const where = t.cloudflaredPath ? `was not found at ${t.cloudflaredPath}` : 'is not installed on this computer';
      const message =
        `Cloudflare's tunnel program (cloudflared) ${where}, so files cannot be shared beyond the local network. ` +
        `Install it, then turn the tunnel on again: ${installHint()}. ` +
        `If it is installed somewhere else, set its full path in the tunnel settings (tunnel.cloudflaredPath).`;
      if (this.st.state !== 'missing') this.ctx.bus.record({ level: 'error', kind: 'tunnel-missing', message });
      this.update({ mode, state: 'missing', public_url: undefined, message });
      return;
    }
    let args: string[];
    const env: NodeJS.ProcessEnv = { ...process.env, ...this.opts.env };
    delete env.TUNNEL_TOKEN;
    if (mode === 'quick') {
      let local: string;
      try {
        local = this.opts.localUrl();
      } catch {
        this.update({ mode, state: 'failed', public_url: undefined, message: 'The tunnel cannot start because the download server is not running. See the Activity page for why.' });
        return;
      }
      args = ['tunnel', '--no-autoupdate', '--url', local];
    } else {
      if (!t.token) {
        this.update({ mode, state: 'failed', public_url: undefined, message: 'A named tunnel needs its token. Paste it in the tunnel settings.' });
        return;
      }
      args = ['tunnel', '--no-autoupdate', 'run'];
      env.TUNNEL_TOKEN = t.token;
    }
    const gen = ++this.gen;
    this.launchedAt = Date.now();
    let child: ChildProcess;
    try {
      child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'], env, windowsHide: true });
    } catch (e) {
      this.onSpawnError(gen, e as NodeJS.ErrnoException, bin);
      return;
    }
    this.child = child;
    this.update({ mode, state: 'starting', public_url: undefined, message: mode === 'quick' ? 'Asking Cloudflare for a public address…' : 'Connecting to Cloudflare…' });
    log.info(`tunnel: started ${bin} (${mode}), pid ${child.pid}`);
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue;
      const rl = createInterface({ input: stream, crlfDelay: Infinity });
      rl.on('line', (line) => this.onLine(gen, line));
    }
    child.once('error', (e: NodeJS.ErrnoException) => this.onSpawnError(gen, e, bin));
    child.once('exit', (code, signal) => this.onExit(gen, code, signal));
  }

  private redact(line: string): string {
    let out = line.length > 500 ? `${line.slice(0, 500)}…` : line;
    const token = this.ctx.config.get().tunnel.token;
    if (token && token.length >= 4) out = out.split(token).join('••••••••');
    // Anything after --token, in case a future cloudflared echoes its command line.
    return out.replace(/(--token[= ])\S+/g, '$1••••••••');
  }

  private onLine(gen: number, raw: string): void {
    if (gen !== this.gen) return;
    const line = this.redact(raw.trimEnd());
    if (!line) return;
    this.lines.push(line);
    if (this.lines.length > this.maxLines) this.lines.splice(0, this.lines.length - this.maxLines);
    if (/\bERR\b|error/i.test(line) && !/Thank you for trying/i.test(line)) this.lastError = line.replace(/^\S+Z\s+/, '');
    const mode = this.st.mode;
    if (mode === 'quick') {
      const m = QUICK_URL.exec(line);
      if (m && m[1]!.toLowerCase() !== 'api' && this.st.public_url !== m[0].toLowerCase()) {
        const url = m[0].toLowerCase();
        this.update({ state: 'running', public_url: url, message: `Files can be shared from anywhere through ${url}. This address changes whenever the tunnel restarts.` });
        this.ctx.bus.record({ level: 'info', kind: 'tunnel-up', message: `The quick tunnel is up: links now use ${url}.` });
        return;
      }
    }
    if (REGISTERED.test(line) && this.st.state !== 'running') {
      if (mode === 'named') {
        const host = normalizeHostname(this.ctx.config.get().tunnel.hostname);
        this.update({
          state: 'running',
          public_url: host,
          message: host ? `Files can be shared from anywhere through ${host}.` : 'The tunnel is connected. Set its public hostname in the tunnel settings so that links use it.',
        });
        this.ctx.bus.record({ level: 'info', kind: 'tunnel-up', message: `The tunnel to Cloudflare is connected${host ? `: links now use ${host}` : ''}.` });
      }
    }
  }

  private onSpawnError(gen: number, e: NodeJS.ErrnoException, bin: string): void {
    if (gen !== this.gen) return;
    this.gen++; // an 'exit' that may follow is not a crash to restart from
    this.child = null;
    if (e.code === 'ENOENT') {
      this.update({ state: 'missing', public_url: undefined, message: `The tunnel program disappeared from ${bin}. Install it again: ${installHint()}.` });
      return;
    }
    const message = `The tunnel program at ${bin} could not be started (${e.code ?? errorText(e)}). Check that it is allowed to run, or reinstall it: ${installHint()}.`;
    this.ctx.bus.record({ level: 'error', kind: 'tunnel-failed', message, detail: errorText(e) });
    this.update({ state: 'failed', public_url: undefined, message });
  }

  private onExit(gen: number, code: number | null, signal: NodeJS.Signals | null): void {
    if (gen !== this.gen) return;
    this.child = null;
    if (this.stopped || this.ctx.config.get().tunnel.mode === 'off') {
      this.update({ state: 'stopped', public_url: undefined });
      return;
    }
    if (Date.now() - this.launchedAt >= (this.opts.stableMs ?? 60_000)) this.failures = 0;
    const wait = this.backoff[Math.min(this.failures, this.backoff.length - 1)]!;
    this.failures++;
    this.restarts++;
    const how = signal ? `was stopped by ${signal}` : `stopped with exit code ${code}`;
    const last = this.lastError ? ` Its last message: ${this.lastError}` : '';
    const message = `The tunnel program ${how}; Triplicate starts it again in ${Math.max(1, Math.round(wait / 1000))} s.${last}`;
    if (this.st.state === 'running') this.ctx.bus.record({ level: 'warn', kind: 'tunnel-down', message });
    this.update({ state: 'restarting', public_url: undefined, message });
    this.timer = setTimeout(() => this.launch(), wait);
    this.timer.unref?.();
  }

  private async kill(): Promise<void> {
    const child = this.child;
    this.child = null;
    this.gen++;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    const grace = this.opts.killGraceMs ?? 5_000;
    let t: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((r) => (t = setTimeout(() => r('timeout'), grace)));
    if ((await Promise.race([exited, timeout])) === 'timeout') {
      child.kill('SIGKILL');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 2_000))]);
    }
    if (t) clearTimeout(t);
  }

  private update(patch: Partial<TunnelStatus>): void {
    const before = JSON.stringify([this.st.mode, this.st.state, this.st.public_url, this.st.message]);
    this.st = { ...this.st, ...patch, mode: patch.mode ?? this.st.mode };
    if ('public_url' in patch && patch.public_url === undefined) delete this.st.public_url;
    if ('message' in patch && patch.message === undefined) delete this.st.message;
    const after = JSON.stringify([this.st.mode, this.st.state, this.st.public_url, this.st.message]);
    if (before !== after) this.ctx.bus.emit({ type: 'tunnel', tunnel: this.status() });
  }
}

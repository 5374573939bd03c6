// The engine runs in its own process (Electron's utilityProcess, started by ../engine-process.ts);
// this decides what happens around it: the first start, restarts with backoff when it ends
// unexpectedly, giving up when it keeps ending, and a clean stop on quit. Pure: the process, the
// clock and the timers are handed in, so tests run it under Node with a fake engine.

export interface EngineReady {
  adminUrl: string;
  downloadUrl: string | null;
  tokenFile: string;
  pid: number | null;
}

export interface EngineExit {
  code: number;
  /** The sentence of the engine's JSON error line, when it printed one before ending. */
  error: string | null;
  /** The last lines it wrote to stderr (for the technical detail). */
  detail: string;
}

/** One engine process as the supervisor sees it. */
export interface EngineRun {
  /** Ask it to stop as on SIGTERM: it stops its uploads and exits. */
  stop(): void;
  /** End it at once (when it does not stop in time). */
  kill(): void;
}

export interface RunEvents {
  ready(r: EngineReady): void;
  exit(e: EngineExit): void;
}

/** Start one engine process; `adminPort` undefined: the one in its config. May throw (no process). */
export type LaunchEngine = (opts: { adminPort?: number }, events: RunEvents) => EngineRun;

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

export interface RestartPolicy {
  /** Wait before the 1st, 2nd… restart; the last one repeats. */
  delaysMs: number[];
  /** A run this long was healthy: the next restart waits the first delay again. */
  stableAfterMs: number;
  /** This many unexpected ends within `windowMs`: stop restarting and say so. */
  maxCrashes: number;
  windowMs: number;
}

export const RESTART_POLICY: RestartPolicy = {
  delaysMs: [1_000, 2_000, 5_000, 15_000, 30_000, 60_000],
  stableAfterMs: 5 * 60_000,
  maxCrashes: 5,
  windowMs: 10 * 60_000,
};

export type EngineState =
  | { state: 'starting' }
  | { state: 'running'; ready: EngineReady; restarts: number }
  | { state: 'restarting'; attempt: number; retryAt: number; lastExit: EngineExit }
  | { state: 'failed'; message: string; detail: string }
  | { state: 'stopping' }
  | { state: 'stopped' };

/** The engine could not start (or keeps ending): `message` is for the operator, `detail` for the log. */
export class EngineStartError extends Error {
  constructor(
    message: string,
    readonly detail?: string,
  ) {
    super(message);
    this.name = 'EngineStartError';
  }
}

export function portOf(url: string): number | undefined {
  try {
    const p = Number(new URL(url).port);
    return Number.isInteger(p) && p > 0 ? p : undefined;
  } catch {
    return undefined;
  }
}

function exitDetail(e: EngineExit): string {
  return [`exit code ${e.code}`, e.error, e.detail.trim()].filter(Boolean).join('\n');
}

export class EngineSupervisor {
  private run: EngineRun | null = null;
  /** Which launch the events belong to: a late event of an earlier process is ignored. */
  private gen = 0;
  private runStartedAt = 0;
  private everReady = false;
  private attempt = 0;
  private restarts = 0;
  private crashes: number[] = [];
  private adminPort: number | undefined;
  private portRetried = false;
  private timer: unknown = null;
  private stopping = false;
  private current: EngineState = { state: 'starting' };
  private first: { resolve: (r: EngineReady) => void; reject: (e: Error) => void } | null = null;
  private exitWaiters: (() => void)[] = [];
  private readonly clock: Clock;
  private readonly policy: RestartPolicy;

  constructor(
    private readonly opts: {
      launch: LaunchEngine;
      onState?: (s: EngineState) => void;
      /** A port the engine must use (`npm run dev`: the dev server proxies /api to it). */
      adminPort?: number;
      clock?: Clock;
      policy?: RestartPolicy;
    },
  ) {
    this.clock = opts.clock ?? systemClock;
    this.policy = opts.policy ?? RESTART_POLICY;
    this.adminPort = opts.adminPort;
  }

  get state(): EngineState {
    return this.current;
  }

  /** Start the engine; resolves when it is first ready, rejects with an EngineStartError. */
  start(): Promise<EngineReady> {
    return new Promise<EngineReady>((resolve, reject) => {
      this.first = { resolve, reject };
      this.launch();
    });
  }

  /**
   * Stop it for good (quit): ask it to stop, wait for it to end, end it after `timeoutMs`. A
   * restart that was waiting does not happen.
   */
  async stop(timeoutMs = 20_000, killWaitMs = 5_000): Promise<void> {
    if (this.current.state === 'stopped') return;
    this.stopping = true;
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
    this.settleFirst(new EngineStartError('Triplicate is quitting.'));
    const run = this.run;
    if (!run) return this.setState({ state: 'stopped' });
    this.setState({ state: 'stopping' });
    const exited = this.waitExit(timeoutMs);
    try {
      run.stop();
    } catch {
      /* it may be gone already: its exit event follows */
    }
    if (!(await exited)) {
      const killed = this.waitExit(killWaitMs);
      try {
        run.kill();
      } catch {}
      await killed;
    }
    this.setState({ state: 'stopped' });
  }

  private setState(s: EngineState): void {
    this.current = s;
    this.opts.onState?.(s);
  }

  private settleFirst(result: EngineReady | Error): void {
    const f = this.first;
    if (!f) return;
    this.first = null;
    if (result instanceof Error) f.reject(result);
    else f.resolve(result);
  }

  private launch(): void {
    this.timer = null;
    if (this.stopping) return;
    const gen = ++this.gen;
    this.runStartedAt = this.clock.now();
    const mine = () => gen === this.gen && !!this.run;
    try {
      this.run = this.opts.launch(
        { adminPort: this.adminPort },
        {
          ready: (r) => {
            if (mine()) this.onReady(r);
          },
          exit: (e) => {
            if (mine()) this.onExit(e);
          },
        },
      );
    } catch (e) {
      // No process at all (the engine file is missing, say): restarting cannot help.
      this.run = null;
      this.fail('The backup engine could not be started. Install Triplicate again; if that does not help, send the log file to your IT contact.', e instanceof Error ? `${e.name}: ${e.message}` : String(e));
    }
  }

  private onReady(r: EngineReady): void {
    if (this.stopping) return;
    // Restarts keep this address: the open window and the tray keep talking to it.
    this.adminPort = portOf(r.adminUrl) ?? this.adminPort;
    this.everReady = true;
    this.setState({ state: 'running', ready: r, restarts: this.restarts });
    this.settleFirst(r);
  }

  private onExit(e: EngineExit): void {
    this.run = null;
    const waiters = this.exitWaiters;
    this.exitWaiters = [];
    waiters.forEach((w) => w());
    if (this.stopping) return;
    const now = this.clock.now();
    if (!this.everReady && e.error) {
      // The configured admin port is taken (another program, or a second Triplicate on other
      // data): the window does not need that port, so take any free one rather than not starting.
      if (this.opts.adminPort === undefined && !this.portRetried && /already used/i.test(e.error)) {
        this.portRetried = true;
        this.adminPort = 0;
        return this.launch();
      }
      // It said why it cannot start (a config problem, another engine on this data): starting it
      // again changes nothing, so the operator reads the sentence.
      return this.fail(e.error, exitDetail(e));
    }
    if (now - this.runStartedAt >= this.policy.stableAfterMs) this.attempt = 0;
    this.crashes = [...this.crashes.filter((t) => now - t < this.policy.windowMs), now];
    if (this.crashes.length >= this.policy.maxCrashes) {
      const minutes = Math.max(1, Math.ceil((now - this.crashes[0]!) / 60_000));
      return this.fail(
        `The backup engine stopped unexpectedly ${this.crashes.length} times in ${minutes === 1 ? 'a minute' : `${minutes} minutes`}, so Triplicate stopped restarting it. Quit Triplicate and start it again; if this happens again, send the log file to your IT contact.`,
        exitDetail(e),
      );
    }
    const delay = this.policy.delaysMs[Math.min(this.attempt, this.policy.delaysMs.length - 1)] ?? 1_000;
    this.attempt++;
    this.restarts++;
    this.setState({ state: 'restarting', attempt: this.attempt, retryAt: now + delay, lastExit: e });
    this.timer = this.clock.setTimeout(() => this.launch(), delay);
  }

  private fail(message: string, detail: string): void {
    this.setState({ state: 'failed', message, detail });
    this.settleFirst(new EngineStartError(message, detail));
  }

  /** Resolves true when the running process ends, false after `ms`. */
  private waitExit(ms: number): Promise<boolean> {
    if (!this.run) return Promise.resolve(true);
    return new Promise<boolean>((resolve) => {
      const t = this.clock.setTimeout(() => {
        this.exitWaiters = this.exitWaiters.filter((w) => w !== done);
        resolve(false);
      }, ms);
      const done = () => {
        this.clock.clearTimeout(t);
        resolve(true);
      };
      this.exitWaiters.push(done);
    });
  }
}

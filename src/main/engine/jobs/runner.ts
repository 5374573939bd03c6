// The job-lane runner: the one loop that uploads, restores and conversions run their durable jobs
// with. Each worker claims the next runnable job of its lane (catalog.ts: a lease and a fencing
// token), keeps the lease alive while the job runs, and idles when the lane is closed (mayRun) or
// has nothing runnable, until the next job is due, a wake, or the poll interval. What a job does,
// and what becomes of it (complete, release with a backoff, drop), is the service's; the runner
// only frees a job whose run() threw, and aborts a job when its lease is lost or the lane stops
// (the service then puts it back untouched: it runs again at the next start).
//
// A lane's concurrency is fixed (a setting, read at each claim) or adaptive: the runner then owns
// the lane's AdaptiveConcurrency (jobs/adaptive.ts), so every adaptive lane measures its jobs the
// same way: one Transfer per job, ended as failed when run() did not count it done.
import type { Catalog, JobRow } from '../catalog/catalog';
import { AdaptiveConcurrency, type Transfer } from './adaptive';
import { log } from '../log';
import { errorText } from '../util';

/** The part of the catalog's job queue the runner uses. */
export type JobQueue = Pick<Catalog, 'claim' | 'heartbeat' | 'release' | 'nextRunAfter'>;

/**
 * Whether a worker may claim now. `trial`: the lane is on probation (a destination that was
 * offline): one worker at a time runs a job, the others wait for its verdict.
 */
export type Gate = { run: true; trial?: boolean } | { run: false; retryInMs: number };

/** What run() gets besides its job. */
export interface JobControl {
  readonly job: JobRow;
  /** Aborted when the lane stops, when the lease was lost, or by abort(). */
  readonly signal: AbortSignal;
  /** The lease was lost: another worker owns the job now, and this one must record nothing. */
  readonly fenced: boolean;
  /** The lane is stopping: the job should be put back untouched. */
  readonly stopping: boolean;
  /** Abort this job (the operator cancelled it). */
  abort(): void;
  /**
   * The job's transfer is done and only its tail is left (fsync, rename, catalog): the worker
   * claims its next job meanwhile. At most one tail per worker, so still `concurrency` transfers.
   */
  handOff(): void;
  /**
   * The job's transfer, for the lane's adaptive concurrency: run() calls done(bytes) once the
   * job's bytes went (or were found already there); otherwise it counts as failed when run()
   * ends. A no-op on a lane of fixed concurrency.
   */
  readonly transfer: Transfer;
}

/** An adaptive lane's bounds (see jobs/adaptive.ts). */
export interface AdaptiveLane {
  /** Jobs at once to start at. */
  start: number;
  /** The most jobs at once; read again at each claim (a setting that changes while running). */
  ceiling(): number;
}

interface LaneCommon {
  /** The lane's name in the job queue ('upload:nas', 'restore', 'transcode'). */
  lane: string;
  /** Who holds the leases (host:pid…), for the queue and a reader of it. */
  owner: string;
  queue: JobQueue;
  leaseMs(): number;
  /** Longest idle with nothing runnable: work queued by another process, or due later, is found by then. */
  pollMs: number;
  /** Closed: paused, a destination that is down, a tool that is missing. Default: always open. */
  mayRun?(): Gate;
  /**
   * Fewer jobs at once than the concurrency for now (another lane goes first); read at each claim.
   * Workers above it look again every LIMIT_RECHECK_MS. Default: no limit.
   */
  limit?(): number | undefined;
  /** Awaited before a worker's first claim and after each wait on a closed gate. */
  ready?(): Promise<unknown>;
  /** Do the job: complete, release or drop it through the queue. */
  run(ctl: JobControl): Promise<void>;
  /** run() threw. Default: logged, and the job tried again in 30 s (counted as an attempt). */
  crashed?(job: JobRow, e: unknown): void;
}

export type LaneSpec = LaneCommon &
  (
    | {
        /** Workers; a function is read again at each claim (a setting that changes while running). */
        concurrency: number | (() => number);
        adaptive?: undefined;
      }
    | {
        /** Workers chosen from the throughput the lane's jobs measure (see `adaptive`). */
        adaptive: AdaptiveLane;
        concurrency?: undefined;
      }
  );

const NO_TRANSFER: Transfer = { done: () => undefined, failed: () => undefined };

class Control implements JobControl {
  readonly ac = new AbortController();
  fenced = false;
  stopping = false;
  handOff: () => void = () => undefined;
  constructor(
    readonly job: JobRow,
    readonly transfer: Transfer,
  ) {}
  get signal(): AbortSignal {
    return this.ac.signal;
  }
  abort(): void {
    this.ac.abort();
  }
}

/** The shortest idle, so a worker never spins. */
const MIN_IDLE_MS = 10;
/** How soon a worker held by the lane's limit looks again (the limit lifts without a wake). */
const LIMIT_RECHECK_MS = 200;

export class JobLane {
  private running = false;
  private workers: Promise<void>[] = [];
  /** Workers idle because the lane has nothing runnable: wakeOne() sends one of them. */
  private idle: (() => void)[] = [];
  /** Workers held by the gate, surplus to the concurrency, or waiting out a trial: only wake() sends them. */
  private held: (() => void)[] = [];
  private trialOut = false;
  private readonly jobs = new Map<number, Control>();
  /** How many jobs at once, on an adaptive lane (its level and ceiling are in the status). */
  readonly adaptive: AdaptiveConcurrency | undefined;

  constructor(private readonly spec: LaneSpec) {
    const a = spec.adaptive;
    // a new level wakes the lane: more workers, or fewer claims
    this.adaptive = a ? new AdaptiveConcurrency({ start: a.start, ceiling: a.ceiling(), onChange: () => this.wake() }) : undefined;
  }

  get lane(): string {
    return this.spec.lane;
  }

  /** Jobs running now (a tail included). */
  get active(): number {
    return this.jobs.size;
  }

  /** The jobs running now. */
  runningJobs(): Iterable<JobControl> {
    return this.jobs.values();
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.grow();
  }

  /** Stop: abort the jobs running (their run() puts them back), wait for every worker to end. */
  async stop(): Promise<void> {
    if (!this.running) return;
    this.running = false;
    for (const c of this.jobs.values()) {
      c.stopping = true;
      c.ac.abort();
    }
    this.wake();
    await Promise.allSettled(this.workers);
    this.workers = [];
  }

  /** New work may be there, or the gate or the concurrency changed: every waiting worker looks. */
  wake(): void {
    if (this.running) this.grow();
    const ws = [...this.idle.splice(0), ...this.held.splice(0)];
    for (const w of ws) w();
  }

  /** One new job is there: one idle worker (if any) claims it, at once. */
  wakeOne(): void {
    this.idle.shift()?.();
  }

  private concurrency(): number {
    const { spec, adaptive } = this;
    if (spec.adaptive && adaptive) {
      adaptive.setCeiling(spec.adaptive.ceiling());
      return adaptive.level;
    }
    const c = spec.concurrency ?? 0;
    return Math.max(0, Math.floor(typeof c === 'function' ? c() : c));
  }

  private grow(): void {
    const want = this.concurrency();
    while (this.workers.length < want) this.workers.push(this.worker(this.workers.length));
  }

  private wait(list: (() => void)[], ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        const i = list.indexOf(done);
        if (i >= 0) list.splice(i, 1);
        resolve();
      };
      const t = setTimeout(done, Math.max(MIN_IDLE_MS, ms));
      list.push(done);
    });
  }

  private async worker(index: number): Promise<void> {
    const { spec } = this;
    let tail: Promise<void> | null = null;
    try {
      await spec.ready?.();
      while (this.running) {
        if (index >= this.concurrency()) {
          await this.wait(this.held, spec.pollMs);
          continue;
        }
        const limit = spec.limit?.();
        if (limit !== undefined && index >= Math.max(1, limit)) {
          await this.wait(this.held, LIMIT_RECHECK_MS);
          continue;
        }
        const gate = spec.mayRun?.() ?? { run: true };
        if (!gate.run) {
          await this.wait(this.held, gate.retryInMs);
          await spec.ready?.();
          continue;
        }
        if (gate.trial) {
          if (this.trialOut) {
            await this.wait(this.held, 1000);
            continue;
          }
          this.trialOut = true;
        }
        let job: JobRow | undefined;
        try {
          job = spec.queue.claim(spec.lane, spec.owner, spec.leaseMs());
        } catch (e) {
          log.error(`claim failed on ${spec.lane}: ${errorText(e)}`);
        }
        if (!job) {
          if (gate.trial) this.trialOut = false;
          const next = spec.queue.nextRunAfter(spec.lane);
          await this.wait(this.idle, next ? Math.min(next - Date.now(), spec.pollMs) : spec.pollMs);
          continue;
        }
        const ctl = new Control(job, this.adaptive?.begin() ?? NO_TRANSFER);
        const handedOff = new Promise<void>((r) => (ctl.handOff = r));
        const run = this.runOne(ctl).finally(() => {
          if (gate.trial) this.trialOut = false;
        });
        await Promise.race([run, handedOff]);
        if (tail) await tail;
        tail = run;
      }
    } finally {
      if (tail) await tail;
    }
  }

  private async runOne(ctl: Control): Promise<void> {
    const { spec } = this;
    const { job } = ctl;
    this.jobs.set(job.id, ctl);
    const lease = spec.leaseMs();
    const hb = setInterval(() => {
      try {
        if (!spec.queue.heartbeat(job, lease)) {
          ctl.fenced = true;
          ctl.ac.abort();
        }
      } catch {} // the catalog is closing: the lease runs out by itself
    }, Math.max(1000, lease / 3));
    hb.unref?.();
    try {
      await spec.run(ctl);
    } catch (e) {
      try {
        if (spec.crashed) spec.crashed(job, e);
        else {
          log.error(`job ${job.id} on ${spec.lane} crashed: ${errorText(e)}`);
          spec.queue.release(job, Date.now() + 30_000, errorText(e), true);
        }
      } catch (e2) {
        log.error(`job ${job.id} on ${spec.lane}: ${errorText(e2)}`); // its lease runs out: it runs again
      }
    } finally {
      ctl.transfer.failed(); // a no-op once run() counted it done
      clearInterval(hb);
      this.jobs.delete(job.id);
    }
  }
}

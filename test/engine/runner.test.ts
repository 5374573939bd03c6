// The job-lane runner (jobs/runner.ts) on a real catalog: claims, concurrency, wake-one and
// wake-all, the gate and its trial, a limit below the concurrency, the lease kept and lost, a job's hand-off, a crash, stop, and
// an adaptive lane (its transfers, its level and its ceiling).
import { afterEach, describe, expect, it } from 'vitest';
import { Catalog, type JobRow } from '../../src/main/engine/catalog/catalog';
import { JobLane, type Gate, type JobControl, type LaneSpec } from '../../src/main/engine/jobs/runner';
import { waitFor } from '../helpers/engine';

const LANE = 'test';
/** Long enough that only a wake gets an idle worker going within a test. */
const POLL = 60_000;

/** Held jobs still waiting: let go after each test, passed or not. */
let gates: (() => void)[] = [];

/** A promise and its resolve, to hold a job open until the test lets it go. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => (open = r));
  gates.push(open);
  return { promise, open };
}

const turns = (n = 5) => new Promise<void>((r) => setTimeout(r, 10 * n));

let lanes: JobLane[] = [];
let catalog: Catalog;

afterEach(async () => {
  for (const open of gates) open();
  gates = [];
  await Promise.all(lanes.map((l) => l.stop()));
  lanes = [];
  catalog?.close();
});

/** The real catalog, with its claims counted. */
function setup(spec: Partial<LaneSpec> & Pick<LaneSpec, 'run'>, leaseMs = 30_000) {
  catalog = new Catalog(':memory:');
  const claims = { n: 0 };
  const queue = {
    claim: (lane: string, owner: string, ms: number) => {
      claims.n++;
      return catalog.claim(lane, owner, ms);
    },
    heartbeat: (job: JobRow, ms: number) => catalog.heartbeat(job, ms),
    release: (job: JobRow, at: number, err: string | null, charge: boolean) => catalog.release(job, at, err, charge),
    nextRunAfter: (lane: string) => catalog.nextRunAfter(lane),
  };
  const lane = new JobLane({ lane: LANE, owner: 'test-owner', queue, leaseMs: () => leaseMs, pollMs: POLL, ...(spec.adaptive ? {} : { concurrency: 1 }), ...spec } as LaneSpec);
  lanes.push(lane);
  return { lane, claims };
}

/** A run() that waits for `hold(c)`, then completes its job; `at` counts the jobs running now, the most at once, and those done. */
function counting(hold: (c: JobControl) => Promise<unknown> | undefined) {
  const at = { now: 0, most: 0, done: [] as number[] };
  const run = async (c: JobControl) => {
    at.most = Math.max(at.most, ++at.now);
    await hold(c);
    at.now--;
    catalog.complete(c.job);
    at.done.push(c.job.file_id);
  };
  return { at, run };
}

const enqueue = (...ids: number[]) => {
  for (const id of ids) catalog.enqueue(LANE, 'k', id);
};

describe('job-lane runner', () => {
  it('runs every job once, with up to `concurrency` at once and no more', async () => {
    let now = 0;
    let most = 0;
    const done: number[] = [];
    const { lane } = setup({
      concurrency: 3,
      run: async (c) => {
        most = Math.max(most, ++now);
        await turns(2);
        now--;
        expect(catalog.complete(c.job)).toBe(true);
        done.push(c.job.file_id);
      },
    });
    catalog.enqueue(LANE, 'k', 1);
    for (let i = 2; i <= 10; i++) enqueue(i);
    lane.start();
    lane.wake();
    await waitFor(() => done.length === 10, 30_000, 'ten jobs done');
    expect(done.sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(most).toBe(3);
    expect(catalog.laneCounts()).toEqual([]);
  });

  it('wakeOne sends one idle worker to the queue, wake sends all of them', async () => {
    const held = gate();
    const started: number[] = [];
    const { lane, claims } = setup({
      concurrency: 3,
      run: async (c) => {
        started.push(c.job.file_id);
        await held.promise;
        catalog.complete(c.job);
      },
    });
    lane.start();
    await waitFor(() => claims.n === 3, 30_000, 'three workers looked at the empty queue');
    enqueue(1);
    lane.wakeOne();
    await waitFor(() => started.length === 1, 30_000, 'the job started');
    await turns();
    expect(claims.n).toBe(4); // one worker woke, and claimed the job
    enqueue(2);
    lane.wake();
    await waitFor(() => started.length === 2, 30_000, 'the second job started');
    await waitFor(() => claims.n === 6, 30_000, 'both idle workers claimed');
    await turns();
    expect(claims.n).toBe(6); // the worker running job 1 was not idle
    held.open();
  });

  it('claims nothing while the gate is closed, and lets one job at a time run while on trial', async () => {
    let state: 'closed' | 'trial' | 'open' = 'closed';
    let now = 0;
    let mostOnTrial = 0;
    let most = 0;
    let quick = 3;
    const held = gate();
    const done: number[] = [];
    const { lane, claims } = setup({
      concurrency: 3,
      mayRun: (): Gate => (state === 'closed' ? { run: false, retryInMs: POLL } : { run: true, trial: state === 'trial' }),
      run: async (c) => {
        now++;
        if (state === 'trial') mostOnTrial = Math.max(mostOnTrial, now);
        most = Math.max(most, now);
        // three trials end by themselves; any later job waits, so three run at once once open
        await (state === 'trial' && quick-- > 0 ? turns(2) : held.promise);
        now--;
        catalog.complete(c.job);
        done.push(c.job.file_id);
      },
    });
    enqueue(1, 2, 3, 4, 5, 6);
    lane.start();
    await turns();
    lane.wakeOne(); // a worker held by the gate is not idle: no claim
    await turns();
    expect(claims.n).toBe(0);
    state = 'trial';
    lane.wake();
    await waitFor(() => done.length === 3, 30_000, 'three jobs on trial');
    expect(mostOnTrial).toBe(1);
    state = 'open';
    lane.wake();
    await waitFor(() => now === 3, 30_000, 'three jobs at once');
    held.open();
    await waitFor(() => done.length === 6, 30_000, 'all jobs');
    expect(mostOnTrial).toBe(1);
    expect(most).toBe(3);
  });

  it('claims nothing before ready() settles, and awaits it again after a closed gate', async () => {
    let tools = gate();
    let readyCalls = 0;
    let open = false;
    const done: number[] = [];
    const { lane, claims } = setup({
      mayRun: (): Gate => (open ? { run: true } : { run: false, retryInMs: POLL }),
      ready: () => {
        readyCalls++;
        return tools.promise;
      },
      run: async (c) => {
        catalog.complete(c.job);
        done.push(c.job.file_id);
      },
    });
    enqueue(1);
    open = true;
    lane.start();
    await turns();
    expect(claims.n).toBe(0); // still waiting for ready()
    tools.open();
    await waitFor(() => done.length === 1, 30_000, 'the job ran once ready');
    open = false;
    tools = gate();
    lane.wake(); // the idle worker finds the gate closed and waits on it
    await turns();
    expect(claims.n).toBe(2); // job 1, then the empty queue before the gate closed
    expect(readyCalls).toBe(1);
    open = true;
    enqueue(2);
    lane.wake(); // out of the gate's wait: ready() is awaited again before the next claim
    await waitFor(() => readyCalls === 2, 30_000, 'ready() asked again');
    await turns();
    expect(done).toEqual([1]);
    tools.open();
    await waitFor(() => done.length === 2, 30_000, 'the second job ran');
  });

  it('follows a concurrency that changes: more workers on wake, fewer claims when it shrinks', async () => {
    let concurrency = 1;
    const held = gate();
    const { at, run } = counting(() => held.promise);
    const { lane } = setup({ concurrency: () => concurrency, run });
    enqueue(1, 2, 3, 4);
    lane.start();
    await waitFor(() => at.now === 1, 30_000, 'one job running');
    await turns();
    expect(at.most).toBe(1);
    concurrency = 3;
    lane.wake();
    await waitFor(() => at.now === 3, 30_000, 'three jobs running');
    concurrency = 1;
    held.open();
    await waitFor(() => at.done.length === 4, 30_000, 'all jobs');
    expect(at.most).toBe(3);
  });

  it('runs no more jobs at once than its limit while there is one, and more once it lifts, without a wake', async () => {
    let limit: number | undefined = 1;
    const held = gate();
    const { at, run } = counting(() => held.promise);
    const { lane } = setup({ concurrency: 4, limit: () => limit, run });
    enqueue(1, 2, 3, 4, 5, 6);
    lane.start();
    await waitFor(() => at.now === 1, 30_000, 'one job running');
    await turns();
    expect(at.most).toBe(1);
    // no wake(): the workers held by the limit look again by themselves
    limit = undefined;
    await waitFor(() => at.now === 4, 30_000, 'four jobs running');
    limit = 2;
    held.open();
    await waitFor(() => at.done.length === 6, 30_000, 'all jobs');
    expect(at.most).toBe(4);
  });

  it('ends the transfer of a job whose run() did not count it done: it is no sample, and the level stays', async () => {
    const held = gate();
    const done: number[] = [];
    const { lane } = setup({
      adaptive: { start: 1, ceiling: () => 4 },
      run: async (c) => {
        if (c.job.file_id === 1) await held.promise;
        if (c.job.file_id === 3) throw new Error('boom');
        catalog.complete(c.job); // and never c.transfer.done()
        done.push(c.job.file_id);
      },
    });
    const a = lane.adaptive!;
    enqueue(1, 2, 3, 4, 5, 6);
    lane.start();
    await waitFor(() => a.active === 1, 30_000, 'the first transfer begun');
    held.open();
    await waitFor(() => done.length === 5 && lane.active === 0, 30_000, 'every job ended');
    expect(a.active).toBe(0);
    // five transfers counted done would have been a measured epoch: the level would have doubled
    expect(a.level).toBe(1);
  });

  it('runs as many jobs at once as the adaptive level, and wakes itself when the level rises', async () => {
    const held = gate();
    // jobs 1-4 go through at once: one measured epoch at level 1, after which it doubles
    const { at, run } = counting((c) => (c.job.file_id > 4 ? held.promise : void c.transfer.done(1000)));
    const { lane } = setup({ adaptive: { start: 1, ceiling: () => 4 }, run });
    const a = lane.adaptive!;
    enqueue(1, 2, 3, 4, 5, 6, 7, 8);
    lane.start();
    await waitFor(() => at.now === 2, 30_000, 'two jobs at once');
    expect(a.level).toBe(2);
    expect(at.done).toEqual([1, 2, 3, 4]);
    await turns();
    expect(at.now).toBe(2);
    expect(at.most).toBe(2);
    // the server asks to slow down: back to one; the jobs running end, and only one runs after
    a.congested();
    expect(a.level).toBe(1);
    held.open();
    await waitFor(() => at.done.length === 8, 30_000, 'all jobs');
    expect(at.most).toBe(2);
  });

  it('reads the ceiling of an adaptive lane again at each claim', async () => {
    let cap = 4;
    let held = gate();
    const { at, run } = counting(() => held.promise);
    const { lane } = setup({ adaptive: { start: 4, ceiling: () => cap }, run });
    enqueue(1, 2, 3, 4, 5, 6, 7, 8);
    lane.start();
    await waitFor(() => at.now === 4, 30_000, 'four jobs at once');
    cap = 2;
    const first = held;
    held = gate();
    first.open();
    await waitFor(() => at.done.length === 4 && at.now === 2, 30_000, 'the next two jobs running');
    await turns();
    expect(at.now).toBe(2);
    expect(lane.adaptive!.ceiling).toBe(2);
    expect(lane.adaptive!.level).toBe(2);
    held.open();
    await waitFor(() => at.done.length === 8, 30_000, 'all jobs');
    expect(at.most).toBe(4);
  });

  it('keeps the lease alive while a job runs, and aborts the job once its lease is lost', async () => {
    const held = gate();
    let ctl: JobControl | undefined;
    const { lane } = setup(
      {
        run: async (c) => {
          ctl = c;
          await held.promise;
        },
      },
      1500,
    );
    enqueue(1);
    lane.start();
    await waitFor(() => ctl !== undefined, 30_000, 'the job started');
    const first = catalog.jobFor(LANE, 'k', 1)!.lease_until!;
    await waitFor(() => catalog.jobFor(LANE, 'k', 1)!.lease_until! > first, 30_000, 'a heartbeat');
    expect(ctl!.signal.aborted).toBe(false);
    // Another process takes the job over (its lease ran out and it was claimed again).
    catalog.resetRunningJobs();
    const theirs = catalog.claim(LANE, 'other', 60_000)!;
    expect(theirs.fence).toBeGreaterThan(ctl!.job.fence);
    await waitFor(() => ctl!.signal.aborted, 30_000, 'the stale job aborted');
    expect(ctl!.fenced).toBe(true);
    expect(ctl!.stopping).toBe(false);
    expect(catalog.complete(ctl!.job)).toBe(false); // the fence refuses the stale worker's result
    expect(catalog.complete(theirs)).toBe(true);
    held.open();
  });

  it('claims the next job once a job hands off, and waits for that tail before another', async () => {
    const events: string[] = [];
    const tail = gate();
    const { lane } = setup({
      run: async (c) => {
        const id = c.job.file_id;
        events.push(`start ${id}`);
        if (id === 1) {
          c.handOff();
          await tail.promise;
        }
        catalog.complete(c.job);
        events.push(`end ${id}`);
      },
    });
    enqueue(1, 2, 3);
    lane.start();
    await waitFor(() => events.includes('end 2'), 30_000, 'job 2 done during the tail of job 1');
    await turns();
    expect(events).toEqual(['start 1', 'start 2', 'end 2']);
    tail.open();
    await waitFor(() => events.includes('end 3'), 30_000, 'job 3 done');
    expect(events).toEqual(['start 1', 'start 2', 'end 2', 'end 1', 'start 3', 'end 3']);
  });

  it('puts back a job whose run threw, for 30 s and counted as a try', async () => {
    const { lane } = setup({
      run: async () => {
        throw new Error('boom');
      },
    });
    enqueue(1);
    const before = Date.now();
    lane.start();
    await waitFor(() => catalog.jobFor(LANE, 'k', 1)?.state === 'queued' && catalog.jobFor(LANE, 'k', 1)!.attempts === 1, 30_000, 'the job put back');
    const job = catalog.jobFor(LANE, 'k', 1)!;
    expect(job.last_error).toBe('boom');
    expect(job.run_after).toBeGreaterThanOrEqual(before + 30_000);
    expect(lane.active).toBe(0);
  });

  it('stop aborts the jobs running, waits for them, and leaves them to run again', async () => {
    let ctl: JobControl | undefined;
    let ended = false;
    const { lane } = setup({
      run: async (c) => {
        ctl = c;
        await new Promise<void>((r) => c.signal.addEventListener('abort', () => r()));
        expect(catalog.release(c.job, 0, null, false)).toBe(true);
        ended = true;
      },
    });
    enqueue(1);
    lane.start();
    await waitFor(() => lane.active === 1, 30_000, 'the job running');
    await lane.stop();
    expect(ended).toBe(true);
    expect(ctl!.stopping).toBe(true);
    expect(ctl!.fenced).toBe(false);
    expect(catalog.jobFor(LANE, 'k', 1)).toMatchObject({ state: 'queued', attempts: 0 });
    // A new start claims it again.
    const again: number[] = [];
    const next = new JobLane({ lane: LANE, owner: 'next', queue: catalog, concurrency: 1, leaseMs: () => 30_000, pollMs: POLL, run: async (c) => void (again.push(c.job.file_id), catalog.complete(c.job)) });
    lanes.push(next);
    next.start();
    await waitFor(() => again.length === 1, 30_000, 'the job ran again');
  });
});

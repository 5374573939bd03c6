// The supervisor of the engine process, as pure logic: the clock and the process are stand-ins
// (Electron's utilityProcess cannot run here; test/desktop/engine-child.test.ts runs the same
// supervisor around the real compiled engine in a Node child process).
import { describe, expect, it } from 'vitest';
import { LineSplitter, readEngineLine, TextTail } from '../../src/main/desktop/logic/engine-output';
import { EngineStartError, EngineSupervisor, RESTART_POLICY, type Clock, type EngineExit, type EngineRun, type EngineState, type RunEvents } from '../../src/main/desktop/logic/supervisor';
import { linkFor, trayState } from '../../src/main/desktop/logic/tray';

const flush = () => new Promise<void>((r) => setImmediate(r));

class FakeClock implements Clock {
  t = 1_000_000;
  private timers: { at: number; fn: () => void; id: number }[] = [];
  private nextId = 1;
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.timers.push({ at: this.t + ms, fn, id });
    return id;
  }
  clearTimeout(id: unknown): void {
    this.timers = this.timers.filter((x) => x.id !== id);
  }
  /** Let `ms` pass, running what falls due in order. */
  async advance(ms: number): Promise<void> {
    const until = this.t + ms;
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at);
      const next = this.timers[0];
      if (!next || next.at > until) break;
      this.timers.shift();
      this.t = next.at;
      next.fn();
      await flush();
    }
    this.t = until;
    await flush();
  }
}

/** One stand-in engine process: the test says when it is ready, crashes or ends. */
class FakeRun implements EngineRun {
  stopAsked = false;
  killed = false;
  exited = false;
  constructor(
    readonly adminPort: number | undefined,
    private readonly ev: RunEvents,
    /** How it answers a stop request: ends (the engine's clean stop) or hangs. */
    private readonly onStop: 'exit' | 'hang',
  ) {}
  ready(port = this.adminPort || 8765): void {
    this.ev.ready({ adminUrl: `http://127.0.0.1:${port}`, downloadUrl: null, tokenFile: '/data/admin-token', pid: 4242 });
  }
  exit(e: Partial<EngineExit> = {}): void {
    this.exited = true;
    this.ev.exit({ code: 1, error: null, detail: 'Segmentation fault', ...e });
  }
  stop(): void {
    this.stopAsked = true;
    if (this.onStop === 'exit') setImmediate(() => this.exit({ code: 0 }));
  }
  kill(): void {
    this.killed = true;
    setImmediate(() => this.exit({ code: 143 }));
  }
}

function harness(opts: { adminPort?: number; onStop?: 'exit' | 'hang' } = {}) {
  const clock = new FakeClock();
  const runs: FakeRun[] = [];
  const states: EngineState[] = [];
  const sup = new EngineSupervisor({
    clock,
    adminPort: opts.adminPort,
    onState: (s) => states.push(s),
    launch: ({ adminPort }, ev) => {
      const r = new FakeRun(adminPort, ev, opts.onStop ?? 'exit');
      runs.push(r);
      return r;
    },
  });
  const last = () => runs[runs.length - 1]!;
  return { clock, runs, states, sup, last };
}

describe('the engine supervisor', () => {
  it('starts the engine and resolves with its ready line', async () => {
    const { sup, last, runs } = harness();
    const started = sup.start();
    expect(runs).toHaveLength(1);
    expect(runs[0]!.adminPort).toBeUndefined(); // the port in its config
    last().ready(8765);
    await expect(started).resolves.toMatchObject({ adminUrl: 'http://127.0.0.1:8765', pid: 4242 });
    expect(sup.state.state).toBe('running');
  });

  it('restarts an engine that ended unexpectedly, waiting 1 s, 2 s, 5 s, 15 s…, on the same port', async () => {
    const { sup, last, runs, clock, states } = harness();
    const started = sup.start();
    last().ready(41234);
    await started;
    const waits: number[] = [];
    for (let i = 0; i < 4; i++) {
      last().exit();
      const s = sup.state;
      expect(s.state).toBe('restarting');
      if (s.state !== 'restarting') return;
      waits.push(s.retryAt - clock.now());
      // the tray says so while it waits
      expect(trayState(null, linkFor({ state: 'lost', since: 0 }, s)).title).toBe('Engine restarting…');
      const before = runs.length;
      await clock.advance(s.retryAt - clock.now() - 1);
      expect(runs.length).toBe(before); // not before its time
      await clock.advance(1);
      expect(runs.length).toBe(before + 1);
      // the window and the tray keep the address they have
      expect(last().adminPort).toBe(41234);
      last().ready();
      await clock.advance(30_000);
    }
    expect(waits).toEqual([1_000, 2_000, 5_000, 15_000]);
    expect(states.filter((s) => s.state === 'running').length).toBe(5);
  });

  it('waits the first delay again after the engine ran a while', async () => {
    const { sup, last, clock } = harness();
    const started = sup.start();
    last().ready();
    await started;
    for (const expected of [1_000, 2_000]) {
      last().exit();
      const s = sup.state;
      expect(s.state === 'restarting' && s.retryAt - clock.now()).toBe(expected);
      await clock.advance(expected);
      last().ready();
    }
    await clock.advance(RESTART_POLICY.stableAfterMs);
    last().exit();
    const s = sup.state;
    expect(s.state === 'restarting' && s.retryAt - clock.now()).toBe(1_000);
  });

  it('gives up after 5 unexpected ends within 10 minutes, with a sentence and the detail', async () => {
    const { sup, last, runs, clock } = harness();
    const started = sup.start();
    last().ready();
    await started;
    for (let i = 0; i < 4; i++) {
      last().exit({ code: 134, detail: `crash ${i}` });
      const s = sup.state;
      if (s.state !== 'restarting') throw new Error(`expected a restart, got ${s.state}`);
      await clock.advance(s.retryAt - clock.now());
      last().ready();
    }
    last().exit({ code: 134, detail: 'FATAL ERROR: out of memory' });
    const s = sup.state;
    expect(s.state).toBe('failed');
    if (s.state !== 'failed') return;
    expect(s.message).toMatch(/^The backup engine stopped unexpectedly 5 times in a minute, so Triplicate stopped restarting it\./);
    expect(s.message).toMatch(/Quit Triplicate and start it again; if this happens again, send the log file to your IT contact\.$/);
    expect(s.detail).toContain('exit code 134');
    expect(s.detail).toContain('out of memory');
    expect(trayState(null, linkFor({ state: 'lost', since: 0 }, s)).title).toBe('The backup engine stopped');
    await clock.advance(10 * 60_000);
    expect(runs).toHaveLength(5); // no more restarts
  });

  it('keeps restarting an engine that ends now and then (fewer than 5 times in 10 minutes)', async () => {
    const { sup, last, clock } = harness();
    const started = sup.start();
    last().ready();
    await started;
    for (let i = 0; i < 8; i++) {
      await clock.advance(3 * 60_000);
      last().exit();
      const s = sup.state;
      if (s.state !== 'restarting') throw new Error(`gave up after ${i + 1} ends 3 minutes apart`);
      await clock.advance(s.retryAt - clock.now());
      last().ready();
    }
    expect(sup.state.state).toBe('running');
  });

  it('does not restart an engine that said why it cannot start: the start fails with its sentence', async () => {
    const { sup, last, runs, clock } = harness();
    const started = sup.start();
    const why = 'The config file /data/config.json has a problem:\n  - roots[0].path: use the full folder path';
    last().exit({ code: 2, error: why, detail: 'triplicate: …' });
    const err = await started.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EngineStartError);
    expect((err as EngineStartError).message).toBe(why);
    expect((err as EngineStartError).detail).toContain('exit code 2');
    await clock.advance(120_000);
    expect(runs).toHaveLength(1);
  });

  it('takes any free port once when the configured admin port is used by another program', async () => {
    const { sup, last, runs } = harness();
    const started = sup.start();
    last().exit({ code: 2, error: 'Port 8765 on 127.0.0.1 is already used by another program. Choose another server.adminPort (0 picks a free one).' });
    await flush();
    expect(runs).toHaveLength(2);
    expect(runs[1]!.adminPort).toBe(0);
    last().ready(50123);
    await expect(started).resolves.toMatchObject({ adminUrl: 'http://127.0.0.1:50123' });
  });

  it('keeps a port it was told to use (npm run dev: the dev server proxies to it) and says it is taken', async () => {
    const { sup, last, runs } = harness({ adminPort: 8765 });
    const started = sup.start();
    expect(runs[0]!.adminPort).toBe(8765);
    last().exit({ code: 2, error: 'Port 8765 on 127.0.0.1 is already used by another program.' });
    await expect(started).rejects.toThrow(/already used/);
    expect(runs).toHaveLength(1);
  });

  it('restarts an engine that crashed before its first ready line, and the start waits for it', async () => {
    const { sup, last, clock } = harness();
    const started = sup.start();
    last().exit({ code: 139, error: null });
    expect(sup.state.state).toBe('restarting');
    expect(linkFor({ state: 'connecting' }, sup.state).state).toBe('restarting');
    await clock.advance(1_000);
    last().ready();
    await expect(started).resolves.toMatchObject({ pid: 4242 });
  });

  it('stops the engine on quit: asks it to stop and waits for it to end', async () => {
    const { sup, last, states } = harness();
    const started = sup.start();
    last().ready();
    await started;
    const run = last();
    await sup.stop(20_000);
    expect(run.stopAsked).toBe(true);
    expect(run.killed).toBe(false);
    expect(run.exited).toBe(true);
    expect(states.slice(-2).map((s) => s.state)).toEqual(['stopping', 'stopped']);
  });

  it('ends an engine that does not stop in time', async () => {
    const { sup, last, clock } = harness({ onStop: 'hang' });
    const started = sup.start();
    last().ready();
    await started;
    const run = last();
    const stopping = sup.stop(20_000);
    await clock.advance(19_999);
    expect(run.killed).toBe(false);
    await clock.advance(1);
    await stopping;
    expect(run.killed).toBe(true);
    expect(sup.state.state).toBe('stopped');
  });

  it('does not start a waiting restart after quit, and an end during the stop is not a crash', async () => {
    const { sup, last, runs, clock } = harness();
    const started = sup.start();
    last().ready();
    await started;
    last().exit();
    expect(sup.state.state).toBe('restarting');
    await sup.stop();
    await clock.advance(120_000);
    expect(runs).toHaveLength(1);
    expect(sup.state.state).toBe('stopped');
  });

  it('fails at once when no process can be started at all', async () => {
    const sup = new EngineSupervisor({
      clock: new FakeClock(),
      launch: () => {
        throw new Error('spawn ENOENT');
      },
    });
    const err = await sup.start().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EngineStartError);
    expect((err as EngineStartError).message).toMatch(/could not be started\. Install Triplicate again/);
    expect((err as EngineStartError).detail).toContain('spawn ENOENT');
  });

  it('ignores the late events of an engine it replaced', async () => {
    const { sup, last, runs, clock } = harness();
    const started = sup.start();
    last().ready();
    await started;
    const first = last();
    first.exit();
    await clock.advance(1_000);
    first.ready(9999); // a stray event from the old process
    expect(sup.state.state).toBe('restarting');
    last().ready(8765);
    expect(sup.state.state === 'running' && sup.state.ready.adminUrl).toBe('http://127.0.0.1:8765');
    expect(runs).toHaveLength(2);
  });
});

describe('the engine output', () => {
  it('reads the ready line, the error line and keeps whole lines across chunks', () => {
    const s = new LineSplitter();
    expect(s.push('{"event":"ready","adminUrl":"http://127.0.0.1:87')).toEqual([]);
    const [line] = s.push('65/","downloadUrl":null,"tokenFile":"/d/admin-token","pid":7}\r\n{"ev');
    expect(readEngineLine(line!)).toEqual({ kind: 'ready', ready: { adminUrl: 'http://127.0.0.1:8765', downloadUrl: null, tokenFile: '/d/admin-token', pid: 7 } });
    expect(s.push('ent":"error","error":"No."}\n').map(readEngineLine)).toEqual([{ kind: 'error', error: 'No.' }]);
    expect(readEngineLine('triplicate: not JSON')).toEqual({ kind: 'other' });
    expect(readEngineLine('{"event":"ready"}')).toEqual({ kind: 'other' }); // no address: not a ready line
  });

  it('keeps the last lines of stderr', () => {
    const t = new TextTail(2);
    t.push(['a', 'b']);
    t.push(['c']);
    expect(t.text()).toBe('b\nc');
  });
});

// A WAN model for the benchmarks: a TCP proxy on loopback in front of one server (s3rver) that
// gives the connections through it a site's link: a round-trip time and a rate per direction.
//
// The model, one proxy = one site's link to one destination:
// - one token bucket per direction for the whole proxy, shared by all its connections (a site's
//   uplink is shared, not per connection): pieces of data take the link one after another in the
//   order they were sent, a piece of n bytes holding it n / rate seconds;
// - a delay line: a piece comes out at the far end rtt/2 after the link finished sending it, in
//   order;
// - a short queue at the link (queueMs of link time): a connection that would queue more waits its
//   turn, round robin with the others, as TCP flows keep a router's buffer from growing, so that
//   a new request does not wait behind seconds of another connection's data;
// - TCP: a new connection's first byte leaves one RTT after its connect (the handshake), and each
//   direction of a connection has a congestion window that starts at 10 segments and grows by the
//   bytes acknowledged (slow start; an ack comes back rtt/2 after its bytes arrived), up to
//   maxWindow. No losses, no TLS, no slow-start restart after idle.
// Timers fire within about a millisecond: below that (the lan preset) the proxy's own hop is the
// delay. Every piece of memory is bounded: a connection's reads pause past 1 MiB waiting here.
//
// As a module: startWanProxy (in this process: tests) or startWanProxyProcess (a child process of
// its own, so that its timers do not share the event loop of what a benchmark measures):
//   node bench/lib/wan-proxy.mjs <upstream port> <preset | JSON link>   (prints {"port":N}; needs IPC)
import { fork } from 'node:child_process';
import { connect, createServer } from 'node:net';
import { resolve } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

const MBIT = 1e6 / 8;
/** The sites: rtt in ms, rates in bytes per second. */
export const PRESETS = {
  lan: { rttMs: 0.3, upBytesPerSecond: 1000 * MBIT, downBytesPerSecond: 1000 * MBIT },
  cloud: { rttMs: 60, upBytesPerSecond: 200 * MBIT, downBytesPerSecond: 500 * MBIT },
  dsl: { rttMs: 40, upBytesPerSecond: 20 * MBIT, downBytesPerSecond: 100 * MBIT },
  far: { rttMs: 150, upBytesPerSecond: 10 * MBIT, downBytesPerSecond: 10 * MBIT },
};

/** A preset's name or a link { rttMs, upBytesPerSecond, downBytesPerSecond }. */
export function linkOf(spec) {
  if (typeof spec === 'string') {
    const p = PRESETS[spec];
    if (!p) throw new Error(`unknown WAN preset "${spec}" (${Object.keys(PRESETS).join(', ')})`);
    return { name: spec, ...p };
  }
  for (const k of ['rttMs', 'upBytesPerSecond', 'downBytesPerSecond']) if (!(spec[k] > 0)) throw new Error(`link.${k} must be > 0`);
  return { name: spec.name ?? 'custom', rttMs: spec.rttMs, upBytesPerSecond: spec.upBytesPerSecond, downBytesPerSecond: spec.downBytesPerSecond };
}

const MSS = 1460;
const INITIAL_WINDOW = 10 * MSS;
const HIGH_WATER = 1 << 20;
/** Events due this close (ms) run now: timers have ~1 ms resolution. */
const SLACK = 0.5;

/** Timed callbacks in one min-heap (time, then order of scheduling) with one armed timer. */
class Clock {
  heap = [];
  seq = 0;
  timer = null;
  immediate = null;
  armedFor = Infinity;
  stopped = false;
  now() {
    return performance.now();
  }
  at(t, fn) {
    if (this.stopped) return;
    const h = this.heap;
    const e = { t, s: this.seq++, fn };
    let i = h.push(e) - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!less(h[i], h[p])) break;
      [h[i], h[p]] = [h[p], h[i]];
      i = p;
    }
    if (t < this.armedFor) this.arm();
  }
  pop() {
    const h = this.heap;
    const top = h[0];
    const last = h.pop();
    if (h.length) {
      h[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && less(h[l], h[m])) m = l;
        if (r < h.length && less(h[r], h[m])) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m], h[i]];
        i = m;
      }
    }
    return top;
  }
  arm() {
    this.disarm();
    if (!this.heap.length || this.stopped) return;
    const t = this.heap[0].t;
    this.armedFor = t;
    const d = t - this.now();
    if (d <= SLACK) this.immediate = setImmediate(() => this.fire());
    else this.timer = setTimeout(() => this.fire(), d);
  }
  disarm() {
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    this.timer = this.immediate = null;
    this.armedFor = Infinity;
  }
  fire() {
    this.timer = this.immediate = null;
    this.armedFor = Infinity;
    // bounded: only what is due now (callbacks schedule later events, never earlier than now)
    const until = this.now() + SLACK;
    for (let n = this.heap.length; n > 0 && this.heap.length && this.heap[0].t <= until; n--) this.pop().fn();
    if (this.armedFor === Infinity) this.arm();
  }
  stop() {
    this.stopped = true;
    this.disarm();
    this.heap = [];
  }
}
const less = (a, b) => a.t < b.t || (a.t === b.t && a.s < b.s);

/** One direction of the site's link: a token bucket (rate, a queue of queueMs) shared by every connection. */
class Link {
  constructor(clock, bytesPerSecond, queueMs) {
    this.clock = clock;
    this.rate = bytesPerSecond;
    this.queueMs = queueMs;
    // pieces of ~2 ms of link time (4-64 KiB): smooth enough, few enough timers
    this.piece = Math.max(4096, Math.min(65536, Math.round(bytesPerSecond * 0.002)));
    this.freeAt = 0;
    this.waiting = new Set();
    this.wakeArmed = false;
    this.stats = { bytes: 0, pieces: 0, firstStartMs: null, lastEndMs: null, busyMs: 0, maxQueueMs: 0 };
  }
  hasRoom(now) {
    return this.freeAt - now < this.queueMs + SLACK;
  }
  /** Reserve the link for n bytes from now (or when it frees); returns when they are sent. */
  take(n, now) {
    const start = Math.max(now, this.freeAt);
    const ms = (n * 1000) / this.rate;
    this.freeAt = start + ms;
    const s = this.stats;
    s.bytes += n;
    s.pieces++;
    s.busyMs += ms;
    s.firstStartMs ??= start;
    s.lastEndMs = this.freeAt;
    s.maxQueueMs = Math.max(s.maxQueueMs, start - now);
    return this.freeAt;
  }
  wait(pipe) {
    this.waiting.add(pipe);
    if (this.wakeArmed) return;
    this.wakeArmed = true;
    this.clock.at(this.freeAt - this.queueMs, () => this.wake());
  }
  /** Room again: the waiting connections send one piece each in turn while it lasts. */
  wake() {
    this.wakeArmed = false;
    const now = this.clock.now();
    while (this.waiting.size && this.hasRoom(now)) {
      let sent = false;
      for (const p of this.waiting) {
        if (!this.hasRoom(now)) break;
        if (p.sendOne(now)) sent = true;
        else this.waiting.delete(p); // it is pumped again by its own ack, data or drain
      }
      if (!sent) break;
    }
    if (this.waiting.size && !this.wakeArmed) {
      this.wakeArmed = true;
      this.clock.at(this.freeAt - this.queueMs, () => this.wake());
    }
  }
}

/** One direction of one connection: src's bytes through the link, to dst. */
class Pipe {
  constructor(proxy, link, src, dst, releaseAt) {
    this.clock = proxy.clock;
    this.half = proxy.link.rttMs / 2;
    this.maxWindow = proxy.maxWindow;
    this.link = link;
    this.src = src;
    this.dst = dst;
    this.releaseAt = releaseAt;
    this.released = false;
    this.releaseArmed = false;
    this.pending = [];
    this.pendingBytes = 0;
    this.inflight = 0;
    this.cwnd = INITIAL_WINDOW;
    this.ended = false;
    this.endScheduled = false;
    this.lastDeliverAt = 0;
  }
  onData(buf) {
    this.pending.push(buf);
    this.pendingBytes += buf.length;
    if (this.pendingBytes > HIGH_WATER) this.src.pause();
    this.pump();
  }
  onEnd() {
    this.ended = true;
    this.pump();
  }
  canSend() {
    return this.pending.length > 0 && this.released && this.cwnd - this.inflight >= Math.min(MSS, this.pendingBytes) && this.dst.writableLength < HIGH_WATER && !this.dst.destroyed;
  }
  pump() {
    const now = this.clock.now();
    if (!this.released) {
      // (the clock runs what is due within SLACK: compare the same way)
      if (now + SLACK < this.releaseAt) {
        if (!this.releaseArmed) {
          this.releaseArmed = true;
          this.clock.at(this.releaseAt, () => {
            this.releaseArmed = false;
            this.pump();
          });
        }
        return;
      }
      this.released = true;
    }
    while (this.canSend()) {
      if (!this.link.hasRoom(now) || (this.link.waiting.size && !this.link.waiting.has(this))) {
        this.link.wait(this);
        break;
      }
      this.sendPiece(now);
    }
    this.settle(now);
  }
  sendOne(now) {
    const ok = this.canSend();
    if (ok) this.sendPiece(now);
    this.settle(now);
    return ok;
  }
  sendPiece(now) {
    const room = Math.min(this.cwnd - this.inflight, this.link.piece);
    const buf = this.pending[0];
    let piece = buf;
    if (buf.length > room) {
      piece = buf.subarray(0, room);
      this.pending[0] = buf.subarray(room);
    } else this.pending.shift();
    const n = piece.length;
    this.pendingBytes -= n;
    this.inflight += n;
    const at = this.link.take(n, now) + this.half;
    this.lastDeliverAt = at;
    this.clock.at(at, () => {
      if (!this.dst.destroyed) this.dst.write(piece);
    });
    this.clock.at(at + this.half, () => {
      this.inflight -= n;
      this.cwnd = Math.min(this.maxWindow, this.cwnd + n);
      this.pump();
    });
  }
  settle(now) {
    if (this.src.isPaused() && this.pendingBytes < HIGH_WATER / 2 && !this.src.destroyed) this.src.resume();
    if (this.ended && this.pending.length === 0 && !this.endScheduled) {
      this.endScheduled = true;
      this.clock.at(Math.max(now, this.lastDeliverAt), () => {
        if (!this.dst.destroyed) this.dst.end();
      });
    }
  }
}

/**
 * A WAN proxy in this process, listening on 127.0.0.1 (a free port unless `port`), forwarding to
 * upstreamHost:upstreamPort through the link `link` (a preset's name or a link object).
 */
export async function startWanProxy({ upstreamPort, upstreamHost = '127.0.0.1', link = 'lan', port = 0, maxConnections = 1024, queueMs = 10, maxWindow = 4 << 20 }) {
  if (!['127.0.0.1', 'localhost', '::1'].includes(upstreamHost)) throw new Error('the WAN proxy forwards to loopback only');
  const clock = new Clock();
  const l = linkOf(link);
  const proxy = {
    clock,
    link: l,
    maxWindow,
    up: new Link(clock, l.upBytesPerSecond, queueMs),
    down: new Link(clock, l.downBytesPerSecond, queueMs),
  };
  const counts = { connections: 0, refused: 0, open: 0 };
  const sockets = new Set();
  const server = createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
    if (counts.open >= maxConnections) {
      counts.refused++;
      client.destroy();
      return;
    }
    counts.connections++;
    counts.open++;
    const now = clock.now();
    const upstream = connect({ port: upstreamPort, host: upstreamHost, allowHalfOpen: true, noDelay: true });
    sockets.add(client);
    sockets.add(upstream);
    // the handshake: the client's first byte leaves one RTT after its connect
    const up = new Pipe(proxy, proxy.up, client, upstream, now + l.rttMs);
    const down = new Pipe(proxy, proxy.down, upstream, client, 0);
    client.on('data', (b) => up.onData(b));
    upstream.on('data', (b) => down.onData(b));
    client.on('end', () => up.onEnd());
    upstream.on('end', () => down.onEnd());
    client.on('drain', () => down.pump());
    upstream.on('drain', () => up.pump());
    let closed = 0;
    const gone = (s, pipe) => (hadError) => {
      sockets.delete(s);
      if (hadError) {
        client.destroy();
        upstream.destroy();
      } else if (!pipe.ended) pipe.onEnd();
      if (++closed === 2) counts.open--;
    };
    client.on('close', gone(client, up));
    upstream.on('close', gone(upstream, down));
    client.on('error', () => {});
    upstream.on('error', () => {});
  });
  await new Promise((res, rej) => {
    server.once('error', rej);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', rej);
      res();
    });
  });
  const boundPort = server.address().port;
  return {
    port: boundPort,
    endpoint: `http://127.0.0.1:${boundPort}`,
    link: l,
    /** Counters and the link times the proxy applied (ms on performance.now()'s clock). */
    stats: () => ({ ...counts, link: l, nowMs: clock.now(), up: { ...proxy.up.stats }, down: { ...proxy.down.stats } }),
    async close() {
      const done = new Promise((r) => server.close(() => r()));
      for (const s of sockets) s.destroy();
      clock.stop();
      await done;
    },
  };
}

const self = fileURLToPath(import.meta.url);

/** The same proxy in a child process of its own; stats() asks it over IPC. */
export async function startWanProxyProcess(upstreamPort, link, opts = {}) {
  const child = fork(self, [String(upstreamPort), typeof link === 'string' ? link : JSON.stringify(link), JSON.stringify(opts)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const waiting = new Map();
  let nextId = 0;
  let exited = false;
  const exit = new Promise((r) =>
    child.once('exit', () => {
      exited = true;
      r();
    }),
  );
  const port = await new Promise((res, rej) => {
    child.once('message', (m) => res(m.port));
    child.once('exit', (c) => rej(new Error(`wan proxy exited ${c}`)));
  });
  child.on('message', (m) => {
    const w = waiting.get(m.id);
    if (!w) return;
    waiting.delete(m.id);
    w(m.stats);
  });
  return {
    port,
    endpoint: `http://127.0.0.1:${port}`,
    link: linkOf(link),
    pid: child.pid,
    stats: () =>
      new Promise((res, rej) => {
        if (exited) return rej(new Error('wan proxy exited'));
        const id = nextId++;
        waiting.set(id, res);
        child.send({ cmd: 'stats', id });
      }),
    async stop() {
      if (!exited) child.kill('SIGTERM');
      await exit;
    },
  };
}

if (process.argv[1] && resolve(process.argv[1]) === self) {
  const [upstreamPort, spec, opts] = process.argv.slice(2);
  if (!process.send) throw new Error('run through startWanProxyProcess (needs an IPC channel)');
  const p = await startWanProxy({ ...(opts ? JSON.parse(opts) : {}), upstreamPort: Number(upstreamPort), link: spec.startsWith('{') ? JSON.parse(spec) : spec });
  process.send({ port: p.port });
  process.on('message', (m) => m?.cmd === 'stats' && process.send({ id: m.id, stats: p.stats() }));
  const quit = () => p.close().then(() => process.exit(0));
  process.on('SIGTERM', quit);
  process.on('disconnect', quit); // the parent is gone: so is this proxy
}

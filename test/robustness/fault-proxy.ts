// A small TCP proxy that sits between the engine and one S3 server and breaks the link on demand.
//
// Modes (setMode; they apply to connections already open as well as new ones):
//   pass       forward both ways
//   refuse     the listener is closed and open connections are reset: connect() gets ECONNREFUSED
//   blackhole  connections are accepted and nothing is forwarded either way (data waits in the
//              socket buffers, as on a dead link); leaving the mode lets it flow again
//   reset      each connection is reset once `afterBytes` request bytes went through it
//   trickle    both directions share `bytesPerSecond` (default 50 KB/s)
//   http5xx    whole HTTP requests are answered by the proxy with `status` (default 503, an S3
//              error body) instead of being forwarded: every `every`-th request, or with `probability`;
//              with `match`, only requests whose "METHOD target" matches count
//
// On top of any mode, resetMultipartOnce(afterBytes) resets the connection in the middle of the first
// part upload (PUT ...?partNumber=&uploadId=) of every object key, once per key: "a reset in the
// middle of every multipart upload", after which the retry may go through.
//
// The proxy parses just enough HTTP on the client->server direction (request line, Content-Length,
// chunked bodies are passed through as a whole connection) to find request boundaries.
import { createServer, connect, type Server, type Socket } from 'node:net';

export type FaultMode =
  | { kind: 'pass' }
  | { kind: 'refuse' }
  | { kind: 'blackhole' }
  | { kind: 'reset'; afterBytes: number }
  | { kind: 'trickle'; bytesPerSecond?: number }
  | { kind: 'http5xx'; status?: number; every?: number; probability?: number; match?: RegExp };

export interface FaultStats {
  connections: number;
  refused: number;
  resets: number;
  multipartResets: number;
  injected5xx: number;
  requests: number;
  bytesUp: number;
  bytesDown: number;
}

interface Conn {
  client: Socket;
  server: Socket | null;
  up: number;
  /** request parser state */
  head: Buffer;
  bodyLeft: number;
  /** current request is being answered by the proxy: swallow its body */
  swallowing: boolean;
  /** bytes of the current request's body (for the multipart reset) */
  partKey: string | null;
  partSent: number;
  opaque: boolean;
  pendingUp: Buffer[];
  pendingDown: Buffer[];
  /** the server closed while answer bytes still wait here (held or trickling): close after them */
  serverGone: boolean;
  closed: boolean;
}

export class FaultProxy {
  private server: Server | null = null;
  private conns = new Set<Conn>();
  private mode: FaultMode = { kind: 'pass' };
  private mpuResetAfter: number | null = null;
  private readonly mpuResetDone = new Set<string>();
  private requestNo = 0;
  private matched = 0;
  private trickleTimer: NodeJS.Timeout | null = null;
  private seed: number;
  port = 0;
  readonly stats: FaultStats = { connections: 0, refused: 0, resets: 0, multipartResets: 0, injected5xx: 0, requests: 0, bytesUp: 0, bytesDown: 0 };

  constructor(
    private readonly upstreamPort: number,
    private readonly upstreamHost = '127.0.0.1',
    seed = 1,
  ) {
    this.seed = seed >>> 0 || 1;
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get currentMode(): FaultMode {
    return this.mode;
  }

  async start(port = 0): Promise<number> {
    await this.listen(port);
    return this.port;
  }

  private listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const srv = createServer({ noDelay: true }, (s) => this.accept(s));
      srv.once('error', reject);
      srv.listen(port, '127.0.0.1', () => {
        srv.off('error', reject);
        this.server = srv;
        this.port = (srv.address() as { port: number }).port;
        resolve();
      });
    });
  }

  private async unlisten(): Promise<void> {
    const srv = this.server;
    this.server = null;
    if (srv) await new Promise<void>((r) => srv.close(() => r()));
  }

  /** Change the mode; open connections follow it. */
  async setMode(mode: FaultMode): Promise<void> {
    const prev = this.mode;
    this.mode = mode;
    if (mode.kind === 'refuse') {
      for (const c of [...this.conns]) this.kill(c, false);
      await this.unlisten();
      return;
    }
    if (prev.kind === 'refuse' || !this.server) {
      // Re-listen on the same port (SO_REUSEADDR: no TIME_WAIT trouble); retry briefly if busy.
      for (let i = 0; ; i++) {
        try {
          await this.listen(this.port);
          break;
        } catch (e) {
          if (i >= 50) throw e;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    }
    if (mode.kind === 'trickle') this.startTrickle();
    else this.stopTrickle();
    if (prev.kind === 'blackhole' || prev.kind === 'trickle') for (const c of this.conns) this.flush(c);
  }

  /** Reset the connection in the middle of the first part upload of every object, once per object. */
  resetMultipartOnce(afterBytes: number | null): void {
    this.mpuResetAfter = afterBytes;
  }

  /** Cut every open connection now (a NAT table flush, a cable pulled and put back). */
  resetAll(): void {
    for (const c of [...this.conns]) this.kill(c, true);
  }

  async stop(): Promise<void> {
    this.stopTrickle();
    for (const c of [...this.conns]) this.kill(c, false);
    await this.unlisten();
  }

  private random(): number {
    let x = this.seed;
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    this.seed = x;
    return x / 0x100000000;
  }

  private accept(client: Socket): void {
    this.stats.connections++;
    if (this.mode.kind === 'refuse') {
      this.stats.refused++;
      client.resetAndDestroy();
      return;
    }
    client.setNoDelay(true);
    const c: Conn = { client, server: null, up: 0, head: Buffer.alloc(0), bodyLeft: 0, swallowing: false, partKey: null, partSent: 0, opaque: false, pendingUp: [], pendingDown: [], serverGone: false, closed: false };
    this.conns.add(c);
    const server = connect({ port: this.upstreamPort, host: this.upstreamHost, noDelay: true });
    c.server = server;
    server.on('data', (d: Buffer) => this.fromServer(c, d));
    server.on('error', () => this.kill(c, true));
    server.on('close', () => {
      if (c.pendingDown.length) c.serverGone = true; // deliver what is held first
      else this.close(c);
    });
    client.on('data', (d: Buffer) => this.fromClient(c, d));
    client.on('error', () => this.kill(c, true));
    client.on('close', () => this.close(c));
  }

  private close(c: Conn): void {
    if (c.closed) return;
    c.closed = true;
    this.conns.delete(c);
    if (c.client.writableLength > 0 && !c.client.destroyed) c.client.end();
    else c.client.destroy();
    c.server?.destroy();
  }

  private kill(c: Conn, count: boolean): void {
    if (c.closed) return;
    if (count) this.stats.resets++;
    c.closed = true;
    this.conns.delete(c);
    if (!c.client.destroyed) c.client.resetAndDestroy();
    if (c.server && !c.server.destroyed) c.server.resetAndDestroy();
  }

  private held(): boolean {
    return this.mode.kind === 'blackhole' || this.mode.kind === 'trickle';
  }

  private fromServer(c: Conn, d: Buffer): void {
    if (c.closed) return;
    if (this.held()) {
      c.pendingDown.push(d);
      c.server!.pause();
      return;
    }
    this.stats.bytesDown += d.length;
    c.client.write(d);
  }

  private fromClient(c: Conn, d: Buffer): void {
    if (c.closed) return;
    if (this.held()) {
      c.pendingUp.push(d);
      c.client.pause();
      return;
    }
    this.forwardUp(c, d);
  }

  /** Client bytes through the request parser, then to the server (or the fault). */
  private forwardUp(c: Conn, d: Buffer): void {
    let off = 0;
    while (off < d.length && !c.closed) {
      if (c.opaque) {
        this.sendUp(c, d.subarray(off));
        return;
      }
      if (c.bodyLeft > 0) {
        const n = Math.min(c.bodyLeft, d.length - off);
        const chunk = d.subarray(off, off + n);
        c.bodyLeft -= n;
        off += n;
        if (c.swallowing) {
          if (c.bodyLeft === 0) this.answer5xx(c);
          continue;
        }
        if (c.partKey !== null && this.mpuResetAfter !== null && !this.mpuResetDone.has(c.partKey)) {
          c.partSent += n;
          if (c.partSent >= this.mpuResetAfter) {
            this.mpuResetDone.add(c.partKey);
            this.stats.multipartResets++;
            this.kill(c, true);
            return;
          }
        }
        this.sendUp(c, chunk);
        continue;
      }
      // in a request head
      const rest = d.subarray(off);
      const buf = c.head.length ? Buffer.concat([c.head, rest]) : rest;
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) {
        if (buf.length > 64 * 1024) {
          c.opaque = true; // not HTTP as we know it: just forward
          this.sendUp(c, buf);
          c.head = Buffer.alloc(0);
          return;
        }
        c.head = Buffer.from(buf);
        return;
      }
      const headLen = end + 4;
      const head = buf.subarray(0, headLen);
      const consumedFromRest = headLen - c.head.length;
      c.head = Buffer.alloc(0);
      off += consumedFromRest;
      this.onRequest(c, head);
      if (c.closed) return;
    }
  }

  private onRequest(c: Conn, head: Buffer): void {
    const text = head.toString('latin1');
    const [requestLine = '', ...lines] = text.split('\r\n');
    const [method = '', target = ''] = requestLine.split(' ');
    let contentLength = 0;
    let chunked = false;
    let expect100 = false;
    for (const l of lines) {
      const i = l.indexOf(':');
      if (i < 0) continue;
      const name = l.slice(0, i).trim().toLowerCase();
      const value = l.slice(i + 1).trim();
      if (name === 'content-length') contentLength = Number(value) || 0;
      if (name === 'transfer-encoding' && /chunked/i.test(value)) chunked = true;
      if (name === 'expect' && /100-continue/i.test(value)) expect100 = true;
    }
    this.stats.requests++;
    this.requestNo++;
    c.partKey = null;
    c.partSent = 0;
    const m = this.mode;
    if (m.kind === 'http5xx' && (!m.match || m.match.test(`${method} ${target}`))) {
      this.matched++;
      const hit = m.every ? this.matched % m.every === 0 : this.random() < (m.probability ?? 1);
      if (hit) {
        this.stats.injected5xx++;
        c.swallowing = true;
        // A client waiting for "100 Continue" sends no body: answer at once (it must not send it then).
        c.bodyLeft = chunked || expect100 ? 0 : contentLength;
        if (c.bodyLeft === 0) this.answer5xx(c);
        return;
      }
    }
    if (chunked) c.opaque = true;
    if (method === 'PUT' && /[?&]partNumber=/.test(target) && /[?&]uploadId=/.test(target)) {
      c.partKey = target.split('?')[0]!;
    }
    c.bodyLeft = chunked ? 0 : contentLength;
    this.sendUp(c, head);
  }

  private answer5xx(c: Conn): void {
    const status = this.mode.kind === 'http5xx' ? (this.mode.status ?? 503) : 503;
    const reason = status === 503 ? 'Slow Down' : status === 500 ? 'Internal Server Error' : 'Error';
    const code = status === 503 ? 'SlowDown' : 'InternalError';
    const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>Injected by the fault proxy.</Message></Error>`;
    c.swallowing = false;
    c.client.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/xml\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
    c.server?.destroy();
    c.closed = true;
    this.conns.delete(c);
  }

  private sendUp(c: Conn, d: Buffer): void {
    if (d.length === 0) return;
    const m = this.mode;
    if (m.kind === 'reset') {
      if (c.up + d.length >= m.afterBytes) {
        const n = Math.max(0, m.afterBytes - c.up);
        if (n > 0) c.server!.write(d.subarray(0, n));
        this.stats.bytesUp += n;
        this.kill(c, true);
        return;
      }
    }
    c.up += d.length;
    this.stats.bytesUp += d.length;
    c.server!.write(d);
  }

  private flush(c: Conn): void {
    const up = c.pendingUp.splice(0);
    const down = c.pendingDown.splice(0);
    for (const d of down) {
      this.stats.bytesDown += d.length;
      c.client.write(d);
    }
    if (c.serverGone) {
      c.client.end();
      this.close(c);
      return;
    }
    for (const d of up) this.forwardUp(c, d);
    if (!c.closed) {
      c.client.resume();
      c.server?.resume();
    }
  }

  private startTrickle(): void {
    if (this.trickleTimer) return;
    const tickMs = 50;
    this.trickleTimer = setInterval(() => {
      const m = this.mode;
      if (m.kind !== 'trickle') return;
      let budget = Math.max(1, Math.round(((m.bytesPerSecond ?? 50_000) * tickMs) / 1000));
      // round-robin over connections with something waiting, downstream first (answers unblock clients)
      const queues: { c: Conn; q: Buffer[]; down: boolean }[] = [];
      for (const c of this.conns) {
        if (c.pendingDown.length) queues.push({ c, q: c.pendingDown, down: true });
        if (c.pendingUp.length) queues.push({ c, q: c.pendingUp, down: false });
        // held sockets are paused; let the next chunk in once the queue is drained
        if (!c.pendingDown.length) c.server?.resume();
        if (!c.pendingUp.length) c.client.resume();
      }
      let i = 0;
      while (budget > 0 && queues.length) {
        const item = queues[i % queues.length]!;
        const share = Math.max(1, Math.floor(budget / queues.length));
        const first = item.q[0]!;
        const n = Math.min(share, first.length, budget);
        const piece = first.subarray(0, n);
        if (n === first.length) item.q.shift();
        else item.q[0] = first.subarray(n);
        budget -= n;
        if (item.c.closed) {
          queues.splice(i % queues.length, 1);
          continue;
        }
        if (item.down) {
          this.stats.bytesDown += n;
          item.c.client.write(piece);
          if (item.c.serverGone && !item.q.length) {
            item.c.client.end();
            this.close(item.c);
          }
        } else {
          this.forwardUp(item.c, piece);
        }
        if (!item.q.length) queues.splice(i % queues.length, 1);
        else i++;
      }
    }, tickMs);
    this.trickleTimer.unref?.();
  }

  private stopTrickle(): void {
    if (this.trickleTimer) clearInterval(this.trickleTimer);
    this.trickleTimer = null;
  }
}

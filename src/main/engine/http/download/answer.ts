// The HTTP answer of a download: from a representation (size, ETag, Last-Modified) and the
// request's conditions and ranges (planResponse, ranges.ts) to the status, the headers and the body:
// HEAD, 304, 412 and 416 answered here; one span or multipart/byteranges; bodies from memory, from
// an open local file (two reused buffers) or from a target's stream (with backpressure). A source
// that breaks after the headers went out destroys the response: never a silently short "200".
import { randomBytes } from 'node:crypto';
import { read as fsRead } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { contentTypeOf } from '../../../../shared/keys';
import { isStorageError } from '../../backends/types';
import { log } from '../../log';
import { errorText } from '../../util';
import { contentDisposition, multipartFraming, planResponse, type Plan, type Representation, type Span } from '../ranges';
import type { AccessEntry } from './access-log';

export const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'SAMEORIGIN',
};
const SECURITY_HEADER_LIST = Object.entries(SECURITY_HEADERS).flat();
/** Served files are data, never a page that runs scripts (an SVG or HTML file opened inline). */
const FILE_CSP = "sandbox; default-src 'none'; img-src 'self' data:; media-src 'self'; style-src 'unsafe-inline'";

export type ServeWhat = { rootId: string; relPath: string; disposition: 'inline' | 'attachment'; cacheControl: string };

/** One admitted download: what is served, to whom, and whether the client is still there. */
export class ServeCtx {
  readonly method: 'GET' | 'HEAD';
  readonly rootId: string;
  readonly relPath: string;
  readonly disposition: 'inline' | 'attachment';
  readonly cacheControl: string;
  /** The client left before the end. */
  gone = false;
  /** Filled when a body (or HEAD headers) went out: status and first byte. */
  sent?: { status: number; firstByte: number };
  /** Made only when a source asks for the signal (local files do not). */
  private ac?: AbortController;
  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly entry: AccessEntry,
    what: ServeWhat,
  ) {
    this.method = req.method === 'HEAD' ? 'HEAD' : 'GET';
    this.rootId = what.rootId;
    this.relPath = what.relPath;
    this.disposition = what.disposition;
    this.cacheControl = what.cacheControl;
  }
  /** Aborted when the client leaves before the end. */
  get signal(): AbortSignal {
    this.ac ??= new AbortController();
    if (this.gone && !this.ac.signal.aborted) this.ac.abort();
    return this.ac.signal;
  }
  /** The response closed: unless it finished, the client left, and the source is aborted. */
  closed(): void {
    if (this.res.writableFinished) return;
    this.gone = true;
    this.ac?.abort();
  }
}

interface Head {
  /** [name, value, name, value, …] */
  headers: (string | number)[];
  spans: Span[];
  /** Multipart framing, when more than one range is sent. */
  framing?: { heads: string[]; tail: string; length: number };
}

export const NOT_FOUND = 'There is no such file. It may have been renamed or deleted.';

/** Spans up to this size are read in one call into one buffer. */
const SINGLE_READ_MAX = 1024 * 1024;

/** Serve a local file from its open fd. */
export async function sendFile(ctx: ServeCtx, fd: number, rep: Representation): Promise<void> {
  await send(ctx, rep, planResponse(ctx.method, ctx.req.headers, rep), async (span) => {
    const len = span.end - span.start + 1;
    // Small spans in one read (one buffer, one write); bigger ones pumped through two reused buffers.
    if (len <= SINGLE_READ_MAX) return readSpan(fd, span.start, len);
    return { fd };
  });
}

/**
 * Serve content that is in memory (small local files). Answered at once, headers and body in
 * one write; only a multi-range answer returns a promise.
 */
export function sendBuffer(ctx: ServeCtx, buf: Buffer, rep: Representation): Promise<void> | void {
  const plan = planResponse(ctx.method, ctx.req.headers, rep);
  const head = answerHead(ctx, rep, plan);
  if (!head) return;
  if (head.framing) return sendBody(ctx, plan, head, async (span) => buf.subarray(span.start, span.end + 1));
  const { res } = ctx;
  res.writeHead(plan.status, head.headers);
  const span = head.spans[0];
  if (ctx.method === 'HEAD' || !span) {
    res.end();
    ctx.sent = { status: plan.status, firstByte: 0 };
    return;
  }
  ctx.sent = { status: plan.status, firstByte: span.start };
  res.end(span.start === 0 && span.end === buf.length - 1 ? buf : buf.subarray(span.start, span.end + 1));
}

/**
 * Answer per the plan. `open` gives the body of one span; the first one is opened before any
 * header is written, so a source that fails to open lets the caller try the next source.
 * Failures after the headers destroy the response (never a silently short body).
 */
export async function send(ctx: ServeCtx, rep: Representation, plan: Plan, openSpan: (span: Span) => Promise<Body>): Promise<void> {
  const head = answerHead(ctx, rep, plan);
  if (head) await sendBody(ctx, plan, head, openSpan);
}

/**
 * The headers and spans of an answer with a body (200, 206), or null when the plan was answered
 * here already (304, 412, 416).
 */
function answerHead(ctx: ServeCtx, rep: Representation, plan: Plan): Head | null {
  const { req, res } = ctx;
  // A flat [name, value, …] list: the cheapest form for writeHead (no header object to build).
  const headers: (string | number)[] = [...SECURITY_HEADER_LIST, 'accept-ranges', 'bytes', 'etag', rep.etag, 'cache-control', ctx.cacheControl];
  if (rep.lastModified !== undefined) headers.push('last-modified', new Date(rep.lastModified).toUTCString());
  if (plan.status === 304) {
    res.writeHead(304, headers);
    res.end();
    return null;
  }
  if (plan.status === 412) {
    sendError(req, res, 412, 'precondition_failed', 'The file changed since you last got it.');
    return null;
  }
  if (plan.status === 416) {
    sendError(req, res, 416, 'range_not_satisfiable', 'The requested part of the file is beyond its end.', { 'content-range': `bytes */${rep.size}` });
    return null;
  }
  const type = contentTypeOf(ctx.relPath);
  headers.push(
    'content-disposition',
    contentDisposition(ctx.disposition, ctx.relPath.slice(ctx.relPath.lastIndexOf('/') + 1)),
    'content-security-policy',
    FILE_CSP,
  );
  const spans: Span[] = plan.status === 206 ? plan.ranges : rep.size > 0 ? [{ start: 0, end: rep.size - 1 }] : [];
  let framing: Head['framing'];
  let length: number;
  if (spans.length > 1) {
    const boundary = randomBytes(12).toString('hex');
    framing = multipartFraming(boundary, type, spans, rep.size);
    length = framing.length;
    headers.push('content-type', `multipart/byteranges; boundary=${boundary}`, 'content-length', length);
  } else {
    length = spans.length ? spans[0]!.end - spans[0]!.start + 1 : 0;
    headers.push('content-type', type, 'content-length', length);
    if (plan.status === 206) headers.push('content-range', `bytes ${spans[0]!.start}-${spans[0]!.end}/${rep.size}`);
  }
  ctx.entry.bytes = length;
  return { headers, spans, framing };
}

async function sendBody(ctx: ServeCtx, plan: Plan, head: Head, openSpan: (span: Span) => Promise<Body>): Promise<void> {
  const { res } = ctx;
  const { headers, spans, framing } = head;
  if (ctx.method === 'HEAD' || spans.length === 0) {
    res.writeHead(plan.status, headers);
    res.end();
    ctx.sent = { status: plan.status, firstByte: 0 };
    return;
  }
  const first = await openSpan(spans[0]!); // may throw: nothing was written yet
  res.writeHead(plan.status, headers);
  ctx.sent = { status: plan.status, firstByte: spans[0]!.start };
  try {
    if (!framing) {
      if (Buffer.isBuffer(first)) {
        if (first.length !== spans[0]!.end - spans[0]!.start + 1) throw new Error('short read');
        res.end(first); // headers and body in one write
        return;
      }
      await pump(first, res, spans[0]!);
      res.end();
      return;
    }
    for (let i = 0; i < spans.length; i++) {
      if (!res.write(framing.heads[i]!)) await drained(res);
      await pump(i === 0 ? first : await openSpan(spans[i]!), res, spans[i]!);
    }
    res.end(framing.tail);
  } catch (e) {
    if (first instanceof Readable) first.destroy();
    if (!ctx.gone) {
      ctx.entry.error = `source failed mid-way: ${isStorageError(e) ? e.kind : errorText(e)}`.slice(0, 300);
      log.warn(`download of ${ctx.rootId}/${ctx.relPath} broke off (${ctx.entry.source ?? '?'}): ${errorText(e)}`);
    }
    res.destroy();
  }
}

/** Read `len` bytes at `pos`; fewer (the file shrank) is an error, never a short answer. */
export async function readSpan(fd: number, pos: number, len: number): Promise<Buffer> {
  const buf = Buffer.allocUnsafe(len);
  await readInto(fd, buf, len, pos);
  return buf;
}

/** Stream one span into the response (backpressure via pipeline); a source that ends short is an error. */
async function pump(body: Body, res: ServerResponse, span: Span): Promise<void> {
  const want = span.end - span.start + 1;
  if (Buffer.isBuffer(body)) {
    if (body.length !== want) throw new Error(`the source gave ${body.length} of ${want} bytes`);
    if (!res.write(body)) await drained(res);
    return;
  }
  if (!(body instanceof Readable)) return pumpFile(body.fd, res, span);
  // Backpressure with room: the source is paused only when more than STREAM_WINDOW bytes wait
  // for the client, not at every chunk above the socket's 16 KiB mark (a stop-and-go that halves
  // the throughput of a proxied S3 download). Events, not an async iterator: no promise per chunk.
  let got = 0;
  // Errors after we stopped listening (the source aborted because the client left) are expected:
  // a permanent listener keeps them from becoming uncaught.
  body.on('error', () => undefined);
  // A small body (a photo, a thumbnail) goes out in one write with the headers once it has all
  // come in, not a write per socket read of the source (3-4 for 200 KB).
  const corked = want <= CORK_MAX;
  if (corked) res.cork();
  // A bigger span: the chunks that come in during one turn of the event loop go out in one
  // write (corked until setImmediate), not one send per 64 KiB socket read.
  let batch: NodeJS.Immediate | null = null;
  const flushBatch = () => {
    batch = null;
    res.uncork();
  };
  try {
    await new Promise<void>((resolve, reject) => {
      const onDrain = () => body.resume();
      const onData = (chunk: Buffer) => {
        got += chunk.length;
        if (!corked && !batch) {
          res.cork();
          batch = setImmediate(flushBatch);
        }
        res.write(chunk);
        if (res.writableLength > STREAM_WINDOW) {
          body.pause();
          res.once('drain', onDrain);
        }
      };
      const onClose = () => finish(new Error('the client went away'));
      const finish = (e?: Error | null) => {
        body.off('data', onData);
        body.off('end', finish);
        body.off('error', finish);
        res.off('close', onClose);
        res.off('drain', onDrain);
        if (e) reject(e);
        else resolve();
      };
      body.on('data', onData);
      body.once('end', finish);
      body.once('error', finish);
      res.once('close', onClose);
    });
  } finally {
    if (batch) {
      clearImmediate(batch);
      flushBatch();
    }
    if (corked) res.uncork();
    if (!body.destroyed) body.destroy();
  }
  if (got !== want) throw new Error(`the source ended after ${got} of ${want} bytes`);
}

/** Bytes a proxied download may have waiting for the client before its source is paused. */
const STREAM_WINDOW = 1024 * 1024;
/** Proxied spans up to this size are sent in one write when complete (below STREAM_WINDOW: no pause). */
const CORK_MAX = 512 * 1024;

/** What a source gives for a span: a stream (targets), bytes (small local spans) or an open file to pump. */
export type Body = Readable | Buffer | { fd: number };

const PUMP_CHUNK = 512 * 1024;

/**
 * Copy a span of a local file to the response through two reused buffers: the next chunk is read
 * while the previous one is being sent, and a buffer is reused only after its write completed.
 * (No allocation per chunk, no stream machinery: the big-file path costs two copies and little else.)
 */
async function pumpFile(fd: number, res: ServerResponse, span: Span): Promise<void> {
  const total = span.end - span.start + 1;
  const size = Math.min(PUMP_CHUNK, total);
  const bufs = [Buffer.allocUnsafeSlow(size), Buffer.allocUnsafeSlow(size)];
  const free: Promise<void>[] = [Promise.resolve(), Promise.resolve()];
  let pos = span.start;
  let i = 0;
  let reading = readInto(fd, bufs[0]!, size, pos);
  for (;;) {
    const n = await reading;
    if (res.destroyed) throw new Error('the client went away');
    const buf = bufs[i]!;
    pos += n;
    let release!: () => void;
    free[i] = new Promise<void>((r) => (release = r));
    const ok = res.write(n === buf.length ? buf : buf.subarray(0, n), () => release());
    if (pos > span.end) {
      if (!ok) await drained(res);
      return;
    }
    const j = i ^ 1;
    await untilClosed(free[j]!, res); // that buffer's last write is done: it may be filled again
    reading = readInto(fd, bufs[j]!, Math.min(PUMP_CHUNK, span.end - pos + 1), pos);
    i = j;
    if (!ok) await drained(res);
  }
}

/** Read exactly `len` bytes at `pos` into `buf` (fewer: the file shrank, an error). */
async function readInto(fd: number, buf: Buffer, len: number, pos: number): Promise<number> {
  let off = 0;
  while (off < len) {
    const n = await new Promise<number>((res, rej) => fsRead(fd, buf, off, len - off, pos + off, (e, k) => (e ? rej(e) : res(k))));
    if (n === 0) throw new Error(`the file ended ${len - off} bytes early`);
    off += n;
  }
  return len;
}

function untilClosed(p: Promise<void>, res: ServerResponse): Promise<void> {
  if (res.destroyed) return Promise.reject(new Error('the client went away'));
  return new Promise((resolve, reject) => {
    const fail = () => reject(new Error('the client went away'));
    res.once('close', fail);
    p.then(() => {
      res.off('close', fail);
      resolve();
    });
  });
}

function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', fail);
      resolve();
    };
    const fail = () => {
      res.off('drain', done);
      reject(new Error('the client went away'));
    };
    res.once('drain', done);
    res.once('close', fail);
  });
}

export function sendJsonBody(req: IncomingMessage, res: ServerResponse, status: number, body: unknown, extra: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store', ...extra });
  res.end(req.method === 'HEAD' ? undefined : text);
}

export function sendError(req: IncomingMessage, res: ServerResponse, status: number, code: string, message: string, extra: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendJsonBody(req, res, status, { error: message, code }, extra);
}

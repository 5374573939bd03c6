// Stream helpers shared by the backends: a body meter that counts bytes, reports progress and
// insists on the announced size, and a way to tell "reading the local file failed" apart from
// "the target failed" when an upload breaks.
import { pipeline, Readable, Transform, type TransformCallback } from 'node:stream';
import { abortError, StorageError, type BlockReader } from './types';

/**
 * Thrown through the body stream when the source gave more or fewer bytes than announced: the
 * local file changed while it was being uploaded (a copy still in progress, an edit).
 */
export class BodySizeError extends Error {
  readonly expected: number;
  readonly actual: number;
  constructor(expected: number, actual: number) {
    super(`the source gave ${actual > expected ? 'more than ' : ''}${actual} bytes, ${expected} were announced`);
    this.name = 'BodySizeError';
    this.expected = expected;
    this.actual = actual;
  }
}

export interface MeteredBody {
  stream: Readable;
  /** The error the source (or the size check) raised, if any: the upload failed on our side. */
  localError(): Error | undefined;
}

/**
 * Wrap a source stream: count bytes, call onProgress with the running total, and fail the stream
 * with BodySizeError if the byte count differs from `size` (which would otherwise leave an S3
 * request waiting for bytes that never come, or store a truncated file).
 */
export function meterBody(src: Readable, size: number, onProgress?: (sent: number) => void): MeteredBody {
  let sent = 0;
  let local: Error | undefined;
  const meter = new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      sent += chunk.length;
      if (sent > size) {
        local = new BodySizeError(size, sent);
        cb(local);
        return;
      }
      onProgress?.(sent);
      cb(null, chunk);
    },
    flush(cb: TransformCallback) {
      if (sent !== size) {
        local = new BodySizeError(size, sent);
        cb(local);
        return;
      }
      cb();
    },
  });
  src.on('error', (e) => {
    // A premature close is the source being torn down because the upload failed or was aborted
    // (pipeline destroys it): the upload's own error is the real one, not a failing disk.
    if ((e as NodeJS.ErrnoException).code === 'ERR_STREAM_PREMATURE_CLOSE') return;
    local ??= e;
  });
  // pipeline destroys both streams on failure, so an aborted request closes the local file.
  pipeline(src, meter, () => {});
  return { stream: meter, localError: () => local };
}

/** The StorageError for a failed read of the local body. */
export function localBodyError(e: Error, key: string): StorageError {
  if (e instanceof BodySizeError) {
    return new StorageError(
      'local',
      `The file for "${key}" changed while it was being uploaded (${e.message}). Triplicate uploads it again once it stops changing.`,
      `BodySizeError: expected ${e.expected} bytes, got ${e.actual}`,
      { cause: e },
    );
  }
  const code = (e as NodeJS.ErrnoException).code;
  return new StorageError(
    'local',
    code === 'ENOENT'
      ? `The file for "${key}" disappeared before it was fully read. Nothing to do if it was deleted on purpose.`
      : `Triplicate could not read the file for "${key}". Check that the disk is healthy and the file is readable.`,
    `${e.name}${code ? ` ${code}` : ''}: ${e.message}`,
    { cause: e },
  );
}

/**
 * Read a stream block by block (a body without its own BlockReader: a bandwidth-limited one, an
 * object copied from another target), so that a multipart upload has one way to fill its parts.
 * Destroying the stream (close, or the signal) ends a pending read.
 */
export function streamReader(src: Readable, signal: AbortSignal): BlockReader {
  const chunks = src[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  let rest: Buffer = Buffer.alloc(0);
  let ended = false;
  const stop = () => src.destroy();
  signal.addEventListener('abort', stop, { once: true });
  return {
    async read(buf: Buffer): Promise<number> {
      let n = 0;
      while (n < buf.length) {
        if (rest.length === 0) {
          if (ended) break;
          const next = await chunks.next();
          if (next.done) {
            ended = true;
            break;
          }
          rest = next.value;
        }
        const take = Math.min(rest.length, buf.length - n);
        rest.copy(buf, n, 0, take);
        rest = rest.subarray(take);
        n += take;
      }
      return n;
    },
    async close(): Promise<void> {
      signal.removeEventListener('abort', stop);
      stop();
    },
  };
}

/** Throw the 'aborted' StorageError if the signal has fired. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortError();
}

/** Sleep that ends early with an 'aborted' StorageError when the signal fires. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortError());
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError());
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Byte-order comparison of two keys as UTF-8 (S3's listing order), not UTF-16 code units. */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

/**
 * Hand out a download body as a plain Readable whose errors are StorageErrors (a download that
 * breaks mid-way says so in a sentence) and which stops when the caller's signal aborts.
 * Destroying the returned stream destroys the source (frees the socket or file descriptor).
 *
 * `slice` drops the first `skip` bytes and ends after `take` bytes: for servers that send more
 * than the range asked for (s3rver answers "bytes=0-0" with the whole object; some proxies ignore
 * Range altogether). A source that ends before `take` bytes fails the stream.
 */
export function wrapBody(
  raw: Readable | undefined,
  mapErr: (e: unknown) => StorageError,
  signal?: AbortSignal,
  slice: { skip: number; take: number } = { skip: 0, take: Infinity },
): Readable {
  // Zero-byte object: some servers send no body stream at all.
  if (!raw || slice.take === 0) {
    raw?.destroy();
    return Readable.from([]);
  }
  let skip = slice.skip;
  let left = slice.take;
  let done = false;
  /** Every byte asked for was delivered (the source may still be finishing its response). */
  let complete = false;
  const onAbort = () => out.destroy(abortError());
  const out = new Readable({
    read() {
      if (raw.isPaused()) raw.resume();
    },
    destroy(err, cb) {
      done = true;
      signal?.removeEventListener('abort', onAbort);
      // A response read to its last byte ends by itself and hands its keep-alive socket back;
      // destroying it first would cost a new connection for the next request.
      if (complete && !err && !raw.destroyed && !raw.readableEnded) raw.resume();
      else if (!raw.destroyed) raw.destroy();
      cb(err);
    },
  });
  const finish = () => {
    if (done) return;
    done = true;
    complete = true;
    out.push(null);
  };
  raw.on('data', (chunk: Buffer) => {
    if (done) {
      // Bytes beyond the asked range: not ours, stop the transfer.
      if (!raw.destroyed) raw.destroy();
      return;
    }
    let c = chunk;
    if (skip > 0) {
      if (c.length <= skip) {
        skip -= c.length;
        return;
      }
      c = c.subarray(skip);
      skip = 0;
    }
    if (c.length >= left) {
      const extra = c.length > left;
      out.push(c.subarray(0, left));
      left = 0;
      finish();
      // The rest is not ours: stop the transfer. Exactly the asked bytes: let the response end, so
      // its keep-alive socket goes back to the pool (destroying it costs a new connection per GET).
      if (extra) raw.destroy();
      else if (raw.isPaused()) raw.resume();
      return;
    }
    left -= c.length;
    if (!out.push(c)) raw.pause();
  });
  raw.on('end', () => {
    if (done) return;
    if (Number.isFinite(left) && left > 0) {
      out.destroy(mapErr(Object.assign(new Error(`the download ended ${left} bytes early`), { code: 'ECONNRESET' })));
    } else finish();
  });
  raw.on('error', (e) => {
    if (!done) out.destroy(e instanceof StorageError ? e : mapErr(e));
  });
  if (signal?.aborted) onAbort();
  else signal?.addEventListener('abort', onAbort, { once: true });
  return out;
}
